package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/duration"

	"sluice.dev/sluice/pkg/canary"
)

// StatusView is what kubectl sluice status shows of one Canary: the Canary,
// its Deployments, and its events.
type StatusView struct {
	Canary *canary.Canary
	// Primary is the Deployment of the Canary's name; nil when it cannot be
	// read.
	Primary *appsv1.Deployment
	// CanaryDeployment is the Deployment that runs the canary
	// (<name>-canary); nil when there is none or it cannot be read.
	CanaryDeployment *appsv1.Deployment
	// Notes say what could not be read, such as the Deployments for lack
	// of rights.
	Notes []string
	// Events are the occurrences of the Canary's events, oldest first.
	Events []Occurrence
	// EventsSince is when the events shown start (the current revision's
	// detection); zero when they are all shown.
	EventsSince time.Time
}

// StatusOptions tune RenderStatus.
type StatusOptions struct {
	// Now is the time relative times count to.
	Now time.Time
	// Location is the time zone of the times shown; time.Local when nil.
	Location *time.Location
	// timeless leaves out relative times: the block's key in a live view,
	// which must change with the canary, not with the clock.
	timeless bool
}

// RenderStatus writes the whole story of a Canary's current revision: its
// state (StatusBlock), then its events.
func RenderStatus(w io.Writer, v StatusView, opts StatusOptions) error {
	var b strings.Builder
	for _, line := range StatusBlock(v, opts) {
		b.WriteString(line + "\n")
	}
	if !v.EventsSince.IsZero() {
		fmt.Fprintf(&b, "Events:        since revision %s was detected at %s\n",
			v.Canary.Status.CanaryRevision, clock(v.EventsSince, opts.Now, opts.Location))
	} else {
		b.WriteString("Events:\n")
	}
	if len(v.Events) == 0 {
		b.WriteString("  <none>\n")
	}
	for _, line := range FormatOccurrences(v.Events, opts.Now, opts.Location) {
		b.WriteString("  " + line + "\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// StatusBlock is the state of a Canary in lines, without its events: the
// phase, the revisions and images of the primary and the canary, the
// weight and its schedule, each check, the conditions and the intent.
// kubectl sluice status --watch redraws it under the events as they come.
func StatusBlock(v StatusView, opts StatusOptions) []string {
	s := &story{v: v, o: opts, cr: v.Canary, st: &v.Canary.Status}
	s.write()
	return strings.Split(strings.TrimSuffix(s.b.String(), "\n"), "\n")
}

// statusKey is what of a status block is worth printing again outside a
// terminal.
func statusKey(v StatusView) string {
	return strings.Join(StatusBlock(v, StatusOptions{timeless: true, Location: time.UTC}), "\n")
}

type story struct {
	v  StatusView
	o  StatusOptions
	cr *canary.Canary
	st *canary.CanaryStatus
	b  strings.Builder
}

// field writes a labelled line; more lines are indented under the value.
func (s *story) field(label string, lines ...string) {
	for i, l := range lines {
		if i == 0 {
			fmt.Fprintf(&s.b, "%-15s%s\n", label+":", l)
		} else {
			fmt.Fprintf(&s.b, "%-15s%s\n", "", l)
		}
	}
}

// at writes a time, and how long ago or ahead it is.
func (s *story) at(t time.Time) string {
	text := clock(t, s.o.Now, s.o.Location)
	if s.o.timeless {
		return text
	}
	if d := s.o.Now.Sub(t); d >= 0 {
		return text + " (" + duration.HumanDuration(d) + " ago)"
	}
	return text + " (in " + duration.HumanDuration(t.Sub(s.o.Now)) + ")"
}

func (s *story) write() {
	s.field("Name", s.cr.Name)
	s.field("Namespace", s.cr.Namespace)
	phase := orDash(string(s.st.Phase))
	if !s.st.LastTransitionTime.IsZero() {
		phase += " since " + s.at(s.st.LastTransitionTime.Time)
	}
	s.field("Phase", phase)
	if s.st.Message != "" {
		s.field("Message", s.st.Message)
	}
	paused := "no"
	if Paused(s.cr) {
		paused = "yes"
		if s.st.PausedAt != nil {
			paused += ", since " + s.at(s.st.PausedAt.Time)
		}
	}
	s.field("Paused", paused)
	s.revisions()
	steps := fmt.Sprintf("steps %s (promotion from max-weight %d)", joinWeights(Steps(s.cr.Spec.Settings)), s.cr.Spec.MaxWeight)
	if step := StepOf(s.cr); step != "-" {
		steps = "step " + step + " of " + steps[len("steps "):]
	}
	s.field("Weight", Bar(s.st.CanaryWeight, 20)+"   "+steps)
	if style := s.style(); style != "" {
		s.field("Style", style)
	}
	s.field("Schedule", s.schedule())
	s.checks()
	s.webhooks()
	if p := s.st.Policy; p != nil {
		s.field("Policy", fmt.Sprintf("%s %s (generation %d)", p.Kind, p.Name, p.Generation))
	}
	s.intent()
	s.conditions()
	if len(s.v.Notes) > 0 {
		s.field("Note", s.v.Notes...)
	}
}

// style tells a release style other than weights alone, with its
// iterations; "" for none.
func (s *story) style() string {
	set := s.cr.Spec.Settings
	var matches []string
	for _, m := range set.Match {
		var all []string
		for _, h := range m.Headers {
			all = append(all, h.String())
		}
		matches = append(matches, strings.Join(all, " and "))
	}
	iteration := fmt.Sprintf("%d of %d iterations passed", s.st.Iterations, set.Iterations)
	switch {
	case len(matches) > 0:
		return fmt.Sprintf("A/B test: requests with %s go to the canary; %s", strings.Join(matches, ", or "), iteration)
	case set.Mirror:
		return fmt.Sprintf("mirroring %d%% of the requests to the canary before the weights; %s", set.MirrorPercent, iteration)
	case set.Session != nil:
		return fmt.Sprintf("session cookie %s keeps a client that got the canary on it", set.Session.Cookie)
	}
	return ""
}

// webhooks writes the last answer of each webhook in this revision.
func (s *story) webhooks() {
	var lines []string
	for _, h := range s.st.Webhooks {
		if h.Revision != s.st.CanaryRevision {
			continue
		}
		lines = append(lines, fmt.Sprintf("%s (%s) %s at %s: %s", h.Name, h.Type, h.Result, s.at(h.Time.Time), h.Message))
	}
	if len(lines) > 0 {
		s.field("Webhooks", lines...)
	}
}

// revisions writes what the primary and the canary run.
func (s *story) revisions() {
	primary := "revision " + orDash(s.st.PrimaryRevision)
	if d := s.v.Primary; d != nil {
		primary += "   " + images(d.Spec.Template) + "   " + readiness(d)
	}
	s.field("Primary", primary)
	pendingRev, pending := s.pending()
	switch {
	case s.st.CanaryRevision == "":
		s.field("Canary", "none")
	default:
		line := "revision " + s.st.CanaryRevision
		switch {
		case pending != nil && pendingRev == s.st.CanaryRevision:
			line += "   " + images(*pending)
		case s.v.CanaryDeployment != nil:
			line += "   " + images(s.v.CanaryDeployment.Spec.Template)
		}
		if d := s.v.CanaryDeployment; d != nil {
			line += "   " + readiness(d)
		}
		if t := s.st.RevisionStartTime; !t.IsZero() {
			line += ", detected " + s.at(t.Time)
		}
		s.field("Canary", line)
	}
	if pendingRev != "" && pendingRev != s.st.CanaryRevision {
		line := "revision " + pendingRev
		if pending != nil {
			line += "   " + images(*pending)
		}
		s.field("Pending", line+", not started by the shifter yet")
	}
}

// pending is the revision and template that the webhook diverted to the
// Deployment's annotations, if the Deployment could be read.
func (s *story) pending() (string, *corev1.PodTemplateSpec) {
	d := s.v.Primary
	if d == nil {
		return "", nil
	}
	rev := d.Annotations[canary.AnnotationCanaryRevision]
	raw, ok := d.Annotations[canary.AnnotationCanaryTemplate]
	if !ok {
		return rev, nil
	}
	t := &corev1.PodTemplateSpec{}
	if err := json.Unmarshal([]byte(raw), t); err != nil {
		return rev, nil
	}
	return rev, t
}

// schedule says what the rollout waits for, and when its next step is due.
func (s *story) schedule() string {
	settings := s.cr.Spec.Settings
	switch {
	case s.st.Phase == canary.PhaseWaiting:
		return "waiting for its rollout to be confirmed (kubectl sluice resume)"
	case s.st.Phase == canary.PhasePromoting:
		return "promoting: waiting for the primary's rollout"
	case s.st.Phase != canary.PhaseProgressing && s.st.Phase != canary.PhaseWaitingPromotion:
		return "no rollout in progress"
	case Paused(s.cr):
		return "paused: the interval clock stops until kubectl sluice resume"
	case s.st.StepStartTime.IsZero():
		deadline := s.st.LastStepTime.Add(settings.ProgressDeadline.Duration)
		return fmt.Sprintf("waiting for %s-canary to be ready; rolled back if it is not by %s", s.cr.Name, s.at(deadline))
	}
	due := s.st.LastStepTime.Add(settings.Interval.Duration)
	next := "next check due " + s.at(due)
	if !s.o.timeless && !due.After(s.o.Now) {
		next = "next check was due " + s.at(due)
	}
	if s.st.Phase == canary.PhaseWaitingPromotion {
		return fmt.Sprintf("holding at max-weight until kubectl sluice promote; %s, every %s", next, settings.Interval.Duration)
	}
	return fmt.Sprintf("%s, every %s; last step %s", next, settings.Interval.Duration, s.at(s.st.LastStepTime.Time))
}

// checks writes the failed checks and each check's last result, with the
// reason of a verdict other than Passed.
func (s *story) checks() {
	s.field("Failed checks", fmt.Sprintf("%d of %d", s.st.FailedChecks, s.cr.Spec.Threshold))
	if len(s.st.Checks) == 0 {
		s.field("Checks", "none yet")
	} else {
		var lines []string
		for _, c := range s.st.Checks {
			lines = append(lines, c.String())
			if c.Verdict != canary.VerdictPassed && c.Message != "" {
				lines = append(lines, "  "+c.Message)
			}
		}
		s.field("Checks", lines...)
	}
	if ev := s.st.Evidence; ev != nil {
		s.field("Evidence", fmt.Sprintf("at this weight %d canary requests (%d errors, %d slow), %d primary requests (%d errors); "+
			"since the analysis started %d canary requests (%d errors, %d slow)",
			ev.Requests, ev.Errors, ev.SlowRequests, ev.PrimaryRequests, ev.PrimaryErrors, ev.TotalRequests, ev.TotalErrors, ev.TotalSlowRequests))
	}
}

// intent writes the last action asked of the rollout, and what the
// shifter made of it.
func (s *story) intent() {
	asked, observed := s.cr.Spec.Intent, s.st.ObservedIntent
	if observed != nil {
		line := s.describeIntent(observed.Intent) + ": " + observed.Result
		if observed.Message != "" {
			line += ", " + observed.Message
		}
		s.field("Intent", line)
	}
	if asked != nil && (observed == nil || !sameIntent(*asked, observed.Intent)) {
		s.field("Intent", s.describeIntent(*asked)+": not acted on yet")
	}
}

func (s *story) describeIntent(i canary.Intent) string {
	line := fmt.Sprintf("%s revision %s", i.Action, i.Revision)
	if i.SkipAnalysis {
		line += " skipping the analysis"
	}
	if i.RequestedBy != "" {
		line += " by " + i.RequestedBy
	}
	if !i.RequestedAt.IsZero() {
		line += " at " + clock(i.RequestedAt.Time, s.o.Now, s.o.Location)
	}
	return line
}

func sameIntent(a, b canary.Intent) bool {
	return a.Action == b.Action && a.Revision == b.Revision && a.SkipAnalysis == b.SkipAnalysis && a.RequestedAt.Equal(&b.RequestedAt)
}

// conditions writes the conditions as a small table.
func (s *story) conditions() {
	if len(s.st.Conditions) == 0 {
		s.field("Conditions", "none")
		return
	}
	var buf bytes.Buffer
	tw := tabwriter.NewWriter(&buf, 0, 4, 2, ' ', 0)
	for _, c := range s.st.Conditions {
		fmt.Fprintf(tw, "%s\t%s\t%s\tsince %s\t%s\n", c.Type, c.Status, c.Reason, clock(c.LastTransitionTime.Time, s.o.Now, s.o.Location), c.Message)
	}
	_ = tw.Flush()
	s.field("Conditions", strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")...)
}

// images lists the containers of a pod template and their images.
func images(t corev1.PodTemplateSpec) string {
	parts := make([]string, 0, len(t.Spec.Containers))
	for _, c := range t.Spec.Containers {
		parts = append(parts, c.Name+"="+c.Image)
	}
	return strings.Join(parts, ",")
}

// readiness says how many of a Deployment's replicas are ready.
func readiness(d *appsv1.Deployment) string {
	want := int32(1)
	if d.Spec.Replicas != nil {
		want = *d.Spec.Replicas
	}
	return fmt.Sprintf("%s %d/%d ready", d.Name, d.Status.ReadyReplicas, want)
}

func joinWeights(weights []int32) string {
	parts := make([]string, len(weights))
	for i, w := range weights {
		parts[i] = fmt.Sprint(w)
	}
	return strings.Join(parts, ", ")
}
