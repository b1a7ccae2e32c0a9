// Package stats holds sluice's statistical verdicts for the built-in
// request-success-rate and request-duration checks.
//
// Both checks judge a fraction of "bad" requests (5xx responses, or requests
// slower than max-request-duration) with Wald's sequential probability ratio
// test (SPRT; A. Wald, "Sequential Tests of Statistical Hypotheses", Annals of
// Mathematical Statistics 16(2), 1945) on the canary's counts since the
// analysis started. The likelihood ratio of an SPRT is a martingale, so by
// Ville's inequality its error bounds hold however often it is looked at: it
// can be evaluated every interval for as long as a rollout lasts.
//
// The success-rate check also compares the canary with the primary over the
// same period with the conditional binomial test for two Poisson rates
// (J. Przyborowski and H. Wilenski, "Homogeneity of results in testing
// samples from Poisson series", Biometrika 31, 1940).
package stats

import (
	"fmt"
	"math"
)

// Counts are request counts as Prometheus returns them. They are float64
// because increase() extrapolates to non-integers; judges round them to the
// nearest integer and treat NaN, ±Inf and negative values as 0.
type Counts struct {
	Requests float64
	Errors   float64 // 5xx responses, or slow requests for the latency check
}

// whole returns c as integer counts with errors ≤ requests.
func (c Counts) whole() (n, k float64) {
	n = math.Round(finite(c.Requests))
	k = math.Min(math.Round(finite(c.Errors)), n)
	return n, k
}

func finite(x float64) float64 {
	if math.IsNaN(x) || math.IsInf(x, 0) || x < 0 {
		return 0
	}
	return x
}

// Verdict is the outcome of judging one step.
type Verdict int

const (
	// Inconclusive: not enough evidence. Hold the weight, count nothing,
	// judge again next interval on the accumulated counts. The zero value,
	// so that a forgotten verdict never advances a canary.
	Inconclusive Verdict = iota
	// Passed: advance to the next weight, or promote after the max weight.
	Passed
	// Failed: a failed check. Hold the weight, FailedChecks++, roll back
	// when FailedChecks reaches the threshold.
	Failed
	// RollBack: decisive evidence that the canary is worse than allowed.
	// Roll back now, whatever FailedChecks is.
	RollBack
)

func (v Verdict) String() string {
	switch v {
	case Passed:
		return "passed"
	case Failed:
		return "failed"
	case RollBack:
		return "roll back"
	default:
		return "inconclusive"
	}
}

// Evidence is what a check is judged on. All counts must cover disjoint,
// consecutive periods when they are summed: query increase() over the time
// since the previous analysis, not over an overlapping window.
type Evidence struct {
	// Canary and Primary: counts since the step's evidence began, i.e. since
	// the canary reached its current weight or since the step's last
	// counted failed check, whichever is later. Inconclusive intervals add
	// up here.
	Canary, Primary Counts
	// CanaryTotal: the canary's counts since the analysis started; never
	// reset within a rollout (the canary runs the same build at every weight).
	CanaryTotal Counts
	// Final: the step is at max weight, so passing it promotes.
	Final bool
}

// Test holds the settings of the sequential test. A zero or invalid field
// takes its default (see DefaultTest).
type Test struct {
	// MinRequests: a step needs this many canary requests since its evidence
	// began to pass, and the canary this many since the analysis started to
	// be rolled back. Below it a check is Inconclusive.
	MinRequests float64
	// BadFactor: the SPRT's alternative is BadFactor × the allowed fraction.
	BadFactor float64
	// Alpha bounds the probability that a canary exactly at the allowed
	// fraction (or better) is ever rolled back; Beta the probability that a
	// canary at BadFactor × the allowed fraction (or worse) is promoted.
	Alpha, Beta float64
}

// DefaultTest: see DESIGN.md for why.
var DefaultTest = Test{MinRequests: 30, BadFactor: 3, Alpha: 0.001, Beta: 0.01}

