package main

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	apimeta "k8s.io/apimachinery/pkg/api/meta"

	"sluice.dev/sluice/pkg/analysis"
	"sluice.dev/sluice/pkg/analysis/stats"
	"sluice.dev/sluice/pkg/canary"
	"sluice.dev/sluice/pkg/shift"
)

// Model is the synthetic behaviour of a canary build.
type Model struct {
	Name      string
	ErrorRate float64 // per request
	P99       float64 // milliseconds, of lognormal request durations
}

// The canaries of the simulation: healthy (as the primary), failing 5% of
// its requests, and a P99 latency regression.
var (
	Healthy    = Model{"healthy", 0.005, 200}
	BadErrors  = Model{"bad: 5% errors", 0.05, 200}
	BadLatency = Model{"bad: P99 800ms", 0.005, 800}
)

const (
	primaryErrorRate = 0.005
	// latencySigma is the lognormal shape of the request durations.
	latencySigma = 0.6
)

// istioBuckets are the bounds of Istio's request-duration histogram, in
// milliseconds, without +Inf.
var istioBuckets = []float64{0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 300000, 600000, 1800000, 3600000}

// traffic is a seeded stream of requests to the service. Interval t draws
// from a generator of its own, and every request draws the same random
// numbers whichever way it is routed: two rules at the same weight see the
// same window, and at different weights the same requests split otherwise.
type traffic struct {
	seed     uint64
	rps      float64
	interval float64 // seconds
	model    Model
	zBounds  []float64 // the buckets' bounds as standard normal quantiles of ln(duration)
}

func newTraffic(seed uint64, rps float64, interval time.Duration, m Model) *traffic {
	const z99 = 2.3263478740408408
	mu := math.Log(m.P99) - z99*latencySigma
	z := make([]float64, len(istioBuckets))
	for i, b := range istioBuckets {
		z[i] = (math.Log(b) - mu) / latencySigma
	}
	return &traffic{seed: seed, rps: rps, interval: interval.Seconds(), model: m, zBounds: z}
}

// window is the measurement of interval t at a canary weight, as Prometheus
// would answer it.
func (tr *traffic) window(t int, weight int32) analysis.Measurement {
	rng := rand.New(rand.NewPCG(tr.seed, uint64(t)))
	counts := make([]float64, len(tr.zBounds)+1)
	var m analysis.Measurement
	for at := rng.ExpFloat64() / tr.rps; at < tr.interval; at += rng.ExpFloat64() / tr.rps {
		route, fail, z := rng.Float64(), rng.Float64(), rng.NormFloat64()
		if route >= float64(weight)/100 {
			m.Primary.Requests++
			if fail < primaryErrorRate {
				m.Primary.Errors++
			}
			continue
		}
		m.Canary.Requests++
		if fail < tr.model.ErrorRate {
			m.Canary.Errors++
		}
		counts[sort.SearchFloat64s(tr.zBounds, z)]++
	}
	cum := 0.0
	for i, c := range counts {
		cum += c
		bound := math.Inf(1)
		if i < len(istioBuckets) {
			bound = istioBuckets[i]
		}
		m.Canary.Durations = append(m.Canary.Durations, stats.Bucket{UpperBound: bound, Count: cum})
	}
	return m
}

// Cause is why a rollout was rolled back.
type Cause int

// The causes of a rollback.
const (
	ByErrors Cause = iota
	ByLatency
	BySilence
)

// Result is the outcome of one rollout.
type Result struct {
	Promoted bool
	Cause    Cause // when rolled back
	// Intervals to the outcome.
	Intervals int
}

// maxIntervals ends a rollout that would go on for ever; no rule needs as
// many with the default settings.
const maxIntervals = 1000

