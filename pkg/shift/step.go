package shift

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"sluice.dev/sluice/pkg/analysis"
	"sluice.dev/sluice/pkg/canary"
	"sluice.dev/sluice/pkg/routing"
)

// Observation is what the shifter sees of one opted-in Deployment at one
// moment. Step decides from it alone.
type Observation struct {
	Now time.Time
	// Namespace and Name of the Deployment, for the event messages.
	Namespace, Name string
	Settings        canary.Settings
	// PrimaryRevision is the revision of the Deployment's spec.template.
	PrimaryRevision string
	// PrimaryReady: the primary's rollout is complete and all its replicas
	// are available.
	PrimaryReady bool
	// PendingRevision is the revision of the diverted template; "" for none.
	PendingRevision string
	// PendingPrimaryRevision is the pending template's revision as
	// PrimaryRevision counts it: the primary's once it is promoted.
	PendingPrimaryRevision string
	// CanaryReady: the canary Deployment runs PendingRevision with all its
	// replicas ready.
	CanaryReady bool
	// Routed is what the Deployment's route sends now.
	Routed routing.Routing
	// Status is the Canary's status as last written; nil on first sight.
	Status *canary.CanaryStatus
	// Policy is the policy the settings come from, recorded with a new
	// revision so that its analysis keeps it; nil for none.
	Policy *canary.PolicySnapshot
	// SettingSources say where each setting came from.
	SettingSources map[string]string
	// Measurement is the analysis' measurement of the canary, when the
	// caller ran it because an earlier Step asked for it; nil otherwise.
	Measurement *analysis.Measurement
	// Intent is the last action someone asked of the rollout; nil for none.
	Intent *canary.Intent
	// Generation is the Canary's generation, which the status records as
	// observed.
	Generation int64
	// Hooks are the results of the webhook calls that a Step asked for, by
	// call ID; a call asked for that is missing here has not ended yet.
	Hooks map[string]canary.HookStatus
}

// Decision is what the shifter does next for one Deployment.
type Decision struct {
	// Status is the Canary status to write (written only if it changed).
	Status canary.CanaryStatus
	// Canary says whether the canary Deployment should run (with the
	// pending template, at the primary's replicas) or be scaled to zero.
	Canary CanaryAction
	// Routing is what the Deployment's route is to send.
	Routing routing.Routing
	// Promote copies the pending template into the primary.
	Promote bool
	// RunChecks asks the caller to measure the canary over Window, ending
	// now, and step again with the measurement.
	RunChecks bool
	Window    time.Duration
	// Events to record, in order.
	Events []Event
	// RequeueAfter is when to look again if nothing changes; 0 for never.
	RequeueAfter time.Duration
	// Outcome is the rollout this decision ends, if any.
	Outcome Outcome
	// Hooks are the webhook calls the decision needs answered; the caller
	// starts those it has not started, and steps again once one has ended.
	Hooks []HookCall
	// Notify are the calls of the event webhooks, one per event and
	// webhook, to send once the events are recorded; nobody waits for them.
	Notify []HookCall
}

// Outcome is how a rollout ended.
type Outcome struct {
	// Phase is PhaseSucceeded or PhaseFailed; "" when no rollout ended.
	Phase canary.Phase
	// Took is the time from the new revision to the end.
	Took time.Duration
}

// CanaryAction is the desired state of the canary Deployment.
type CanaryAction int

// The canary actions.
const (
	// CanaryKeep leaves the canary Deployment as it is.
	CanaryKeep CanaryAction = iota
	// CanaryRun runs the pending template at the primary's replicas.
	CanaryRun
	// CanaryScaleDown scales the canary Deployment to zero.
	CanaryScaleDown
)

// Event is a Kubernetes event for the Canary. Each kind of event has a
// reason of its own.
type Event struct {
	Warning bool
	Reason  string
	Message string
	// Main events (a new revision, the outcome) are also recorded on the
	// Deployment, and are never dropped; the steps in between go only on the
	// Canary, since each event costs an API request, and may be dropped when
	// the API server falls behind.
	Main bool
}

