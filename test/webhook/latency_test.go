package webhook_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"sluice.dev/sluice/pkg/canary"
)

// BenchmarkUpdateLatency measures what the webhook adds to an update through
// the API server: each iteration changes the pod template of a plain
// Deployment and of an opted-in one (which the webhook diverts), alternating
// so that both see the same load. Run it with -benchtime=1000x.
func BenchmarkUpdateLatency(b *testing.B) {
	setup(b)
	ns := env.NewNamespace(b)
	cs := env.Clientset(b)
	plain := createForBench(b, cs, ns, "plain", nil)
	opted := createForBench(b, cs, ns, "opted", map[string]string{canary.AnnotationEnabled: canary.EnabledValue})

	// A patch, not an update: the controllers' status writes would make an
	// update's resourceVersion stale.
	var plainTimes, optedTimes []time.Duration
	update := func(dep **appsv1.Deployment, i int, times *[]time.Duration) {
		patch := fmt.Appendf(nil, `{"spec":{"template":{"spec":{"containers":[{"name":"app","env":[{"name":"RELEASE","value":"%d"}]}]}}}}`, i)
		start := time.Now()
		got, err := cs.AppsV1().Deployments(ns).Patch(b.Context(), (*dep).Name, types.StrategicMergePatchType, patch, metav1.PatchOptions{})
		*times = append(*times, time.Since(start))
		if err != nil {
			b.Fatal(err)
		}
		*dep = got
	}
	b.ResetTimer()
	for i := range b.N {
		update(&plain, i, &plainTimes)
		update(&opted, i, &optedTimes)
	}
	b.StopTimer()
	if opted.Annotations[canary.AnnotationCanaryRevision] == "" {
		b.Fatal("the opted-in Deployment was not diverted")
	}
	p50, p99 := percentile(plainTimes, 50), percentile(plainTimes, 99)
	s50, s99 := percentile(optedTimes, 50), percentile(optedTimes, 99)
	b.ReportMetric(ms(p50), "plain-p50-ms")
	b.ReportMetric(ms(p99), "plain-p99-ms")
	b.ReportMetric(ms(s50), "sluice-p50-ms")
	b.ReportMetric(ms(s99), "sluice-p99-ms")
	b.ReportMetric(ms(s50-p50), "added-p50-ms")
	b.ReportMetric(ms(s99-p99), "added-p99-ms")
}

func createForBench(b *testing.B, cs kubernetes.Interface, ns, name string, annotations map[string]string) *appsv1.Deployment {
	b.Helper()
	labels := map[string]string{"app": name}
	dep, err := cs.AppsV1().Deployments(ns).Create(b.Context(), &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Annotations: annotations},
		Spec: appsv1.DeploymentSpec{
			// Paused, so that the plain Deployment's template changes start no
			// rollouts whose work would slow the requests that follow: both
			// Deployments cost the API server the same but for admission.
			Paused:   true,
			Replicas: ptr.To[int32](1),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "example.com/" + name + ":v1"}}},
			},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		b.Fatal(err)
	}
	return dep
}

func percentile(times []time.Duration, p int) time.Duration {
	sorted := slices.Clone(times)
	slices.Sort(sorted)
	return sorted[min(len(sorted)-1, len(sorted)*p/100)]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