// sluice runs one rollout through shift.Step, the shifter's decision
// function, as the reconciler applies it: each time it asks for the checks,
// it gets the window's measurement.
func sluice(tr *traffic, s canary.Settings) Result {
	start := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	o := shift.Observation{Now: start, Namespace: "shop", Name: "web", Settings: s, PrimaryRevision: "r1", PrimaryReady: true}
	d := shift.Step(o)
	o.Status = &d.Status
	// The new revision, its canary ready at once: the first weight.
	o.PendingRevision, o.PendingPrimaryRevision, o.CanaryReady = "r2", "p2", true
	d = shift.Step(o)
	for t := 1; t <= maxIntervals; t++ {
		o.Status, o.Routed = &d.Status, d.Routing
		o.Now = o.Now.Add(s.Interval.Duration)
		if d = shift.Step(o); d.RunChecks {
			m := tr.window(t, o.Status.CanaryWeight)
			o.Measurement = &m
			d = shift.Step(o)
			o.Measurement = nil
		}
		switch {
		case d.Promote:
			return Result{Promoted: true, Intervals: t}
		case d.Status.Phase == canary.PhaseFailed:
			return Result{Cause: causeOf(d.Status), Intervals: t}
		}
	}
	return Result{Cause: BySilence, Intervals: maxIntervals}
}

// causeOf reads why a canary was rolled back from its status.
func causeOf(st canary.CanaryStatus) Cause {
	if cond := apimeta.FindStatusCondition(st.Conditions, canary.ConditionPromoted); cond != nil && cond.Reason == "NotEnoughTraffic" {
		return BySilence
	}
	for _, c := range st.Checks {
		if c.Verdict == canary.VerdictFailed && c.Name == analysis.RequestDuration {
			return ByLatency
		}
	}
	return ByErrors
}

// threshold runs one rollout with the rule Flagger applies: each window's
// success rate against min-success-rate and its P99 against
// max-request-duration, no requests a failed check; a failed check holds the
// weight, and the threshold of them rolls back. Like sluice, it analyses
// max-weight before it promotes.
func threshold(tr *traffic, s canary.Settings) Result {
	step, failed := 0, int32(0)
	maxMs := float64(s.MaxRequestDuration.Duration) / float64(time.Millisecond)
	for t := 1; ; t++ {
		weight := s.StepWeights[step]
		m := tr.window(t, weight)
		cause := Cause(-1)
		switch {
		case m.Canary.Requests == 0:
			cause = BySilence
		case 100*(1-m.Canary.Errors/m.Canary.Requests) < s.MinSuccessRate:
			cause = ByErrors
		case !(m.Canary.P99() <= maxMs):
			cause = ByLatency
		}
		switch {
		case cause >= 0:
			if failed++; failed >= s.Threshold {
				return Result{Cause: cause, Intervals: t}
			}
		case weight >= s.MaxWeight:
			return Result{Promoted: true, Intervals: t}
		default:
			step++
		}
	}
}

// Dist summarises times to an outcome, in intervals.
type Dist struct{ N, Median, P99, Max int }

func dist(ts []int) Dist {
	if len(ts) == 0 {
		return Dist{}
	}
	slices.Sort(ts)
	q := func(p float64) int { return ts[int(math.Ceil(p*float64(len(ts))))-1] }
	return Dist{N: len(ts), Median: q(0.5), P99: q(0.99), Max: ts[len(ts)-1]}
}

func (d Dist) String() string {
	if d.N == 0 {
		return "–"
	}
	return fmt.Sprintf("%d / %d / %d", d.Median, d.P99, d.Max)
}

// Row is one rule × traffic × canary cell of the simulation.
type Row struct {
	Rule   string
	RPS    float64
	Canary Model
	N      int
	// Promoted, and rolled back by cause.
	Promoted, ByErrors, ByLatency, BySilence int
	// PromotedOnTime: promoted within the nominal time (one interval per
	// weight) plus one interval.
	PromotedOnTime            int
	PromoteTime, RollbackTime Dist
	// Later (sluice's rows of bad canaries): rollouts the threshold rule
	// rolled back in which sluice rolled back later, or not at all.
	Later int
}

// RolledBack is the number of rollouts rolled back for any cause.
func (r Row) RolledBack() int { return r.ByErrors + r.ByLatency + r.BySilence }

// Rule names, as the table shows them.
const (
	RuleThreshold = "threshold (Flagger)"
	RuleSluice    = "sluice"
)

