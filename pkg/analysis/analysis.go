// Package analysis measures canaries in Prometheus and judges the
// measurements against the checks' specifications.
//
// The measurement is Istio's standard telemetry of the canary workload and
// of its primary over a window: the requests, the 5xx responses and the
// request-duration histogram. Targets that are due together are measured
// with one query per metric for all of them (grouped by
// destination_workload_namespace and destination_workload), so that
// Prometheus sees the same load for ten canaries as for a thousand.
package analysis

import (
	"context"
	"fmt"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"

	"sluice.dev/sluice/pkg/analysis/stats"
)

// Target is a canary to measure over a window: its workload and its
// primary's, in one namespace.
type Target struct {
	Namespace, Canary, Primary string
	Window                     time.Duration
}

// Sample is what Prometheus holds of one workload over the window.
type Sample struct {
	// Requests and Errors (5xx responses) counted over the window.
	Requests, Errors float64
	// Durations is the request-duration histogram of the window, in
	// milliseconds; nil without requests.
	Durations []stats.Bucket
}

// P99 is the 99th percentile of the request durations, in milliseconds, as
// Prometheus' histogram_quantile computes it; NaN without requests.
func (s Sample) P99() float64 { return stats.HistogramQuantile(0.99, s.Durations) }

// Measurement is what Prometheus says of one target.
type Measurement struct {
	Canary, Primary Sample
	// Err says why Prometheus could not be read (unreachable, refused,
	// timed out): the analysis is blind, and the samples mean nothing.
	Err error
	// Values are the answers to the custom checks' queries, by query.
	Values map[string]Value
}

// Value is Prometheus' answer to one custom check's query.
type Value struct {
	// V is the number; NaN when the query gave none.
	V float64
	// Series is how many series the query gave: a check needs one (or a
	// scalar, counted as one).
	Series int
	// Err says why Prometheus did not answer.
	Err error
}

// concurrentQueries bounds the custom queries a batch asks at once: each
// canary may have its own, and asked one after the other they would hold
// every canary of the batch back.
const concurrentQueries = 8

// Values asks Prometheus each distinct query once, at now, a few at a time.
func (a *Analyzer) Values(ctx context.Context, now time.Time, queries []string) map[string]Value {
	distinct := slices.Compact(slices.Sorted(slices.Values(queries)))
	out := make(map[string]Value, len(distinct))
	var mu sync.Mutex
	var wg sync.WaitGroup
	slots := make(chan struct{}, concurrentQueries)
	for _, q := range distinct {
		wg.Go(func() {
			slots <- struct{}{}
			defer func() { <-slots }()
			v := a.value(ctx, now, q)
			mu.Lock()
			out[q] = v
			mu.Unlock()
		})
	}
	wg.Wait()
	return out
}

func (a *Analyzer) value(ctx context.Context, now time.Time, q string) Value {
	start := time.Now()
	v, _, _, err := a.prom.Query(ctx, q, now)
	if err != nil {
		a.observe("error", time.Since(start))
		//lint:ignore ST1005 users know this message from the events: it is part of the contract
		return Value{V: math.NaN(), Err: fmt.Errorf("Prometheus query failed: %w", err)}
	}
	a.observe("success", time.Since(start))
	return valueOf(v)
}

// valueOf reads the one number a check's query gives.
func valueOf(v model.Value) Value {
	switch v := v.(type) {
	case *model.Scalar:
		return Value{V: float64(v.Value), Series: 1}
	case model.Vector:
		if len(v) == 1 {
			return Value{V: float64(v[0].Value), Series: 1}
		}
		return Value{V: math.NaN(), Series: len(v)}
	default:
		//lint:ignore ST1005 users know this message from the events: it is part of the contract
		return Value{V: math.NaN(), Err: fmt.Errorf("Prometheus query failed: got a %s, want a scalar or a vector", v.Type())}
	}
}

// Querier is the part of the Prometheus API the analysis uses.
type Querier interface {
	Query(ctx context.Context, query string, ts time.Time, opts ...promv1.Option) (model.Value, promv1.Warnings, promv1.Infos, error)
}

// Analyzer measures targets in one Prometheus.
type Analyzer struct {
	prom    Querier
	observe func(result string, took time.Duration)
}

// New returns an Analyzer; observe, if not nil, is told the result ("success"
// or "error") and duration of every query.
func New(prom Querier, observe func(result string, took time.Duration)) *Analyzer {
	if observe == nil {
		observe = func(string, time.Duration) {}
	}
	return &Analyzer{prom: prom, observe: observe}
}

