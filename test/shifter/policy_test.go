package shifter_test

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	apimeta "k8s.io/apimachinery/pkg/api/meta"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"sluice.dev/sluice/pkg/canary"
	"sluice.dev/sluice/test/cluster"
	"sluice.dev/sluice/test/meshsim/telemetry"
	"sluice.dev/sluice/test/sluice"
)

// policyManifest is a Deployment that takes its settings from the policy it
// names, besides the annotations given.
func policyManifest(image, policy string, annotations ...string) string {
	return sluice.App{Name: app, Image: image, Replicas: 2, Container: sluice.Port8080,
		Annotations: append([]string{"sluice.dev/policy: " + policy}, annotations...)}.YAML()
}

// quickPolicy has manifest's quick settings, with weights.
func quickPolicy(kind, name string, weights string) string {
	return fmt.Sprintf(`apiVersion: sluice.dev/v1alpha1
kind: %s
metadata:
  name: %s
spec:
  stepWeights: [%s]
  maxWeight: 70
  interval: 2s
  analysisWindow: 5s
  threshold: 3
  progressDeadline: 1m
`, kind, name, weights)
}

// TestPolicySettingsAndTheirSources: a Deployment runs by the policy it
// names, its own annotations override the policy field by field, and the
// Canary says where each setting came from.
func TestPolicySettingsAndTheirSources(t *testing.T) {
	setup(t)
	ns := env.NewNamespace(t)
	c := newClient(t)
	kubectlApply(t, ns, quickPolicy("CanaryPolicy", "quick", "25, 75"))
	kubectlApply(t, ns, policyManifest("example.com/web:v1", "quick", `sluice.dev/threshold: "4"`))
	cr := waitPhase(t, c, ns, canary.PhaseInitialized, 30*time.Second)
	if s := cr.Spec.Settings; !slices.Equal(s.StepWeights, []int32{25, 75}) || s.Threshold != 4 || s.Interval.Duration != 2*time.Second || s.MinRequests != 30 {
		t.Errorf("settings %+v; want the policy's weights and interval, the annotation's threshold, the default min-requests", s)
	}
	want := map[string]string{"step-weights": "CanaryPolicy quick", "threshold": "annotation", "interval": "CanaryPolicy quick",
		"min-requests": "default"}
	for setting, source := range want {
		if got := cr.Status.SettingSources[setting]; got != source {
			t.Errorf("source of %s: %q; want %q (all: %v)", setting, got, source, cr.Status.SettingSources)
		}
	}

	// A change of the policy reaches the Canary of the Deployment that
	// names it.
	kubectlApply(t, ns, quickPolicy("CanaryPolicy", "quick", "10, 70"))
	waitCanarySpec(t, c, ns, "the policy's new weights", func(s canary.Settings) bool { return slices.Equal(s.StepWeights, []int32{10, 70}) })
}

// TestPolicyChangedDuringARolloutKeepsItsSnapshot: a rollout keeps the
// policy it started with; the next revision runs by the new one.
func TestPolicyChangedDuringARolloutKeepsItsSnapshot(t *testing.T) {
	setup(t)
	ns := env.NewNamespace(t)
	c := newClient(t)
	mesh.Set(ns, app+"-canary", telemetry.Behaviour{Latency: 20 * time.Millisecond})
	kubectlApply(t, ns, quickPolicy("CanaryPolicy", "quick", "20, 40, 60, 80"))
	kubectlApply(t, ns, policyManifest("example.com/web:v1", "quick"))
	waitPhase(t, c, ns, canary.PhaseInitialized, 30*time.Second)
	seen := weights(t, ns)
	kubectlApply(t, ns, policyManifest("example.com/web:v2", "quick"))
	cr := waitStatus(t, c, ns, "weight 20", time.Minute, func(st canary.CanaryStatus) bool { return st.CanaryWeight == 20 })
	if p := cr.Status.Policy; p == nil || p.Kind != canary.KindCanaryPolicy || p.Name != "quick" || !slices.Equal(p.Spec.StepWeights, []int32{20, 40, 60, 80}) {
		t.Fatalf("the rollout's policy %+v; want a snapshot of CanaryPolicy quick", p)
	}

	kubectlApply(t, ns, quickPolicy("CanaryPolicy", "quick", "50, 100"))
	waitPhase(t, c, ns, canary.PhaseSucceeded, 2*time.Minute)
	expectWeights(t, seen, "weights with the policy changed during the rollout %v; want the snapshot's %v")

	kubectlApply(t, ns, policyManifest("example.com/web:v3", "quick"))
	waitPhase(t, c, ns, canary.PhaseProgressing, 30*time.Second)
	waitPhase(t, c, ns, canary.PhaseSucceeded, 2*time.Minute)
	cluster.Eventually(t, 10*time.Second, "the next revision's weights", func(context.Context) error {
		if got, want := seen(), []int32{0, 20, 40, 60, 80, 0, 50, 100, 0}; !slices.Equal(got, want) {
			return fmt.Errorf("weights %v; want %v", got, want)
		}
		return nil
	})
}

