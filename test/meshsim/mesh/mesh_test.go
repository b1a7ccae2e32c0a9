package mesh_test

import (
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"sluice.dev/sluice/test/cluster"
	"sluice.dev/sluice/test/meshsim/mesh"
	"sluice.dev/sluice/test/meshsim/telemetry"
	"sluice.dev/sluice/test/sluice"
)

var env *cluster.Cluster

func TestMain(m *testing.M) {
	ctrllog.SetLogger(logr.Discard())
	os.Exit(cluster.RunTests(m, &env))
}

// app is a primary and a canary Deployment with their Services and a
// VirtualService that sends canaryWeight percent to the canary.
func app(ns string, canaryWeight int, canaryEnv string) string {
	deployment := func(name, env string) string {
		return fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata:
  name: %[1]s
spec:
  replicas: 1
  selector:
    matchLabels: {app: %[1]s}
  template:
    metadata:
      labels: {app: %[1]s}
    spec:
      containers:
        - name: app
          image: example.com/app
          env: [%[2]s]
---
apiVersion: v1
kind: Service
metadata:
  name: %[1]s%[3]s
spec:
  selector: {app: %[1]s}
  ports: [{port: 80}]
---
`, name, env, map[bool]string{true: "", false: "-primary"}[strings.HasSuffix(name, "-canary")])
	}
	return deployment("web", `{name: MESSAGE, value: "hello, primary"}, {name: LATENCY_MS, value: "3"}`) +
		deployment("web-canary", canaryEnv) + fmt.Sprintf(`apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: web
spec:
  hosts: [web, web.%[1]s.example.com]
  http:
    - route:
        - destination: {host: web-primary.%[1]s.svc.cluster.local}
          weight: %[2]d
        - destination: {host: web-canary.%[1]s.svc.cluster.local}
          weight: %[3]d
`, ns, 100-canaryWeight, canaryWeight)
}

func apply(t *testing.T, ns, yaml string) {
	t.Helper()
	cmd := env.Kubectl(t.Context(), "apply", "-n", ns, "-f", "-")
	cmd.Stdin = strings.NewReader(yaml)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("kubectl apply: %v\n%s", err, out)
	}
}

func startMesh(t *testing.T, rps int) *mesh.Server {
	t.Helper()
	s, err := mesh.Start(t.Context(), env.AdminConfig(), mesh.Options{Listen: "127.0.0.1:0", MetricsListen: "127.0.0.1:0", RPS: rps})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	return s
}

// get sends one request for host and returns the answer's status and body.
func get(t *testing.T, s *mesh.Server, host string) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, "http://"+s.Addr+"/", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = host
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, strings.TrimSpace(string(body))
}

// waitServing waits until both workloads are ready and routed.
func waitServing(t *testing.T, s *mesh.Server, host string, want ...string) {
	t.Helper()
	cluster.Eventually(t, 30*time.Second, "both versions answer", func(context.Context) error {
		seen := map[string]bool{}
		for range 200 {
			_, body := get(t, s, host)
			seen[body] = true
		}
		for _, w := range want {
			if !seen[w] {
				return fmt.Errorf("answers %v lack %q", seen, w)
			}
		}
		return nil
	})
}

// TestWeightsAreHonoured sends a few thousand requests through a 70/30
// route and checks the canary's share against the binomial bound; then a
// weight change takes effect without a restart.
func TestWeightsAreHonoured(t *testing.T) {
	ns := env.NewNamespace(t)
	s := startMesh(t, 0)
	apply(t, ns, app(ns, 30, `{name: MESSAGE, value: "hello, canary"}`))
	host := "web." + ns + ".example.com"
	waitServing(t, s, host, "hello, primary", "hello, canary")

	const n = 4000
	canary := 0
	for range n {
		code, body := get(t, s, host)
		if code != http.StatusOK {
			t.Fatalf("answer %d %q", code, body)
		}
		if body == "hello, canary" {
			canary++
		}
	}
	// Four standard deviations: a false alarm once in about 16,000 runs.
	share, bound := float64(canary)/n, 4*math.Sqrt(0.3*0.7/n)
	if math.Abs(share-0.3) > bound {
		t.Errorf("canary share %.3f over %d requests; want 0.30 ± %.3f", share, n, bound)
	}

	apply(t, ns, app(ns, 100, `{name: MESSAGE, value: "hello, canary"}`))
	cluster.Eventually(t, 10*time.Second, "all traffic to the canary", func(context.Context) error {
		for range 100 {
			if _, body := get(t, s, host); body != "hello, canary" {
				return fmt.Errorf("answer %q", body)
			}
		}
		return nil
	})
	if code, body := get(t, s, "nowhere.example.com"); code != http.StatusNotFound {
		t.Errorf("a host no VirtualService serves: %d %q; want 404", code, body)
	}
}

// TestTelemetryAsIstioExportsIt checks the names, labels and buckets of the
// metrics, and that ERROR_RATE, LATENCY_MS and CHECKOUT_RATE show in them.
func TestTelemetryAsIstioExportsIt(t *testing.T) {
	ns := env.NewNamespace(t)
	s := startMesh(t, 0)
	apply(t, ns, app(ns, 50, `{name: MESSAGE, value: "hello, canary"}, {name: ERROR_RATE, value: "0.5"}, {name: LATENCY_MS, value: "120"}, {name: CHECKOUT_RATE, value: "1"}`))
	waitServing(t, s, "web."+ns+".example.com", "hello, primary", "simulated failure")

	families, err := sluice.Scrape("http://" + s.MetricsAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	counts := map[string]float64{} // by workload and code
	for _, m := range families["istio_requests_total"].GetMetric() {
		l := labels(m.GetLabel())
		if l["destination_workload_namespace"] != ns {
			continue
		}
		service := map[string]string{"web": "web-primary", "web-canary": "web-canary"}[l["destination_workload"]]
		if l["reporter"] != "destination" || l["destination_service_name"] != service ||
			l["destination_service"] != service+"."+ns+".svc.cluster.local" {
			t.Errorf("labels %v; want reporter destination and service %s", l, service)
		}
		counts[l["destination_workload"]+" "+l["response_code"]] += m.GetCounter().GetValue()
	}
	ok, failed := counts["web-canary 200"], counts["web-canary 500"]
	if failed == 0 || math.Abs(failed/(ok+failed)-0.5) > 0.2 || counts["web 500"] != 0 || counts["web 200"] == 0 {
		t.Errorf("requests by workload and code %v; want about half of the canary's failed, none of the primary's", counts)
	}
	checkouts := map[string]float64{}
	for _, m := range families["shop_checkouts_total"].GetMetric() {
		if l := labels(m.GetLabel()); l["namespace"] == ns {
			checkouts[l["workload"]] += m.GetCounter().GetValue()
		}
	}
	// Scraped after the requests: every successful request of the canary
	// checked out, and the primary, without CHECKOUT_RATE, never does.
	if checkouts["web-canary"] != ok || checkouts["web"] != 0 {
		t.Errorf("checkouts by workload %v; want %g for web-canary (its successful requests) and none for web", checkouts, ok)
	}
	for _, m := range families["istio_request_duration_milliseconds"].GetMetric() {
		l := labels(m.GetLabel())
		if l["destination_workload_namespace"] != ns {
			continue
		}
		h := m.GetHistogram()
		var bounds []float64
		for _, b := range h.GetBucket() {
			bounds = append(bounds, b.GetUpperBound())
		}
		if !slices.Equal(bounds, append(slices.Clone(telemetry.DurationBuckets), math.Inf(1))) {
			t.Errorf("buckets %v; want Istio's %v and +Inf", bounds, telemetry.DurationBuckets)
		}
		want := map[string]float64{"web": 3, "web-canary": 120}[l["destination_workload"]]
		if mean := h.GetSampleSum() / float64(h.GetSampleCount()); mean != want {
			t.Errorf("%s: mean duration %gms; want %gms", l["destination_workload"], mean, want)
		}
	}
}

// TestBackgroundLoad: with --rps, the simulator sends requests through every
// VirtualService by itself, and both destinations get their share.
func TestBackgroundLoad(t *testing.T) {
	ns := env.NewNamespace(t)
	s := startMesh(t, 50)
	apply(t, ns, app(ns, 50, `{name: MESSAGE, value: "hello, canary"}`))
	cluster.Eventually(t, 30*time.Second, "requests to both workloads", func(context.Context) error {
		families, err := sluice.Scrape("http://" + s.MetricsAddr + "/metrics")
		if err != nil {
			return err
		}
		counts := map[string]float64{}
		for _, m := range families["istio_requests_total"].GetMetric() {
			if l := labels(m.GetLabel()); l["destination_workload_namespace"] == ns {
				counts[l["destination_workload"]] += m.GetCounter().GetValue()
			}
		}
		if counts["web"] < 20 || counts["web-canary"] < 20 {
			return fmt.Errorf("requests by workload %v", counts)
		}
		return nil
	})
}

func labels[L interface {
	GetName() string
	GetValue() string
}](pairs []L) map[string]string {
	out := map[string]string{}
	for _, p := range pairs {
		out[p.GetName()] = p.GetValue()
	}
	return out
}