// Run measures every target at now.
func (a *Analyzer) Run(ctx context.Context, now time.Time, targets []Target) map[Target]Measurement {
	out := make(map[Target]Measurement, len(targets))
	byWindow := map[time.Duration][]Target{}
	for _, t := range targets {
		byWindow[t.Window] = append(byWindow[t.Window], t)
	}
	for window, group := range byWindow {
		requests, err := a.query(ctx, now, requestsQuery(window, group, ""))
		var errs map[key]float64
		var durations map[key][]stats.Bucket
		if err == nil {
			errs, err = a.query(ctx, now, requestsQuery(window, group, `,response_code=~"5.*"`))
		}
		if err == nil {
			durations, err = a.histograms(ctx, now, durationQuery(window, group))
		}
		for _, t := range group {
			if err != nil {
				out[t] = Measurement{Err: err}
				continue
			}
			sample := func(workload string) Sample {
				k := key{t.Namespace, workload}
				return Sample{Requests: requests[k], Errors: errs[k], Durations: durations[k]}
			}
			out[t] = Measurement{Canary: sample(t.Canary), Primary: sample(t.Primary)}
		}
	}
	return out
}

type key struct{ namespace, workload string }

// query runs q and returns its value per workload.
func (a *Analyzer) query(ctx context.Context, now time.Time, q string) (map[key]float64, error) {
	vec, err := a.vector(ctx, now, q)
	if err != nil {
		return nil, err
	}
	values := make(map[key]float64, len(vec))
	for _, s := range vec {
		if v := float64(s.Value); !math.IsNaN(v) {
			values[keyOf(s.Metric)] = v
		}
	}
	return values, nil
}

// histograms runs q, whose series are the buckets of histograms (label le),
// and returns each workload's histogram.
func (a *Analyzer) histograms(ctx context.Context, now time.Time, q string) (map[key][]stats.Bucket, error) {
	vec, err := a.vector(ctx, now, q)
	if err != nil {
		return nil, err
	}
	out := map[key][]stats.Bucket{}
	for _, s := range vec {
		le, err := strconv.ParseFloat(string(s.Metric["le"]), 64)
		if err != nil || math.IsNaN(float64(s.Value)) {
			continue
		}
		k := keyOf(s.Metric)
		out[k] = append(out[k], stats.Bucket{UpperBound: le, Count: float64(s.Value)})
	}
	return out, nil
}

func keyOf(m model.Metric) key {
	return key{string(m["destination_workload_namespace"]), string(m["destination_workload"])}
}

func (a *Analyzer) vector(ctx context.Context, now time.Time, q string) (model.Vector, error) {
	start := time.Now()
	v, _, _, err := a.prom.Query(ctx, q, now)
	if err != nil {
		a.observe("error", time.Since(start))
		//lint:ignore ST1005 users know this message from the events: it is part of the contract
		return nil, fmt.Errorf("Prometheus query failed: %w", err)
	}
	a.observe("success", time.Since(start))
	vec, ok := v.(model.Vector)
	if !ok {
		//lint:ignore ST1005 users know this message from the events: it is part of the contract
		return nil, fmt.Errorf("Prometheus query failed: got a %s, want a vector", v.Type())
	}
	return vec, nil
}

const groupBy = "destination_workload_namespace, destination_workload"

// selector matches the destination-side telemetry of the targets' canary and
// primary workloads.
func selector(targets []Target, extra string) string {
	var namespaces, workloads []string
	for _, t := range targets {
		namespaces = append(namespaces, regexp.QuoteMeta(t.Namespace))
		workloads = append(workloads, regexp.QuoteMeta(t.Canary), regexp.QuoteMeta(t.Primary))
	}
	slices.Sort(namespaces)
	slices.Sort(workloads)
	return fmt.Sprintf(`reporter="destination",destination_workload_namespace=~%q,destination_workload=~%q%s`,
		strings.Join(slices.Compact(namespaces), "|"), strings.Join(slices.Compact(workloads), "|"), extra)
}

// requestsQuery counts the requests over the window that extra selects (all
// of them, or the 5xx responses).
func requestsQuery(window time.Duration, targets []Target, extra string) string {
	return fmt.Sprintf(`sum by (%s) (increase(istio_requests_total{%s}[%s]))`,
		groupBy, selector(targets, extra), model.Duration(window).String())
}

// durationQuery counts the requests in each bucket of the request-duration
// histogram (milliseconds) over the window.
func durationQuery(window time.Duration, targets []Target) string {
	return fmt.Sprintf(`sum by (le, %s) (increase(istio_request_duration_milliseconds_bucket{%s}[%s]))`,
		groupBy, selector(targets, ""), model.Duration(window).String())
}
