package analysis

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"time"

	"k8s.io/utils/ptr"

	"sluice.dev/sluice/pkg/analysis/stats"
	"sluice.dev/sluice/pkg/canary"
)

// Names of the built-in checks, as users see them in events and in the
// Canary status.
const (
	SuccessRate     = "request-success-rate"
	RequestDuration = "request-duration"
)

// Metric is what a check measures.
type Metric int

// The metrics of the built-in checks.
const (
	// MetricSuccessRate is the share of non-5xx responses, in percent,
	// judged on the request counts by the sequential test.
	MetricSuccessRate Metric = iota
	// MetricRequestDuration is the P99 request duration in milliseconds,
	// judged as the share of requests slower than Max by the sequential
	// test: the P99 is above Max exactly when more than 1% are.
	MetricRequestDuration
	// MetricQuery is the number a custom check's query gives, judged
	// against Min, Max and the primary's number.
	MetricQuery
)

// Check is the specification of one check: what it measures and what is
// good. Checks are data: the built-in ones are two values of this type, and
// Judge is the one place that compares a measurement with a specification.
type Check struct {
	Name   string
	Metric Metric
	// Unit of the values, for people.
	Unit string
	// Min and Max bound the good values; nil for no bound.
	Min, Max *float64
	// MinRequests is the least number of canary requests the check needs
	// to judge; with fewer it is inconclusive.
	MinRequests int64
	// CanaryQuery and PrimaryQuery are a custom check's query, rendered for
	// the canary and, when it compares, for the primary.
	CanaryQuery, PrimaryQuery string
	// Compare is how much worse than the primary the canary may be.
	Compare *canary.Comparison
	// RenderErr says why the query could not be rendered.
	RenderErr error
}

// Builtin returns the built-in checks with the settings' bounds.
func Builtin(s canary.Settings) []Check {
	minRequests := int64(s.MinRequests)
	return []Check{
		{Name: SuccessRate, Metric: MetricSuccessRate, Unit: "%", Min: ptr.To(s.MinSuccessRate), MinRequests: minRequests},
		{Name: RequestDuration, Metric: MetricRequestDuration, Unit: "ms", Max: ptr.To(milliseconds(s.MaxRequestDuration.Duration)),
			MinRequests: minRequests},
	}
}

// Checks returns every check of a canary: the built-in ones that its policy
// leaves on, and its policy's custom checks, rendered for v.
func Checks(s canary.Settings, v Vars) []Check {
	var out []Check
	for _, c := range Builtin(s) {
		if !slices.ContainsFunc(s.Checks, func(spec canary.CheckSpec) bool { return spec.Name == c.Name && spec.Disabled }) {
			out = append(out, c)
		}
	}
	for _, spec := range s.Checks {
		if spec.Disabled || spec.Name == SuccessRate || spec.Name == RequestDuration {
			continue
		}
		c := Check{Name: spec.Name, Metric: MetricQuery, Unit: spec.Unit, Min: spec.Min, Max: spec.Max, Compare: spec.Compare}
		c.CanaryQuery, c.RenderErr = Render(spec.Query, v.For(v.Canary))
		if c.RenderErr == nil && c.Compare != nil {
			c.PrimaryQuery, c.RenderErr = Render(spec.Query, v.For(v.Primary))
		}
		out = append(out, c)
	}
	return out
}

// Queries are the rendered queries of the custom checks among checks.
func Queries(checks []Check) []string {
	var out []string
	for _, c := range checks {
		for _, q := range []string{c.CanaryQuery, c.PrimaryQuery} {
			if q != "" {
				out = append(out, q)
			}
		}
	}
	return out
}