// TestDefaultClusterPolicy: a ClusterCanaryPolicy named default gives its
// settings to every opted-in Deployment that names no policy.
func TestDefaultClusterPolicy(t *testing.T) {
	setup(t)
	ns := env.NewNamespace(t)
	c := newClient(t)
	kubectlApply(t, "", quickPolicy("ClusterCanaryPolicy", "default", "30, 60, 90"))
	t.Cleanup(func() {
		if out, err := env.Kubectl(context.Background(), "delete", "clustercanarypolicy", "default").CombinedOutput(); err != nil {
			t.Errorf("delete the default policy: %v\n%s", err, out)
		}
	})
	kubectlApply(t, ns, sluice.App{Name: app, Image: "example.com/web:v1", Replicas: 2, Container: sluice.Port8080,
		Annotations: []string{`sluice.dev/max-weight: "90"`}}.YAML())
	cr := waitCanarySpec(t, c, ns, "the default policy's weights", func(s canary.Settings) bool { return slices.Equal(s.StepWeights, []int32{30, 60, 90}) })
	if got := cr.Status.SettingSources; got["step-weights"] != "ClusterCanaryPolicy default" || got["max-weight"] != "annotation" {
		t.Errorf("sources %v", got)
	}
}

// waitCanarySpec waits until the Canary's spec satisfies ok.
func waitCanarySpec(t *testing.T, c client.Client, ns, what string, ok func(canary.Settings) bool) *canary.Canary {
	t.Helper()
	var cr canary.Canary
	cluster.Eventually(t, 30*time.Second, what, func(ctx context.Context) error {
		if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: app}, &cr); err != nil {
			return err
		}
		if !ok(cr.Spec.Settings) || len(cr.Status.SettingSources) == 0 {
			return fmt.Errorf("spec %+v, sources %v", cr.Spec, slices.Sorted(maps.Keys(cr.Status.SettingSources)))
		}
		return nil
	})
	return &cr
}

// TestPolicyPrometheusBehindAuthAndTLS: a policy's Prometheus, served behind
// basic auth and TLS: with a wrong password the canary is blind (a clear
// message in the status and the events, no failed check), and with the
// right one the rollout completes.
func TestPolicyPrometheusBehindAuthAndTLS(t *testing.T) {
	if env.Attached() {
		t.Skip("the cluster is attached (" + cluster.EnvDir + "): a second Prometheus needs the cluster's own Prometheus configuration")
	}
	setup(t)
	ns := env.NewNamespace(t)
	c := newClient(t)
	prom, err := env.StartSecurePrometheus(t.Context(), "sluice", "s3cret")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := prom.Stop(); err != nil {
			t.Errorf("stop the secure Prometheus: %v", err)
		}
	})
	secret := func(password string) string {
		return "apiVersion: v1\nkind: Secret\nmetadata:\n  name: prom-auth\ntype: kubernetes.io/basic-auth\nstringData:\n" +
			"  username: sluice\n  password: " + password + "\n"
	}
	kubectlApply(t, ns, secret("wrong"))
	var ca strings.Builder
	for line := range strings.Lines(string(prom.CAPEM)) {
		ca.WriteString("      " + line)
	}
	kubectlApply(t, ns, quickPolicy("CanaryPolicy", "secured", "20, 40, 60, 80")+
		"  prometheus:\n    address: "+prom.URL+"\n    basicAuthSecret:\n      name: prom-auth\n    caBundle: |\n"+ca.String())
	mesh.Set(ns, app+"-canary", telemetry.Behaviour{Latency: 20 * time.Millisecond})
	kubectlApply(t, ns, policyManifest("example.com/web:v1", "secured"))
	waitPhase(t, c, ns, canary.PhaseInitialized, 30*time.Second)
	kubectlApply(t, ns, policyManifest("example.com/web:v2", "secured"))

	// sluice may read Secrets only where it is granted to.
	forbidden := "the Prometheus of CanaryPolicy secured: sluice may not read secret " + ns + "/prom-auth: " +
		"grant it with a RoleBinding in " + ns + " to the ClusterRole sluice-policy-secrets (or list the namespace in the chart's policySecretNamespaces)"
	blindFor(t, c, ns, forbidden)
	expectEventPrefix(t, ns, "Holding web."+ns+" at canary weight 20: the analysis cannot read the metrics ("+forbidden+")")
	if out, err := env.Kubectl(t.Context(), "create", "rolebinding", "sluice-policy-secrets", "-n", ns, "--clusterrole=sluice-policy-secrets",
		"--serviceaccount=sluice-system:sluice").CombinedOutput(); err != nil {
		t.Fatalf("kubectl create rolebinding: %v\n%s", err, out)
	}
	blindFor(t, c, ns, "Prometheus query failed: "+prom.URL+": answered 401 Unauthorized (the credentials were refused)")

	kubectlApply(t, ns, secret("s3cret"))
	waitPhase(t, c, ns, canary.PhaseSucceeded, 2*time.Minute)
}