func (t Test) withDefaults() Test {
	d := DefaultTest
	if !(t.MinRequests > 0) || math.IsInf(t.MinRequests, 0) {
		t.MinRequests = d.MinRequests
	}
	if !(t.BadFactor > 1) || math.IsInf(t.BadFactor, 0) {
		t.BadFactor = d.BadFactor
	}
	if !(t.Alpha > 0 && t.Alpha < 0.5) {
		t.Alpha = d.Alpha
	}
	if !(t.Beta > 0 && t.Beta < 0.5) {
		t.Beta = d.Beta
	}
	return t
}

// Detail carries the numbers behind a verdict, for events and logs.
type Detail struct {
	Verdict Verdict
	What    string // "error" or "slow request"
	// Allowed and Bad: the SPRT's null and alternative fractions.
	Allowed, Bad float64
	// Requests, Errors: the canary since the step's evidence began.
	Requests, Errors float64
	// TotalRequests, TotalErrors: the canary since the analysis started.
	TotalRequests, TotalErrors float64
	// LogLR is the SPRT's log-likelihood ratio on the totals; it rolls back
	// at Reject or above and, at max weight, promotes at Accept or below.
	LogLR, Accept, Reject float64
	MinRequests           float64
	// Primary comparison (success rate only): counts since the step's
	// evidence began and the one-sided p-value (NaN when not computed).
	PrimaryRequests, PrimaryErrors, PrimaryP float64
	PrimaryRatio, PrimaryAlpha               float64
}

func (d Detail) String() string {
	pct := func(k, n float64) string { return fmt.Sprintf("%.3g%% (%.0f of %.0f)", 100*k/max(n, 1), k, n) }
	switch {
	case d.Verdict == RollBack:
		return fmt.Sprintf("%s rate %s since the analysis started is above the allowed %.3g%% with confidence (log-likelihood ratio %.2f ≥ %.2f)",
			d.What, pct(d.TotalErrors, d.TotalRequests), 100*d.Allowed, d.LogLR, d.Reject)
	case d.Verdict == Failed:
		return fmt.Sprintf("canary %s rate %s is measurably worse than the primary's %s: p = %.2g < %.2g against %.3g× the primary's rate",
			d.What, pct(d.Errors, d.Requests), pct(d.PrimaryErrors, d.PrimaryRequests), d.PrimaryP, d.PrimaryAlpha, d.PrimaryRatio)
	case d.Requests < d.MinRequests:
		return fmt.Sprintf("not enough requests to judge: %.0f at this weight, %.0f needed", d.Requests, d.MinRequests)
	case d.Verdict == Inconclusive:
		return fmt.Sprintf("not yet enough evidence to promote: %s rate %s, log-likelihood ratio %.2f must fall to %.2f to show it is below %.3g%%",
			d.What, pct(d.TotalErrors, d.TotalRequests), d.LogLR, d.Accept, 100*d.Bad)
	default:
		return fmt.Sprintf("%s rate %s at this weight, %s since the analysis started",
			d.What, pct(d.Errors, d.Requests), pct(d.TotalErrors, d.TotalRequests))
	}
}

// judge runs the sequential test of "the canary's bad fraction is at most
// allowed" on e.
func (t Test) judge(allowed float64, what string, e Evidence) Detail {
	t = t.withDefaults()
	// Keep both hypotheses inside (0, 1) whatever the user configured.
	p0 := min(max(allowed, 1e-6), 0.5)
	p1 := min(t.BadFactor*p0, (1+p0)/2)
	n, k := e.Canary.whole()
	nt, kt := e.CanaryTotal.whole()
	if nt < n { // a caller that keeps no total still gets a sound, slower test
		nt, kt = n, k
	}
	d := Detail{
		What: what, Allowed: p0, Bad: p1, MinRequests: t.MinRequests,
		Requests: n, Errors: k, TotalRequests: nt, TotalErrors: kt,
		LogLR:    kt*math.Log(p1/p0) + (nt-kt)*math.Log((1-p1)/(1-p0)),
		Accept:   math.Log(t.Beta / (1 - t.Alpha)),
		Reject:   math.Log((1 - t.Beta) / t.Alpha),
		PrimaryP: math.NaN(),
	}
	switch {
	case d.LogLR >= d.Reject && nt >= t.MinRequests:
		d.Verdict = RollBack
	case n < t.MinRequests:
		d.Verdict = Inconclusive
	case e.Final && d.LogLR > d.Accept:
		d.Verdict = Inconclusive // promotion needs the SPRT to accept
	default:
		d.Verdict = Passed
	}
	return d
}

