package shifter_test

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"sluice.dev/sluice/pkg/canary"
	"sluice.dev/sluice/test/cluster"
	"sluice.dev/sluice/test/meshsim/telemetry"
	"sluice.dev/sluice/test/sluice"
)

// plugin is kubectl-sluice, built once for the package's tests.
var plugin = sync.OnceValues(func() (string, error) { return sluice.Build(workDir, "cmd/kubectl-sluice") })

// kubeconfigAs returns a kubeconfig of user, bound in ns to the ClusterRole
// role: view or edit, which aggregate sluice's roles.
func kubeconfigAs(t *testing.T, ns, user, role string) string {
	t.Helper()
	kubectlApply(t, ns, fmt.Sprintf(`apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata:
  name: %[1]s-%[2]s
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: %[2]s}
subjects: [{apiGroup: rbac.authorization.k8s.io, kind: User, name: %[1]s}]
`, user, role))
	// The API server's authorizer learns of the binding from a watch.
	cluster.Eventually(t, 30*time.Second, user+" may read canaries", func(ctx context.Context) error {
		out, err := env.Kubectl(ctx, "auth", "can-i", "get", "canaries.sluice.dev", "-n", ns, "--as", user).Output()
		if strings.TrimSpace(string(out)) != "yes" {
			return fmt.Errorf("kubectl auth can-i: %s %v", out, err)
		}
		return nil
	})
	kubeconfig, err := env.KubeconfigFor(user)
	if err != nil {
		t.Fatal(err)
	}
	return kubeconfig
}

// kubectlSluice runs kubectl sluice with kubeconfig and returns its
// output and exit code.
func kubectlSluice(t *testing.T, kubeconfig string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	bin, err := plugin()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(t.Context(), bin, append([]string{"--kubeconfig", kubeconfig}, args...)...)
	var out, errOut strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err = cmd.Run()
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		t.Fatal(err)
	}
	return out.String(), errOut.String(), cmd.ProcessState.ExitCode()
}

// steering prepares a test of kubectl sluice in ns: the binary built and
// jane's kubeconfig written before any rollout starts, so that a command is
// not late for the phase it is meant for.
func steering(t *testing.T, ns string) {
	t.Helper()
	if _, err := plugin(); err != nil {
		t.Fatal(err)
	}
	kubeconfigAs(t, ns, "jane", "edit")
}

