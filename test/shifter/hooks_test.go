package shifter_test

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"

	"sluice.dev/sluice/pkg/canary"
	"sluice.dev/sluice/test/cluster"
	"sluice.dev/sluice/test/meshsim/telemetry"
	"sluice.dev/sluice/test/sluice"
)

// signingKey signs the webhook calls of these tests.
const signingKey = "s3cret-signing-key"

// hookPolicy is quickPolicy's settings with a webhook per entry of types,
// each at the receiver's path of its name, signed with signingKey from the
// Secret hooks; hooks answer within timeout, and are tried again retries
// times.
func hookPolicy(ns string, rcv *sluice.Receiver, timeout string, retries int, types ...canary.HookType) string {
	var b strings.Builder
	fmt.Fprintf(&b, `apiVersion: v1
kind: Secret
metadata:
  name: hooks
  namespace: %s
stringData:
  key: %s
---
%s  webhooks:
`, ns, signingKey, quickPolicy("CanaryPolicy", "hooked", "20, 40, 60, 80"))
	for _, t := range types {
		fmt.Fprintf(&b, `  - name: %[1]s
    type: %[1]s
    url: %[2]s/%[1]s
    timeout: %[3]s
    retries: %[4]d
    metadata: {team: shop}
    signingSecret: {name: hooks, key: key}
`, t, rcv.URL, timeout, retries)
	}
	return b.String()
}

// hookedRollout starts a test of webhooks: ns holds the policy and the Deployment
// at v1, Initialized, and the canary workload answers healthily.
func hookedRollout(t *testing.T, timeout string, retries int, types ...canary.HookType) (string, client.Client, *sluice.Receiver) {
	t.Helper()
	setup(t)
	ns := env.NewNamespace(t)
	c := newClient(t)
	rcv := sluice.NewReceiver(t, []byte(signingKey))
	mesh.Set(ns, app+"-canary", telemetry.Behaviour{Latency: 20 * time.Millisecond})
	kubectlApply(t, ns, hookPolicy(ns, rcv, timeout, retries, types...))
	grantSecrets(t, ns)
	kubectlApply(t, ns, policyManifest("example.com/web:v1", "hooked"))
	waitPhase(t, c, ns, canary.PhaseInitialized, 30*time.Second)
	return ns, c, rcv
}

// grantSecrets lets sluice read the Secrets of ns, and waits until the API
// server's authorizer knows.
func grantSecrets(t *testing.T, ns string) {
	t.Helper()
	if out, err := env.Kubectl(t.Context(), "create", "rolebinding", "sluice-policy-secrets", "-n", ns, "--clusterrole=sluice-policy-secrets",
		"--serviceaccount=sluice-system:sluice").CombinedOutput(); err != nil {
		t.Fatalf("kubectl create rolebinding: %v\n%s", err, out)
	}
	cluster.Eventually(t, 30*time.Second, "sluice may read the Secrets of "+ns, func(ctx context.Context) error {
		out, err := env.Kubectl(ctx, "auth", "can-i", "get", "secrets", "-n", ns, "--as", "system:serviceaccount:sluice-system:sluice").Output()
		if strings.TrimSpace(string(out)) != "yes" {
			return fmt.Errorf("kubectl auth can-i: %s %v", out, err)
		}
		return nil
	})
}

// called waits until path has been called at least n times.
func called(t *testing.T, rcv *sluice.Receiver, path string, n int, timeout time.Duration) {
	t.Helper()
	cluster.Eventually(t, timeout, fmt.Sprintf("%d calls of %s", n, path), func(context.Context) error {
		if got := len(rcv.Calls(path)); got < n {
			return fmt.Errorf("%d calls", got)
		}
		return nil
	})
}