// Step decides the next move of one canary from what is observed. It is a
// pure function: the same observation always gives the same decision, so a
// restarted shifter resumes where the last one stopped.
func Step(o Observation) Decision {
	s := &stepper{o: o}
	if o.Status == nil || o.Status.Phase == "" {
		s.event(step, "Initialized", "Initialization done! %s", s.id())
		s.transition(canary.PhaseInitialized, "all traffic to the primary")
		s.st.PrimaryRevision = o.PrimaryRevision
	} else {
		s.st = *o.Status.DeepCopy()
	}
	s.st.ObservedGeneration = o.Generation
	s.decide()
	s.notify()
	return s.d
}

type stepper struct {
	o  Observation
	st canary.CanaryStatus
	d  Decision
	// retrying: someone asked to run the failed revision again.
	retrying bool
}

func (s *stepper) id() string { return s.o.Name + "." + s.o.Namespace }

func (s *stepper) canaryID() string { return s.o.Name + "-canary." + s.o.Namespace }

// kind is what an event tells and where it goes.
type kind int

const (
	// step: a step of the rollout, on the Canary.
	step kind = iota
	// stepWarning: a step that went wrong, on the Canary.
	stepWarning
	// outcome: a new revision or how a canary ended, also on the Deployment.
	outcome
	// outcomeWarning: a canary that failed, also on the Deployment.
	outcomeWarning
)

func (s *stepper) event(k kind, reason, format string, args ...any) {
	s.d.Events = append(s.d.Events, Event{
		Warning: k == stepWarning || k == outcomeWarning, Main: k >= outcome,
		Reason: reason, Message: fmt.Sprintf(format, args...),
	})
}

func (s *stepper) transition(phase canary.Phase, message string) {
	if s.st.Phase != phase {
		s.st.Phase = phase
		s.st.LastTransitionTime = metav1.NewTime(s.o.Now)
	}
	s.st.Message = message
}

func (s *stepper) decide() {
	defer func() { s.d.Status, s.d.Routing = s.st, s.routing() }()
	o := s.o
	s.st.SettingSources = o.SettingSources
	s.intend()
	analysing := analysing(s.st.Phase)
	if !analysing {
		// Outside an analysis no canary serves; this also finishes a scale
		// down that a restart interrupted after the status was written.
		s.d.Canary = CanaryScaleDown
		s.st.PrimaryRevision = o.PrimaryRevision
	}
	// The promotion is written when the primary runs the promoted template;
	// the pending one may be gone with it, or already newer.
	promoted := s.st.Phase == canary.PhasePromoting && o.PrimaryRevision == s.st.PromotedPrimaryRevision
	switch {
	case promoted && o.PendingRevision == "":
		s.finishPromotion()
	case promoted:
		// A newer template came right after the promotion: that rollout
		// ended, the next one starts.
		s.completePromotion()
		s.newRevision(false)
	case o.PendingRevision == "" && analysing:
		// The user's update dropped the canary: `kubectl apply` of the
		// primary's template, or skip-analysis.
		s.revert()
	case o.PendingRevision == "":
	case s.retrying:
		s.newRevision(false)
	case o.PendingRevision != s.st.CanaryRevision && !o.Settings.SkipAnalysis:
		// With skip-analysis on, the webhook drops every canary; one still
		// here was left by an update it did not see, and starts nothing.
		s.newRevision(analysing)
	case analysing && o.PrimaryRevision != s.st.PrimaryRevision:
		s.supersede()
	case s.st.Phase == canary.PhaseWaiting:
		s.waitForRollout()
	case s.st.Phase == canary.PhaseProgressing || s.st.Phase == canary.PhaseWaitingPromotion:
		s.progress()
	case s.st.Phase == canary.PhasePromoting:
		// The promotion write failed (a newer template won the race, or the
		// API server was away): try again.
		s.d.Promote = true
	}
	if s.st.Phase == canary.PhaseSucceeded || s.st.Phase == canary.PhaseFailed {
		s.tellOutcome()
	}
}

// analysing reports whether a revision is rolled out in phase: from its
// detection to its promotion or rollback.
func analysing(phase canary.Phase) bool {
	switch phase {
	case canary.PhaseWaiting, canary.PhaseProgressing, canary.PhaseWaitingPromotion, canary.PhasePromoting:
		return true
	}
	return false
}

