package shift

import (
	"strings"
	"testing"
	"time"

	"sluice.dev/sluice/pkg/canary"
)

// reply answers every call with result and message.
func reply(result canary.HookResult, message string) func(HookCall) *canary.HookStatus {
	return func(HookCall) *canary.HookStatus { return &canary.HookStatus{Result: result, Message: message} }
}

var (
	ok200  = reply(canary.HookSucceeded, "200 OK")
	no403  = reply(canary.HookFailed, "403 Forbidden: not yet")
	down   = reply(canary.HookUnreachable, "dial tcp 127.0.0.1:9: connect: connection refused")
	broken = reply(canary.HookFailed, "500 Internal Server Error: 3 of 40 tests failed")
)

// hooked is a world whose settings have one webhook of each type given,
// named after its type, answered by the receivers given in the same order.
func hooked(t *testing.T, types ...canary.HookType) *world {
	w := newWorld(t)
	w.receivers = map[string]func(HookCall) *canary.HookStatus{}
	for _, typ := range types {
		w.o.Settings.Webhooks = append(w.o.Settings.Webhooks, canary.WebhookSpec{Name: string(typ), Type: typ,
			URL: "http://hooks.example/" + string(typ), Metadata: map[string]string{"team": "shop"}})
	}
	return w
}

// calledOf counts the calls of webhook name.
func (w *world) calledOf(name string) int {
	n := 0
	for _, c := range w.calls {
		if c.Spec.Name == name {
			n++
		}
	}
	return n
}

// restart forgets the results a shifter holds in memory: a new one has only
// the status.
func (w *world) restart() *world { w.o.Hooks = nil; return w }

func TestConfirmRolloutWebhook(t *testing.T) {
	w := hooked(t, canary.HookConfirmRollout)
	w.step()
	w.receivers["confirm-rollout"] = no403
	w.o.PendingRevision, w.o.CanaryReady, w.checks = "r2", true, healthy
	if d := w.after(time.Second).step(); d.Canary != CanaryScaleDown {
		t.Errorf("canary %v while the rollout is not confirmed; want it at zero replicas", d.Canary)
	}
	w.expectStatus(t, canary.PhaseWaiting, 0, 0)
	if !strings.Contains(w.o.Status.Message, "403 Forbidden: not yet") {
		t.Errorf("message %q; want the webhook's answer", w.o.Status.Message)
	}
	w.after(10 * time.Second).step()
	if n := w.calledOf("confirm-rollout"); n != 1 {
		t.Errorf("asked %d times within the interval; want once", n)
	}
	w.receivers["confirm-rollout"] = ok200
	w.after(20 * time.Second).step()
	w.expectStatus(t, canary.PhaseProgressing, 20, 0)
	if n := w.calledOf("confirm-rollout"); n != 2 {
		t.Errorf("asked %d times; want again after the interval", n)
	}
}

func TestPreRolloutRunsOncePerRevision(t *testing.T) {
	w := hooked(t, canary.HookPreRollout)
	w.step()
	w.receivers["pre-rollout"] = broken
	w.o.PendingRevision, w.o.CanaryReady, w.checks = "r2", true, healthy
	w.after(time.Second).step()
	w.expectStatus(t, canary.PhaseProgressing, 0, 1)
	w.after(10 * time.Second).restart().step()
	w.expectStatus(t, canary.PhaseProgressing, 0, 1)

	w.receivers["pre-rollout"] = ok200
	w.after(20 * time.Second).step()
	w.expectStatus(t, canary.PhaseProgressing, 20, 1)
	for range 4 {
		w.after(30 * time.Second).restart().step()
	}
	w.expectStatus(t, canary.PhasePromoting, 80, 1)
	if n := w.calledOf("pre-rollout"); n != 2 {
		t.Errorf("pre-rollout called %d times; want twice: once failed, once passed, never again after restarts", n)
	}
}