// blindFor waits until the Canary in ns is blind, the Blind condition
// saying why, with no failed check.
func blindFor(t *testing.T, c client.Client, ns, why string) {
	t.Helper()
	cr := waitStatus(t, c, ns, "blind: "+why, time.Minute, func(st canary.CanaryStatus) bool {
		cond := apimeta.FindStatusCondition(st.Conditions, canary.ConditionBlind)
		return cond != nil && cond.Status == "True" && cond.Message == why
	})
	if cr.Status.FailedChecks != 0 || cr.Status.CanaryWeight != 20 {
		t.Errorf("failed checks %d, weight %d; want none, held at 20", cr.Status.FailedChecks, cr.Status.CanaryWeight)
	}
}

// checkoutPolicy has the README's custom check of the applications'
// business metric: the share of requests that complete a checkout may be at
// most 10% below the primary's.
func checkoutPolicy() string {
	return quickPolicy("CanaryPolicy", "checkout", "20, 40, 60, 80") + `  checks:
    - name: checkout-conversion
      query: >-
        sum(rate(shop_checkouts_total{namespace="{{.Namespace}}",workload="{{.Workload}}"}[{{.Window}}]))
        / sum(rate(istio_requests_total{reporter="destination",destination_workload_namespace="{{.Namespace}}",destination_workload="{{.Workload}}"}[{{.Window}}]))
      compare:
        against: primary
        better: higher
        maxRelativeDegradation: 10
`
}

// TestCustomCheckCatchesABusinessRegression: a release that serves every
// request but completes half as many checkouts as its primary passes both
// built-in checks, and is rolled back by the policy's custom check; one
// that checks out as often is promoted.
func TestCustomCheckCatchesABusinessRegression(t *testing.T) {
	setup(t)
	for _, tc := range []struct {
		name     string
		checkout float64
		phase    canary.Phase
	}{
		{"as many checkouts", 0.3, canary.PhaseSucceeded},
		{"half the checkouts", 0.15, canary.PhaseFailed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ns := env.NewNamespace(t)
			c := newClient(t)
			mesh.Set(ns, app, telemetry.Behaviour{Latency: 20 * time.Millisecond, CheckoutRate: 0.3})
			mesh.Set(ns, app+"-canary", telemetry.Behaviour{Latency: 20 * time.Millisecond, CheckoutRate: tc.checkout})
			kubectlApply(t, ns, checkoutPolicy())
			kubectlApply(t, ns, policyManifest("example.com/web:v1", "checkout"))
			waitPhase(t, c, ns, canary.PhaseInitialized, 30*time.Second)
			kubectlApply(t, ns, policyManifest("example.com/web:v2", "checkout"))
			cr := waitPhase(t, c, ns, tc.phase, 2*time.Minute)
			if tc.phase == canary.PhaseSucceeded {
				return
			}
			for _, check := range cr.Status.Checks {
				if check.Name != "checkout-conversion" && check.Verdict != canary.VerdictPassed {
					t.Errorf("%s; want the built-in checks passed", check)
				}
			}
			expectEvent(t, ns, "Rolling back web."+ns+" failed checks threshold reached 3")
			expectEventPrefix(t, ns, "Halt web."+ns+" advancement checkout-conversion: ")
		})
	}
}
