package shift

import (
	"strings"
	"testing"
	"time"

	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"sluice.dev/sluice/pkg/canary"
)

// ask has jane ask for action about revision, as the webhook stamps it.
func (w *world) ask(action canary.Action, revision string, skipAnalysis bool) *world {
	w.o.Intent = &canary.Intent{Action: action, Revision: revision, SkipAnalysis: skipAnalysis,
		RequestedBy: "jane", RequestedAt: metav1.NewTime(w.o.Now)}
	return w
}

// phases of r2's rollout that a test of intents starts from.
var intentPhases = map[string]func(t *testing.T) *world{
	"Waiting": func(t *testing.T) *world {
		w := newWorld(t)
		w.o.Settings.ConfirmRollout = canary.GateManual
		w.step()
		w.o.PendingRevision, w.o.CanaryReady = "r2", true
		w.after(time.Second).step()
		return w
	},
	"Progressing": startAnalysis,
	"Progressing, paused": func(t *testing.T) *world {
		w := startAnalysis(t)
		w.after(time.Second).ask(canary.ActionPause, "r2", false).step()
		return w
	},
	"WaitingPromotion": func(t *testing.T) *world {
		w := startAnalysis(t)
		w.o.Settings.ConfirmPromotion = canary.GateManual
		w.checks = healthy
		for range 4 {
			w.after(30 * time.Second).step()
		}
		return w
	},
	"Promoting": promoting,
	"Succeeded": func(t *testing.T) *world {
		w := promoting(t)
		w.o.PrimaryReady = true
		w.after(time.Second).step()
		return w
	},
	"Failed": func(t *testing.T) *world {
		w := startAnalysis(t)
		w.checks = failing
		w.after(30 * time.Second).step()
		return w
	},
}

// promoting brings a world to the promotion of r2.
func promoting(t *testing.T) *world {
	w := startAnalysis(t)
	w.checks = healthy
	for range 4 {
		w.after(30 * time.Second).step()
	}
	return w
}

// TestIntentByPhase: what each action does in each phase of a rollout, and
// that an action about another revision does nothing.
func TestIntentByPhase(t *testing.T) {
	const (
		applied = canary.IntentApplied
		ignored = canary.IntentIgnored
	)
	for _, tc := range []struct {
		phase        string
		action       canary.Action
		skipAnalysis bool
		result       string
		message      string
		// then is the phase after the step, and paused whether it holds.
		then   canary.Phase
		paused bool
	}{
		{"Waiting", canary.ActionPause, false, ignored, "pause means nothing while the canary is Waiting", canary.PhaseWaiting, false},
		{"Waiting", canary.ActionResume, false, applied, "rollout confirmed", canary.PhaseProgressing, false},
		{"Waiting", canary.ActionPromote, false, applied, "promoting after the next passing analysis", canary.PhaseProgressing, false},
		{"Waiting", canary.ActionPromote, true, applied, "promoting without analysis once the canary is ready", canary.PhasePromoting, false},
		{"Waiting", canary.ActionAbort, false, applied, "rolled back", canary.PhaseFailed, false},
		{"Waiting", canary.ActionRetry, false, ignored, "retry means nothing while the canary is Waiting", canary.PhaseWaiting, false},

		{"Progressing", canary.ActionPause, false, applied, "paused at canary weight 20", canary.PhaseProgressing, true},
		{"Progressing", canary.ActionResume, false, ignored, "resume means nothing while the canary is Progressing; it is not paused", canary.PhaseProgressing, false},
		{"Progressing", canary.ActionPromote, false, applied, "promoting after the next passing analysis", canary.PhaseProgressing, false},
		{"Progressing", canary.ActionPromote, true, applied, "promoting without analysis once the canary is ready", canary.PhasePromoting, false},
		{"Progressing", canary.ActionAbort, false, applied, "rolled back", canary.PhaseFailed, false},
		{"Progressing", canary.ActionRetry, false, ignored, "retry means nothing while the canary is Progressing", canary.PhaseProgressing, false},

		{"Progressing, paused", canary.ActionPause, false, applied, "already paused", canary.PhaseProgressing, true},
		{"Progressing, paused", canary.ActionResume, false, applied, "resumed at canary weight 20", canary.PhaseProgressing, false},
		{"Progressing, paused", canary.ActionPromote, true, applied, "promoting without analysis once the canary is ready", canary.PhasePromoting, false},
		{"Progressing, paused", canary.ActionAbort, false, applied, "rolled back", canary.PhaseFailed, false},

		{"WaitingPromotion", canary.ActionPause, false, applied, "paused at canary weight 80", canary.PhaseWaitingPromotion, true},
		{"WaitingPromotion", canary.ActionPromote, false, applied, "promoting", canary.PhasePromoting, false},
		{"WaitingPromotion", canary.ActionAbort, false, applied, "rolled back", canary.PhaseFailed, false},

		{"Promoting", canary.ActionPause, false, ignored, "pause means nothing while the canary is Promoting", canary.PhasePromoting, false},
		{"Promoting", canary.ActionAbort, false, ignored, "abort means nothing while the canary is Promoting", canary.PhasePromoting, false},

		{"Succeeded", canary.ActionPromote, false, ignored, "promote means nothing while the canary is Succeeded", canary.PhaseSucceeded, false},

		{"Failed", canary.ActionPromote, false, ignored, "promote means nothing while the canary is Failed; kubectl sluice retry runs it again", canary.PhaseFailed, false},
		{"Failed", canary.ActionAbort, false, ignored, "abort means nothing while the canary is Failed; kubectl sluice retry runs it again", canary.PhaseFailed, false},
		{"Failed", canary.ActionRetry, false, applied, "started again", canary.PhaseProgressing, false},
	} {
		name := tc.phase + "/" + string(tc.action)
		if tc.skipAnalysis {
			name += " --skip-analysis"
		}
		t.Run(name, func(t *testing.T) {
			w := intentPhases[tc.phase](t)
			w.untold = true
			revision := w.o.Status.CanaryRevision
			w.after(time.Second).ask(tc.action, revision, tc.skipAnalysis).step()
			st := w.o.Status
			if got := st.ObservedIntent; got == nil || got.Result != tc.result || got.Message != tc.message {
				t.Errorf("observed intent %+v; want %s: %q", got, tc.result, tc.message)
			}
			if st.Phase != tc.then || (st.PausedAt != nil) != tc.paused ||
				apimeta.IsStatusConditionTrue(st.Conditions, canary.ConditionPaused) != tc.paused {
				t.Errorf("phase %s, paused at %v; want %s, paused %t", st.Phase, st.PausedAt, tc.then, tc.paused)
			}

			// The same intent again changes nothing; one about another
			// revision is ignored.
			before := st.DeepCopy()
			w.step()
			if w.o.Status.ObservedIntent.Message != before.ObservedIntent.Message {
				t.Errorf("the same intent acted on twice: %+v", w.o.Status.ObservedIntent)
			}
			w.after(time.Second).ask(tc.action, "r1", tc.skipAnalysis).step()
			if got := w.o.Status.ObservedIntent; got.Result != ignored || !strings.HasPrefix(got.Message, "the current revision is ") {
				t.Errorf("an intent about r1: %+v; want it ignored", got)
			}
		})
	}
}