func (s *stepper) newRevision(restart bool) {
	if s.st.Phase == canary.PhaseFailed && s.o.PendingRevision == s.st.LastFailedRevision && !s.retrying {
		// Rolled back already; applying it again does not restart it.
		return
	}
	manual := s.o.Settings.ConfirmRollout == canary.GateManual
	gated := manual || len(s.webhooks(canary.HookConfirmRollout)) > 0
	switch {
	case s.retrying:
		s.event(outcome, "NewRevision", "Retrying revision %s! Scaling up %s", s.o.PendingRevision, s.canaryID())
	case manual:
		s.event(outcome, "NewRevision", "New revision detected! Waiting for its rollout to be confirmed: kubectl sluice resume %s -n %s",
			s.o.Name, s.o.Namespace)
	case gated:
		s.event(outcome, "NewRevision", "New revision detected! Waiting for the confirm-rollout webhooks to confirm its rollout")
	case restart:
		s.event(outcome, "NewRevision", "New revision detected! Restarting analysis for %s", s.id())
	default:
		s.event(outcome, "NewRevision", "New revision detected! Scaling up %s", s.canaryID())
	}
	s.st.CanaryRevision = s.o.PendingRevision
	s.st.Policy = s.o.Policy.DeepCopy()
	s.st.PromotedPrimaryRevision = ""
	// The analysis judges the canary against this primary, and ends if
	// anything but a promotion changes it.
	s.st.PrimaryRevision = s.o.PrimaryRevision
	s.st.RevisionStartTime = metav1.NewTime(s.o.Now)
	s.st.CanaryWeight = 0
	s.st.Iterations = 0
	s.st.FailedChecks = 0
	s.st.Checks = nil
	s.st.Evidence = nil
	s.st.StepStartTime = metav1.Time{}
	s.st.Webhooks = nil
	s.unpause()
	apimeta.RemoveStatusCondition(&s.st.Conditions, canary.ConditionBlind)
	apimeta.SetStatusCondition(&s.st.Conditions, metav1.Condition{Type: canary.ConditionProgressing, Status: metav1.ConditionTrue,
		Reason: "NewRevision", Message: "rolling out revision " + s.o.PendingRevision, LastTransitionTime: metav1.NewTime(s.o.Now)})
	// While the weight is 0, LastStepTime is when the canary was started:
	// the progress deadline counts from it.
	s.st.LastStepTime = metav1.NewTime(s.o.Now)
	if gated && !s.retrying {
		s.transition(canary.PhaseWaiting, "waiting for kubectl sluice resume or promote to start revision "+s.st.CanaryRevision)
		s.waitForRollout()
		return
	}
	s.transition(canary.PhaseProgressing, "waiting for "+s.canaryID()+" to be ready")
	s.d.Canary = CanaryRun
	s.waitForCanary()
}

// waitForCanary starts the analysis once the canary is ready, or rolls back
// when it does not become ready within the progress deadline.
func (s *stepper) waitForCanary() {
	if !s.o.CanaryReady {
		deadline := s.st.LastStepTime.Add(s.o.Settings.ProgressDeadline.Duration)
		if !s.o.Now.Before(deadline) {
			s.rollback("progress deadline exceeded")
			return
		}
		s.d.RequeueAfter = deadline.Sub(s.o.Now)
		return
	}
	if _, skip := s.promotionAsked(); skip {
		s.promote()
		return
	}
	if !s.preRollout() {
		return
	}
	s.event(step, "AnalysisStarted", "Starting canary analysis for %s", s.id())
	s.begin()
}

