package analysis

import (
	"errors"
	"math"
	"testing"
	"time"

	"k8s.io/utils/ptr"

	"sluice.dev/sluice/pkg/analysis/stats"
	"sluice.dev/sluice/pkg/canary"
)

var inf = math.Inf(1)

// histogram is a request-duration histogram of n requests: fast ones under
// 100ms and slow ones between 500ms and 1s.
func histogram(fast, slow float64) []stats.Bucket {
	return []stats.Bucket{{UpperBound: 100, Count: fast}, {UpperBound: 500, Count: fast}, {UpperBound: 1000, Count: fast + slow},
		{UpperBound: inf, Count: fast + slow}}
}

func TestGather(t *testing.T) {
	m := Measurement{
		Canary:  Sample{Requests: 600.4, Errors: 2.6, Durations: histogram(594, 6)},
		Primary: Sample{Requests: 5400, Errors: 27},
	}
	ev := Gather(canary.Evidence{Requests: 100, Errors: 1, TotalRequests: 300, TotalErrors: 2, TotalSlowRequests: 1}, m, 500*time.Millisecond)
	want := canary.Evidence{Requests: 700, Errors: 4, SlowRequests: 6, PrimaryRequests: 5400, PrimaryErrors: 27,
		TotalRequests: 900, TotalErrors: 5, TotalSlowRequests: 7}
	if ev != want {
		t.Errorf("gathered %+v; want %+v", ev, want)
	}
	for name, m := range map[string]Measurement{
		"blind":        {Err: errors.New("Prometheus query failed: timeout"), Canary: Sample{Requests: 10}},
		"unusable":     {Canary: Sample{Requests: math.NaN(), Errors: -3}, Primary: Sample{Requests: inf}},
		"no durations": {},
	} {
		if got := Gather(canary.Evidence{Requests: 5}, m, time.Second); got != (canary.Evidence{Requests: 5}) {
			t.Errorf("%s: gathered %+v; want nothing added", name, got)
		}
	}
}

// TestJudge: the built-in checks' verdicts on the evidence, with the values
// and the messages people read.
func TestJudge(t *testing.T) {
	checks := Builtin(canary.BuiltinDefaults().Settings())
	rate, duration := checks[0], checks[1]
	fast := Measurement{Canary: Sample{Durations: histogram(600, 0)}, Primary: Sample{Durations: histogram(5400, 0)}}
	slow := Measurement{Canary: Sample{Durations: histogram(540, 60)}}
	for _, tc := range []struct {
		name     string
		check    Check
		m        Measurement
		ev       canary.Evidence
		final    bool
		verdict  canary.Verdict
		decisive bool
		message  string
	}{
		{"1 error in 40 requests is no failure", rate, fast,
			canary.Evidence{Requests: 40, Errors: 1, TotalRequests: 40, TotalErrors: 1, PrimaryRequests: 360, PrimaryErrors: 2},
			false, canary.VerdictPassed, false, ""},
		{"1 error in 40 requests does not promote", rate, fast,
			canary.Evidence{Requests: 40, Errors: 1, TotalRequests: 40, TotalErrors: 1}, true, canary.VerdictInconclusive, false,
			"request-success-rate: not yet enough evidence to promote: error rate 2.5% (1 of 40), log-likelihood ratio 0.30 must fall to -4.60 to show it is below 3%"},
		{"too few requests", rate, fast, canary.Evidence{Requests: 12, TotalRequests: 12}, false, canary.VerdictInconclusive, false,
			"request-success-rate: not enough requests to judge: 12 at this weight, 30 needed"},
		{"5% errors on 600 requests", rate, fast,
			canary.Evidence{Requests: 600, Errors: 30, TotalRequests: 600, TotalErrors: 30}, false, canary.VerdictFailed, true,
			"request-success-rate: error rate 5% (30 of 600) since the analysis started is above the allowed 1% with confidence (log-likelihood ratio 21.33 ≥ 6.90)"},
		{"measurably worse than the primary", rate, fast,
			canary.Evidence{Requests: 30, Errors: 6, TotalRequests: 30, TotalErrors: 6, PrimaryRequests: 270, PrimaryErrors: 1},
			false, canary.VerdictFailed, false,
			"request-success-rate: canary error rate 20% (6 of 30) is measurably worse than the primary's 0.37% (1 of 270): p = 0.00021 < 0.001 against 2× the primary's rate"},
		{"fast requests", duration, fast, canary.Evidence{Requests: 600, TotalRequests: 600}, true, canary.VerdictPassed, false, ""},
		{"10% slow requests", duration, slow,
			canary.Evidence{Requests: 600, SlowRequests: 60, TotalRequests: 600, TotalSlowRequests: 60}, false, canary.VerdictFailed, true,
			"request-duration: slow request rate 10% (60 of 600) since the analysis started is above the allowed 1% with confidence (log-likelihood ratio 54.90 ≥ 6.90)"},
		{"blind", rate, Measurement{Err: errors.New("Prometheus query failed: timeout")}, canary.Evidence{Requests: 600, TotalRequests: 600},
			false, canary.VerdictBlind, false, "Prometheus query failed: timeout"},
		{"unknown metric", Check{Name: "error-budget", Metric: Metric(42)}, fast, canary.Evidence{}, false, canary.VerdictFailed, false,
			"check error-budget measures an unknown metric 42"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := tc.check.Judge(tc.m, tc.ev, tc.final)
			if st.Verdict != tc.verdict || st.Decisive != tc.decisive || st.Message != tc.message {
				t.Errorf("%s, decisive %t, %q\nwant %s, decisive %t, %q", st, st.Decisive, st.Message, tc.verdict, tc.decisive, tc.message)
			}
		})
	}
}

// TestJudgeReportsTheValues: the status carries the canary's and the
// primary's values, the bound and the sample count as numbers.
func TestJudgeReportsTheValues(t *testing.T) {
	checks := Builtin(canary.BuiltinDefaults().Settings())
	m := Measurement{Canary: Sample{Durations: histogram(600, 0)}, Primary: Sample{Durations: histogram(5400, 0)}}
	ev := canary.Evidence{Requests: 600, Errors: 3, TotalRequests: 600, TotalErrors: 3, PrimaryRequests: 5400, PrimaryErrors: 27}
	rate, duration := checks[0].Judge(m, ev, false), checks[1].Judge(m, ev, false)
	if got := rate.String(); got != "request-success-rate 99.50% (primary 99.50%, min 99%, 600 requests): Passed" {
		t.Errorf("success rate: %s", got)
	}
	if got := duration.String(); got != "request-duration 99ms (primary 99ms, max 500ms, 600 requests): Passed" {
		t.Errorf("duration: %s", got)
	}
	if *rate.Value != 99.5 || *rate.Min != 99 || *rate.Samples != 600 || *duration.Max != 500 || ptr.Deref(duration.Value, 0) != 99 {
		t.Errorf("values %+v, %+v", rate, duration)
	}
}
