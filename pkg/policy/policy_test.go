package policy

import (
	"slices"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"sluice.dev/sluice/pkg/canary"
)

func TestValidate(t *testing.T) {
	check := func(query string) canary.PolicySpec {
		return canary.PolicySpec{Checks: []canary.CheckSpec{{Name: "request-duration", Disabled: true}, {Name: "checkout", Query: query, Min: ptr.To(1.0)}}}
	}
	for _, tc := range []struct {
		name, query string
		want        []string
	}{
		{"a good query", `sum(rate(shop_checkouts_total{namespace="{{.Namespace}}",workload="{{.Workload}}"}[{{.Window}}]))`, nil},
		{"an unknown variable", `sum(rate(shop_checkouts_total{app="{{.App}}"}[1m]))`, []string{
			`spec.checks[1].query: render the query template: template: query:1:37: executing "query" at <.App>: can't evaluate field App in type analysis.Vars; ` +
				"the variables are .Namespace, .Deployment, .Workload, .Canary, .Primary and .Window"}},
		{"not PromQL", `sum(rate(shop_checkouts_total{workload="{{.Workload}}"}[{{.Window}}])`, []string{
			`spec.checks[1].query: not PromQL once rendered (sum(rate(shop_checkouts_total{workload="web-canary"}[1m])): ` +
				`1:58: parse error: unclosed left parenthesis`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Validate(check(tc.query)); !slices.Equal(got, tc.want) {
				t.Errorf("%q\nwant\n%q", got, tc.want)
			}
		})
	}
}

func TestFind(t *testing.T) {
	scheme := runtime.NewScheme()
	if err := canary.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	r := fake.NewClientBuilder().WithScheme(scheme).WithObjects(
		&canary.CanaryPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "strict", Generation: 3}},
		&canary.ClusterCanaryPolicy{ObjectMeta: metav1.ObjectMeta{Name: "strict"}},
		&canary.ClusterCanaryPolicy{ObjectMeta: metav1.ObjectMeta{Name: "default"}},
	).Build()
	for _, tc := range []struct {
		name, namespace string
		annotations     map[string]string
		kind, policy    string
		notFound        bool
	}{
		{"the namespace's policy first", "shop", map[string]string{canary.AnnotationPolicy: "strict"}, canary.KindCanaryPolicy, "strict", false},
		{"then the cluster's", "blog", map[string]string{canary.AnnotationPolicy: "strict"}, canary.KindClusterCanaryPolicy, "strict", false},
		{"cluster/ forces the cluster's", "shop", map[string]string{canary.AnnotationPolicy: "cluster/strict"}, canary.KindClusterCanaryPolicy, "strict", false},
		{"none named: the default", "shop", nil, canary.KindClusterCanaryPolicy, "default", false},
		{"a name that exists nowhere", "shop", map[string]string{canary.AnnotationPolicy: "lax"}, "", "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Find(t.Context(), r, tc.namespace, tc.annotations)
			if IsNotFound(err) != tc.notFound || !tc.notFound && (err != nil || got == nil || got.Kind != tc.kind || got.Name != tc.policy) {
				t.Errorf("%+v, %v; want %s %s (not found: %t)", got, err, tc.kind, tc.policy, tc.notFound)
			}
		})
	}
	if got, _ := Find(t.Context(), r, "shop", map[string]string{canary.AnnotationPolicy: "strict"}); got.Generation != 3 {
		t.Errorf("generation %d; want the policy's, 3", got.Generation)
	}
}
