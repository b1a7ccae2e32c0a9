package cluster_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"sluice.dev/sluice/test/cluster"
	"sluice.dev/sluice/test/metricsapi"
)

// The real HPA controller reads an external metric from the stand-in through
// the API server's aggregation layer, and scales a Deployment up and down on
// it.
func TestHPAScalesOnExternalMetric(t *testing.T) {
	began := time.Now()
	metrics, err := metricsapi.Start(t.Context(), env.AdminConfig())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := metrics.Close(); err != nil {
			t.Error(err)
		}
	})
	t.Logf("external metrics API routed in %.1fs", time.Since(began).Seconds())

	cs := env.Clientset(t)
	ns := env.NewNamespace(t)
	labels := map[string]string{"app": "worker"}
	_, err = cs.AppsV1().Deployments(ns).Create(t.Context(), &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "worker", Namespace: ns},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](1),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "worker", Image: "example.com/worker:1"}}},
			},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	const metric = "queue_messages"
	orders := map[string]string{"queue": "orders"}
	metrics.Set(ns, metric, orders, resource.MustParse("40"))
	// A series the HPA's selector leaves out: counted, it would drive the HPA
	// to its maximum.
	metrics.Set(ns, metric, map[string]string{"queue": "audit"}, resource.MustParse("1000"))
	_, err = cs.AutoscalingV2().HorizontalPodAutoscalers(ns).Create(t.Context(), metricsapi.Autoscaler(ns, "worker", metric, orders, "10"), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}

	// 40 messages at 10 a replica: 4 replicas, each then at 10.
	step := time.Now()
	waitScaled(t, cs, ns, 4, "10")
	t.Logf("scaled up to 4 in %.1fs", time.Since(step).Seconds())

	// 10 messages: 1 replica at 10.
	step = time.Now()
	metrics.Set(ns, metric, orders, resource.MustParse("10"))
	waitScaled(t, cs, ns, 1, "10")
	t.Logf("scaled down to 1 in %.1fs", time.Since(step).Seconds())
}

// waitScaled waits until the Deployment worker has replicas and the HPA
// worker says so, having read the external metric at average a replica.
func waitScaled(t *testing.T, cs kubernetes.Interface, ns string, replicas int32, average string) {
	t.Helper()
	cluster.Eventually(t, time.Minute, fmt.Sprintf("HPA scales to %d", replicas), func(ctx context.Context) error {
		dep, err := cs.AppsV1().Deployments(ns).Get(ctx, "worker", metav1.GetOptions{})
		if err != nil {
			return err
		}
		hpa, err := cs.AutoscalingV2().HorizontalPodAutoscalers(ns).Get(ctx, "worker", metav1.GetOptions{})
		if err != nil {
			return err
		}
		st := hpa.Status
		// The conditions say why a read of the metric failed, if one did.
		if got := *dep.Spec.Replicas; got != replicas {
			return fmt.Errorf("Deployment has %d replicas; HPA conditions %+v", got, st.Conditions)
		}
		if st.CurrentReplicas != replicas || st.DesiredReplicas != replicas {
			return fmt.Errorf("HPA status: %d current, %d desired replicas", st.CurrentReplicas, st.DesiredReplicas)
		}
		if !hasCondition(st.Conditions, autoscalingv2.ScalingActive, "ValidMetricFound") {
			return fmt.Errorf("HPA not ScalingActive on a valid metric: %+v", st.Conditions)
		}
		if len(st.CurrentMetrics) != 1 || st.CurrentMetrics[0].External == nil || st.CurrentMetrics[0].External.Current.AverageValue == nil {
			return fmt.Errorf("HPA current metrics %+v: want the external metric's average value", st.CurrentMetrics)
		}
		if got := st.CurrentMetrics[0].External.Current.AverageValue; got.Cmp(resource.MustParse(average)) != 0 {
			return fmt.Errorf("HPA read an average of %s a replica, want %s", got, average)
		}
		return nil
	})
}

func hasCondition(conds []autoscalingv2.HorizontalPodAutoscalerCondition, typ autoscalingv2.HorizontalPodAutoscalerConditionType, reason string) bool {
	for _, c := range conds {
		if c.Type == typ && c.Status == corev1.ConditionTrue && c.Reason == reason {
			return true
		}
	}
	return false
}
