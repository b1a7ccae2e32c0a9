package stats

import (
	"math"
	"math/rand/v2"
	"testing"
)

func TestSuccessRateJudge(t *testing.T) {
	nan, inf := math.NaN(), math.Inf(1)
	def := SuccessRateRule{MinSuccessRate: 99}
	tests := []struct {
		name string
		rule SuccessRateRule
		e    Evidence
		want Verdict
	}{
		{"1 error in 40 requests at 99% is not failed", def,
			Evidence{Canary: Counts{40, 1}, Primary: Counts{360, 2}, CanaryTotal: Counts{40, 1}}, Passed},
		{"1 error in 40 is not enough to promote", def,
			Evidence{Canary: Counts{40, 1}, Primary: Counts{360, 2}, CanaryTotal: Counts{40, 1}, Final: true}, Inconclusive},
		{"0 requests is inconclusive", def, Evidence{}, Inconclusive},
		{"0 requests at max weight is inconclusive", def, Evidence{Final: true}, Inconclusive},
		{"below min-requests is inconclusive", def,
			Evidence{Canary: Counts{29, 0}, CanaryTotal: Counts{29, 0}}, Inconclusive},
		{"29 errors in 29 requests waits for min-requests", def,
			Evidence{Canary: Counts{29, 29}, CanaryTotal: Counts{29, 29}}, Inconclusive},
		{"30 errors in 30 requests rolls back", def,
			Evidence{Canary: Counts{30, 30}, CanaryTotal: Counts{30, 30}}, RollBack},
		{"6 errors in 30 is not yet decisive", def,
			Evidence{Canary: Counts{30, 6}, CanaryTotal: Counts{30, 6}}, Passed},
		{"7 errors in 30 rolls back", def,
			Evidence{Canary: Counts{30, 7}, CanaryTotal: Counts{30, 7}}, RollBack},
		{"6 errors in 30 against a clean primary fails a check", def,
			Evidence{Canary: Counts{30, 6}, Primary: Counts{270, 1}, CanaryTotal: Counts{30, 6}}, Failed},
		{"5% errors on 600 requests rolls back", def,
			Evidence{Canary: Counts{600, 30}, Primary: Counts{5400, 27}, CanaryTotal: Counts{600, 30}}, RollBack},
		{"3% vs primary 0.5% on big counts rolls back at 99%", def,
			Evidence{Canary: Counts{100000, 3000}, Primary: Counts{900000, 4500}, CanaryTotal: Counts{100000, 3000}}, RollBack},
		{"3% vs primary 0.5% on big counts fails at 90%", SuccessRateRule{MinSuccessRate: 90},
			Evidence{Canary: Counts{100000, 3000}, Primary: Counts{900000, 4500}, CanaryTotal: Counts{100000, 3000}}, Failed},
		{"0.6% vs primary 0.5% on 100k requests passes", def,
			Evidence{Canary: Counts{100000, 600}, Primary: Counts{900000, 4500}, CanaryTotal: Counts{100000, 600}}, Passed},
		{"0.6% vs primary 0.5% on 100k requests promotes", def,
			Evidence{Canary: Counts{100000, 600}, Primary: Counts{900000, 4500}, CanaryTotal: Counts{100000, 600}, Final: true}, Passed},
		{"0.5% on 600 requests since the start promotes", def,
			Evidence{Canary: Counts{300, 1}, Primary: Counts{300, 2}, CanaryTotal: Counts{600, 3}, Final: true}, Passed},
		{"1.2% on 1000 requests promotes: inside the indifference zone", def,
			Evidence{Canary: Counts{1000, 12}, CanaryTotal: Counts{1000, 12}, Final: true}, Passed},
		{"2% on 1000 requests is neither promoted nor rolled back", def,
			Evidence{Canary: Counts{1000, 20}, CanaryTotal: Counts{1000, 20}, Final: true}, Inconclusive},
		{"a missing total falls back to the step's counts", def,
			Evidence{Canary: Counts{600, 30}}, RollBack},
		{"non-integer counts are rounded", def,
			Evidence{Canary: Counts{59.6, 0.4}, CanaryTotal: Counts{59.6, 0.4}}, Passed},
		{"NaN counts are no evidence", def,
			Evidence{Canary: Counts{nan, nan}, Primary: Counts{nan, nan}, CanaryTotal: Counts{nan, nan}, Final: true}, Inconclusive},
		{"negative counts are no evidence", def,
			Evidence{Canary: Counts{-50, -1}, Primary: Counts{-1, 5}, CanaryTotal: Counts{-50, -1}}, Inconclusive},
		{"infinite counts are no evidence", def,
			Evidence{Canary: Counts{inf, 1}, Primary: Counts{inf, inf}, CanaryTotal: Counts{inf, inf}}, Inconclusive},
		{"more errors than requests count as all errors", def,
			Evidence{Canary: Counts{50, 80}, CanaryTotal: Counts{50, 80}}, RollBack},
		{"primary without requests is not compared", def,
			Evidence{Canary: Counts{30, 6}, Primary: Counts{0, 3}, CanaryTotal: Counts{30, 6}}, Passed},
		{"zero rule takes defaults", SuccessRateRule{},
			Evidence{Canary: Counts{40, 1}, CanaryTotal: Counts{40, 1}}, Passed},
		{"invalid settings take defaults", SuccessRateRule{MinSuccessRate: nan, Test: Test{MinRequests: -1, BadFactor: nan, Alpha: 2, Beta: inf}, PrimaryRatio: -3, PrimaryAlpha: nan},
			Evidence{Canary: Counts{600, 30}, CanaryTotal: Counts{600, 30}}, RollBack},
		{"min-success-rate 100 does not divide by zero", SuccessRateRule{MinSuccessRate: 100},
			Evidence{Canary: Counts{1000, 0}, CanaryTotal: Counts{1000, 0}}, Passed},
		{"min-success-rate below 50 is clamped", SuccessRateRule{MinSuccessRate: 30},
			Evidence{Canary: Counts{100, 50}, CanaryTotal: Counts{100, 50}}, Passed},
		{"negative min-success-rate takes the default", SuccessRateRule{MinSuccessRate: -20},
			Evidence{Canary: Counts{100, 50}, CanaryTotal: Counts{100, 50}}, RollBack},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, d := tc.rule.Judge(tc.e)
			if got != tc.want {
				t.Errorf("got %v, want %v: %s (%+v)", got, tc.want, d, d)
			}
			if d.String() == "" {
				t.Error("empty detail")
			}
		})
	}
}