// SuccessRateRule is the built-in request-success-rate check.
type SuccessRateRule struct {
	// MinSuccessRate in percent: the canary's error fraction is allowed to
	// be 1-MinSuccessRate/100. Zero or invalid (≤ 0, NaN, ±Inf) means the
	// default 99; otherwise clamped to [50, 99.9999].
	MinSuccessRate float64
	Test
	// PrimaryRatio: the canary fails a check when its error rate is, with
	// one-sided confidence 1-PrimaryAlpha, more than PrimaryRatio times the
	// primary's over the same period (defaults 2 and 0.001).
	PrimaryRatio, PrimaryAlpha float64
}

// Judge returns the verdict of the success-rate check on e.
func (r SuccessRateRule) Judge(e Evidence) (Verdict, Detail) {
	msr := r.MinSuccessRate
	if !(msr > 0) || math.IsInf(msr, 0) {
		msr = 99
	}
	d := r.Test.judge(1-msr/100, "error", e)
	rho, a := r.PrimaryRatio, r.PrimaryAlpha
	if !(rho >= 1) || math.IsInf(rho, 0) {
		rho = 2
	}
	if !(a > 0 && a < 0.5) {
		a = 0.001
	}
	d.PrimaryRatio, d.PrimaryAlpha = rho, a
	d.PrimaryRequests, d.PrimaryErrors = e.Primary.whole()
	n, k, m, j := d.Requests, d.Errors, d.PrimaryRequests, d.PrimaryErrors
	if d.Verdict != RollBack && n >= d.MinRequests && m > 0 && k*m > j*n {
		// Given k+j errors, the canary's share is Binomial(k+j, π) with
		// π = ρn/(ρn+m) when its rate is ρ× the primary's (rare errors).
		d.PrimaryP = binomialUpperTail(k, k+j, rho*n/(rho*n+m))
		if d.PrimaryP < a {
			d.Verdict = Failed
		}
	}
	return d.Verdict, d
}

// LatencyRule is the built-in request-duration check: "P99 ≤ MaxMs" is judged
// as "at most 1% of the canary's requests are slower than MaxMs", which is the
// same statement (exactly so for histogram_quantile, see SlowerThan), with the
// same sequential test as the success rate.
type LatencyRule struct {
	MaxMs    float64 // max-request-duration, used by the caller's SlowerThan
	Quantile float64 // default 0.99
	Test
}

// Judge returns the verdict of the latency check on e, whose Errors are the
// requests slower than MaxMs (from SlowerThan).
func (r LatencyRule) Judge(e Evidence) (Verdict, Detail) {
	q := r.Quantile
	if !(q > 0 && q < 1) {
		q = 0.99
	}
	d := r.Test.judge(1-q, "slow request", e)
	return d.Verdict, d
}

// binomialUpperTail returns P(X ≥ x) for X ~ Binomial(n, p), 0 < p < 1, x and
// n whole. It sums pmf terms outward from x, away from the mode, until they
// no longer matter, so its cost grows with the spread, not with n.
func binomialUpperTail(x, n, p float64) float64 {
	if x <= 0 {
		return 1
	}
	if x > n {
		return 0
	}
	lg := func(v float64) float64 { r, _ := math.Lgamma(v); return r }
	logC := lg(n + 1)
	pmf := func(i float64) float64 {
		return math.Exp(logC - lg(i+1) - lg(n-i+1) + i*math.Log(p) + (n-i)*math.Log1p(-p))
	}
	sum := func(from, step, stop float64) float64 {
		s := 0.0
		for i := from; i != stop+step; i += step {
			t := pmf(i)
			s += t
			if t <= s*1e-17 {
				break
			}
		}
		return s
	}
	if mode := math.Floor((n + 1) * p); x > mode {
		return min(sum(x, 1, n), 1)
	}
	return max(1-sum(x-1, -1, 0), 0)
}
