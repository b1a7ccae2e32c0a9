package mesh_test

import (
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
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
	return workloads(canaryEnv) + fmt.Sprintf(`apiVersion: networking.istio.io/v1
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

// workloads are the primary Deployment web, answering "hello, primary"
// after 3ms, and web-canary, answering as canaryEnv says, with their
// Services web-primary and web-canary, and no route to them.
func workloads(canaryEnv string) string {
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
		deployment("web-canary", canaryEnv)
}

func apply(t *testing.T, ns, yaml string) {
	t.Helper()
	cmd := env.Kubectl(t.Context(), "apply", "-n", ns, "-f", "-")
	cmd.Stdin = strings.NewReader(yaml)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("kubectl apply: %v\n%s", err, out)
	}
}

func startMesh(t *testing.T, rps int, clients ...mesh.Client) *mesh.Server {
	t.Helper()
	s, err := mesh.Start(t.Context(), env.AdminConfig(), mesh.Options{Listen: "127.0.0.1:0", MetricsListen: "127.0.0.1:0", RPS: rps, Clients: clients})
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

// reply is what a client of the mesh sees of one answer.
type reply struct {
	code      int
	workload  string // the namespace/name of the Deployment that answered
	setCookie string
}

// send sends one request for host through c with the header lines
// "Name: value".
func send(t *testing.T, s *mesh.Server, c *http.Client, host string, lines ...string) reply {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, "http://"+s.Addr+"/", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = host
	for _, l := range lines {
		name, value, _ := strings.Cut(l, ": ")
		req.Header.Add(name, value)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		t.Fatal(err)
	}
	return reply{code: resp.StatusCode, workload: resp.Header.Get(mesh.HeaderWorkload), setCookie: resp.Header.Get("Set-Cookie")}
}

// answeredBy counts the answers of n requests by the workload that gave
// them.
func answeredBy(t *testing.T, s *mesh.Server, c *http.Client, n int, host string, lines ...string) map[string]int {
	t.Helper()
	out := map[string]int{}
	for range n {
		r := send(t, s, c, host, lines...)
		if r.code != http.StatusOK {
			t.Fatalf("answer %d from %q", r.code, r.workload)
		}
		out[r.workload]++
	}
	return out
}

// waitAnswering waits until each of want has answered one of a few hundred
// requests for host: the workloads are ready and the route is in the
// mesh's cache.
func waitAnswering(t *testing.T, s *mesh.Server, host string, want ...string) {
	t.Helper()
	cluster.Eventually(t, 30*time.Second, "answers from "+strings.Join(want, " and "), func(context.Context) error {
		seen := map[string]bool{}
		for range 200 {
			seen[send(t, s, http.DefaultClient, host).workload] = true
		}
		for _, w := range want {
			if !seen[w] {
				return fmt.Errorf("answers from %v lack %q", seen, w)
			}
		}
		return nil
	})
}

// withinBinomial fails t unless hits of n is within four standard
// deviations of share p: a false alarm once in about 16,000 runs.
func withinBinomial(t *testing.T, what string, hits, n int, p float64) {
	t.Helper()
	share, bound := float64(hits)/float64(n), 4*math.Sqrt(p*(1-p)/float64(n))
	if math.Abs(share-p) > bound {
		t.Errorf("%s: share %.3f of %d; want %.3f ± %.3f", what, share, n, p, bound)
	}
}

const canaryHello = `{name: MESSAGE, value: "hello, canary"}`

// httpRoute is a GAMMA route, attached to the Service web, that sends
// canaryWeight percent of its traffic to the canary.
func httpRouteWeights(canaryWeight int) string {
	return fmt.Sprintf(`apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata:
  name: web
spec:
  parentRefs: [{group: "", kind: Service, name: web, port: 80}]
  rules:
    - backendRefs:
        - {name: web-primary, port: 80, weight: %d}
        - {name: web-canary, port: 80, weight: %d}
`, 100-canaryWeight, canaryWeight)
}

// TestHTTPRouteWeights: an HTTPRoute attached to a Service routes that
// Service's traffic by its weights, and a weight change takes effect
// without a restart.
func TestHTTPRouteWeights(t *testing.T) {
	ns := env.NewNamespace(t)
	s := startMesh(t, 0)
	apply(t, ns, workloads(canaryHello)+httpRouteWeights(20))
	host := "web." + ns + ".svc.cluster.local"
	primary, canary := ns+"/web", ns+"/web-canary"
	waitAnswering(t, s, host, primary, canary)

	const n = 2000
	got := answeredBy(t, s, http.DefaultClient, n, host)
	if got[primary]+got[canary] != n {
		t.Fatalf("answers by workload %v; want only %s and %s", got, primary, canary)
	}
	withinBinomial(t, "canary", got[canary], n, 0.2)

	apply(t, ns, httpRouteWeights(100))
	cluster.Eventually(t, 10*time.Second, "all traffic to the canary", func(context.Context) error {
		if got := answeredBy(t, s, http.DefaultClient, 100, host); got[canary] != 100 {
			return fmt.Errorf("answers by workload %v", got)
		}
		return nil
	})
}

// TestHeaderAndCookieMatches: a rule that matches a header, or a cookie by
// a regex, takes every matching request to the canary and none of the
// others, whichever API says so.
func TestHeaderAndCookieMatches(t *testing.T) {
	for _, kind := range []struct{ name, route string }{{"VirtualService", `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: web
spec:
  hosts: [web.%[1]s.example.com]
  http:
    - match: [{headers: {x-canary: {exact: insider}}}]
      route: [{destination: {host: web-canary}}]
    - match: [{headers: {cookie: {regex: "^(.*?;\\s*)?canary=always(;.*)?$"}}}]
      route: [{destination: {host: web-canary}}]
    - route:
        - {destination: {host: web-primary}, weight: 100}
        - {destination: {host: web-canary}, weight: 0}
`}, {"HTTPRoute", `apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata:
  name: web
spec:
  hostnames: [web.%[1]s.example.com]
  rules:
    - backendRefs: [{name: web-primary, port: 80}]
    - matches:
        - headers: [{name: x-canary, value: insider}]
        - headers: [{name: cookie, type: RegularExpression, value: "(.*?;\\s*)?canary=always(;.*)?"}]
      backendRefs: [{name: web-canary, port: 80}]
`}} {
		t.Run(kind.name, func(t *testing.T) {
			ns := env.NewNamespace(t)
			s := startMesh(t, 0)
			apply(t, ns, workloads(canaryHello)+fmt.Sprintf(kind.route, ns))
			host := "web." + ns + ".example.com"
			primary, canary := ns+"/web", ns+"/web-canary"
			cluster.Eventually(t, 30*time.Second, "the canary answers an insider, the primary the others", func(context.Context) error {
				if r := send(t, s, http.DefaultClient, host, "X-Canary: insider"); r.workload != canary {
					return fmt.Errorf("an insider's answer %d from %q", r.code, r.workload)
				}
				if r := send(t, s, http.DefaultClient, host); r.workload != primary {
					return fmt.Errorf("answer %d from %q", r.code, r.workload)
				}
				return nil
			})
			for _, tc := range []struct {
				name   string
				header []string
				want   string
			}{
				{"the header", []string{"X-Canary: insider"}, canary},
				{"the header of another value", []string{"X-Canary: outsider"}, primary},
				{"no header", nil, primary},
				{"the cookie among others", []string{"Cookie: session=1; canary=always; theme=dark"}, canary},
				{"the cookie alone", []string{"Cookie: canary=always"}, canary},
				{"the cookie of another value", []string{"Cookie: canary=alwaysnot"}, primary},
				{"a cookie of another name", []string{"Cookie: nocanary=always"}, primary},
			} {
				if got := answeredBy(t, s, http.DefaultClient, 100, host, tc.header...); got[tc.want] != 100 {
					t.Errorf("%s: answers by workload %v; want all 100 from %s", tc.name, got, tc.want)
				}
			}
		})
	}
}

// TestMirror: at weight 0 with a mirror, every client gets the primary's
// answer while the canary answers, to no one, about the mirror's share of
// the requests, which its telemetry counts.
func TestMirror(t *testing.T) {
	for _, kind := range []struct{ name, route string }{{"VirtualService", `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: web
spec:
  hosts: [web.%[1]s.example.com]
  http:
    - route:
        - {destination: {host: web-primary}, weight: 100}
        - {destination: {host: web-canary}, weight: 0}
      mirror: {host: web-canary.%[1]s.svc.cluster.local}
      mirrorPercentage: {value: 25}
`}, {"HTTPRoute", `apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata:
  name: web
spec:
  hostnames: [web.%[1]s.example.com]
  rules:
    - filters:
        - type: RequestMirror
          requestMirror: {backendRef: {name: web-canary, port: 80}, fraction: {numerator: 1, denominator: 4}}
      backendRefs:
        - {name: web-primary, port: 80, weight: 100}
        - {name: web-canary, port: 80, weight: 0}
`}} {
		t.Run(kind.name, func(t *testing.T) {
			ns := env.NewNamespace(t)
			s := startMesh(t, 0)
			apply(t, ns, workloads(canaryHello)+fmt.Sprintf(kind.route, ns))
			host := "web." + ns + ".example.com"
			cluster.Eventually(t, 30*time.Second, "the primary answers and the canary gets mirrored requests", func(context.Context) error {
				for range 20 {
					if r := send(t, s, http.DefaultClient, host); r.workload != ns+"/web" {
						return fmt.Errorf("answer %d from %q", r.code, r.workload)
					}
				}
				if got := meshRequests(t, s.MetricsAddr, ns); got["web-canary 200"] == 0 {
					return fmt.Errorf("requests by workload and code %v", got)
				}
				return nil
			})

			before := meshRequests(t, s.MetricsAddr, ns)
			const n = 2000
			if got := answeredBy(t, s, http.DefaultClient, n, host); got[ns+"/web"] != n {
				t.Errorf("answers by workload %v; want all %d from the primary", got, n)
			}
			after := meshRequests(t, s.MetricsAddr, ns)
			if got := after["web 200"] - before["web 200"]; got != n {
				t.Errorf("the primary's telemetry counted %g requests; want %d", got, n)
			}
			withinBinomial(t, "mirrored to the canary", int(after["web-canary 200"]-before["web-canary 200"]), n, 0.25)
		})
	}
}

// TestStickySession: the canary's answers set a cookie, and a rule that
// matches it keeps a client that holds it on the canary; the primary's
// answers set none.
func TestStickySession(t *testing.T) {
	for _, kind := range []struct{ name, route string }{{"VirtualService", `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: web
spec:
  hosts: [web.%[1]s.example.com]
  http:
    - match: [{headers: {cookie: {regex: "^(.*?;\\s*)?sluice-canary=r2(;.*)?$"}}}]
      route: [{destination: {host: web-canary}}]
    - route:
        - destination: {host: web-primary}
          weight: 50
        - destination: {host: web-canary}
          weight: 50
          headers: {response: {set: {set-cookie: "sluice-canary=r2; Path=/; Max-Age=3600"}}}
`}, {"HTTPRoute", `apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata:
  name: web
spec:
  hostnames: [web.%[1]s.example.com]
  rules:
    - matches: [{headers: [{name: cookie, type: RegularExpression, value: "(.*?;\\s*)?sluice-canary=r2(;.*)?"}]}]
      backendRefs: [{name: web-canary, port: 80}]
    - backendRefs:
        - {name: web-primary, port: 80, weight: 50}
        - name: web-canary
          port: 80
          weight: 50
          filters:
            - type: ResponseHeaderModifier
              responseHeaderModifier: {set: [{name: Set-Cookie, value: "sluice-canary=r2; Path=/; Max-Age=3600"}]}
`}} {
		t.Run(kind.name, func(t *testing.T) {
			ns := env.NewNamespace(t)
			s := startMesh(t, 0)
			apply(t, ns, workloads(canaryHello)+fmt.Sprintf(kind.route, ns))
			host := "web." + ns + ".example.com"
			primary, canary := ns+"/web", ns+"/web-canary"
			waitAnswering(t, s, host, primary, canary)

			jar, err := cookiejar.New(nil)
			if err != nil {
				t.Fatal(err)
			}
			sticky := &http.Client{Jar: jar}
			// Half the answers are the canary's: 60 tries miss it once in 10^18.
			for i := 0; ; i++ {
				r := send(t, s, sticky, host)
				if r.workload == canary {
					break
				}
				if r.setCookie != "" {
					t.Fatalf("the primary set a cookie: %q", r.setCookie)
				}
				if i == 60 {
					t.Fatal("no answer from the canary in 60 requests")
				}
			}
			// A client keeps cookies by the Host it asked for.
			u := &url.URL{Scheme: "http", Host: host, Path: "/"}
			if cookies := jar.Cookies(u); len(cookies) != 1 || cookies[0].String() != "sluice-canary=r2" {
				t.Fatalf("the client holds cookies %v; want sluice-canary=r2", cookies)
			}
			if got := answeredBy(t, s, sticky, 200, host); got[canary] != 200 {
				t.Errorf("answers to the client with the cookie by workload %v; want all 200 from %s", got, canary)
			}
		})
	}
}

// TestBackgroundLoadClients: the background load goes through an
// HTTPRoute too, and a client's share of it carries the client's header,
// which the route's match sends to the canary.
func TestBackgroundLoadClients(t *testing.T) {
	ns := env.NewNamespace(t)
	s := startMesh(t, 100, mesh.Client{Share: 0.2, Header: http.Header{"X-Canary": {"insider"}}})
	apply(t, ns, workloads(canaryHello)+`apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata:
  name: web
spec:
  parentRefs: [{group: "", kind: Service, name: web, port: 80}]
  rules:
    - backendRefs: [{name: web-primary, port: 80}]
    - matches: [{headers: [{name: x-canary, value: insider}]}]
      backendRefs: [{name: web-canary, port: 80}]
`)
	// Counted from when both workloads answer, since until then the
	// requests of one count and the other's do not; and until the count is
	// large enough for a binomial bound of ±0.065.
	var base map[string]float64
	cluster.Eventually(t, 30*time.Second, "background requests to both workloads", func(context.Context) error {
		base = meshRequests(t, s.MetricsAddr, ns)
		if base["web 200"] == 0 || base["web-canary 200"] == 0 {
			return fmt.Errorf("requests by workload and code %v", base)
		}
		return nil
	})
	const enough = 600
	var primary, canary int
	cluster.Eventually(t, 60*time.Second, fmt.Sprintf("%d more background requests", enough), func(context.Context) error {
		got := meshRequests(t, s.MetricsAddr, ns)
		primary, canary = int(got["web 200"]-base["web 200"]), int(got["web-canary 200"]-base["web-canary 200"])
		if primary+canary < enough {
			return fmt.Errorf("%d requests to the primary and %d to the canary", primary, canary)
		}
		return nil
	})
	withinBinomial(t, "background requests of the insider", canary, primary+canary, 0.2)
}

// TestWithoutHTTPRoutes: discovery tells whether the API server serves a
// resource; and a cache that does not watch HTTPRoutes, as where the
// Gateway API is not installed, routes by VirtualServices as before and
// answers a host only an HTTPRoute serves with a 404, not an error.
func TestWithoutHTTPRoutes(t *testing.T) {
	for _, tc := range []struct {
		groupVersion, resource string
		want                   bool
	}{
		{"gateway.networking.k8s.io/v1", "httproutes", true},
		{"gateway.networking.k8s.io/v1", "nonesuches", false},
		{"nonesuch.example.com/v1", "httproutes", false},
	} {
		if got, err := mesh.Serves(env.AdminConfig(), tc.groupVersion, tc.resource); err != nil || got != tc.want {
			t.Errorf("serves %s %s: %v, %v; want %v", tc.groupVersion, tc.resource, got, err, tc.want)
		}
	}

	ns := env.NewNamespace(t)
	c, err := mesh.NewCacheWithHTTPRoutes(t.Context(), env.AdminConfig(), false)
	if err != nil {
		t.Fatal(err)
	}
	m := mesh.New(c, telemetry.New(prometheus.NewRegistry()))
	apply(t, ns, app(ns, 0, canaryHello)+`---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata:
  name: api
spec:
  hostnames: [api.`+ns+`.example.com]
  rules: [{backendRefs: [{name: web-canary, port: 80}]}]
`)
	cluster.Eventually(t, 30*time.Second, "the VirtualService routes", func(ctx context.Context) error {
		a, err := m.Route(ctx, mesh.Request{Host: "web." + ns + ".example.com"})
		if err != nil || a.Workload != "web" {
			return fmt.Errorf("answer %+v, %v", a, err)
		}
		return nil
	})
	if a, err := m.Route(t.Context(), mesh.Request{Host: "api." + ns + ".example.com"}); err != nil || a.Code != http.StatusNotFound {
		t.Errorf("a host only an HTTPRoute serves: %+v, %v; want 404", a, err)
	}
}