func TestRolloutWebhookFailuresRollBack(t *testing.T) {
	w := hooked(t, canary.HookRollout)
	w.receivers["rollout"] = ok200
	w.step()
	w.o.PendingRevision, w.o.CanaryReady, w.checks = "r2", true, healthy
	w.after(time.Second).step()
	w.after(30 * time.Second).step()
	w.expectStatus(t, canary.PhaseProgressing, 40, 0)
	if hs := w.o.Status.Webhooks; len(hs) != 1 || hs[0].Name != "rollout" || hs[0].Result != canary.HookSucceeded {
		t.Errorf("webhook statuses %+v; want the rollout webhook's success", hs)
	}

	w.receivers["rollout"] = down
	for i := range int32(4) {
		w.after(30 * time.Second).step()
		w.expectStatus(t, canary.PhaseProgressing, 40, i+1)
	}
	w.after(30 * time.Second).step()
	w.expectStatus(t, canary.PhaseFailed, 0, 5)
	if !strings.Contains(w.o.Status.Message, "failed checks threshold reached 5") {
		t.Errorf("message %q; want the threshold", w.o.Status.Message)
	}
}

// TestHeldWeightStillRollsBack: a canary held at its weight by a
// confirm-traffic-increase webhook is still analysed, and rolled back when
// its checks fail (fluxcd/flagger#1801).
func TestHeldWeightStillRollsBack(t *testing.T) {
	w := hooked(t, canary.HookConfirmTrafficIncrease)
	w.receivers["confirm-traffic-increase"] = no403
	w.step()
	w.o.PendingRevision, w.o.CanaryReady, w.checks = "r2", true, healthy
	w.after(time.Second).step()
	w.expectStatus(t, canary.PhaseProgressing, 20, 0)
	w.after(30 * time.Second).step()
	w.expectStatus(t, canary.PhaseProgressing, 20, 0)
	if !strings.Contains(w.o.Status.Message, "holding at canary weight 20") {
		t.Errorf("message %q; want the hold told", w.o.Status.Message)
	}

	// Evidence gathers at the held weight: the failures come once the bad
	// rounds outweigh the good one.
	w.checks = worse
	for range 10 {
		if w.o.Status.Phase == canary.PhaseFailed {
			break
		}
		w.after(30 * time.Second).step()
	}
	w.expectStatus(t, canary.PhaseFailed, 0, 5)
}

func TestConfirmPromotionWebhook(t *testing.T) {
	w := hooked(t, canary.HookConfirmPromotion)
	w.receivers["confirm-promotion"] = no403
	w.step()
	w.o.PendingRevision, w.o.CanaryReady, w.checks = "r2", true, healthy
	w.after(time.Second).step()
	for range 4 {
		w.after(30 * time.Second).step()
	}
	w.expectStatus(t, canary.PhaseWaitingPromotion, 80, 0)
	if w.promoted {
		t.Fatal("promoted while the confirm-promotion webhook says no")
	}
	w.receivers["confirm-promotion"] = ok200
	w.after(30 * time.Second).step()
	w.expectStatus(t, canary.PhasePromoting, 80, 0)
}

func TestRollbackWebhook(t *testing.T) {
	w := hooked(t, canary.HookRollback)
	w.receivers["rollback"] = down
	w.step()
	w.o.PendingRevision, w.o.CanaryReady, w.checks = "r2", true, healthy
	w.after(time.Second).step()
	w.after(30 * time.Second).step()
	w.expectStatus(t, canary.PhaseProgressing, 40, 0)

	w.receivers["rollback"] = ok200
	w.after(30 * time.Second).step()
	w.expectStatus(t, canary.PhaseFailed, 0, 0)
	if !strings.Contains(w.o.Status.Message, "asked by webhook rollback") {
		t.Errorf("message %q; want the webhook named", w.o.Status.Message)
	}
}