// TestWebhooksAtEveryPointOfARollout: every webhook type is called where
// it belongs, signed, with the rollout's state; a gate that says no holds
// the revision until it says yes; pre-rollout and post-rollout are called
// once; the event webhook hears the events.
func TestWebhooksAtEveryPointOfARollout(t *testing.T) {
	all := []canary.HookType{canary.HookConfirmRollout, canary.HookPreRollout, canary.HookRollout, canary.HookConfirmTrafficIncrease,
		canary.HookConfirmPromotion, canary.HookPostRollout, canary.HookRollback, canary.HookEvent}
	ns, c, rcv := hookedRollout(t, "5s", 1, all...)
	rcv.Answer("confirm-rollout", http.StatusForbidden)
	rcv.Answer("rollback", http.StatusNotFound)
	rcv.Flaky("pre-rollout", 1)
	kubectlApply(t, ns, policyManifest("example.com/web:v2", "hooked"))
	waitPhase(t, c, ns, canary.PhaseWaiting, 30*time.Second)
	called(t, rcv, "confirm-rollout", 2, 30*time.Second)
	if n := len(rcv.Calls("pre-rollout")); n != 0 {
		t.Fatalf("pre-rollout called %d times while the rollout was not confirmed", n)
	}
	rcv.Answer("confirm-rollout", http.StatusOK)
	waitPhase(t, c, ns, canary.PhaseSucceeded, 2*time.Minute)
	called(t, rcv, "post-rollout", 1, 30*time.Second)
	// More calls would come now, if any were to.
	cr := waitStatus(t, c, ns, "the post-rollout result", 30*time.Second, func(st canary.CanaryStatus) bool {
		return slices.ContainsFunc(st.Webhooks, func(h canary.HookStatus) bool { return h.Type == canary.HookPostRollout })
	})

	revision := cr.Status.CanaryRevision
	for _, r := range rcv.All() {
		if r.SignatureErr != nil {
			t.Errorf("%s call %s: signature: %v", r.Path, r.Delivery, r.SignatureErr)
		}
		if r.Payload.Event != nil && r.Payload.Event.Reason == "Initialized" {
			// Told before any revision.
			continue
		}
		if p := r.Payload; p.APIVersion != "sluice.dev/hooks/v1" || p.Name != app || p.Namespace != ns || p.Revision != revision ||
			p.Metadata["team"] != "shop" || p.ID != r.Delivery || string(p.Type) != r.Path {
			t.Errorf("%s payload %+v; want v1, %s/%s revision %s, the metadata, the delivery id", r.Path, p, ns, app, revision)
		}
	}
	// The pre-rollout webhook answered 503 once, and was tried again at
	// once with the same delivery id: one call, two attempts.
	if pre := rcv.Calls("pre-rollout"); len(pre) != 2 || pre[0].Delivery != pre[1].Delivery {
		t.Errorf("pre-rollout attempts %+v; want two of one delivery", pre)
	}
	if n := len(rcv.Calls("post-rollout")); n != 1 {
		t.Errorf("post-rollout called %d times; want once", n)
	}
	for _, path := range []string{"rollout", "confirm-traffic-increase", "confirm-promotion", "rollback"} {
		if len(rcv.Calls(path)) == 0 {
			t.Errorf("%s never called", path)
		}
	}
	if p := rcv.Calls("post-rollout")[0].Payload; p.Phase != canary.PhaseSucceeded {
		t.Errorf("post-rollout told phase %s; want Succeeded", p.Phase)
	}
	pre := rcv.Calls("pre-rollout")[0]
	if first := rcv.Calls("rollout")[0]; pre.Payload.CanaryWeight != 0 || first.At.Before(pre.At) {
		t.Errorf("pre-rollout at weight %d, %s; want at weight 0, before the first rollout call (%s)", pre.Payload.CanaryWeight, pre.At, first.At)
	}
	var reasons []string
	for _, r := range rcv.Calls("event") {
		reasons = append(reasons, r.Payload.Event.Reason)
	}
	for _, want := range []string{"NewRevision", "Waiting", "RolloutConfirmed", "AnalysisStarted", "Advanced", "Promoted"} {
		if !slices.Contains(reasons, want) {
			t.Errorf("the event webhook heard %v; want %s among them", reasons, want)
		}
	}
	expectEventPrefix(t, ns, fmt.Sprintf("Waiting for the rollout of web.%s revision %s to be confirmed: webhook confirm-rollout answered 403 Forbidden", ns, revision))
}