// ask runs kubectl sluice ACTION as jane, who may edit in ns, for revision,
// and returns the intent as stamped and what the command printed.
func ask(t *testing.T, c client.Client, ns string, action canary.Action, revision string) (canary.Intent, string) {
	t.Helper()
	stdout, stderr, _ := kubectlSluice(t, kubeconfigAs(t, ns, "jane", "edit"),
		strings.ToLower(string(action)), app, "-n", ns, "--revision", revision)
	cr := &canary.Canary{}
	if err := c.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: app}, cr); err != nil {
		t.Fatal(err)
	}
	in := cr.Spec.Intent
	if in == nil || in.Action != action || in.RequestedBy != "jane" || in.RequestedAt.IsZero() {
		t.Fatalf("intent as stored: %+v; want %s stamped with jane and the time (kubectl sluice said %s%s)", in, action, stdout, stderr)
	}
	return *in, stdout + stderr
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
	err := wait.PollUntilContextTimeout(t.Context(), 200*time.Millisecond, 3*2*time.Second, true, func(context.Context) (bool, error) {
		cr := &canary.Canary{}
		// Not the poll's context, whose end is the expected outcome.
		if err := c.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: app}, cr); err != nil {
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
	// Steps of 10, and the promotion held for confirmation: the pause
	// arrives while the canary is still on its way up, however slow the
	// test bed.
	slow := func(image string) string {
		return strings.Replace(manifest(image), `sluice.dev/step-weight: "20"`,
			`sluice.dev/step-weight: "10"`+"\n    sluice.dev/confirm-promotion: manual", 1)
	}
	ns, c := initialized(t, slow, telemetry.Behaviour{Latency: 20 * time.Millisecond})
	steering(t, ns)
	kubectlApply(t, ns, slow("example.com/web:v2"))
	cr := waitStatus(t, c, ns, "weight 10", time.Minute, func(st canary.CanaryStatus) bool { return st.CanaryWeight >= 10 })
	pause, said := ask(t, c, ns, canary.ActionPause, cr.Status.CanaryRevision)
	cr = observed(t, c, ns, pause, canary.IntentApplied)
	if want := fmt.Sprintf("%s/web revision %s: paused at canary weight %d (asked by jane)\n", ns, cr.Status.CanaryRevision, cr.Status.CanaryWeight); said != want {
		t.Errorf("kubectl sluice pause said %q; want %q", said, want)
	}
	if !apimeta.IsStatusConditionTrue(cr.Status.Conditions, canary.ConditionPaused) || cr.Status.PausedAt == nil {
		t.Fatalf("conditions %+v; want Paused", cr.Status.Conditions)
	}
	held := cr.Status.CanaryWeight
	shifter.Stop()
	if err := shifter.Start(); err != nil {
		t.Fatal(err)
	}
	holds(t, c, ns, held)

	resume, _ := ask(t, c, ns, canary.ActionResume, cr.Status.CanaryRevision)
	observed(t, c, ns, resume, canary.IntentApplied)
	waitPhase(t, c, ns, canary.PhaseWaitingPromotion, 2*time.Minute)
	promote, _ := ask(t, c, ns, canary.ActionPromote, cr.Status.CanaryRevision)
	observed(t, c, ns, promote, canary.IntentApplied)
	waitPhase(t, c, ns, canary.PhaseSucceeded, time.Minute)
	expectEvent(t, ns, fmt.Sprintf("Paused web.%s at canary weight %d, asked by %s", ns, held, pause.RequestedBy))
	expectEventPrefix(t, ns, fmt.Sprintf("Resumed web.%s at canary weight %d after ", ns, held))
}

// TestAnIntentAboutAnOlderRevisionDoesNothing: an abort that names the
// revision a newer apply replaced is ignored, and says why.
func TestAnIntentAboutAnOlderRevisionDoesNothing(t *testing.T) {
	ns, c := initializedQuiet(t, patient)
	steering(t, ns)
	kubectlApply(t, ns, patient("example.com/web:v2"))
	v2 := waitStatus(t, c, ns, "v2 under analysis", time.Minute, func(st canary.CanaryStatus) bool { return st.CanaryRevision != "" })
	kubectlApply(t, ns, patient("example.com/web:v3"))
	v3 := waitStatus(t, c, ns, "v3 under analysis", time.Minute, func(st canary.CanaryStatus) bool {
		return st.CanaryRevision != "" && st.CanaryRevision != v2.Status.CanaryRevision
	})
	abort, said := ask(t, c, ns, canary.ActionAbort, v2.Status.CanaryRevision)
	cr := observed(t, c, ns, abort, canary.IntentIgnored)
	if want := fmt.Sprintf("error: abort of revision %s of %s/web did nothing: the current revision is %s\n",
		v2.Status.CanaryRevision, ns, v3.Status.CanaryRevision); said != want {
		t.Errorf("kubectl sluice abort said %q; want %q", said, want)
	}
	if want := "the current revision is " + v3.Status.CanaryRevision; cr.Status.ObservedIntent.Message != want || cr.Status.Phase != canary.PhaseProgressing {
		t.Errorf("phase %s, observed intent %+v; want still Progressing, and %q", cr.Status.Phase, cr.Status.ObservedIntent, want)
	}
	expectEventPrefix(t, ns, fmt.Sprintf("Ignored abort of web.%s revision %s, asked by %s: the current revision is",
		ns, v2.Status.CanaryRevision, abort.RequestedBy))
}

