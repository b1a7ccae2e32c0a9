package shifter_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"sluice.dev/sluice/pkg/canary"
	"sluice.dev/sluice/test/cluster"
	"sluice.dev/sluice/test/meshsim/telemetry"
	"sluice.dev/sluice/test/metricsapi"
)

// TestAutoscaledCanary: a Deployment scaled by a HorizontalPodAutoscaler gets
// a canary that starts at the primary's current replicas and has an
// autoscaler of its own, which follows the primary's spec, and which the real
// HPA controller uses to scale the canary; it goes when the canary scales
// down, after a promotion and after a rollback.
func TestAutoscaledCanary(t *testing.T) {
	metrics, err := metricsapi.Start(t.Context(), env.AdminConfig())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := metrics.Close(); err != nil {
			t.Error(err)
		}
	})
	// Without requests the canary holds at 20 while the test looks at it.
	ns, c := initializedQuiet(t, patient)
	const metric = "requests_in_flight"
	selector := map[string]string{"app": app}
	metrics.Set(ns, metric, selector, resource.MustParse("30"))
	primaryHPA := metricsapi.Autoscaler(ns, app, metric, selector, "10")
	if err := c.Create(t.Context(), primaryHPA); err != nil {
		t.Fatal(err)
	}
	waitReplicas(t, c, ns, app, 3)

	kubectlApply(t, ns, patient("example.com/web:v2"))
	waitStatus(t, c, ns, "canary at 20", time.Minute, func(st canary.CanaryStatus) bool { return st.CanaryWeight == 20 })
	run := deploymentOf(t, c, ns, app+"-canary")
	canaryHPA := waitCanaryAutoscaler(t, c, ns, "the primary's spec", func(a *autoscalingv2.HorizontalPodAutoscaler) error {
		if ref := a.Spec.ScaleTargetRef; ref.Name != app+"-canary" || ref.Kind != "Deployment" {
			return fmt.Errorf("target %+v", ref)
		}
		if a.Spec.MaxReplicas != 10 || *a.Spec.MinReplicas != 1 || len(a.Spec.Metrics) != 1 || a.Spec.Metrics[0].External.Metric.Name != metric ||
			a.Spec.Behavior == nil || *a.Spec.Behavior.ScaleDown.StabilizationWindowSeconds != 0 {
			return fmt.Errorf("spec %+v", a.Spec)
		}
		return nil
	})
	if !metav1.IsControlledBy(canaryHPA, run) {
		t.Errorf("the canary's autoscaler is owned by %v; want the canary Deployment", canaryHPA.OwnerReferences)
	}
	waitReplicas(t, c, ns, app+"-canary", 3)

	// Load on both: the HPA controller scales the canary like the primary,
	// and the shifter leaves its replicas to its autoscaler.
	metrics.Set(ns, metric, selector, resource.MustParse("50"))
	waitReplicas(t, c, ns, app, 5)
	waitReplicas(t, c, ns, app+"-canary", 5)
	waitCanaryAutoscaler(t, c, ns, "the canary's current metric", func(a *autoscalingv2.HorizontalPodAutoscaler) error {
		if a.Status.DesiredReplicas != 5 {
			return fmt.Errorf("desired replicas %d", a.Status.DesiredReplicas)
		}
		return nil
	})

	// A change of the primary's autoscaler reaches the canary's.
	if err := c.Get(t.Context(), client.ObjectKeyFromObject(primaryHPA), primaryHPA); err != nil {
		t.Fatal(err)
	}
	primaryHPA.Spec.MaxReplicas = 4
	if err := c.Update(t.Context(), primaryHPA); err != nil {
		t.Fatal(err)
	}
	waitCanaryAutoscaler(t, c, ns, "max replicas 4", func(a *autoscalingv2.HorizontalPodAutoscaler) error {
		if a.Spec.MaxReplicas != 4 {
			return fmt.Errorf("max replicas %d", a.Spec.MaxReplicas)
		}
		return nil
	})
	waitReplicas(t, c, ns, app+"-canary", 4)

	// Promoted: the canary's autoscaler goes with the canary's replicas.
	mesh.Set(ns, app+"-canary", telemetry.Behaviour{Latency: 20 * time.Millisecond})
	waitPhase(t, c, ns, canary.PhaseSucceeded, 2*time.Minute)
	expectNoCanaryAutoscaler(t, c, ns)
	waitReplicas(t, c, ns, app+"-canary", 0)

	// Rolled back: the same.
	mesh.Set(ns, app+"-canary", telemetry.Behaviour{ErrorRate: 1})
	kubectlApply(t, ns, manifest("example.com/web:v3"))
	waitCanaryAutoscaler(t, c, ns, "a new canary's autoscaler", func(*autoscalingv2.HorizontalPodAutoscaler) error { return nil })
	waitPhase(t, c, ns, canary.PhaseFailed, 2*time.Minute)
	expectNoCanaryAutoscaler(t, c, ns)
	waitReplicas(t, c, ns, app+"-canary", 0)
}

func deploymentOf(t *testing.T, c client.Client, ns, name string) *appsv1.Deployment {
	t.Helper()
	d := &appsv1.Deployment{}
	if err := c.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: name}, d); err != nil {
		t.Fatal(err)
	}
	return d
}

// waitReplicas waits until Deployment name wants replicas and has them ready.
func waitReplicas(t *testing.T, c client.Client, ns, name string, replicas int32) {
	t.Helper()
	cluster.Eventually(t, time.Minute, fmt.Sprintf("%s at %d replicas", name, replicas), func(ctx context.Context) error {
		d := &appsv1.Deployment{}
		if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, d); err != nil {
			return err
		}
		if want := ptr.Deref(d.Spec.Replicas, 1); want != replicas || d.Status.ReadyReplicas != replicas {
			return fmt.Errorf("%d replicas wanted, %d ready", want, d.Status.ReadyReplicas)
		}
		return nil
	})
}

// waitCanaryAutoscaler waits until the canary's autoscaler exists and ok
// accepts it.
func waitCanaryAutoscaler(t *testing.T, c client.Client, ns, what string, ok func(*autoscalingv2.HorizontalPodAutoscaler) error) *autoscalingv2.HorizontalPodAutoscaler {
	t.Helper()
	a := &autoscalingv2.HorizontalPodAutoscaler{}
	cluster.Eventually(t, time.Minute, "the canary's autoscaler: "+what, func(ctx context.Context) error {
		if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: app + "-canary"}, a); err != nil {
			return err
		}
		return ok(a)
	})
	return a
}

func expectNoCanaryAutoscaler(t *testing.T, c client.Client, ns string) {
	t.Helper()
	cluster.Eventually(t, 30*time.Second, "no canary autoscaler", func(ctx context.Context) error {
		err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: app + "-canary"}, &autoscalingv2.HorizontalPodAutoscaler{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		return fmt.Errorf("still there (%v)", err)
	})
}
