package shifter_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"sluice.dev/sluice/pkg/canary"
	"sluice.dev/sluice/test/meshsim/telemetry"
)

// ask writes an intent into the Canary's spec as kubectl sluice does, as
// the admin user, through the API server and sluice's webhook, and returns
// the intent as stamped.
func ask(t *testing.T, c client.Client, ns string, action canary.Action, revision string) canary.Intent {
	t.Helper()
	patch := fmt.Sprintf(`{"spec":{"intent":{"action":%q,"revision":%q}}}`, action, revision)
	kubectlRun(t, "patch", "canaries.sluice.dev", app, "-n", ns, "--type=merge", "-p", patch)
	cr := &canary.Canary{}
	if err := c.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: app}, cr); err != nil {
		t.Fatal(err)
	}
	in := cr.Spec.Intent
	if in == nil || in.Action != action || in.RequestedBy == "" || in.RequestedAt.IsZero() {
		t.Fatalf("intent as stored: %+v; want %s stamped with the asker and the time", in, action)
	}
	return *in
}

// observed waits until the shifter acted on in, and returns the Canary.
func observed(t *testing.T, c client.Client, ns string, in canary.Intent, result string) *canary.Canary {
	t.Helper()
	return waitStatus(t, c, ns, fmt.Sprintf("%s %s", in.Action, result), 30*time.Second, func(st canary.CanaryStatus) bool {
		o := st.ObservedIntent
		return o != nil && o.Action == in.Action && o.RequestedAt.Equal(&in.RequestedAt) && o.Result == result
	})
}

// holds checks that the canary's weight stays at weight for a few intervals.
func holds(t *testing.T, c client.Client, ns string, weight int32) {
	t.Helper()
	err := wait.PollUntilContextTimeout(t.Context(), 200*time.Millisecond, 3*2*time.Second, true, func(ctx context.Context) (bool, error) {
		cr := &canary.Canary{}
		if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: app}, cr); err != nil {
			return false, err
		}
		if cr.Status.CanaryWeight != weight {
			return false, fmt.Errorf("the weight moved to %d while held at %d", cr.Status.CanaryWeight, weight)
		}
		return false, nil
	})
	if !wait.Interrupted(err) {
		t.Fatal(err)
	}
}

// TestPauseHoldsAcrossARestart: a paused canary holds its weight, also
// across a restart of the shifter, and completes once resumed; the events
// name who asked.
func TestPauseHoldsAcrossARestart(t *testing.T) {
	ns, c := initialized(t, manifest, telemetry.Behaviour{Latency: 20 * time.Millisecond})
	kubectlApply(t, ns, manifest("example.com/web:v2"))
	cr := waitStatus(t, c, ns, "weight 20", time.Minute, func(st canary.CanaryStatus) bool { return st.CanaryWeight >= 20 })
	pause := ask(t, c, ns, canary.ActionPause, cr.Status.CanaryRevision)
	cr = observed(t, c, ns, pause, canary.IntentApplied)
	if !apimeta.IsStatusConditionTrue(cr.Status.Conditions, canary.ConditionPaused) || cr.Status.PausedAt == nil {
		t.Fatalf("conditions %+v; want Paused", cr.Status.Conditions)
	}
	held := cr.Status.CanaryWeight
	shifter.Stop()
	if err := shifter.Start(); err != nil {
		t.Fatal(err)
	}
	holds(t, c, ns, held)

	resume := ask(t, c, ns, canary.ActionResume, cr.Status.CanaryRevision)
	observed(t, c, ns, resume, canary.IntentApplied)
	waitPhase(t, c, ns, canary.PhaseSucceeded, 2*time.Minute)
	expectEvent(t, ns, fmt.Sprintf("Paused web.%s at canary weight %d, asked by %s", ns, held, pause.RequestedBy))
	expectEventPrefix(t, ns, fmt.Sprintf("Resumed web.%s at canary weight %d after ", ns, held))
}