func (s *stepper) progress() {
	// Keep the canary running the pending template at the primary's
	// replicas, which may have been scaled since the canary started.
	s.d.Canary = CanaryRun
	if s.paused() {
		// Held until resumed: no clock runs, no analysis, no deadline.
		return
	}
	if s.st.StepStartTime.IsZero() {
		// The analysis has not started.
		s.waitForCanary()
		return
	}
	// The round of the webhooks is the analysis period, which judge ends.
	round := strconv.FormatInt(s.st.LastStepTime.Unix(), 10)
	if rb := s.ask(canary.HookRollback, round); rb.yesFrom != nil {
		s.end("RollingBack", "RolledBackByWebhook", "asked by webhook "+rb.yesFrom.Name+": "+rb.yesFrom.Message)
		return
	}
	asked, skipAnalysis := s.promotionAsked()
	if skipAnalysis || asked && s.st.Phase == canary.PhaseWaitingPromotion {
		// Either way there is nothing left to judge first.
		s.promote()
		return
	}
	if !s.o.Routed.Equal(s.routing()) {
		// The last routing has not reached the route yet: analysing now
		// would judge a canary on traffic it does not get.
		s.d.RequeueAfter = time.Second
		return
	}
	due := s.st.LastStepTime.Add(s.o.Settings.Interval.Duration)
	if s.o.Now.Before(due) {
		s.d.RequeueAfter = due.Sub(s.o.Now)
		return
	}
	final := s.final()
	// The rollout webhooks run before the checks; the gate ahead is asked
	// meanwhile, so that its answer is in when they pass. Both are asked
	// again with the measurement, to record their answers.
	gate := s.ask(s.gateAhead(final), round)
	ro := s.ask(canary.HookRollout, round)
	if s.o.Measurement == nil {
		switch {
		case ro.pending || gate.pending:
			s.waitForAnswers()
		case ro.no != nil:
			s.st.LastStepTime = metav1.NewTime(s.o.Now)
			s.haltFor([]string{said(ro.no)})
		default:
			s.d.RunChecks, s.d.Window = true, s.window()
		}
		return
	}
	s.judge()
	switch verdict := s.verdict(); {
	case verdict == canary.VerdictFailed && s.decisive() != nil:
		s.rollback(s.decisive().Message)
	case verdict == canary.VerdictFailed:
		s.halt()
	case verdict == canary.VerdictBlind:
		s.holdBlind()
	case verdict == canary.VerdictInconclusive:
		s.holdForEvidence()
	case asked:
		s.promote()
	case final && (s.o.Settings.ConfirmPromotion == canary.GateManual || gate.no != nil):
		s.waitForPromotion(gate.no)
	case final:
		s.promote()
	case gate.no != nil:
		s.holdAtWeight(gate.no)
	default:
		s.next()
	}
}

// waitForPromotion holds a canary that passed at max-weight until someone
// confirms its promotion; it is analysed each interval meanwhile, and may
// still be rolled back.
func (s *stepper) waitForPromotion(no *canary.HookStatus) {
	if s.st.Phase != canary.PhaseWaitingPromotion {
		s.event(step, "WaitingPromotion", "Waiting for the promotion of %s to be confirmed: kubectl sluice promote %s -n %s",
			s.id(), s.o.Name, s.o.Namespace)
	}
	why := "waiting for kubectl sluice promote"
	if no != nil && s.o.Settings.ConfirmPromotion != canary.GateManual {
		why = "waiting for the confirm-promotion webhooks: " + said(no)
	}
	s.transition(canary.PhaseWaitingPromotion, fmt.Sprintf("passed at canary weight %d; %s", s.st.CanaryWeight, why))
	s.d.RequeueAfter = s.o.Settings.Interval.Duration
}

// window is the period the next measurement counts: since the end of the
// last one, so that no request is counted twice, but no longer than the
// analysis window. Whole seconds, so that canaries due together share their
// queries.
func (s *stepper) window() time.Duration {
	start := s.st.StepStartTime.Time
	if s.st.Evidence != nil {
		start = s.st.Evidence.Until.Time
	}
	w := s.o.Now.Sub(start).Round(time.Second)
	return min(max(w, time.Second), s.o.Settings.AnalysisWindow.Duration)
}

// judge runs the checks on the measurement and records their verdicts and
// the evidence gathered.
func (s *stepper) judge() {
	m := *s.o.Measurement
	s.st.LastStepTime = metav1.NewTime(s.o.Now)
	ev := ptr.Deref(s.st.Evidence, canary.Evidence{})
	if m.Err == nil {
		ev = analysis.Gather(ev, m, s.o.Settings.MaxRequestDuration.Duration)
		ev.Until = metav1.NewTime(s.o.Now)
		s.st.Evidence = &ev
	}
	final := s.final()
	checks := Checks(s.o)
	s.st.Checks = make([]canary.CheckStatus, 0, len(checks))
	blind := ""
	for _, c := range checks {
		st := c.Judge(m, ev, final)
		if st.Verdict == canary.VerdictBlind && blind == "" {
			blind = st.Message
		}
		s.st.Checks = append(s.st.Checks, st)
	}
	s.see(blind)
}

