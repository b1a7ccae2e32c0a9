package shifter_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"sluice.dev/sluice/pkg/canary"
	"sluice.dev/sluice/pkg/routing"
	"sluice.dev/sluice/pkg/routing/routers"
	"sluice.dev/sluice/test/cluster"
	meshsimpkg "sluice.dev/sluice/test/meshsim/mesh"
	"sluice.dev/sluice/test/meshsim/telemetry"
	"sluice.dev/sluice/test/sluice"
)

// The release styles' tests send requests through the mesh simulator,
// which routes each by the live routes that sluice writes, and check which
// version answered. The analysis itself judges the telemetry exporter's
// steady canary traffic, as in the other tests.

// styledManifest is manifest on router rt with the annotations of a
// release style.
func styledManifest(rt routing.Router, style ...string) func(image string) string {
	annotations := sluice.QuickSettings(append([]string{"sluice.dev/progress-deadline: 1m", "sluice.dev/router: " + rt.Name()}, style...)...)
	// A style's own setting replaces the quick one of the same key.
	key := func(line string) string { k, _, _ := strings.Cut(line, ":"); return k }
	annotations = slices.DeleteFunc(annotations, func(line string) bool {
		return !slices.Contains(style, line) && slices.ContainsFunc(style, func(l string) bool { return key(l) == key(line) })
	})
	return func(image string) string {
		return sluice.App{Name: app, Image: image, Replicas: 2, Container: sluice.Port8080, Annotations: annotations}.YAML()
	}
}

// entry is the mesh simulator's entry for the Deployment of one namespace.
type entry struct {
	*meshsimpkg.Server
	// host is the Deployment's Service by its full name: its short name
	// is served in every test's namespace.
	host string
}