// TestAnIntentAboutAnOlderRevisionDoesNothing: an abort that names the
// revision a newer apply replaced is ignored, and says why.
func TestAnIntentAboutAnOlderRevisionDoesNothing(t *testing.T) {
	ns, c := initializedQuiet(t, patient)
	kubectlApply(t, ns, patient("example.com/web:v2"))
	v2 := waitStatus(t, c, ns, "v2 under analysis", time.Minute, func(st canary.CanaryStatus) bool { return st.CanaryRevision != "" })
	kubectlApply(t, ns, patient("example.com/web:v3"))
	v3 := waitStatus(t, c, ns, "v3 under analysis", time.Minute, func(st canary.CanaryStatus) bool {
		return st.CanaryRevision != "" && st.CanaryRevision != v2.Status.CanaryRevision
	})
	abort := ask(t, c, ns, canary.ActionAbort, v2.Status.CanaryRevision)
	cr := observed(t, c, ns, abort, canary.IntentIgnored)
	if want := "the current revision is " + v3.Status.CanaryRevision; cr.Status.ObservedIntent.Message != want || cr.Status.Phase != canary.PhaseProgressing {
		t.Errorf("phase %s, observed intent %+v; want still Progressing, and %q", cr.Status.Phase, cr.Status.ObservedIntent, want)
	}
	expectEventPrefix(t, ns, fmt.Sprintf("Ignored abort of web.%s revision %s, asked by %s: the current revision is",
		ns, v2.Status.CanaryRevision, abort.RequestedBy))
}

// TestManualGates: with both gates manual, a new revision waits with its
// canary at zero replicas until resumed, and a canary that passed at
// max-weight holds there until promoted; an abort of the next one rolls it
// back and keeps its template.
func TestManualGates(t *testing.T) {
	gated := func(image string) string {
		return strings.Replace(manifest(image), "sluice.dev/progress-deadline: 1m",
			"sluice.dev/progress-deadline: 1m\n    sluice.dev/confirm-rollout: manual\n    sluice.dev/confirm-promotion: manual", 1)
	}
	ns, c := initialized(t, gated, telemetry.Behaviour{Latency: 20 * time.Millisecond})
	kubectlApply(t, ns, gated("example.com/web:v2"))
	cr := waitPhase(t, c, ns, canary.PhaseWaiting, 30*time.Second)
	can := &appsv1.Deployment{}
	if err := c.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: app + "-canary"}, can); client.IgnoreNotFound(err) != nil ||
		err == nil && ptr.Deref(can.Spec.Replicas, 1) != 0 {
		t.Fatalf("the canary Deployment while waiting: %v, replicas %d; want none running", err, ptr.Deref(can.Spec.Replicas, 1))
	}
	observed(t, c, ns, ask(t, c, ns, canary.ActionResume, cr.Status.CanaryRevision), canary.IntentApplied)
	cr = waitPhase(t, c, ns, canary.PhaseWaitingPromotion, 2*time.Minute)
	if cr.Status.CanaryWeight != 80 {
		t.Errorf("waiting for its promotion at weight %d; want 80", cr.Status.CanaryWeight)
	}
	observed(t, c, ns, ask(t, c, ns, canary.ActionPromote, cr.Status.CanaryRevision), canary.IntentApplied)
	waitPhase(t, c, ns, canary.PhaseSucceeded, time.Minute)

	kubectlApply(t, ns, gated("example.com/web:v3"))
	cr = waitPhase(t, c, ns, canary.PhaseWaiting, 30*time.Second)
	abort := ask(t, c, ns, canary.ActionAbort, cr.Status.CanaryRevision)
	cr = observed(t, c, ns, abort, canary.IntentApplied)
	if cond := apimeta.FindStatusCondition(cr.Status.Conditions, canary.ConditionPromoted); cr.Status.Phase != canary.PhaseFailed ||
		cond == nil || cond.Reason != "Aborted" || cond.Message != "aborted by "+abort.RequestedBy {
		t.Errorf("phase %s, Promoted condition %+v; want Failed, Aborted by %s", cr.Status.Phase, cond, abort.RequestedBy)
	}
	dep := &appsv1.Deployment{}
	if err := c.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: app}, dep); err != nil {
		t.Fatal(err)
	}
	if dep.Annotations[canary.AnnotationCanaryRevision] != cr.Status.CanaryRevision || dep.Annotations[canary.AnnotationCanaryTemplate] == "" {
		t.Errorf("annotations after the abort %v; want the aborted template kept", dep.Annotations)
	}
}