// TestManualGates: with both gates manual, a new revision waits with its
// canary at zero replicas until resumed, and a canary that passed at
// max-weight holds there until promoted; an abort of the next one rolls it
// back and keeps its template, and a retry runs it again at once.
func TestManualGates(t *testing.T) {
	gated := func(image string) string {
		return strings.Replace(manifest(image), "sluice.dev/progress-deadline: 1m",
			"sluice.dev/progress-deadline: 1m\n    sluice.dev/confirm-rollout: manual\n    sluice.dev/confirm-promotion: manual", 1)
	}
	ns, c := initialized(t, gated, telemetry.Behaviour{Latency: 20 * time.Millisecond})
	steering(t, ns)
	kubectlApply(t, ns, gated("example.com/web:v2"))
	cr := waitPhase(t, c, ns, canary.PhaseWaiting, 30*time.Second)
	can := &appsv1.Deployment{}
	if err := c.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: app + "-canary"}, can); client.IgnoreNotFound(err) != nil ||
		err == nil && ptr.Deref(can.Spec.Replicas, 1) != 0 {
		t.Fatalf("the canary Deployment while waiting: %v, replicas %d; want none running", err, ptr.Deref(can.Spec.Replicas, 1))
	}
	resume, _ := ask(t, c, ns, canary.ActionResume, cr.Status.CanaryRevision)
	observed(t, c, ns, resume, canary.IntentApplied)
	cr = waitPhase(t, c, ns, canary.PhaseWaitingPromotion, 2*time.Minute)
	if cr.Status.CanaryWeight != 80 {
		t.Errorf("waiting for its promotion at weight %d; want 80", cr.Status.CanaryWeight)
	}
	promote, _ := ask(t, c, ns, canary.ActionPromote, cr.Status.CanaryRevision)
	observed(t, c, ns, promote, canary.IntentApplied)
	waitPhase(t, c, ns, canary.PhaseSucceeded, time.Minute)

	kubectlApply(t, ns, gated("example.com/web:v3"))
	cr = waitPhase(t, c, ns, canary.PhaseWaiting, 30*time.Second)
	abort, _ := ask(t, c, ns, canary.ActionAbort, cr.Status.CanaryRevision)
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

	// retry runs the aborted revision again; asking for it confirms its
	// rollout.
	retry, _ := ask(t, c, ns, canary.ActionRetry, cr.Status.CanaryRevision)
	observed(t, c, ns, retry, canary.IntentApplied)
	if again := waitPhase(t, c, ns, canary.PhaseProgressing, 30*time.Second); again.Status.CanaryRevision != cr.Status.CanaryRevision {
		t.Errorf("retried revision %s; want %s", again.Status.CanaryRevision, cr.Status.CanaryRevision)
	}
}

// TestAReaderCannotSteer: a user who may only read canaries (Kubernetes'
// view role) reads them, and is refused each steering command with the
// verb and resource they lack; the canary is untouched.
func TestAReaderCannotSteer(t *testing.T) {
	ns, c := initializedQuiet(t, patient)
	kubectlApply(t, ns, patient("example.com/web:v2"))
	cr := waitStatus(t, c, ns, "v2 under analysis", time.Minute, func(st canary.CanaryStatus) bool { return st.CanaryWeight > 0 })
	viewer := kubeconfigAs(t, ns, "viewer", "view")
	if out, errOut, code := kubectlSluice(t, viewer, "get", app, "-n", ns); code != 0 || !strings.Contains(out, app) {
		t.Errorf("kubectl sluice get as a viewer: exit %d, %s%s", code, out, errOut)
	}
	for _, command := range []string{"pause", "resume", "promote", "abort", "retry"} {
		_, errOut, code := kubectlSluice(t, viewer, command, app, "-n", ns, "--revision", cr.Status.CanaryRevision)
		want := fmt.Sprintf("error: kubectl sluice %s needs patch on canaries.sluice.dev in namespace %s: ", command, ns)
		if code != 1 || !strings.HasPrefix(errOut, want) || !strings.Contains(errOut, `User "viewer" cannot patch resource "canaries"`) {
			t.Errorf("kubectl sluice %s as a viewer: exit %d, %q; want 1 and %q...", command, code, errOut, want)
		}
	}
	after := &canary.Canary{}
	if err := c.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: app}, after); err != nil || after.Spec.Intent != nil {
		t.Errorf("the Canary's intent after the refusals: %+v, %v; want none", after.Spec.Intent, err)
	}
}