// Checks are the checks of the canary that o observes, their queries
// rendered: the caller asks Prometheus what they need.
func Checks(o Observation) []analysis.Check {
	return analysis.Checks(o.Settings, analysis.VarsFor(o.Namespace, o.Name, o.Settings.AnalysisWindow.Duration))
}

// decisive is the first check whose failure rolls back at once, if any.
func (s *stepper) decisive() *canary.CheckStatus {
	for i, c := range s.st.Checks {
		if c.Decisive {
			return &s.st.Checks[i]
		}
	}
	return nil
}

// newStep starts the evidence of a step: at a new weight, or after a
// counted failure.
func (s *stepper) newStep() {
	s.st.StepStartTime = metav1.NewTime(s.o.Now)
	if ev := s.st.Evidence; ev != nil {
		// The totals and the end of the counted period carry on.
		s.st.Evidence = &canary.Evidence{Until: ev.Until, TotalRequests: ev.TotalRequests, TotalErrors: ev.TotalErrors,
			TotalSlowRequests: ev.TotalSlowRequests}
	}
}

// verdict is the verdict of the round: failed if any check failed, else
// blind, inconclusive or passed, whichever is the worst of the checks.
func (s *stepper) verdict() canary.Verdict {
	worst := canary.VerdictPassed
	for _, c := range s.st.Checks {
		if rank[c.Verdict] > rank[worst] {
			worst = c.Verdict
		}
	}
	return worst
}

var rank = map[canary.Verdict]int{
	canary.VerdictPassed: 0, canary.VerdictInconclusive: 1, canary.VerdictBlind: 2, canary.VerdictFailed: 3,
}

// halt counts a round whose checks failed. The next verdict rests on new
// evidence.
func (s *stepper) halt() {
	s.newStep()
	var why []string
	for _, c := range s.st.Checks {
		if c.Verdict == canary.VerdictFailed {
			why = append(why, c.Message)
		}
	}
	s.haltFor(why)
}

// haltFor counts a failed round, for the reasons given, and rolls back at
// the threshold.
func (s *stepper) haltFor(why []string) {
	s.st.FailedChecks++
	for _, w := range why {
		s.event(stepWarning, "Halted", "Halt %s advancement %s", s.id(), w)
	}
	if s.st.FailedChecks >= s.o.Settings.Threshold {
		s.rollback(fmt.Sprintf("failed checks threshold reached %d", s.st.FailedChecks))
		return
	}
	s.st.Message = fmt.Sprintf("advancement halted: %d of %d failed checks", s.st.FailedChecks, s.o.Settings.Threshold)
	s.d.RequeueAfter = s.o.Settings.Interval.Duration
}

// see records whether the analysis could read the metrics: blind says why
// it could not, "" if it could. The Blind condition, and an event when it
// turns.
func (s *stepper) see(blind string) {
	was := apimeta.IsStatusConditionTrue(s.st.Conditions, canary.ConditionBlind)
	switch {
	case blind != "" && !was:
		s.event(stepWarning, "Blind", "Holding %s at canary weight %d: the analysis cannot read the metrics (%s); "+
			"rolled back if still blind after %s", s.id(), s.st.CanaryWeight, blind, s.o.Settings.BlindDeadline.Duration)
		apimeta.SetStatusCondition(&s.st.Conditions, metav1.Condition{Type: canary.ConditionBlind, Status: metav1.ConditionTrue,
			Reason: "MetricsUnavailable", Message: blind, LastTransitionTime: metav1.NewTime(s.o.Now)})
	case blind != "":
		// The same outage: the condition keeps the time it began.
		apimeta.FindStatusCondition(s.st.Conditions, canary.ConditionBlind).Message = blind
	case was:
		since := apimeta.FindStatusCondition(s.st.Conditions, canary.ConditionBlind).LastTransitionTime
		s.event(step, "Sighted", "The analysis of %s reads the metrics again after %s blind", s.id(),
			s.o.Now.Sub(since.Time).Round(time.Second))
		apimeta.SetStatusCondition(&s.st.Conditions, metav1.Condition{Type: canary.ConditionBlind, Status: metav1.ConditionFalse,
			Reason: "MetricsAvailable", Message: "the analysis reads the metrics", LastTransitionTime: metav1.NewTime(s.o.Now)})
	}
}

