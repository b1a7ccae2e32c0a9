package webhook_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"sluice.dev/sluice/test/cluster"
	"sluice.dev/sluice/test/sluice"
)

// TestInvalidPoliciesAreRefused: the API server refuses a policy that breaks
// a rule, naming the field and what is allowed.
func TestInvalidPoliciesAreRefused(t *testing.T) {
	setup(t)
	ns := env.NewNamespace(t)
	for _, tc := range []struct {
		name, spec, message string
	}{
		{"weights not increasing", "stepWeights: [30, 10]", `spec.stepWeights: Invalid value: stepWeights must be strictly increasing`},
		{"a repeated weight", "stepWeights: [10, 10, 50]", `spec.stepWeights[1]: Duplicate value: 10`},
		{"weights short of max-weight", "stepWeights: [10, 20]\n  maxWeight: 50", `spec: Invalid value: stepWeights must end at or above maxWeight`},
		{"a weight over 100", "stepWeight: 120", `spec.stepWeight: Invalid value: 120: spec.stepWeight in body should be less than or equal to 100`},
		{"an interval under 1s", "interval: 500ms", `spec.interval: Invalid value: "500ms": interval must be at least 1s`},
		{"a success rate over 100", "minSuccessRate: 101", `spec.minSuccessRate: Invalid value: 101: spec.minSuccessRate in body should be less than or equal to 100`},
		{"a custom check without a query", "checks:\n  - name: checkout\n    min: 1", `spec.checks[0]: Invalid value: a custom check needs a query`},
		{"a custom check without what is good", "checks:\n  - name: checkout\n    query: sum(rate(checkout_total[1m]))",
			`spec.checks[0]: Invalid value: a custom check needs min, max or compare: what is good`},
		{"a built-in check with a query", "checks:\n  - name: request-success-rate\n    query: up",
			`spec.checks[0]: Invalid value: the built-in checks take only disabled; set their bounds with minSuccessRate and maxRequestDuration`},
		{"min above max", "checks:\n  - name: checkout\n    query: up\n    min: 5\n    max: 1", `spec.checks[0]: Invalid value: min must not be above max`},
		{"a Prometheus that is not a URL", "prometheus:\n    address: mimir:9090",
			`spec.prometheus.address: Invalid value: "mimir:9090": address must be an http or https URL`},
		{"a query that is not PromQL", "checks:\n  - name: checkout\n    query: sum(rate(shop_checkouts_total[{{.Window}}])\n    min: 1",
			`admission webhook "policies.sluice.dev" denied the request: sluice: invalid CanaryPolicy: spec.checks[0].query: ` +
				`not PromQL once rendered (sum(rate(shop_checkouts_total[1m])): 1:35: parse error: unclosed left parenthesis`},
		{"a query with an unknown variable", "checks:\n  - name: checkout\n    query: sum(up{app=\"{{.App}}\"})\n    min: 1",
			`admission webhook "policies.sluice.dev" denied the request: sluice: invalid CanaryPolicy: spec.checks[0].query: render the query template: ` +
				`template: query:1:14: executing "query" at <.App>: can't evaluate field App in type analysis.Vars; ` +
				`the variables are .Namespace, .Deployment, .Workload, .Canary, .Primary and .Window`},
		{"two kinds of credentials", "prometheus:\n    address: https://mimir.example.com\n    bearerTokenSecret: {name: t, key: token}\n    basicAuthSecret: {name: b}",
			`spec.prometheus: Invalid value: use bearerTokenSecret or basicAuthSecret, not both`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			manifest := "apiVersion: sluice.dev/v1alpha1\nkind: CanaryPolicy\nmetadata:\n  name: bad\nspec:\n  " + tc.spec + "\n"
			_, stderr, err := tryKubectl(t, manifest, "apply", "-n", ns, "-f", "-")
			if err == nil || !strings.Contains(stderr, tc.message) {
				t.Errorf("err %v, stderr %q; want the refusal %q", err, stderr, tc.message)
			}
		})
	}
}

// TestReferenceToAMissingPolicyIsRefused: a Deployment that names a policy
// that does not exist is refused, and one that exists is accepted, with its
// rules applied to the Deployment's settings.
func TestReferenceToAMissingPolicyIsRefused(t *testing.T) {
	setup(t)
	ns := env.NewNamespace(t)
	named := manifest("example.com/web:v1", `sluice.dev/policy: "strict"`, `sluice.dev/step-weights: "10,50"`)
	_, stderr, err := tryKubectl(t, named, "apply", "-n", ns, "-f", "-")
	want := denied + "invalid sluice settings: sluice.dev/policy names a policy that does not exist: no CanaryPolicy strict in namespace " + ns +
		" and no ClusterCanaryPolicy strict; create it, or name one that kubectl get canarypolicies,clustercanarypolicies lists"
	if err == nil || !strings.Contains(stderr, want) {
		t.Fatalf("err %v, stderr %q; want the refusal %q", err, stderr, want)
	}

	policy := "apiVersion: sluice.dev/v1alpha1\nkind: CanaryPolicy\nmetadata:\n  name: strict\nspec:\n  maxWeight: 60\n"
	kubectl(t, policy, "apply", "-n", ns, "-f", "-")
	// The webhook sees the policy once its cache has it, and judges the
	// Deployment's weights by the policy's max-weight.
	waitApplied(t, ns, named, denied+`invalid sluice settings: sluice.dev/step-weights: "10,50" never reaches sluice.dev/max-weight 60; end the list at or above it`)
	kubectl(t, manifest("example.com/web:v1", `sluice.dev/policy: "strict"`, `sluice.dev/step-weights: "10,60"`), "apply", "-n", ns, "-f", "-")
}

// waitApplied applies yaml in ns until it is refused with want, which the
// webhook's cache of the policies decides a moment after they change.
func waitApplied(t *testing.T, ns, yaml, want string) {
	t.Helper()
	cluster.Eventually(t, 10*time.Second, "the refusal "+want, func(context.Context) error {
		if _, stderr, err := tryKubectl(t, yaml, "apply", "-n", ns, "-f", "-"); err == nil || !strings.Contains(stderr, want) {
			return fmt.Errorf("err %v, stderr %q", err, stderr)
		}
		return nil
	})
}

// TestReadmePolicyExample: the policy the README shows is one the API server
// and the webhook accept.
func TestReadmePolicyExample(t *testing.T) {
	setup(t)
	raw, err := os.ReadFile(sluice.RepoPath("README.md"))
	if err != nil {
		t.Fatal(err)
	}
	var example string
	for block := range strings.SplitSeq(string(raw), "```yaml\n") {
		if body, _, _ := strings.Cut(block, "```"); strings.Contains(body, "kind: CanaryPolicy") {
			example = body
			break
		}
	}
	if example == "" {
		t.Fatal("the README shows no CanaryPolicy")
	}
	ns := env.NewNamespace(t)
	example = strings.Replace(example, "namespace: shop", "namespace: "+ns, 1)
	kubectl(t, example, "apply", "--dry-run=server", "-f", "-")
}
