package shift

import (
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"sluice.dev/sluice/pkg/canary"
	"sluice.dev/sluice/pkg/routing"
)

// running is a canary Deployment of revision with replicas, all of them
// ready when ready is true.
func running(revision string, replicas int32, ready bool) *appsv1.Deployment {
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "web-canary", Namespace: "shop", UID: "u2", Generation: 2,
			Annotations: map[string]string{canary.AnnotationCanaryRevision: revision}},
		Spec: appsv1.DeploymentSpec{Replicas: ptr.To(replicas)},
	}
	d.Status = appsv1.DeploymentStatus{ObservedGeneration: 2, Replicas: replicas, UpdatedReplicas: replicas, ReadyReplicas: replicas}
	if !ready {
		d.Status.ReadyReplicas = 0
	}
	return d
}

func TestCanaryReplicas(t *testing.T) {
	primary := deployment()
	primary.Spec.Replicas = ptr.To[int32](4)
	for _, tc := range []struct {
		name       string
		run        *appsv1.Deployment
		autoscaled bool
		want       int32
	}{
		{"a new canary starts at the primary's replicas", nil, true, 4},
		{"without an autoscaler it follows the primary", running("r2", 7, true), false, 4},
		{"its autoscaler scaled it", running("r2", 7, true), true, 7},
		{"a new revision starts again at the primary's", running("r1", 7, true), true, 4},
		{"scaled down, it starts again at the primary's", running("r2", 0, true), true, 4},
	} {
		if got := canaryReplicas(primary, tc.run, "r2", tc.autoscaled); got != tc.want {
			t.Errorf("%s: %d replicas; want %d", tc.name, got, tc.want)
		}
	}
}

func TestCanaryReady(t *testing.T) {
	for _, tc := range []struct {
		name       string
		run        *appsv1.Deployment
		revision   string
		autoscaled bool
		want       bool
	}{
		{"the primary's replicas, ready", running("r2", 3, true), "r2", false, true},
		{"not ready", running("r2", 3, false), "r2", false, false},
		{"another revision", running("r1", 3, true), "r2", false, false},
		{"none pending", running("r2", 3, true), "", false, false},
		{"fewer than the primary", running("r2", 2, true), "r2", false, false},
		{"its autoscaler's replicas", running("r2", 5, true), "r2", true, true},
		{"autoscaled, scaled down", running("r2", 0, true), "r2", true, false},
		{"no canary", nil, "r2", false, false},
	} {
		if got := canaryReady(tc.run, tc.revision, 3, tc.autoscaled); got != tc.want {
			t.Errorf("%s: ready %t; want %t", tc.name, got, tc.want)
		}
	}
}

func TestCanaryAutoscaler(t *testing.T) {
	primary := &autoscalingv2.HorizontalPodAutoscaler{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "shop", Labels: map[string]string{"team": "a"}},
		Spec: autoscalingv2.HorizontalPodAutoscalerSpec{
			ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "web"},
			MinReplicas:    ptr.To[int32](2), MaxReplicas: 10,
			Metrics: []autoscalingv2.MetricSpec{{Type: autoscalingv2.ResourceMetricSourceType, Resource: &autoscalingv2.ResourceMetricSource{
				Name: "cpu", Target: autoscalingv2.MetricTarget{Type: autoscalingv2.UtilizationMetricType, AverageUtilization: ptr.To[int32](60)}}}},
		},
	}
	run := running("r2", 2, true)
	got := canaryAutoscaler(primary, run)
	if got.Name != "web-canary" || got.Namespace != "shop" || !metav1.IsControlledBy(got, run) || got.Labels[routing.ManagedByLabel] != routing.ManagedBy {
		t.Errorf("meta %+v; want web-canary in shop, controlled by the canary Deployment, managed by sluice", got.ObjectMeta)
	}
	if ref := got.Spec.ScaleTargetRef; ref.Name != "web-canary" || ref.Kind != "Deployment" || ref.APIVersion != "apps/v1" {
		t.Errorf("target %+v; want the canary Deployment", ref)
	}
	if *got.Spec.MinReplicas != 2 || got.Spec.MaxReplicas != 10 || *got.Spec.Metrics[0].Resource.Target.AverageUtilization != 60 {
		t.Errorf("spec %+v; want the primary's bounds and metrics", got.Spec)
	}
	if primary.Spec.ScaleTargetRef.Name != "web" {
		t.Error("the primary's autoscaler was changed")
	}
	for target, want := range map[autoscalingv2.CrossVersionObjectReference]string{
		{APIVersion: "apps/v1", Kind: "Deployment", Name: "web"}:           "web",
		{APIVersion: "apps/v1", Kind: "StatefulSet", Name: "db"}:           "",
		{APIVersion: "example.com/v1", Kind: "Deployment", Name: "custom"}: "",
	} {
		a := &autoscalingv2.HorizontalPodAutoscaler{Spec: autoscalingv2.HorizontalPodAutoscalerSpec{ScaleTargetRef: target}}
		if got := scaledDeployment(a); got != want {
			t.Errorf("scaledDeployment(%+v) = %q; want %q", target, got, want)
		}
	}
}

// deployment is an opted-in Deployment web in shop.
func deployment() *appsv1.Deployment {
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web", UID: "u1"},
		Spec:       appsv1.DeploymentSpec{Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}}},
	}
}
