package cli

import (
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"sluice.dev/sluice/pkg/canary"
)

func TestDecideWait(t *testing.T) {
	st := func(phase canary.Phase, rev string) *canary.CanaryStatus {
		return &canary.CanaryStatus{Phase: phase, CanaryRevision: rev, PrimaryRevision: "p1", CanaryWeight: 20,
			Message: "canary weight 20"}
	}
	failedWith := func(reason, message string) *canary.CanaryStatus {
		s := st(canary.PhaseFailed, "r2")
		s.Message = "revision r2 rolled back: " + message
		s.Checks = []canary.CheckStatus{
			{Name: "request-success-rate", Verdict: canary.VerdictFailed, Value: ptr.To(91.0), Min: ptr.To(99.0), Unit: "%",
				Samples: ptr.To[int64](400), Message: "error rate 9% is above the allowed 1%"},
			{Name: "request-duration", Verdict: canary.VerdictPassed, Value: ptr.To(20.0), Max: ptr.To(500.0), Unit: "ms"},
		}
		s.Conditions = []metav1.Condition{{Type: canary.ConditionPromoted, Status: metav1.ConditionFalse, Reason: reason, Message: message}}
		return s
	}
	paused := st(canary.PhaseProgressing, "r2")
	paused.Conditions = []metav1.Condition{{Type: canary.ConditionPaused, Status: metav1.ConditionTrue}}
	cases := []struct {
		name string
		o    WaitObservation
		done bool
		code int
		// message is a part of the result's message.
		message string
	}{
		{"no Canary yet", WaitObservation{Revision: "r2"}, false, 0, "waiting for the shifter to create the Canary"},
		{"the Canary was deleted", WaitObservation{Revision: "r2", Seen: true}, true, ExitReplaced, "the Canary was deleted"},
		{"nothing to wait for", WaitObservation{Status: st(canary.PhaseInitialized, "")}, true, ExitSucceeded,
			"nothing to wait for: no revision is pending or under analysis; the primary runs revision p1"},
		{"progressing", WaitObservation{Status: st(canary.PhaseProgressing, "r2"), Revision: "r2"}, false, 0,
			"revision r2: Progressing, canary weight 20, 0 failed checks (canary weight 20)"},
		{"paused", WaitObservation{Status: paused, Revision: "r2"}, false, 0, "0 failed checks, paused"},
		{"waiting for confirmation", WaitObservation{Status: st(canary.PhaseWaiting, "r2"), Revision: "r2"}, false, 0, "Waiting"},
		{"waiting for promotion", WaitObservation{Status: st(canary.PhaseWaitingPromotion, "r2"), Revision: "r2"}, false, 0, "WaitingPromotion"},
		{"promoting", WaitObservation{Status: st(canary.PhasePromoting, "r2"), Revision: "r2"}, false, 0, "Promoting"},
		{"succeeded", WaitObservation{Status: st(canary.PhaseSucceeded, "r2"), Revision: "r2"}, true, ExitSucceeded, "revision r2 succeeded"},
		{"failed", WaitObservation{Status: failedWith("Failed", "failed checks threshold reached 5"), Revision: "r2", For: ForSucceeded},
			true, ExitFailed, "revision r2 failed: revision r2 rolled back: failed checks threshold reached 5\n" +
				"  failed check: request-success-rate 91.00% (min 99%, 400 requests): Failed: error rate 9% is above the allowed 1%"},
		{"failed, waiting for a decision", WaitObservation{Status: failedWith("Failed", "aborted by alice"), Revision: "r2", For: ForDecided},
			true, ExitSucceeded, "revision r2 failed"},
		{"superseded by an update sluice did not divert", WaitObservation{Status: failedWith("Superseded", "superseded: ..."), Revision: "r2"},
			true, ExitReplaced, "revision r2 was superseded"},
		{"the shifter has not started it yet", WaitObservation{Status: st(canary.PhaseSucceeded, "r1"), Revision: "r2",
			Pending: "r2", PendingKnown: true}, false, 0, "revision r2 is pending"},
		{"not started yet, the Deployment unreadable", WaitObservation{Status: st(canary.PhaseSucceeded, "r1"), Revision: "r2"},
			false, 0, "revision r2 is pending"},
		{"replaced before the shifter started it", WaitObservation{Status: st(canary.PhaseSucceeded, "r1"), Revision: "r2",
			Pending: "r3", PendingKnown: true}, true, ExitReplaced, "revision r2 was replaced by revision r3 before the shifter started it"},
		{"neither pending nor analysed", WaitObservation{Status: st(canary.PhaseSucceeded, "r1"), Revision: "r2", PendingKnown: true},
			true, ExitReplaced, "revision r2 is neither pending nor under analysis"},
		{"replaced while analysed", WaitObservation{Status: st(canary.PhaseProgressing, "r3"), Revision: "r2", Seen: true},
			true, ExitReplaced, "revision r2 was replaced by revision r3"},
		{"cancelled while analysed", WaitObservation{Status: st(canary.PhaseInitialized, ""), Revision: "r2", Seen: true},
			true, ExitReplaced, "revision r2 was cancelled"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.o.For == "" {
				tc.o.For = ForSucceeded
			}
			got := DecideWait(tc.o)
			if got.Done != tc.done || got.Code != tc.code || !strings.Contains(got.Message, tc.message) {
				t.Errorf("DecideWait = %+v; want done %v, code %d, a message with %q", got, tc.done, tc.code, tc.message)
			}
		})
	}
}

func TestWaitTarget(t *testing.T) {
	cases := []struct {
		name    string
		st      *canary.CanaryStatus
		pending string
		want    string
	}{
		{"the diverted revision first", &canary.CanaryStatus{CanaryRevision: "r1"}, "r2", "r2"},
		{"the revision of the Canary", &canary.CanaryStatus{CanaryRevision: "r1"}, "", "r1"},
		{"diverted, no Canary yet", nil, "r2", "r2"},
		{"none", &canary.CanaryStatus{}, "", ""},
	}
	for _, tc := range cases {
		if got := WaitTarget(tc.st, tc.pending); got != tc.want {
			t.Errorf("%s: WaitTarget = %q; want %q", tc.name, got, tc.want)
		}
	}
}
