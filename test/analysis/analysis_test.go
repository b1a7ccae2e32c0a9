// Package analysis_test checks sluice's Prometheus analysis against a real
// Prometheus that scrapes Istio's standard telemetry from a simulated mesh.
package analysis_test

import (
	"context"
	"fmt"
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
		return analysis.Target{Namespace: ns, Workload: name, Window: window}
	}
	req := func(tg analysis.Target, code int, ms int) telemetry.Request {
		return telemetry.Request{Namespace: tg.Namespace, Workload: tg.Workload, Service: "web", Code: code, Duration: time.Duration(ms) * time.Millisecond}
	}
	good, bad, slow, down, idle := target("shop", "good-canary"), target("shop", "bad-canary"),
		target("blog", "slow-canary"), target("blog", "down-canary"), target("shop", "idle-canary")
	loads := []workload{
		{good, func(int) telemetry.Request { return req(good, 200, 20) }},
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
	var got map[analysis.Target][]analysis.Result
	// Rates need two scrapes of each series inside the window.
	cluster.Eventually(t, time.Minute, "data for every busy workload", func(ctx context.Context) error {
		got = a.Run(ctx, time.Now(), targets)
		for _, tg := range targets[:4] {
			for _, r := range got[tg] {
				if r.Err != nil {
					return fmt.Errorf("%s: %v", tg.Workload, r.Err)
				}
			}
		}
		return nil
	})
	if queries%2 != 0 {
		t.Errorf("%d queries for %d runs; want two per run, one per metric", queries, queries/2)
	}

	expect := func(tg analysis.Target, name string, lo, hi float64) {
		t.Helper()
		for _, r := range got[tg] {
			if r.Name == name && (r.Err != nil || r.Value < lo || r.Value > hi) {
				t.Errorf("%s %s = %v (err %v); want within [%v, %v]", tg.Workload, name, r.Value, r.Err, lo, hi)
			}
		}
	}
	expect(good, analysis.SuccessRate, 100, 100)
	expect(good, analysis.RequestDuration, 10, 25)
	expect(bad, analysis.SuccessRate, 45.9, 46.1)
	expect(slow, analysis.RequestDuration, 500, 1000)
	expect(slow, analysis.SuccessRate, 100, 100)
	// Only failures: 0%, not "no data".
	expect(down, analysis.SuccessRate, 0, 0)
	for i, name := range []string{analysis.SuccessRate, analysis.RequestDuration} {
		want := "no values found for metric " + name + ", probably not receiving traffic"
		if r := got[idle][i]; r.Name != name || r.Err == nil || r.Err.Error() != want {
			t.Errorf("idle workload %s: %+v; want the error %q", name, r, want)
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
	tg := analysis.Target{Namespace: "shop", Workload: "web-canary", Window: time.Minute}
	for _, r := range a.Run(t.Context(), time.Now(), []analysis.Target{tg})[tg] {
		if r.Err == nil || !strings.HasPrefix(r.Err.Error(), "Prometheus query failed: ") {
			t.Errorf("%s: %+v; want a Prometheus query failure", r.Name, r)
		}
	}
	if failed != 2 {
		t.Errorf("%d failed queries observed; want 2", failed)
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
