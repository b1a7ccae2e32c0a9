package cli

import (
	"fmt"
	"strings"

	apimeta "k8s.io/apimachinery/pkg/api/meta"

	"sluice.dev/sluice/pkg/canary"
)

// The exit codes of kubectl sluice wait.
const (
	// ExitSucceeded: the revision was promoted (or, with --for decided,
	// it was decided either way).
	ExitSucceeded = 0
	// ExitFailed: the revision was rolled back.
	ExitFailed = 1
	// ExitTimeout: the revision was not decided within --timeout.
	ExitTimeout = 2
	// ExitReplaced: a newer revision, or the primary's template applied
	// again, replaced it before it was decided.
	ExitReplaced = 3
	// ExitUnable: wait could not wait: a wrong flag, a refusal, a Canary
	// that cannot be read.
	ExitUnable = 4
)

// WaitFor is the outcome kubectl sluice wait waits for.
type WaitFor string

// The outcomes wait waits for.
const (
	// ForSucceeded: exit 0 on a promotion, 1 on a rollback.
	ForSucceeded WaitFor = "succeeded"
	// ForDecided: exit 0 on either.
	ForDecided WaitFor = "decided"
)

// WaitObservation is what kubectl sluice wait sees of a rollout at one
// moment.
type WaitObservation struct {
	// Status is the Canary's status; nil while there is no Canary.
	Status *canary.CanaryStatus
	// Revision is the revision waited for; "" if there was none to wait for
	// when the wait started.
	Revision string
	// Pending is the revision the webhook diverted to the Deployment's
	// annotation, "" for none; PendingKnown is false when the Deployment
	// could not be read.
	Pending      string
	PendingKnown bool
	// Seen: an earlier observation showed Revision under analysis.
	Seen bool
	// For is the outcome waited for.
	For WaitFor
}

// WaitResult is what wait does after an observation.
type WaitResult struct {
	// Done ends the wait, with Code.
	Done bool
	Code int
	// Message says what happened, or what the wait waits for.
	Message string
}

// DecideWait decides the outcome of kubectl sluice wait from one
// observation: a pure function of what the Canary's status (and the
// Deployment's pending revision) say of the revision waited for.
func DecideWait(o WaitObservation) WaitResult {
	st, rev := o.Status, o.Revision
	switch {
	case st == nil && o.Seen:
		return WaitResult{Done: true, Code: ExitReplaced,
			Message: fmt.Sprintf("the Canary was deleted before revision %s was decided: its Deployment was deleted or opted out", rev)}
	case st == nil:
		return WaitResult{Message: "waiting for the shifter to create the Canary"}
	case rev == "":
		return WaitResult{Done: true, Code: ExitSucceeded,
			Message: fmt.Sprintf("nothing to wait for: no revision is pending or under analysis; the primary runs revision %s", orDash(st.PrimaryRevision))}
	case st.CanaryRevision == rev:
		return decideCurrent(st, rev, o.For)
	case o.Seen && st.CanaryRevision == "":
		return WaitResult{Done: true, Code: ExitReplaced,
			Message: fmt.Sprintf("revision %s was cancelled: the Deployment was updated to the primary's template again", rev)}
	case o.Seen:
		return WaitResult{Done: true, Code: ExitReplaced, Message: fmt.Sprintf("revision %s was replaced by revision %s", rev, st.CanaryRevision)}
	case o.PendingKnown && o.Pending == "":
		return WaitResult{Done: true, Code: ExitReplaced,
			Message: fmt.Sprintf("revision %s is neither pending nor under analysis (the Canary shows revision %s)", rev, orDash(st.CanaryRevision))}
	case o.PendingKnown && o.Pending != rev:
		return WaitResult{Done: true, Code: ExitReplaced,
			Message: fmt.Sprintf("revision %s was replaced by revision %s before the shifter started it", rev, o.Pending)}
	}
	return WaitResult{Message: fmt.Sprintf("revision %s is pending; the shifter has not started it yet", rev)}
}

// decideCurrent decides on the revision the Canary shows.
func decideCurrent(st *canary.CanaryStatus, rev string, want WaitFor) WaitResult {
	switch st.Phase {
	case canary.PhaseSucceeded:
		return WaitResult{Done: true, Code: ExitSucceeded, Message: fmt.Sprintf("revision %s succeeded: %s", rev, st.Message)}
	case canary.PhaseFailed:
		if c := apimeta.FindStatusCondition(st.Conditions, canary.ConditionPromoted); c != nil && c.Reason == "Superseded" {
			return WaitResult{Done: true, Code: ExitReplaced, Message: fmt.Sprintf("revision %s was superseded: %s", rev, st.Message)}
		}
		code := ExitFailed
		if want == ForDecided {
			code = ExitSucceeded
		}
		return WaitResult{Done: true, Code: code, Message: failure(st, rev)}
	}
	return WaitResult{Message: progress(st, rev)}
}

// failure says why a revision was rolled back, with its failed checks.
func failure(st *canary.CanaryStatus, rev string) string {
	lines := []string{fmt.Sprintf("revision %s failed: %s", rev, st.Message)}
	for _, c := range st.Checks {
		if c.Verdict == canary.VerdictFailed {
			line := "  failed check: " + c.String()
			if c.Message != "" {
				line += ": " + c.Message
			}
			lines = append(lines, line)
		}
	}
	return strings.Join(lines, "\n")
}

// progress says where an undecided revision stands.
func progress(st *canary.CanaryStatus, rev string) string {
	msg := fmt.Sprintf("revision %s: %s, canary weight %d, %d failed checks", rev, orDash(string(st.Phase)), st.CanaryWeight, st.FailedChecks)
	if apimeta.IsStatusConditionTrue(st.Conditions, canary.ConditionPaused) {
		msg += ", paused"
	}
	if st.Message != "" {
		msg += " (" + st.Message + ")"
	}
	return msg
}

// WaitTarget is the revision wait waits for when none is named: the one
// the webhook diverted to the Deployment (pending, which the shifter may
// not have picked up yet), else the one the Canary shows; "" for none.
func WaitTarget(st *canary.CanaryStatus, pending string) string {
	if pending != "" {
		return pending
	}
	if st != nil {
		return st.CanaryRevision
	}
	return ""
}
