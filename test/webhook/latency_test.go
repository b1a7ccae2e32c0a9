package webhook_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/go-logr/logr"
	admissionv1 "k8s.io/api/admission/v1"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/webhook"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"sluice.dev/sluice/certs"
	"sluice.dev/sluice/pkg/canary"
)

// BenchmarkUpdateLatency measures what the webhook adds to an update through
// the API server. Each iteration changes the pod template of four
// Deployments, in turn, so that all see the same load: a plain one; two sent
// to webhooks in this process that do nothing but answer (the floors of any
// webhook): one allows the update as it is, the other returns a small JSON
// patch, as any mutating webhook that changes something does; and an opted-in
// one that sluice diverts. Run it with -benchtime=1000x.
func BenchmarkUpdateLatency(b *testing.B) {
	setup(b)
	ns := env.NewNamespace(b)
	cs := env.Clientset(b)
	registerFloorWebhooks(b)
	series := []struct {
		name string
		dep  *appsv1.Deployment
	}{
		{"plain", createForBench(b, cs, ns, "plain", nil, nil)},
		{"noop-webhook", createForBench(b, cs, ns, "noop", nil, map[string]string{"bench": "noop"})},
		{"patching-webhook", createForBench(b, cs, ns, "patching", nil, map[string]string{"bench": "patching"})},
		{"sluice", createForBench(b, cs, ns, "opted", map[string]string{canary.AnnotationEnabled: canary.EnabledValue}, nil)},
	}

	// A patch, not an update: the controllers' status writes would make an
	// update's resourceVersion stale.
	update := func(dep *appsv1.Deployment, i int) (*appsv1.Deployment, time.Duration) {
		patch := fmt.Appendf(nil, `{"spec":{"template":{"spec":{"containers":[{"name":"app","env":[{"name":"RELEASE","value":"%d"}]}]}}}}`, i)
		start := time.Now()
		got, err := cs.AppsV1().Deployments(ns).Patch(b.Context(), dep.Name, types.StrategicMergePatchType, patch, metav1.PatchOptions{})
		took := time.Since(start)
		if err != nil {
			b.Fatal(err)
		}
		return got, took
	}
	times := make([][]time.Duration, len(series))
	b.ResetTimer()
	for i := range b.N {
		for k := range series {
			var took time.Duration
			series[k].dep, took = update(series[k].dep, i)
			times[k] = append(times[k], took)
		}
	}
	b.StopTimer()
	if series[2].dep.Labels["patched"] == "" {
		b.Fatal("the patching webhook did not patch")
	}
	if series[3].dep.Annotations[canary.AnnotationCanaryRevision] == "" {
		b.Fatal("the opted-in Deployment was not diverted")
	}
	for k, s := range series {
		b.ReportMetric(ms(percentile(times[k], 50)), s.name+"-p50-ms")
		b.ReportMetric(ms(percentile(times[k], 99)), s.name+"-p99-ms")
	}
	plain, sluice := times[0], times[3]
	b.ReportMetric(ms(percentile(sluice, 50)-percentile(plain, 50)), "added-p50-ms")
	b.ReportMetric(ms(percentile(sluice, 99)-percentile(plain, 99)), "added-p99-ms")
}

// registerFloorWebhooks serves, in this process, two controller-runtime
// webhooks that decide nothing, and registers them for Deployments labelled
// bench=noop (allowed as they are) and bench=patching (allowed with a label
// added by a JSON patch).
func registerFloorWebhooks(b *testing.B) {
	b.Helper()
	serving, err := hook.CA.Issue(certs.Request{CommonName: "floor-webhooks", Hosts: []string{"127.0.0.1"}})
	if err != nil {
		b.Fatal(err)
	}
	pair, err := tls.X509KeyPair(serving.CertPEM, serving.KeyPEM)
	if err != nil {
		b.Fatal(err)
	}
	quiet := func(logr.Logger, *admission.Request) logr.Logger { return logr.Discard() }
	mux := http.NewServeMux()
	mux.Handle("/noop", &webhook.Admission{
		Handler:        admission.HandlerFunc(func(context.Context, admission.Request) admission.Response { return admission.Allowed("") }),
		LogConstructor: quiet,
	})
	jsonPatch := admissionv1.PatchTypeJSONPatch
	mux.Handle("/patching", &webhook.Admission{
		Handler: admission.HandlerFunc(func(context.Context, admission.Request) admission.Response {
			return admission.Response{AdmissionResponse: admissionv1.AdmissionResponse{Allowed: true, PatchType: &jsonPatch,
				Patch: []byte(`[{"op":"add","path":"/metadata/labels/patched","value":"yes"}]`)}}
		}),
		LogConstructor: quiet,
	})
	srv := httptest.NewUnstartedServer(mux)
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}
	srv.StartTLS()
	b.Cleanup(srv.Close)

	none := admissionregistrationv1.SideEffectClassNone
	floor := func(name string) admissionregistrationv1.MutatingWebhook {
		url := srv.URL + "/" + name
		return admissionregistrationv1.MutatingWebhook{
			Name:                    name + ".bench.sluice.dev",
			AdmissionReviewVersions: []string{"v1"},
			ClientConfig:            admissionregistrationv1.WebhookClientConfig{URL: &url, CABundle: hook.CAPEM},
			Rules: []admissionregistrationv1.RuleWithOperations{{
				Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Update},
				Rule:       admissionregistrationv1.Rule{APIGroups: []string{"apps"}, APIVersions: []string{"v1"}, Resources: []string{"deployments"}},
			}},
			ObjectSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"bench": name}},
			SideEffects:    &none,
		}
	}
	cfg := &admissionregistrationv1.MutatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: "sluice-bench-floors"},
		Webhooks:   []admissionregistrationv1.MutatingWebhook{floor("noop"), floor("patching")},
	}
	api := env.Clientset(b).AdmissionregistrationV1().MutatingWebhookConfigurations()
	if _, err := api.Create(b.Context(), cfg, metav1.CreateOptions{}); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = api.Delete(context.Background(), cfg.Name, metav1.DeleteOptions{}) })
}

func createForBench(b *testing.B, cs kubernetes.Interface, ns, name string, annotations, objectLabels map[string]string) *appsv1.Deployment {
	b.Helper()
	labels := map[string]string{"app": name}
	dep, err := cs.AppsV1().Deployments(ns).Create(b.Context(), &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Annotations: annotations, Labels: objectLabels},
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