// TestPauseStopsTheClock: a paused canary holds its weight without analysis
// for as long as it is paused, and resumes with the rest of its interval.
func TestPauseStopsTheClock(t *testing.T) {
	w := startAnalysis(t)
	w.checks = healthy
	w.after(10*time.Second).ask(canary.ActionPause, "r2", false).step()
	w.expectEvents(t, "Paused web.shop at canary weight 20, asked by jane")
	if d := w.after(time.Hour).step(); d.RunChecks || d.RequeueAfter != 0 || d.Canary != CanaryRun {
		t.Errorf("an hour into the pause: %+v; want the canary running, nothing asked", d)
	}
	w.expectStatus(t, canary.PhaseProgressing, 20, 0)

	d := w.after(time.Second).ask(canary.ActionResume, "r2", false).step()
	w.expectEvents(t, "Resumed web.shop at canary weight 20 after 1h0m1s paused, asked by jane")
	if d.RequeueAfter != 20*time.Second {
		t.Errorf("after the pause: look again in %s; want the 20s left of the interval", d.RequeueAfter)
	}
	w.after(20 * time.Second).step()
	w.expectEvents(t, "Advance web.shop canary weight 40")
}

// TestManualGates: confirm-rollout holds a new revision with its canary at
// zero replicas until resumed; confirm-promotion holds a canary that passed
// at max-weight, still analysed and still able to fail, until promoted.
func TestManualGates(t *testing.T) {
	w := newWorld(t)
	w.o.Settings.ConfirmRollout, w.o.Settings.ConfirmPromotion = canary.GateManual, canary.GateManual
	w.step()
	w.o.PendingRevision, w.o.CanaryReady, w.checks = "r2", true, healthy
	if d := w.after(time.Second).step(); d.Canary != CanaryScaleDown {
		t.Errorf("waiting: canary %v; want it at zero replicas", d.Canary)
	}
	w.expectStatus(t, canary.PhaseWaiting, 0, 0)
	w.after(time.Hour).step()
	w.expectStatus(t, canary.PhaseWaiting, 0, 0)

	w.after(time.Second).ask(canary.ActionResume, "r2", false).step()
	w.expectStatus(t, canary.PhaseProgressing, 20, 0)
	for range 4 {
		w.after(30 * time.Second).step()
	}
	w.expectStatus(t, canary.PhaseWaitingPromotion, 80, 0)
	w.after(30 * time.Second).step()
	w.expectStatus(t, canary.PhaseWaitingPromotion, 80, 0)

	w.after(time.Second).ask(canary.ActionPromote, "r2", false).step()
	w.expectStatus(t, canary.PhasePromoting, 80, 0)
	if !w.promoted {
		t.Error("not promoted when asked at WaitingPromotion")
	}
}

// TestWaitingPromotionStillRollsBack: a canary held for its promotion is
// still analysed, and rolled back when it goes bad.
func TestWaitingPromotionStillRollsBack(t *testing.T) {
	w := intentPhases["WaitingPromotion"](t)
	w.expectStatus(t, canary.PhaseWaitingPromotion, 80, 0)
	w.checks = failing
	w.after(30 * time.Second).step()
	w.expectStatus(t, canary.PhaseFailed, 0, 0)
}

// TestAbortAndRetry: an aborted canary is rolled back, with the asker in the
// reason, and a retry runs the same revision again.
func TestAbortAndRetry(t *testing.T) {
	w := startAnalysis(t)
	w.after(time.Second).ask(canary.ActionAbort, "r2", false).step()
	w.expectStatus(t, canary.PhaseFailed, 0, 0)
	if c := apimeta.FindStatusCondition(w.o.Status.Conditions, canary.ConditionPromoted); c == nil || c.Reason != "Aborted" || c.Message != "aborted by jane" {
		t.Errorf("Promoted condition %+v; want False, Aborted, aborted by jane", c)
	}
	w.after(time.Second).ask(canary.ActionRetry, "r2", false).step()
	w.expectStatus(t, canary.PhaseProgressing, 20, 0)
}
