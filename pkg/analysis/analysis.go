// Package analysis runs the canary checks against Prometheus: the request
// success rate and the P99 request duration of each canary workload, from
// Istio's standard telemetry.
//
// Checks that are due together run as one query per metric for all of them
// (grouped by destination_workload_namespace and destination_workload), so
// that Prometheus sees the same load for ten canaries as for a thousand.
package analysis

import (
	"context"
	"fmt"
	"math"
	"regexp"
	"slices"
	"strings"
	"time"

	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"
)

// Check names, as users see them in events and in the Canary status.
const (
	SuccessRate     = "request-success-rate"
	RequestDuration = "request-duration"
)

// Target is a workload to check over a window.
type Target struct {
	Namespace, Workload string
	Window              time.Duration
}

// Result is the outcome of one check of one target.
type Result struct {
	// Name is SuccessRate (percent) or RequestDuration (milliseconds).
	Name  string
	Value float64
	// Err says why there is no value: no data, or Prometheus failed.
	Err error
}

// Querier is the part of the Prometheus API the analysis uses.
type Querier interface {
	Query(ctx context.Context, query string, ts time.Time, opts ...promv1.Option) (model.Value, promv1.Warnings, promv1.Infos, error)
}

// Analyzer runs checks against one Prometheus.
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

// Run checks every target at now and returns each target's results, in the
// order SuccessRate, RequestDuration.
func (a *Analyzer) Run(ctx context.Context, now time.Time, targets []Target) map[Target][]Result {
	out := make(map[Target][]Result, len(targets))
	byWindow := map[time.Duration][]Target{}
	for _, t := range targets {
		byWindow[t.Window] = append(byWindow[t.Window], t)
	}
	for window, group := range byWindow {
		rates, rateErr := a.query(ctx, now, successRateQuery(window, group))
		durations, durationErr := a.query(ctx, now, durationQuery(window, group))
		for _, t := range group {
			out[t] = []Result{
				result(SuccessRate, t, rates, rateErr),
				result(RequestDuration, t, durations, durationErr),
			}
		}
	}
	return out
}

type key struct{ namespace, workload string }

func (a *Analyzer) query(ctx context.Context, now time.Time, q string) (map[key]float64, error) {
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
	values := make(map[key]float64, len(vec))
	for _, s := range vec {
		values[key{string(s.Metric["destination_workload_namespace"]), string(s.Metric["destination_workload"])}] = float64(s.Value)
	}
	return values, nil
}

func result(name string, t Target, values map[key]float64, err error) Result {
	if err != nil {
		return Result{Name: name, Err: err}
	}
	v, ok := values[key{t.Namespace, t.Workload}]
	if !ok || math.IsNaN(v) { // NaN: no requests in the window
		return Result{Name: name, Err: fmt.Errorf("no values found for metric %s, probably not receiving traffic", name)}
	}
	return Result{Name: name, Value: v}
}

const groupBy = "destination_workload_namespace, destination_workload"

// selector matches the destination-side telemetry of the targets' workloads.
func selector(targets []Target, extra string) string {
	var namespaces, workloads []string
	for _, t := range targets {
		namespaces = append(namespaces, regexp.QuoteMeta(t.Namespace))
		workloads = append(workloads, regexp.QuoteMeta(t.Workload))
	}
	slices.Sort(namespaces)
	slices.Sort(workloads)
	return fmt.Sprintf(`reporter="destination",destination_workload_namespace=~%q,destination_workload=~%q%s`,
		strings.Join(slices.Compact(namespaces), "|"), strings.Join(slices.Compact(workloads), "|"), extra)
}

// successRateQuery is the percentage of non-5xx responses. A workload that
// answers only 5xx has no non-5xx series; "or ... * 0" makes that 0%, not
// "no data".
func successRateQuery(window time.Duration, targets []Target) string {
	w := model.Duration(window).String()
	all := fmt.Sprintf(`sum by (%s) (rate(istio_requests_total{%s}[%s]))`, groupBy, selector(targets, ""), w)
	ok := fmt.Sprintf(`sum by (%s) (rate(istio_requests_total{%s}[%s]))`, groupBy, selector(targets, `,response_code!~"5.*"`), w)
	return fmt.Sprintf(`(%s or %s * 0) / %s * 100`, ok, all, all)
}

// durationQuery is the P99 request duration in milliseconds.
func durationQuery(window time.Duration, targets []Target) string {
	return fmt.Sprintf(`histogram_quantile(0.99, sum by (le, %s) (rate(istio_request_duration_milliseconds_bucket{%s}[%s])))`,
		groupBy, selector(targets, ""), model.Duration(window).String())
}