func TestLatencyJudge(t *testing.T) {
	r := LatencyRule{MaxMs: 500}
	tests := []struct {
		name string
		e    Evidence
		want Verdict
	}{
		{"no requests", Evidence{}, Inconclusive},
		{"below min-requests", Evidence{Canary: Counts{20, 0}, CanaryTotal: Counts{20, 0}}, Inconclusive},
		{"one slow request in 30 is not failed", Evidence{Canary: Counts{30, 1}, CanaryTotal: Counts{30, 1}}, Passed},
		{"promotion needs evidence", Evidence{Canary: Counts{30, 0}, CanaryTotal: Counts{30, 0}, Final: true}, Inconclusive},
		{"promotion with evidence", Evidence{Canary: Counts{300, 0}, CanaryTotal: Counts{300, 0}, Final: true}, Passed},
		{"6% slow of 600 rolls back", Evidence{Canary: Counts{600, 36}, CanaryTotal: Counts{600, 36}}, RollBack},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got, d := r.Judge(tc.e); got != tc.want {
				t.Errorf("got %v, want %v: %s", got, tc.want, d)
			}
		})
	}
	if got, _ := (LatencyRule{Quantile: math.NaN(), Test: Test{Alpha: -1}}).Judge(Evidence{Canary: Counts{600, 36}}); got != RollBack {
		t.Errorf("invalid settings: got %v, want defaults' %v", got, RollBack)
	}
}

func TestBinomialUpperTail(t *testing.T) {
	for _, n := range []float64{1, 2, 7, 40, 300} {
		for _, p := range []float64{0.001, 0.18, 0.5, 0.93} {
			pmf := make([]float64, int(n)+1)
			for i := range pmf {
				lc, _ := math.Lgamma(n + 1)
				a, _ := math.Lgamma(float64(i) + 1)
				b, _ := math.Lgamma(n - float64(i) + 1)
				pmf[i] = math.Exp(lc - a - b + float64(i)*math.Log(p) + (n-float64(i))*math.Log1p(-p))
			}
			for x := 0; x <= int(n)+1; x++ {
				want := 0.0
				for i := x; i <= int(n); i++ {
					want += pmf[i]
				}
				if got := binomialUpperTail(float64(x), n, p); math.Abs(got-want) > 1e-12+1e-9*want {
					t.Errorf("P(X≥%d | n=%g, p=%g) = %g, want %g", x, n, p, got, want)
				}
			}
		}
	}
}

// istioBucketsMs are the upper bounds of Istio's default request-duration
// histogram (istio_request_duration_milliseconds), without +Inf.
var istioBucketsMs = []float64{0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 300000, 600000, 1800000, 3600000}

func buckets(counts ...float64) []Bucket {
	b := make([]Bucket, len(counts))
	for i, c := range counts {
		b[i] = Bucket{math.Inf(1), c}
		if i < len(istioBucketsMs) {
			b[i].UpperBound = istioBucketsMs[i]
		}
	}
	return b
}