// meshsim starts the mesh simulator on the test cluster; it stops with the
// test, which, if it failed, shows the routes and the Canary the simulator
// saw.
func meshsim(t *testing.T, ns string) entry {
	t.Helper()
	t.Cleanup(func() {
		if t.Failed() {
			out, _ := env.Kubectl(context.Background(), "get", "virtualservices,httproutes,canaries", "-n", ns, "-o", "yaml").CombinedOutput()
			t.Logf("the routes and the Canary:\n%s", out)
		}
	})
	s, err := meshsimpkg.Start(t.Context(), env.AdminConfig(), meshsimpkg.Options{Listen: "127.0.0.1:0", MetricsListen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	return entry{Server: s, host: app + "." + ns + ".svc.cluster.local"}
}

// request sends one request for the Deployment's host through s, with header
// (name: value lines), and returns the workload that answered.
func request(t *testing.T, s entry, c *http.Client, header ...string) string {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, "http://"+s.Addr+"/", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = s.host
	for _, h := range header {
		name, value, _ := strings.Cut(h, ": ")
		req.Header.Add(name, value)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	_, workload, _ := strings.Cut(resp.Header.Get(meshsimpkg.HeaderWorkload), "/")
	return workload
}

// held pauses the rollout in ns where it is, so that a burst of requests
// falls inside one stage whatever the machine's load, and returns how to
// resume it.
func held(t *testing.T, c client.Client, ns string) (resume func()) {
	t.Helper()
	cr := &canary.Canary{}
	if err := c.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: app}, cr); err != nil {
		t.Fatal(err)
	}
	rev := cr.Status.CanaryRevision
	pause, _ := ask(t, c, ns, canary.ActionPause, rev)
	observed(t, c, ns, pause, canary.IntentApplied)
	return func() {
		resume, _ := ask(t, c, ns, canary.ActionResume, rev)
		observed(t, c, ns, resume, canary.IntentApplied)
	}
}

// tally sends n requests and counts who answered.
func tally(t *testing.T, s entry, c *http.Client, n int, header ...string) map[string]int {
	t.Helper()
	got := map[string]int{}
	for range n {
		got[request(t, s, c, header...)]++
	}
	return got
}

// TestABTestRoutesOnlyTheMatchingRequests: during an A/B test every request
// with the header, and every one with the cookie, is answered by the
// canary, and every other one by the primary; after the promotion all go to
// the primary, which runs the new version.
func TestABTestRoutesOnlyTheMatchingRequests(t *testing.T) {
	for _, rt := range routers.All() {
		t.Run(rt.Name(), func(t *testing.T) {
			manifest := styledManifest(rt, `sluice.dev/match-headers: "x-canary=insider"`,
				`sluice.dev/match-cookie: "canary=always"`, `sluice.dev/iterations: "10"`)
			ns, c := initialized(t, manifest, telemetry.Behaviour{Latency: 20 * time.Millisecond})
			s := meshsim(t, ns)
			kubectlApply(t, ns, manifest("example.com/web:v2"))
			cluster.Eventually(t, time.Minute, "the A/B test routed", func(context.Context) error {
				if got := request(t, s, http.DefaultClient, "x-canary: insider"); got != app+"-canary" {
					return fmt.Errorf("a matching request answered by %q", got)
				}
				return nil
			})
			resume := held(t, c, ns)
			const n = 40
			for _, tc := range []struct {
				header []string
				want   string
			}{
				{[]string{"x-canary: insider"}, app + "-canary"},
				{[]string{"cookie: theme=dark; canary=always"}, app + "-canary"},
				{nil, app},
				{[]string{"x-canary: outsider"}, app},
				{[]string{"cookie: canary=never"}, app},
			} {
				if got := tally(t, s, http.DefaultClient, n, tc.header...); got[tc.want] != n {
					t.Errorf("%d requests with %q answered by %v; want all by %s", n, tc.header, got, tc.want)
				}
			}
			resume()
			cr := waitPhase(t, c, ns, canary.PhaseSucceeded, 2*time.Minute)
			if cr.Status.Iterations != 9 {
				t.Errorf("iterations passed %d; want 9 before the promotion of the tenth", cr.Status.Iterations)
			}
			cluster.Eventually(t, 10*time.Second, "all requests to the primary", func(context.Context) error {
				if got := tally(t, s, http.DefaultClient, 10, "x-canary: insider"); got[app] != 10 {
					return fmt.Errorf("matching requests after the promotion answered by %v", got)
				}
				return nil
			})
		})
	}
}

// TestMirrorCopiesTrafficWhileThePrimaryAnswers: while the canary gets a
// mirrored copy of half the requests, every client is answered by the
// primary, and the canary's telemetry counts about half of them.
func TestMirrorCopiesTrafficWhileThePrimaryAnswers(t *testing.T) {
	for _, rt := range routers.All() {
		t.Run(rt.Name(), func(t *testing.T) {
			manifest := styledManifest(rt, `sluice.dev/mirror: "true"`, `sluice.dev/mirror-percent: "50"`, `sluice.dev/iterations: "10"`)
			ns, c := initialized(t, manifest, telemetry.Behaviour{Latency: 20 * time.Millisecond})
			s := meshsim(t, ns)
			kubectlApply(t, ns, manifest("example.com/web:v2"))
			cluster.Eventually(t, time.Minute, "the mirror routed", func(context.Context) error {
				if mirrored(t, s, ns) == 0 {
					request(t, s, http.DefaultClient)
					return fmt.Errorf("no request mirrored to the canary yet")
				}
				return nil
			})
			resume := held(t, c, ns)
			const n = 400
			before := mirrored(t, s, ns)
			if got := tally(t, s, http.DefaultClient, n); got[app] != n {
				t.Errorf("%d requests answered by %v; want all by the primary %s", n, got, app)
			}
			// Binomial(400, 0.5): mean 200, sd 10; 6 sd either side.
			if got := mirrored(t, s, ns) - before; got < 140 || got > 260 {
				t.Errorf("the canary's telemetry counted %v of %d requests; want about half", got, n)
			}
			resume()
			if cr := waitPhase(t, c, ns, canary.PhaseSucceeded, 2*time.Minute); cr.Status.Iterations != 10 {
				t.Errorf("mirrored iterations %d; want 10 before the weights", cr.Status.Iterations)
			}
		})
	}
}

// mirrored is the number of requests the canary's workload answered, by
// the simulator's telemetry.
func mirrored(t *testing.T, s entry, ns string) float64 {
	t.Helper()
	resp, err := http.Get("http://" + s.MetricsAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	total := 0.0
	for _, m := range families["istio_requests_total"].GetMetric() {
		labels := model.LabelSet{}
		for _, l := range m.GetLabel() {
			labels[model.LabelName(l.GetName())] = model.LabelValue(l.GetValue())
		}
		if labels["destination_workload"] == app+"-canary" && labels["destination_workload_namespace"] == model.LabelValue(ns) {
			total += m.GetCounter().GetValue()
		}
	}
	return total
}

// TestSessionCookieKeepsAClientOnTheCanary: a client that got the canary
// once (and its cookie) gets it for every later request of the rollout,
// while a client without cookies gets both versions by weight; after the
// promotion, the cookie sends nobody to a canary.
func TestSessionCookieKeepsAClientOnTheCanary(t *testing.T) {
	for _, rt := range routers.All() {
		t.Run(rt.Name(), func(t *testing.T) {
			manifest := styledManifest(rt, `sluice.dev/session-cookie: "sluice-canary"`, "sluice.dev/interval: 5s")
			ns, c := initialized(t, manifest, telemetry.Behaviour{Latency: 20 * time.Millisecond})
			s := meshsim(t, ns)
			jar, err := cookiejar.New(nil)
			if err != nil {
				t.Fatal(err)
			}
			sticky := &http.Client{Jar: jar}
			kubectlApply(t, ns, manifest("example.com/web:v2"))
			cluster.Eventually(t, time.Minute, "the client got the canary once", func(context.Context) error {
				if got := request(t, s, sticky); got != app+"-canary" {
					return fmt.Errorf("answered by %q", got)
				}
				return nil
			})
			resume := held(t, c, ns)
			const n = 60
			if got := tally(t, s, sticky, n); got[app+"-canary"] != n {
				t.Errorf("the client with the cookie: %d requests answered by %v; want all by the canary", n, got)
			}
			// At canary weight 20 or more, 60 requests without the cookie all
			// going one way has a chance below 1e-5.
			if got := tally(t, s, &http.Client{}, n); got[app] == 0 || got[app+"-canary"] == 0 {
				t.Errorf("clients without cookies: %d requests answered by %v; want both versions", n, got)
			}
			resume()
			waitPhase(t, c, ns, canary.PhaseSucceeded, 2*time.Minute)
			cluster.Eventually(t, 10*time.Second, "the cookie holder back on the primary", func(context.Context) error {
				if got := tally(t, s, sticky, 10); got[app] != 10 {
					return fmt.Errorf("answered by %v", got)
				}
				return nil
			})
		})
	}
}
