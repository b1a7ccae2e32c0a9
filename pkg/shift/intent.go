package shift

import (
	"fmt"
	"strings"
	"time"

	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"sluice.dev/sluice/pkg/canary"
)

// intend acts on an intent that the shifter has not seen yet: what it
// means depends on the phase, and an intent about another revision than
// the current one does nothing. It leaves the rest of the step to decide,
// from the state it set.
func (s *stepper) intend() {
	in := s.o.Intent
	if in == nil || s.st.ObservedIntent != nil && sameIntent(s.st.ObservedIntent.Intent, *in) {
		return
	}
	applied, message := s.act(*in)
	result := canary.IntentIgnored
	if applied {
		result = canary.IntentApplied
	} else {
		s.event(stepWarning, "IntentIgnored", "Ignored %s of %s revision %s, asked by %s: %s",
			verb(in.Action), s.id(), in.Revision, asker(*in), message)
	}
	s.st.ObservedIntent = &canary.IntentStatus{Intent: *in, Result: result, Message: message}
}

// act applies in, and says whether it did and what happened, or why not.
func (s *stepper) act(in canary.Intent) (bool, string) {
	current := s.st.CanaryRevision
	if s.o.PendingRevision != "" {
		current = s.o.PendingRevision
	}
	if in.Revision != current {
		return false, fmt.Sprintf("the current revision is %s", orNone(current))
	}
	phase, by := s.st.Phase, asker(in)
	live := phase == canary.PhaseProgressing || phase == canary.PhaseWaitingPromotion
	switch in.Action {
	case canary.ActionPause:
		switch {
		case s.paused():
			return true, "already paused"
		case live:
			s.pause(by)
			return true, fmt.Sprintf("paused at canary weight %d", s.st.CanaryWeight)
		}
	case canary.ActionResume:
		switch {
		case s.paused():
			s.resume(by)
			return true, fmt.Sprintf("resumed at canary weight %d", s.st.CanaryWeight)
		case phase == canary.PhaseWaiting:
			s.confirmRollout(by)
			return true, "rollout confirmed"
		}
	case canary.ActionPromote:
		switch {
		case phase == canary.PhaseWaiting:
			s.confirmRollout(by)
			return true, s.askPromotion(in, by)
		case live:
			if s.paused() {
				s.resume(by)
			}
			return true, s.askPromotion(in, by)
		}
	case canary.ActionAbort:
		if live || phase == canary.PhaseWaiting {
			s.end("RollingBack", "Aborted", "aborted by "+by)
			return true, "rolled back"
		}
	case canary.ActionRetry:
		if phase == canary.PhaseFailed && s.st.LastFailedRevision == in.Revision && s.o.PendingRevision == in.Revision {
			s.retrying = true
			return true, "started again"
		}
	}
	return false, fmt.Sprintf("%s means nothing while the canary is %s%s", verb(in.Action), phase, s.hint(in.Action))
}

// hint says what works instead of an action that means nothing now.
func (s *stepper) hint(a canary.Action) string {
	switch {
	case a == canary.ActionRetry && s.st.Phase == canary.PhaseFailed:
		return "; its template is no longer pending: apply it again"
	case s.st.Phase == canary.PhaseFailed:
		return "; kubectl sluice retry runs it again"
	case a == canary.ActionResume && s.st.Phase != canary.PhaseWaiting:
		return "; it is not paused"
	}
	return ""
}

// askPromotion records that the canary is to be promoted: at once if it
// waits for that, at its next passing analysis, or as soon as it is ready
// without one.
func (s *stepper) askPromotion(in canary.Intent, by string) string {
	switch {
	case s.st.Phase == canary.PhaseWaitingPromotion:
		s.event(step, "PromotionConfirmed", "Promotion of %s confirmed by %s", s.id(), by)
		return "promoting"
	case in.SkipAnalysis:
		s.event(stepWarning, "PromotionAsked", "Promotion of %s without analysis, asked by %s", s.id(), by)
		return "promoting without analysis once the canary is ready"
	default:
		s.event(step, "PromotionAsked", "Promotion of %s after its next passing analysis, asked by %s", s.id(), by)
		return "promoting after the next passing analysis"
	}
}