func TestHistogramQuantile(t *testing.T) {
	h := []Bucket{{1000, 100}, {math.Inf(1), 100}, {100, 50}, {500, 99}, {250, 90}} // unsorted on purpose
	tests := []struct {
		name string
		q    float64
		b    []Bucket
		want float64
	}{
		{"rank on a bucket bound", 0.99, h, 500},
		{"interpolated", 0.995, h, 750},
		{"first bucket starts at 0", 0.25, h, 50},
		{"rank in +Inf bucket", 0.99, []Bucket{{500, 10}, {math.Inf(1), 20}}, 500},
		{"q > 1", 1.5, h, math.Inf(1)},
		{"q < 0", -1, h, math.Inf(-1)},
	}
	for _, tc := range tests {
		if got := HistogramQuantile(tc.q, tc.b); got != tc.want {
			t.Errorf("%s: got %g, want %g", tc.name, got, tc.want)
		}
	}
	for name, b := range map[string][]Bucket{
		"no data":   buckets(0, 0, 0),
		"no +Inf":   {{100, 1}, {200, 2}},
		"empty":     nil,
		"NaN count": {{100, math.NaN()}, {math.Inf(1), math.NaN()}},
	} {
		if got := HistogramQuantile(0.99, b); !math.IsNaN(got) {
			t.Errorf("%s: got %g, want NaN", name, got)
		}
		if got := SlowerThan(500, b); got.Requests != 0 {
			t.Errorf("%s: SlowerThan = %+v, want no requests", name, got)
		}
	}
	if got := HistogramQuantile(math.NaN(), h); !math.IsNaN(got) {
		t.Errorf("NaN q: got %g", got)
	}
}

// SlowerThan must agree with histogram_quantile: P99 > max exactly when
// more than 1% of the requests are slower than max.
func TestSlowerThanAgreesWithHistogramQuantile(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for range 20000 {
		counts := make([]float64, len(istioBucketsMs)+1)
		cum := 0.0
		for i := range counts {
			if rng.IntN(3) == 0 {
				cum += float64(rng.IntN(50))
			}
			counts[i] = cum
		}
		b := buckets(counts...)
		maxMs := istioBucketsMs[rng.IntN(len(istioBucketsMs))]
		if rng.IntN(2) == 0 {
			maxMs *= 0.3 + rng.Float64()
		}
		p99, slow := HistogramQuantile(0.99, b), SlowerThan(maxMs, b)
		if cum == 0 {
			if !math.IsNaN(p99) || slow.Requests != 0 {
				t.Fatalf("no data: p99 %g, slow %+v", p99, slow)
			}
			continue
		}
		frac := slow.Errors / slow.Requests
		if math.Abs(frac-0.01) < 1e-9 || math.Abs(p99-maxMs) < 1e-9*maxMs {
			continue // on the boundary both sides are right
		}
		if (p99 > maxMs) != (frac > 0.01) {
			t.Fatalf("max %g: P99 %g but %.4f slower (%+v) in %v", maxMs, p99, frac, slow, counts)
		}
	}
}

// TestErrorBounds checks what min-success-rate means, by Monte Carlo on the
// real Judge with a look every 60 requests: a canary exactly at the allowed
// error rate (1%) is ever rolled back in at most α/(1-β) of rollouts however
// long it is watched, and one at BadFactor × that rate (3%) is ever allowed to
// promote in at most β/(1-α).
func TestErrorBounds(t *testing.T) {
	if testing.Short() {
		t.Skip("Monte Carlo")
	}
	const runs, horizon, look = 10000, 12000, 60
	r := SuccessRateRule{MinSuccessRate: 99}
	rng := rand.New(rand.NewPCG(3, 4))
	count := func(p float64, stop Verdict) int {
		hits := 0
		for range runs {
			var c Counts
			for c.Requests < horizon {
				for range look {
					c.Requests++
					if rng.Float64() < p {
						c.Errors++
					}
				}
				v, _ := r.Judge(Evidence{Canary: c, CanaryTotal: c, Final: true})
				if v == stop {
					hits++
				}
				if v == stop || v == RollBack {
					break // decided, or rolled back: can no longer be promoted
				}
			}
		}
		return hits
	}
	// Expected counts under the bounds are 10.1 and 101; allow for noise.
	if n := count(0.01, RollBack); n > 20 {
		t.Errorf("canary at 1%% errors rolled back in %d of %d runs, bound α/(1-β) ≈ 0.1%%", n, runs)
	} else {
		t.Logf("canary at 1%% errors rolled back in %d of %d runs", n, runs)
	}
	if n := count(0.03, Passed); n > 150 {
		t.Errorf("canary at 3%% errors promoted in %d of %d runs, bound β/(1-α) ≈ 1%%", n, runs)
	} else {
		t.Logf("canary at 3%% errors promotable in %d of %d runs", n, runs)
	}
}