func milliseconds(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// Gather adds the counts of one measurement, whose window starts where ev
// ends, to ev: the canary's requests, 5xx responses and requests slower than
// maxDuration, and the primary's requests and 5xx responses. A blind
// measurement adds nothing.
func Gather(ev canary.Evidence, m Measurement, maxDuration time.Duration) canary.Evidence {
	if m.Err != nil {
		return ev
	}
	requests, errors := whole(m.Canary.Requests), whole(m.Canary.Errors)
	slow := whole(stats.SlowerThan(milliseconds(maxDuration), m.Canary.Durations).Errors)
	ev.Requests += requests
	ev.Errors += errors
	ev.SlowRequests += slow
	ev.PrimaryRequests += whole(m.Primary.Requests)
	ev.PrimaryErrors += whole(m.Primary.Errors)
	ev.TotalRequests += requests
	ev.TotalErrors += errors
	ev.TotalSlowRequests += slow
	return ev
}

// whole rounds a count that Prometheus' increase() extrapolated; anything
// but a finite, positive number is none.
func whole(v float64) int64 {
	if !(v > 0) || math.IsInf(v, 1) {
		return 0
	}
	return int64(math.Round(v))
}

// Judge gives the verdict of check c on the evidence gathered, ev, and on
// the measurement of this round, m, whose values it reports. final says
// whether a pass promotes the canary: then the sequential test must show
// that the canary is good, not only that it is not bad.
func (c Check) Judge(m Measurement, ev canary.Evidence, final bool) canary.CheckStatus {
	st := canary.CheckStatus{Name: c.Name, Unit: c.Unit, Min: c.Min, Max: c.Max}
	if m.Err != nil {
		st.Verdict, st.Message = canary.VerdictBlind, m.Err.Error()
		return st
	}
	test := stats.Test{MinRequests: float64(c.MinRequests)}
	var verdict stats.Verdict
	var detail stats.Detail
	switch c.Metric {
	case MetricSuccessRate:
		verdict, detail = stats.SuccessRateRule{MinSuccessRate: ptr.Deref(c.Min, 0), Test: test}.Judge(stats.Evidence{
			Canary:      stats.Counts{Requests: float64(ev.Requests), Errors: float64(ev.Errors)},
			Primary:     stats.Counts{Requests: float64(ev.PrimaryRequests), Errors: float64(ev.PrimaryErrors)},
			CanaryTotal: stats.Counts{Requests: float64(ev.TotalRequests), Errors: float64(ev.TotalErrors)},
			Final:       final,
		})
		if ev.Requests > 0 {
			st.Value = ptr.To(successRate(ev.Requests, ev.Errors))
		}
		if ev.PrimaryRequests > 0 {
			st.PrimaryValue = ptr.To(successRate(ev.PrimaryRequests, ev.PrimaryErrors))
		}
	case MetricQuery:
		c.judgeQuery(&st, m.Values)
		return st
	case MetricRequestDuration:
		verdict, detail = stats.LatencyRule{MaxMs: ptr.Deref(c.Max, 0), Test: test}.Judge(stats.Evidence{
			Canary:      stats.Counts{Requests: float64(ev.Requests), Errors: float64(ev.SlowRequests)},
			CanaryTotal: stats.Counts{Requests: float64(ev.TotalRequests), Errors: float64(ev.TotalSlowRequests)},
			Final:       final,
		})
		if p99 := m.Canary.P99(); !math.IsNaN(p99) {
			st.Value = ptr.To(p99)
		}
		if p99 := m.Primary.P99(); !math.IsNaN(p99) {
			st.PrimaryValue = ptr.To(p99)
		}
	default:
		st.Verdict, st.Message = canary.VerdictFailed, fmt.Sprintf("check %s measures an unknown metric %d", c.Name, c.Metric)
		return st
	}
	st.Samples = ptr.To(ev.Requests)
	switch verdict {
	case stats.Passed:
		st.Verdict = canary.VerdictPassed
		return st
	case stats.Failed:
		st.Verdict = canary.VerdictFailed
	case stats.RollBack:
		st.Verdict, st.Decisive = canary.VerdictFailed, true
	default:
		st.Verdict = canary.VerdictInconclusive
	}
	st.Message = c.Name + ": " + detail.String()
	return st
}

// judgeQuery judges a custom check on the numbers its queries gave: a
// query Prometheus did not answer leaves it blind, a query that gave no
// number leaves it inconclusive, and a number out of bounds, or worse than
// the primary's by more than allowed, fails it.
func (c Check) judgeQuery(st *canary.CheckStatus, values map[string]Value) {
	fail := func(verdict canary.Verdict, format string, args ...any) {
		st.Verdict, st.Message = verdict, c.Name+": "+fmt.Sprintf(format, args...)
	}
	if c.RenderErr != nil {
		fail(canary.VerdictBlind, "the query does not render: %v", c.RenderErr)
		return
	}
	number := func(query, whose string) (float64, bool) {
		v, ok := values[query]
		switch {
		case !ok:
			fail(canary.VerdictBlind, "the %s query was not asked", whose)
		case v.Err != nil:
			fail(canary.VerdictBlind, "%v", v.Err)
		case v.Series > 1:
			fail(canary.VerdictInconclusive, "the %s query gives %d series; a check needs one number: aggregate it, with sum or max", whose, v.Series)
		case math.IsNaN(v.V):
			fail(canary.VerdictInconclusive, "no data for the %s", whose)
		default:
			return v.V, true
		}
		return 0, false
	}
	value, ok := number(c.CanaryQuery, "canary")
	if !ok {
		return
	}
	st.Value = ptr.To(value)
	format := func(v float64) string { return strconv.FormatFloat(v, 'g', 4, 64) + c.Unit }
	switch {
	case c.Min != nil && value < *c.Min:
		fail(canary.VerdictFailed, "%s < %s", format(value), format(*c.Min))
		return
	case c.Max != nil && value > *c.Max:
		fail(canary.VerdictFailed, "%s > %s", format(value), format(*c.Max))
		return
	}
	if c.Compare != nil {
		primary, ok := number(c.PrimaryQuery, "primary")
		if !ok {
			return
		}
		st.PrimaryValue = ptr.To(primary)
		worse := value - primary
		if c.Compare.Better == "higher" {
			worse = -worse
		}
		allowed := math.Inf(1)
		if d := c.Compare.MaxAbsoluteDegradation; d != nil {
			allowed = *d
		}
		if d := c.Compare.MaxRelativeDegradation; d != nil {
			allowed = min(allowed, *d/100*math.Abs(primary))
		}
		if worse > allowed {
			fail(canary.VerdictFailed, "%s is worse than the primary's %s by %s, more than the %s allowed",
				format(value), format(primary), format(worse), format(allowed))
			return
		}
	}
	st.Verdict = canary.VerdictPassed
}

func successRate(requests, errors int64) float64 {
	return 100 * float64(requests-errors) / float64(requests)
}
