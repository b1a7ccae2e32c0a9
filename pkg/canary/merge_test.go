package canary

import (
	"reflect"
	"slices"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

func TestReferencedPolicies(t *testing.T) {
	for _, tc := range []struct {
		name        string
		annotations map[string]string
		want        []PolicyRef
		explicit    bool
	}{
		{"none: the default cluster policy", nil, []PolicyRef{{KindClusterCanaryPolicy, "default"}}, false},
		{"a name: namespaced first", map[string]string{AnnotationPolicy: "strict"},
			[]PolicyRef{{KindCanaryPolicy, "strict"}, {KindClusterCanaryPolicy, "strict"}}, true},
		{"cluster/ forces the cluster policy", map[string]string{AnnotationPolicy: "cluster/strict"},
			[]PolicyRef{{KindClusterCanaryPolicy, "strict"}}, true},
		{"a malformed name", map[string]string{AnnotationPolicy: "Strict_Rules"}, nil, true},
		{"cluster/ alone", map[string]string{AnnotationPolicy: "cluster/"}, nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, explicit := ReferencedPolicies(tc.annotations)
			if !slices.Equal(got, tc.want) || explicit != tc.explicit {
				t.Errorf("%v, explicit %t; want %v, %t", got, explicit, tc.want, tc.explicit)
			}
		})
	}
}

func TestParsePolicyReference(t *testing.T) {
	checkProblems(t, map[string]string{AnnotationPolicy: "cluster/strict"}, nil)
	checkProblems(t, map[string]string{AnnotationPolicy: "Strict_Rules"}, []string{`sluice.dev/policy: "Strict_Rules" is not the name of a ` +
		`CanaryPolicy, or cluster/ and the name of a ClusterCanaryPolicy (a DNS-1123 subdomain)`})
}

// TestParseWithPolicy: a policy stands in for the defaults, the
// Deployment's annotations override it field by field, and the sources say
// which is which.
func TestParseWithPolicy(t *testing.T) {
	minute := func(n int) *metav1.Duration { return &metav1.Duration{Duration: time.Duration(n) * time.Minute} }
	policy := &PolicySnapshot{Kind: KindCanaryPolicy, Name: "strict", Spec: PolicySpec{
		StepWeights: []int32{5, 25, 50}, MaxWeight: ptr.To[int32](50), Interval: minute(2), Threshold: ptr.To[int32](3),
		MinSuccessRate: ptr.To(99.9), EvidenceDeadline: minute(90), ConfirmPromotion: ptr.To(GateManual),
		Checks:     []CheckSpec{{Name: "request-duration", Disabled: true}},
		Prometheus: &PrometheusSpec{Address: "https://mimir.example.com/prometheus"},
	}}
	fromPolicy := "CanaryPolicy strict"
	base := BuiltinDefaults().Settings()
	base.StepWeights, base.MaxWeight, base.Interval, base.Threshold = []int32{5, 25, 50}, 50, *minute(2), 3
	base.MinSuccessRate, base.EvidenceDeadline, base.ConfirmPromotion = 99.9, *minute(90), GateManual
	base.Checks, base.Prometheus = policy.Spec.Checks, policy.Spec.Prometheus
	with := func(change func(*Settings)) Settings {
		s := base
		change(&s)
		return s
	}
	sources := func(overrides map[string]string) map[string]string {
		out := map[string]string{
			"step-weight": "default", "step-weights": fromPolicy, "max-weight": fromPolicy, "interval": fromPolicy, "threshold": fromPolicy,
			"min-success-rate": fromPolicy, "max-request-duration": "default", "analysis-window": "default", "min-requests": "default",
			"evidence-deadline": fromPolicy, "blind-deadline": "default", "progress-deadline": "default",
			"confirm-rollout": "default", "confirm-promotion": fromPolicy, "router": "default",
		}
		for k, v := range overrides {
			out[k] = v
		}
		return out
	}
	for _, tc := range []struct {
		name        string
		policy      *PolicySnapshot
		annotations map[string]string
		want        Settings
		sources     map[string]string
		problems    []string
	}{
		{"no policy", nil, nil, BuiltinDefaults().Settings(), map[string]string{
			"step-weight": "default", "step-weights": "default", "max-weight": "default", "interval": "default", "threshold": "default",
			"min-success-rate": "default", "max-request-duration": "default", "analysis-window": "default", "min-requests": "default",
			"evidence-deadline": "default", "blind-deadline": "default", "progress-deadline": "default",
			"confirm-rollout": "default", "confirm-promotion": "default", "router": "default",
		}, nil},
		{"the policy's settings", policy, nil, base, sources(nil), nil},
		{"an annotation overrides its field only", policy, map[string]string{AnnotationThreshold: "7"},
			with(func(s *Settings) { s.Threshold = 7 }), sources(map[string]string{"threshold": "annotation"}), nil},
		{"the Deployment's step-weight overrides the policy's weights", policy, map[string]string{AnnotationStepWeight: "25"},
			with(func(s *Settings) { s.StepWeights = []int32{25, 50} }), sources(map[string]string{"step-weight": "annotation", "step-weights": "default"}), nil},
		{"a combination that does not hold is a problem", policy, map[string]string{AnnotationMaxWeight: "80"},
			with(func(s *Settings) { s.StepWeights, s.MaxWeight = []int32{10, 20, 30, 40, 50, 60, 70, 80}, 80 }),
			sources(map[string]string{"max-weight": "annotation"}),
			[]string{`sluice.dev/step-weights: "5,25,50" never reaches sluice.dev/max-weight 80; end the list at or above it`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, sources, problems := BuiltinDefaults().ParseWithPolicy(tc.policy, tc.annotations)
			if !slices.Equal(problems, tc.problems) {
				t.Errorf("problems %q; want %q", problems, tc.problems)
			}
			if len(tc.problems) == 0 && !reflect.DeepEqual(got, tc.want) {
				t.Errorf("settings\n %+v\nwant\n %+v", got, tc.want)
			}
			if !reflect.DeepEqual(sources, tc.sources) {
				t.Errorf("sources %v; want %v", sources, tc.sources)
			}
		})
	}
}