// holdBlind holds the weight while the analysis is blind, and rolls back
// after the blind deadline: a blind canary is neither good nor bad, but it
// must not serve for ever unjudged.
func (s *stepper) holdBlind() {
	cond := apimeta.FindStatusCondition(s.st.Conditions, canary.ConditionBlind)
	since := cond.LastTransitionTime
	if blind := s.o.Now.Sub(since.Time); blind >= s.o.Settings.BlindDeadline.Duration {
		s.end("RollingBack", "Blind", fmt.Sprintf("blind for %s, longer than the blind deadline %s: %s",
			blind.Round(time.Second), s.o.Settings.BlindDeadline.Duration, cond.Message))
		return
	}
	s.st.Message = fmt.Sprintf("holding at canary weight %d: blind since %s", s.st.CanaryWeight, since.UTC().Format(time.RFC3339))
	s.d.RequeueAfter = s.o.Settings.Interval.Duration
}

// holdForEvidence holds the weight until the checks have enough requests
// to judge, and rolls back after the evidence deadline.
func (s *stepper) holdForEvidence() {
	requests := ptr.Deref(s.st.Evidence, canary.Evidence{}).Requests
	waited := s.o.Now.Sub(s.st.StepStartTime.Time)
	if waited >= s.o.Settings.EvidenceDeadline.Duration {
		s.end("RollingBack", "NotEnoughTraffic", fmt.Sprintf("not enough traffic to judge: %d requests in %s at canary weight %d, %d needed",
			requests, waited.Round(time.Second), s.st.CanaryWeight, s.o.Settings.MinRequests))
		return
	}
	var why []string
	for _, c := range s.st.Checks {
		if c.Verdict == canary.VerdictInconclusive {
			why = append(why, c.Message)
		}
	}
	s.event(step, "Inconclusive", "Hold %s at canary weight %d: %s", s.id(), s.st.CanaryWeight, strings.Join(why, "; "))
	s.st.Message = fmt.Sprintf("holding at canary weight %d: %d requests so far, %d needed to judge", s.st.CanaryWeight, requests, s.o.Settings.MinRequests)
	s.d.RequeueAfter = s.o.Settings.Interval.Duration
}

// advance takes the next step of weights, capped at the last one; the
// weight that reaches max-weight is analysed like the others before the
// promotion starts.
func (s *stepper) advance() {
	weights := s.o.Settings.StepWeights
	next := weights[len(weights)-1]
	if i := slices.IndexFunc(weights, func(w int32) bool { return w > s.st.CanaryWeight }); i >= 0 {
		next = weights[i]
	}
	s.st.CanaryWeight = next
	s.st.LastStepTime = metav1.NewTime(s.o.Now)
	s.newStep()
	s.event(step, "Advanced", "Advance %s canary weight %d", s.id(), next)
	s.transition(canary.PhaseProgressing, fmt.Sprintf("canary weight %d", next))
	s.d.RequeueAfter = s.o.Settings.Interval.Duration
}

// promote starts the promotion of a canary that passed its analysis at
// max-weight.
func (s *stepper) promote() {
	s.event(step, "Promoting", "Copying %s template spec to %s", s.canaryID(), s.id())
	s.st.PromotedPrimaryRevision = s.o.PendingPrimaryRevision
	s.transition(canary.PhasePromoting, "promoting revision "+s.st.CanaryRevision+"; waiting for the primary's rollout")
	s.d.Promote = true
}

// finishPromotion waits for the promoted primary to be ready, then completes
// the promotion.
func (s *stepper) finishPromotion() {
	if s.o.PrimaryReady {
		s.completePromotion()
	}
}