// TestHangingGateAcrossARestart: a confirm-traffic-increase receiver that
// never answers holds its canary, with the reason in the status, while
// another canary rolls out meanwhile; after a restart of the shifter the
// gate is asked again, the pre-rollout webhook is not; once the gate says
// yes the canary is promoted and post-rollout is told once.
func TestHangingGateAcrossARestart(t *testing.T) {
	ns, c, rcv := hookedRollout(t, "1s", 0, canary.HookPreRollout, canary.HookConfirmTrafficIncrease, canary.HookPostRollout)
	rcv.Answer("confirm-traffic-increase", sluice.Hang)
	kubectlApply(t, ns, policyManifest("example.com/web:v2", "hooked"))
	waitStatus(t, c, ns, "the gate unreachable", time.Minute, func(st canary.CanaryStatus) bool {
		return slices.ContainsFunc(st.Webhooks, func(h canary.HookStatus) bool {
			return h.Type == canary.HookConfirmTrafficIncrease && h.Result == canary.HookUnreachable && h.Message == "no answer within 1s"
		})
	})
	holds(t, c, ns, 20)

	// Another canary, in a namespace of its own, is not held up.
	other, oc := initialized(t, manifest, telemetry.Behaviour{Latency: 20 * time.Millisecond})
	kubectlApply(t, other, manifest("example.com/web:v2"))
	waitPhase(t, oc, other, canary.PhaseSucceeded, 2*time.Minute)

	asked := len(rcv.Calls("confirm-traffic-increase"))
	shifter.Stop()
	if err := shifter.Start(); err != nil {
		t.Fatal(err)
	}
	called(t, rcv, "confirm-traffic-increase", asked+1, time.Minute)
	holds(t, c, ns, 20)

	rcv.Answer("confirm-traffic-increase", http.StatusOK)
	waitPhase(t, c, ns, canary.PhaseSucceeded, 2*time.Minute)
	called(t, rcv, "post-rollout", 1, 30*time.Second)
	waitStatus(t, c, ns, "the post-rollout result", 30*time.Second, func(st canary.CanaryStatus) bool {
		return slices.ContainsFunc(st.Webhooks, func(h canary.HookStatus) bool { return h.Type == canary.HookPostRollout })
	})
	for path, want := range map[string]int{"pre-rollout": 1, "post-rollout": 1} {
		if n := len(rcv.Calls(path)); n != want {
			t.Errorf("%s called %d times; want %d, a restart included", path, n, want)
		}
	}
}

// TestRollbackWebhookAborts: a rollback webhook that answers 2xx rolls the
// canary back at once, naming itself; a receiver that is down changes
// nothing.
func TestRollbackWebhookAborts(t *testing.T) {
	ns, c, rcv := hookedRollout(t, "1s", 0, canary.HookRollback)
	rcv.Answer("rollback", http.StatusServiceUnavailable)
	kubectlApply(t, ns, policyManifest("example.com/web:v2", "hooked", "sluice.dev/confirm-promotion: manual"))
	waitPhase(t, c, ns, canary.PhaseWaitingPromotion, 2*time.Minute)
	rcv.Answer("rollback", http.StatusOK)
	cr := waitPhase(t, c, ns, canary.PhaseFailed, 30*time.Second)
	if want := "asked by webhook rollback: 200 OK"; !strings.Contains(cr.Status.Message, want) {
		t.Errorf("message %q; want %q", cr.Status.Message, want)
	}
}