func TestPostRolloutOncePerRevision(t *testing.T) {
	w := hooked(t, canary.HookPostRollout)
	w.receivers["post-rollout"] = broken
	w.step()
	w.o.PendingRevision, w.o.CanaryReady, w.checks = "r2", true, healthy
	w.after(time.Second).step()
	for range 4 {
		w.after(30 * time.Second).step()
	}
	w.o.PrimaryReady = true
	w.after(time.Second).step()
	w.expectStatus(t, canary.PhaseSucceeded, 0, 0)
	w.after(time.Minute).restart().step()
	if n := w.calledOf("post-rollout"); n != 1 {
		t.Errorf("post-rollout called %d times; want once, a restart included", n)
	}
	if c := w.calls[0].Payload; c.Phase != canary.PhaseSucceeded || c.Revision != "r2" || c.Metadata["team"] != "shop" {
		t.Errorf("payload phase %s revision %s metadata %v; want Succeeded, r2 and the metadata", c.Phase, c.Revision, c.Metadata)
	}
	if !strings.Contains(strings.Join(w.events, "\n"), "Post-rollout of web.shop revision r2: webhook post-rollout answered 500") {
		t.Errorf("events %v; want the failed post-rollout told", w.events)
	}
}

func TestEventWebhookGetsEveryEvent(t *testing.T) {
	w := hooked(t, canary.HookEvent)
	w.untold = true
	w.o.Settings.Webhooks = append(w.o.Settings.Webhooks, w.o.Settings.Webhooks[0])
	w.o.Settings.Webhooks[1].Name = "chat"
	w.step()
	w.o.PendingRevision = "r2"
	d := Step(w.after(time.Second).o)
	if len(d.Events) == 0 || len(d.Notify) != 2*len(d.Events) {
		t.Fatalf("%d events, %d event calls; want one call per event and webhook", len(d.Events), len(d.Notify))
	}
	if e := d.Notify[0].Payload.Event; e == nil || e.Reason != d.Events[0].Reason || e.Message != d.Events[0].Message {
		t.Errorf("event in the payload %+v; want %+v", e, d.Events[0])
	}
	if d.Notify[0].ID == d.Notify[1].ID {
		t.Error("two webhooks' calls share an ID")
	}
}

// TestPendingWebhookHoldsOnlyItsCanary: while a rollout webhook has not
// answered, the analysis waits for it; the reconcile does not.
func TestPendingWebhookHoldsOnlyItsCanary(t *testing.T) {
	w := hooked(t, canary.HookRollout)
	w.untold = true
	w.receivers["rollout"] = func(HookCall) *canary.HookStatus { return nil }
	w.step()
	w.o.PendingRevision, w.o.CanaryReady, w.checks = "r2", true, healthy
	w.after(time.Second).step()
	d := w.after(30 * time.Second).step()
	w.expectStatus(t, canary.PhaseProgressing, 20, 0)
	if d.RunChecks || len(d.Hooks) != 1 || d.RequeueAfter != 30*time.Second {
		t.Errorf("run checks %t, %d calls, requeue %s; want to wait for the one call, with the interval as a backstop",
			d.RunChecks, len(d.Hooks), d.RequeueAfter)
	}
}

// TestWaitingForAConfirmRolloutAnswer: until the confirm-rollout webhook
// answers, the revision waits and says for what.
func TestWaitingForAConfirmRolloutAnswer(t *testing.T) {
	w := hooked(t, canary.HookConfirmRollout)
	w.untold = true
	w.receivers["confirm-rollout"] = func(HookCall) *canary.HookStatus { return nil }
	w.step()
	w.o.PendingRevision = "r2"
	if d := w.after(time.Second).step(); d.Canary != CanaryScaleDown || len(d.Hooks) != 1 {
		t.Errorf("canary %v, %d calls; want the canary at zero replicas and the one call asked", d.Canary, len(d.Hooks))
	}
	w.expectStatus(t, canary.PhaseWaiting, 0, 0)
	if want := "waiting for the confirm-rollout webhooks to answer"; w.o.Status.Message != want {
		t.Errorf("message %q; want %q", w.o.Status.Message, want)
	}
}
