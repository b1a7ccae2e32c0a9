package mesh

import (
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	istiov1 "istio.io/client-go/pkg/apis/networking/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	"sluice.dev/sluice/test/meshsim/telemetry"
)

// These tests route through a fake API client: which route object serves a
// host, and what an answer carries, with no cluster.

// workloadObjects are a ready Deployment and its Service per name, in
// namespace shop.
func workloadObjects(names ...string) []client.Object {
	var out []client.Object
	for _, name := range names {
		labels := map[string]string{"app": name}
		out = append(out,
			&corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "shop"}, Spec: corev1.ServiceSpec{Selector: labels}},
			&appsv1.Deployment{
				ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "shop"},
				Spec: appsv1.DeploymentSpec{Template: corev1.PodTemplateSpec{
					ObjectMeta: metav1.ObjectMeta{Labels: labels},
					Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Env: []corev1.EnvVar{{Name: EnvMessage, Value: "hello, " + name}}}}},
				}},
				Status: appsv1.DeploymentStatus{ReadyReplicas: 1},
			})
	}
	return out
}

// fakeMesh is a Mesh over objs, with the Gateway API in its scheme or not,
// and the registry of its telemetry.
func fakeMesh(t *testing.T, gatewayAPI bool, objs ...client.Object) (*Mesh, *prometheus.Registry) {
	t.Helper()
	scheme := runtime.NewScheme()
	adds := []func(*runtime.Scheme) error{clientgoscheme.AddToScheme, istiov1.AddToScheme}
	if gatewayAPI {
		adds = append(adds, gatewayv1.Install)
	}
	for _, add := range adds {
		if err := add(scheme); err != nil {
			t.Fatal(err)
		}
	}
	reg := prometheus.NewRegistry()
	return New(fake.NewClientBuilder().WithScheme(scheme).WithObjects(objs...).Build(), telemetry.New(reg)), reg
}

// requestsOf counts the requests each workload's telemetry has recorded.
func requestsOf(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, f := range families {
		if f.GetName() != "istio_requests_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "destination_workload" {
					out[l.GetValue()] += m.GetCounter().GetValue()
				}
			}
		}
	}
	return out
}

func routeObjects(t *testing.T) []client.Object {
	both := virtualService(t, `
hosts: [web.shop.example.com]
http: [{route: [{destination: {host: web-primary}}]}]`)
	shadowed := httpRoute(t, "shadowed", `
hostnames: [web.shop.example.com]
rules: [{backendRefs: [{name: web-canary, port: 80}]}]`)
	api := httpRoute(t, "api", `
hostnames: [api.shop.example.com]
rules:
  - filters: [{type: RequestMirror, requestMirror: {backendRef: {name: web-primary, port: 80}}}]
    backendRefs:
      - name: web-canary
        port: 80
        filters: [{type: ResponseHeaderModifier, responseHeaderModifier: {set: [{name: Set-Cookie, value: canary=r2}]}}]`)
	return append(workloadObjects("web-primary", "web-canary"), both, shadowed, api)
}

func TestRouteByHost(t *testing.T) {
	m, reg := fakeMesh(t, true, routeObjects(t)...)
	for _, tc := range []struct {
		host, workload string
		code           int
		cookie         string
	}{
		{"web.shop.example.com", "web-primary", http.StatusOK, ""},
		{"api.shop.example.com", "web-canary", http.StatusOK, "canary=r2"},
		{"nowhere.example.com", "", http.StatusNotFound, ""},
	} {
		a, err := m.Route(t.Context(), Request{Host: tc.host})
		if err != nil {
			t.Fatal(err)
		}
		if a.Workload != tc.workload || a.Code != tc.code || a.Header.Get("Set-Cookie") != tc.cookie {
			t.Errorf("%s: answer %+v; want %d from %q with cookie %q", tc.host, a, tc.code, tc.workload, tc.cookie)
		}
	}
	// The VirtualService's answer and the mirrored copy of the HTTPRoute's.
	if got := requestsOf(t, reg); got["web-primary"] != 2 || got["web-canary"] != 1 {
		t.Errorf("requests by workload %v; want 2 for web-primary (one mirrored) and 1 for web-canary", got)
	}

	streams, err := m.streams(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var hosts []string
	for _, s := range streams {
		hosts = append(hosts, s.host)
	}
	if want := []string{"web.shop.example.com", "api.shop.example.com"}; !slices.Equal(hosts, want) {
		t.Errorf("background load goes through %v; want %v, and not the HTTPRoute the VirtualService hides", hosts, want)
	}
}

// TestRouteWithoutGatewayAPI: where the Gateway API is not served, the
// VirtualServices route as before and nothing fails.
func TestRouteWithoutGatewayAPI(t *testing.T) {
	var objs []client.Object
	for _, o := range routeObjects(t) {
		if _, ok := o.(*gatewayv1.HTTPRoute); !ok {
			objs = append(objs, o)
		}
	}
	m, _ := fakeMesh(t, false, objs...)
	for host, want := range map[string]int{"web.shop.example.com": http.StatusOK, "api.shop.example.com": http.StatusNotFound} {
		if a, err := m.Route(t.Context(), Request{Host: host}); err != nil || a.Code != want {
			t.Errorf("%s: %+v, %v; want %d", host, a, err, want)
		}
	}
	if _, err := m.streams(t.Context()); err != nil {
		t.Errorf("streams: %v", err)
	}
}

// TestServeHTTPWritesRouteHeaders: the destination's response headers reach
// the client, with the workload that answered.
func TestServeHTTPWritesRouteHeaders(t *testing.T) {
	m, _ := fakeMesh(t, true, routeObjects(t)...)
	req := httptest.NewRequest(http.MethodGet, "http://api.shop.example.com:8000/", nil)
	rec := httptest.NewRecorder()
	m.ServeHTTP(rec, req)
	h := rec.Result().Header
	if rec.Code != http.StatusOK || h.Get("Set-Cookie") != "canary=r2" || h.Get(HeaderWorkload) != "shop/web-canary" ||
		rec.Body.String() != "hello, web-canary\n" {
		t.Errorf("answer %d %v %q; want 200 from shop/web-canary with its cookie", rec.Code, h, rec.Body)
	}
}
