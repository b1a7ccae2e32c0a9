package mesh_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"sluice.dev/sluice/pkg/canary"
	"sluice.dev/sluice/pkg/hooks"
	"sluice.dev/sluice/test/sluice"
)

// TestLoadTesterSendsTrafficThroughTheMesh: sluice-loadtester, called as a
// rollout webhook, sends its bounded load through the simulated mesh, which
// routes it by the VirtualService's weights and counts it as Istio would;
// it answers 200 while the answers are as expected and 500 when the canary
// fails them, and refuses a call that is not signed.
func TestLoadTesterSendsTrafficThroughTheMesh(t *testing.T) {
	ns := env.NewNamespace(t)
	s := startMesh(t, 0)
	host := "web." + ns + ".example.com"
	apply(t, ns, app(ns, 50, `{name: MESSAGE, value: "hello, canary"}`))
	waitServing(t, s, host, "hello, primary", "hello, canary")

	dir := t.TempDir()
	keyFile := filepath.Join(dir, "key")
	key := []byte("s3cret")
	if err := os.WriteFile(keyFile, key, 0o600); err != nil {
		t.Fatal(err)
	}
	lt, err := sluice.StartLoadTester(dir, "--signing-key-file="+keyFile)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(lt.Stop)

	call := func(id string, signed bool) (int, string) {
		t.Helper()
		body, err := json.Marshal(hooks.Payload{APIVersion: hooks.APIVersion, ID: id, Type: canary.HookRollout, Webhook: "load",
			Name: "web", Namespace: ns, Phase: canary.PhaseProgressing, Revision: "r2", CanaryWeight: 50, Time: time.Now(),
			Metadata: map[string]string{"url": "http://" + s.Addr + "/", "host": host, "rate": "100", "duration": "1s",
				"concurrency": "8", "maxErrorRate": "5"}})
		if err != nil {
			t.Fatal(err)
		}
		req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, lt.URL, bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set(hooks.HeaderDelivery, id)
		if signed {
			req.Header.Set(hooks.HeaderSignature, hooks.Sign(key, body, time.Now()))
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		answer, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(answer)
	}
	before := meshRequests(t, s.MetricsAddr, ns)
	if code, answer := call("healthy", true); code != http.StatusOK {
		t.Fatalf("a load against a healthy canary: %d %s; want 200", code, answer)
	}
	after := meshRequests(t, s.MetricsAddr, ns)
	canaryGot, primaryGot := after["web-canary 200"]-before["web-canary 200"], after["web 200"]-before["web 200"]
	if total := canaryGot + primaryGot; total < 90 || total > 110 || canaryGot < 20 || primaryGot < 20 {
		t.Errorf("the mesh counted %g canary and %g primary requests of a load of 100; want about 100, split about evenly", canaryGot, primaryGot)
	}

	apply(t, ns, app(ns, 50, `{name: MESSAGE, value: "hello, canary"}, {name: ERROR_RATE, value: "0.5"}`))
	waitServing(t, s, host, "hello, primary", "simulated failure")
	if code, answer := call("failing", true); code != http.StatusInternalServerError || !strings.Contains(answer, "500") {
		t.Errorf("a load against a canary that fails half its requests: %d %s; want 500, with the 500s counted", code, answer)
	}
	if code, answer := call("unsigned", false); code != http.StatusUnauthorized {
		t.Errorf("an unsigned call: %d %s; want 401", code, answer)
	}
}

// meshRequests counts the requests of ns that the mesh's telemetry at addr
// reports, by destination workload and response code.
func meshRequests(t *testing.T, addr, ns string) map[string]float64 {
	t.Helper()
	families, err := sluice.Scrape("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	counts := map[string]float64{}
	for _, m := range families["istio_requests_total"].GetMetric() {
		if l := labels(m.GetLabel()); l["destination_workload_namespace"] == ns && l["reporter"] == "destination" {
			counts[fmt.Sprintf("%s %s", l["destination_workload"], l["response_code"])] += m.GetCounter().GetValue()
		}
	}
	return counts
}
