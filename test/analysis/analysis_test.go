// Package analysis_test checks sluice's Prometheus analysis against a real
// Prometheus that scrapes Istio's standard telemetry from a simulated mesh.
package analysis_test

import (
	"context"
	"fmt"
	"math"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	promapi "github.com/prometheus/client_golang/api"
	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"sluice.dev/sluice/pkg/analysis"
	"sluice.dev/sluice/pkg/canary"
	"sluice.dev/sluice/test/cluster"
	"sluice.dev/sluice/test/meshsim/telemetry"
)

var env *cluster.Cluster

func TestMain(m *testing.M) { os.Exit(cluster.RunTests(m, &env)) }

// workload is a simulated destination and what each of its requests does.
type workload struct {
	target   analysis.Target
	requests func(i int) telemetry.Request
}

func TestChecksOfManyCanariesInOneQueryPerMetric(t *testing.T) {
	window := 10 * time.Second
	target := func(ns, name string) analysis.Target {
		return analysis.Target{Namespace: ns, Canary: name + "-canary", Primary: name, Window: window}
	}
	req := func(tg analysis.Target, code int, ms int) telemetry.Request {
		return telemetry.Request{Namespace: tg.Namespace, Workload: tg.Canary, Service: "web", Code: code, Duration: time.Duration(ms) * time.Millisecond}
	}
	good, bad, slow, down, idle := target("shop", "good"), target("shop", "bad"),
		target("blog", "slow"), target("blog", "down"), target("shop", "idle")
	loads := []workload{
		{good, func(int) telemetry.Request { return req(good, 200, 20) }},
		// The primary of good fails 1 request in 100.
		{good, func(i int) telemetry.Request {
			r := req(good, 200, 30)
			r.Workload = good.Primary
			if i%100 == 0 {
				r.Code = 500
			}
			return r
		}},
		// 27 of every 50 requests fail: a success rate of 46%.
		{bad, func(i int) telemetry.Request {
			if i%50 < 27 {
				return req(bad, 503, 20)
			}
			return req(bad, 200, 20)
		}},
		{slow, func(int) telemetry.Request { return req(slow, 200, 900) }},
		{down, func(int) telemetry.Request { return req(down, 500, 5) }},
	}
	serveTraffic(t, loads)

	var queries int
	client, err := promapi.NewClient(promapi.Config{Address: env.PrometheusURL})
	if err != nil {
		t.Fatal(err)
	}
	a := analysis.New(promv1.NewAPI(client), func(result string, _ time.Duration) {
		if result != "success" {
			t.Errorf("query result %s", result)
		}
		queries++
	})
	targets := []analysis.Target{good, bad, slow, down, idle}
	var got map[analysis.Target]analysis.Measurement
	// Increases need two scrapes of each series inside the window.
	cluster.Eventually(t, time.Minute, "data for every busy workload", func(ctx context.Context) error {
		got = a.Run(ctx, time.Now(), targets)
		for _, tg := range targets[:4] {
			if m := got[tg]; m.Err != nil || m.Canary.Requests == 0 || math.IsNaN(m.Canary.P99()) {
				return fmt.Errorf("%s: %+v", tg.Canary, m)
			}
		}
		if got[good].Primary.Requests == 0 {
			return fmt.Errorf("no requests to the primary %s yet", good.Primary)
		}
		return nil
	})
	if queries%3 != 0 {
		t.Errorf("%d queries for %d runs; want three per run, one per metric", queries, queries/3)
	}

	errorRate := func(s analysis.Sample) float64 { return s.Errors / s.Requests }
	for _, c := range []struct {
		what   string
		got    float64
		lo, hi float64
	}{
		{"good canary's error rate", errorRate(got[good].Canary), 0, 0},
		// Five errors in a 10s window: increase() extrapolates coarsely.
		{"good primary's error rate", errorRate(got[good].Primary), 0.005, 0.03},
		{"good canary's P99", got[good].Canary.P99(), 10, 25},
		{"good primary's P99", got[good].Primary.P99(), 25, 50},
		{"bad canary's error rate", errorRate(got[bad].Canary), 0.53, 0.55},
		{"slow canary's P99", got[slow].Canary.P99(), 500, 1000},
		{"down canary's error rate", errorRate(got[down].Canary), 1, 1},
	} {
		if c.got < c.lo || c.got > c.hi {
			t.Errorf("%s = %v; want within [%v, %v]", c.what, c.got, c.lo, c.hi)
		}
	}
	if m := got[idle]; m.Err != nil || m.Canary.Requests != 0 || !math.IsNaN(m.Canary.P99()) {
		t.Errorf("idle workload: %+v; want no requests and no duration", m)
	}

	// The built-in checks judge what the real Prometheus measured.
	settings := canary.BuiltinDefaults().Settings()
	settings.MinRequests = 20
	for tg, want := range map[analysis.Target][2]canary.Verdict{
		good: {canary.VerdictPassed, canary.VerdictPassed},
		bad:  {canary.VerdictFailed, canary.VerdictPassed},
		slow: {canary.VerdictPassed, canary.VerdictFailed},
		down: {canary.VerdictFailed, canary.VerdictPassed},
		idle: {canary.VerdictInconclusive, canary.VerdictInconclusive},
	} {
		m := got[tg]
		ev := analysis.Gather(canary.Evidence{}, m, settings.MaxRequestDuration.Duration)
		for i, check := range analysis.Builtin(settings) {
			if st := check.Judge(m, ev, false); st.Verdict != want[i] {
				t.Errorf("%s: %s; want %s", tg.Canary, st, want[i])
			}
		}
	}
}

func TestPrometheusDown(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens there now
	client, err := promapi.NewClient(promapi.Config{Address: "http://" + addr})
	if err != nil {
		t.Fatal(err)
	}
	var failed int
	a := analysis.New(promv1.NewAPI(client), func(result string, _ time.Duration) {
		if result == "error" {
			failed++
		}
	})
	tg := analysis.Target{Namespace: "shop", Canary: "web-canary", Primary: "web", Window: time.Minute}
	m := a.Run(t.Context(), time.Now(), []analysis.Target{tg})[tg]
	if m.Err == nil || !strings.HasPrefix(m.Err.Error(), "Prometheus query failed: ") {
		t.Errorf("%+v; want a Prometheus query failure", m)
	}
	// The first failure makes the measurement blind: no more queries.
	if failed != 1 {
		t.Errorf("%d failed queries observed; want 1", failed)
	}
	for _, check := range analysis.Builtin(canary.BuiltinDefaults().Settings()) {
		if st := check.Judge(m, canary.Evidence{}, false); st.Verdict != canary.VerdictBlind || st.Message != m.Err.Error() {
			t.Errorf("%s; want Blind, saying %q", st, m.Err)
		}
	}
}

// serveTraffic exports the workloads' telemetry for Prometheus to scrape and
// records requests for each, every 20ms, until the test ends.
func serveTraffic(t *testing.T, loads []workload) {
	t.Helper()
	reg := prometheus.NewRegistry()
	tel := telemetry.New(reg)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: promhttp.HandlerFor(reg, promhttp.HandlerOpts{}), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	if err := env.SetScrapeTargets(strings.ToLower(t.Name()), l.Addr().String()); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	t.Cleanup(func() { cancel(); <-done })
	go func() {
		defer close(done)
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for i := 0; ; i++ {
			for _, w := range loads {
				tel.Record(w.requests(i))
			}
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
}