// Simulate runs n seeded rollouts per traffic rate and canary, with the
// threshold rule and with sluice's Step, on the same traffic.
func Simulate(s canary.Settings, seed uint64, n int, rates []float64, models []Model) []Row {
	var rows []Row
	for mi, m := range models {
		for ri, rps := range rates {
			th, sl := make([]Result, n), make([]Result, n)
			var wg sync.WaitGroup
			next := make(chan int)
			for range 4 {
				wg.Go(func() {
					for i := range next {
						seed := seed<<40 | uint64(i)<<16 | uint64(mi)<<8 | uint64(ri)
						th[i] = threshold(newTraffic(seed, rps, s.Interval.Duration, m), s)
						sl[i] = sluice(newTraffic(seed, rps, s.Interval.Duration, m), s)
					}
				})
			}
			for i := range n {
				next <- i
			}
			close(next)
			wg.Wait()
			a, b := summarize(RuleThreshold, rps, m, th, s), summarize(RuleSluice, rps, m, sl, s)
			for i := range n {
				if !th[i].Promoted && (sl[i].Promoted || sl[i].Intervals > th[i].Intervals) {
					b.Later++
				}
			}
			rows = append(rows, a, b)
		}
	}
	return rows
}

func summarize(rule string, rps float64, m Model, rs []Result, s canary.Settings) Row {
	row := Row{Rule: rule, RPS: rps, Canary: m, N: len(rs)}
	var promote, rollback []int
	for _, r := range rs {
		if r.Promoted {
			row.Promoted++
			promote = append(promote, r.Intervals)
			if r.Intervals <= len(s.StepWeights)+1 {
				row.PromotedOnTime++
			}
			continue
		}
		rollback = append(rollback, r.Intervals)
		switch r.Cause {
		case ByErrors:
			row.ByErrors++
		case ByLatency:
			row.ByLatency++
		default:
			row.BySilence++
		}
	}
	row.PromoteTime, row.RollbackTime = dist(promote), dist(rollback)
	return row
}

// Markdown renders rows as a table; times are median / p99 / max intervals.
func Markdown(rows []Row) string {
	var b strings.Builder
	b.WriteString("| requests/s | canary | rule | promoted | on time | rolled back: errors / latency / silence | intervals to promote | intervals to roll back | rolled back later than the threshold rule |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|---|\n")
	for _, r := range rows {
		later := "–"
		if r.Rule == RuleSluice && r.Canary != Healthy {
			later = fmt.Sprint(r.Later)
		}
		fmt.Fprintf(&b, "| %g | %s | %s | %d | %d | %d / %d / %d | %s | %s | %s |\n",
			r.RPS, r.Canary.Name, r.Rule, r.Promoted, r.PromotedOnTime, r.ByErrors, r.ByLatency, r.BySilence,
			r.PromoteTime, r.RollbackTime, later)
	}
	return b.String()
}

// Goals returns the ways rows miss the goals of the analysis: at 10
// requests per second, a healthy canary promoted within the nominal time
// plus one interval in at least 999 of 1,000 rollouts, a bad one rolled back
// in at least 999 of 1,000 (by sluice, no later than the threshold rule);
// at 1 request per second no healthy canary rolled back, and a bad one
// rolled back in at least 999 of 1,000.
func Goals(rows []Row, rule string) []string {
	var misses []string
	for _, r := range rows {
		if r.Rule != rule {
			continue
		}
		miss := func(format string, a ...any) {
			misses = append(misses, fmt.Sprintf("%s, %g requests/s, %s: ", rule, r.RPS, r.Canary.Name)+fmt.Sprintf(format, a...))
		}
		need := r.N - r.N/1000
		switch {
		case r.RPS == 10 && r.Canary == Healthy:
			if r.PromotedOnTime < need {
				miss("promoted on time in %d of %d", r.PromotedOnTime, r.N)
			}
		case r.RPS == 10:
			if r.RolledBack() < need {
				miss("rolled back in %d of %d", r.RolledBack(), r.N)
			}
			if rule == RuleSluice && r.N-r.Later < need {
				miss("rolled back later than the threshold rule in %d of %d", r.Later, r.N)
			}
		case r.RPS == 1 && r.Canary == Healthy:
			if r.RolledBack() > 0 {
				miss("%d of %d rolled back (%d for errors, %d for latency, %d for silence)", r.RolledBack(), r.N, r.ByErrors, r.ByLatency, r.BySilence)
			}
		case r.RPS == 1:
			if r.RolledBack() < need {
				miss("rolled back in %d of %d", r.RolledBack(), r.N)
			}
		}
	}
	return misses
}