// completePromotion sends all traffic back to the promoted primary, scales
// the canary down and ends the rollout as Succeeded.
func (s *stepper) completePromotion() {
	s.event(step, "Finalising", "Routing all traffic to primary")
	s.st.CanaryWeight = 0
	s.st.PrimaryRevision = s.o.PrimaryRevision
	s.d.Canary = CanaryScaleDown
	s.event(outcome, "Promoted", "Promotion completed! Scaling down %s", s.canaryID())
	s.st.PromotedPrimaryRevision = ""
	s.transition(canary.PhaseSucceeded, "revision "+s.st.CanaryRevision+" promoted")
	s.ended()
	apimeta.SetStatusCondition(&s.st.Conditions, metav1.Condition{Type: canary.ConditionPromoted, Status: metav1.ConditionTrue,
		Reason: "Succeeded", Message: "revision " + s.st.CanaryRevision + " promoted", LastTransitionTime: metav1.NewTime(s.o.Now)})
}

// rollback ends the canary under analysis for good: the same revision
// applied again does not start it over.
func (s *stepper) rollback(reason string) { s.end("RollingBack", "Failed", reason) }

// supersede ends a canary whose primary changed while it was analysed: an
// update that the webhook did not divert (it was down, or sluice was not
// installed) rolled a newer release out, which promoting the canary would
// undo. It ends as a rollback, with a reason of its own.
func (s *stepper) supersede() {
	s.end("Superseded", "Superseded", fmt.Sprintf(
		"superseded: the primary changed from revision %s to %s, an update sluice did not divert, while the canary was analysed; "+
			"a canary is never promoted over a newer release", s.st.PrimaryRevision, s.o.PrimaryRevision))
	s.st.PrimaryRevision = s.o.PrimaryRevision
}

// end rolls the canary under analysis back, recording eventReason on the
// first event and conditionReason on the Promoted condition.
func (s *stepper) end(eventReason, conditionReason, reason string) {
	s.event(outcomeWarning, eventReason, "Rolling back %s %s", s.id(), reason)
	s.st.CanaryWeight = 0
	s.st.LastFailedRevision = s.st.CanaryRevision
	s.d.Canary = CanaryScaleDown
	s.event(outcomeWarning, "Failed", "Canary failed! Scaling down %s", s.canaryID())
	s.st.PromotedPrimaryRevision = ""
	s.transition(canary.PhaseFailed, "revision "+s.st.CanaryRevision+" rolled back: "+reason)
	s.ended()
	apimeta.SetStatusCondition(&s.st.Conditions, metav1.Condition{Type: canary.ConditionPromoted, Status: metav1.ConditionFalse,
		Reason: conditionReason, Message: reason, LastTransitionTime: metav1.NewTime(s.o.Now)})
}

// ended records the outcome of the rollout that just took its final phase.
func (s *stepper) ended() {
	s.unpause()
	s.notProgressing(string(s.st.Phase), s.st.Message)
	apimeta.RemoveStatusCondition(&s.st.Conditions, canary.ConditionBlind)
	s.d.Outcome = Outcome{Phase: s.st.Phase, Took: s.o.Now.Sub(s.st.RevisionStartTime.Time)}
}

func (s *stepper) revert() {
	s.event(outcome, "Reverted", "Canary reverted to the primary's template! Scaling down %s", s.canaryID())
	s.st.CanaryWeight = 0
	s.st.CanaryRevision = ""
	s.st.PromotedPrimaryRevision = ""
	s.st.FailedChecks = 0
	apimeta.RemoveStatusCondition(&s.st.Conditions, canary.ConditionBlind)
	s.d.Canary = CanaryScaleDown
	s.transition(canary.PhaseInitialized, "the pending canary was cancelled")
	s.unpause()
	s.notProgressing("Reverted", s.st.Message)
}

// notProgressing sets the Progressing condition False: no revision is
// rolled out.
func (s *stepper) notProgressing(reason, message string) {
	apimeta.SetStatusCondition(&s.st.Conditions, metav1.Condition{Type: canary.ConditionProgressing, Status: metav1.ConditionFalse,
		Reason: reason, Message: message, LastTransitionTime: metav1.NewTime(s.o.Now)})
}