// promotionAsked reports whether someone asked to promote the current
// revision, and whether without analysis.
func (s *stepper) promotionAsked() (asked, skipAnalysis bool) {
	in := s.st.ObservedIntent
	if in == nil || in.Action != canary.ActionPromote || in.Result != canary.IntentApplied || in.Revision != s.st.CanaryRevision {
		return false, false
	}
	return true, in.SkipAnalysis
}

func (s *stepper) paused() bool { return s.st.PausedAt != nil }

func (s *stepper) pause(by string) {
	now := metav1.NewTime(s.o.Now)
	s.st.PausedAt = &now
	apimeta.SetStatusCondition(&s.st.Conditions, metav1.Condition{Type: canary.ConditionPaused, Status: metav1.ConditionTrue,
		Reason: "Paused", Message: "paused by " + by, LastTransitionTime: now})
	s.event(step, "Paused", "Paused %s at canary weight %d, asked by %s", s.id(), s.st.CanaryWeight, by)
	s.st.Message = fmt.Sprintf("paused at canary weight %d by %s", s.st.CanaryWeight, by)
}

// resume ends a pause. The interval clock stood still: the times it counts
// from move on by the pause.
func (s *stepper) resume(by string) {
	paused := s.o.Now.Sub(s.st.PausedAt.Time)
	clocks := []*metav1.Time{&s.st.LastStepTime, &s.st.StepStartTime}
	if blind := apimeta.FindStatusCondition(s.st.Conditions, canary.ConditionBlind); blind != nil && blind.Status == metav1.ConditionTrue {
		clocks = append(clocks, &blind.LastTransitionTime)
	}
	for _, t := range clocks {
		if !t.IsZero() {
			*t = metav1.NewTime(t.Add(paused))
		}
	}
	s.unpause()
	s.st.Message = fmt.Sprintf("canary weight %d", s.st.CanaryWeight)
	s.event(step, "Resumed", "Resumed %s at canary weight %d after %s paused, asked by %s",
		s.id(), s.st.CanaryWeight, paused.Round(time.Second), by)
}

// unpause drops the pause, if any.
func (s *stepper) unpause() {
	if !s.paused() {
		return
	}
	s.st.PausedAt = nil
	apimeta.SetStatusCondition(&s.st.Conditions, metav1.Condition{Type: canary.ConditionPaused, Status: metav1.ConditionFalse,
		Reason: "Resumed", Message: "not paused", LastTransitionTime: metav1.NewTime(s.o.Now)})
}

// confirmRollout opens the confirm-rollout gate: the canary starts.
func (s *stepper) confirmRollout(by string) {
	s.event(step, "RolloutConfirmed", "Rollout of %s revision %s confirmed by %s", s.id(), s.st.CanaryRevision, by)
	s.st.LastStepTime = metav1.NewTime(s.o.Now)
	s.transition(canary.PhaseProgressing, "waiting for "+s.canaryID()+" to be ready")
}

// sameIntent reports whether a and b are the same request: the webhook
// stamps each with its time, in whole seconds.
func sameIntent(a, b canary.Intent) bool {
	return a.Action == b.Action && a.Revision == b.Revision && a.SkipAnalysis == b.SkipAnalysis &&
		a.RequestedBy == b.RequestedBy && a.RequestedAt.Equal(&b.RequestedAt)
}

// asker names who asked for in, for events and messages.
func asker(in canary.Intent) string {
	if in.RequestedBy == "" {
		return "an unknown user"
	}
	return in.RequestedBy
}

// verb is how events and messages name an action: "pause", "promote".
func verb(a canary.Action) string { return strings.ToLower(string(a)) }

func orNone(revision string) string {
	if revision == "" {
		return "none"
	}
	return revision
}
