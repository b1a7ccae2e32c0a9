package analysis

import (
	"errors"
	"math"
	"slices"
	"testing"
	"time"

	"k8s.io/utils/ptr"

	"sluice.dev/sluice/pkg/canary"
)

// checkout is a custom check: the canary's checkout rate may be
// at most 10% below its primary's, and at least 1 per second.
var checkout = canary.CheckSpec{
	Name:    "checkout-rate",
	Query:   `sum(rate(checkouts_total{namespace="{{.Namespace}}",workload="{{.Workload}}"}[{{.Window}}]))`,
	Unit:    "/s",
	Min:     ptr.To(1.0),
	Compare: &canary.Comparison{Against: "primary", Better: "higher", MaxRelativeDegradation: ptr.To(10.0)},
}

// TestChecksRender: the built-in checks a policy leaves on, and the custom
// ones rendered for the canary and the primary; the rendered PromQL of the
// example check, exactly.
func TestChecksRender(t *testing.T) {
	s := canary.BuiltinDefaults().Settings()
	s.Checks = []canary.CheckSpec{{Name: RequestDuration, Disabled: true}, checkout, {Name: "off", Query: "up", Min: ptr.To(1.0), Disabled: true}}
	checks := Checks(s, VarsFor("shop", "web", time.Minute))
	var names []string
	for _, c := range checks {
		names = append(names, c.Name)
	}
	if !slices.Equal(names, []string{SuccessRate, "checkout-rate"}) {
		t.Fatalf("checks %v; want the success rate and the checkout rate", names)
	}
	c := checks[1]
	if want := `sum(rate(checkouts_total{namespace="shop",workload="web-canary"}[1m]))`; c.CanaryQuery != want {
		t.Errorf("canary query\n  %s\nwant\n  %s", c.CanaryQuery, want)
	}
	if want := `sum(rate(checkouts_total{namespace="shop",workload="web"}[1m]))`; c.PrimaryQuery != want {
		t.Errorf("primary query\n  %s\nwant\n  %s", c.PrimaryQuery, want)
	}
	if got := Queries(checks); !slices.Equal(got, []string{c.CanaryQuery, c.PrimaryQuery}) {
		t.Errorf("queries %v", got)
	}
}

func TestRender(t *testing.T) {
	v := VarsFor("shop", "web", 90*time.Second).For("web-canary")
	for _, tc := range []struct{ query, want, err string }{
		{`up{namespace="{{.Namespace}}",deployment="{{.Deployment}}",canary="{{.Canary}}",primary="{{.Primary}}"}[{{.Window}}]`,
			`up{namespace="shop",deployment="web",canary="web-canary",primary="web"}[1m30s]`, ""},
		{"{{.Nope}}", "", `render the query template: template: query:1:2: executing "query" at <.Nope>: can't evaluate field Nope in type analysis.Vars`},
		{"{{.Namespace", "", "parse the query template: template: query:1: unclosed action"},
	} {
		got, err := Render(tc.query, v)
		if got != tc.want || (err == nil) != (tc.err == "") || err != nil && err.Error() != tc.err {
			t.Errorf("Render(%q) = %q, %v; want %q, %q", tc.query, got, err, tc.want, tc.err)
		}
	}
}

// TestJudgeCustomChecks: bounds and the comparison with the primary fail a
// check (counted, never decisive); no number is inconclusive; a query
// Prometheus did not answer is blind.
func TestJudgeCustomChecks(t *testing.T) {
	s := canary.BuiltinDefaults().Settings()
	s.Checks = []canary.CheckSpec{checkout}
	c := Checks(s, VarsFor("shop", "web", time.Minute))[2]
	values := func(canaryValue, primaryValue float64) map[string]Value {
		return map[string]Value{c.CanaryQuery: {V: canaryValue, Series: 1}, c.PrimaryQuery: {V: primaryValue, Series: 1}}
	}
	for _, tc := range []struct {
		name    string
		values  map[string]Value
		verdict canary.Verdict
		message string
	}{
		{"as good as the primary", values(9.5, 10), canary.VerdictPassed, ""},
		{"below the minimum", values(0.5, 0.5), canary.VerdictFailed, "checkout-rate: 0.5/s < 1/s"},
		{"worse than the primary by more than 10%", values(8, 10), canary.VerdictFailed,
			"checkout-rate: 8/s is worse than the primary's 10/s by 2/s, more than the 1/s allowed"},
		{"no data for the canary", values(math.NaN(), 10), canary.VerdictInconclusive, "checkout-rate: no data for the canary"},
		{"no data for the primary", values(9, math.NaN()), canary.VerdictInconclusive, "checkout-rate: no data for the primary"},
		{"several series", map[string]Value{c.CanaryQuery: {V: math.NaN(), Series: 3}}, canary.VerdictInconclusive,
			"checkout-rate: the canary query gives 3 series; a check needs one number: aggregate it, with sum or max"},
		{"Prometheus refused the query", map[string]Value{c.CanaryQuery: {V: math.NaN(), Err: errors.New("Prometheus query failed: bad_data: parse error")}},
			canary.VerdictBlind, "checkout-rate: Prometheus query failed: bad_data: parse error"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := c.Judge(Measurement{Values: tc.values}, canary.Evidence{}, false)
			if st.Verdict != tc.verdict || st.Message != tc.message || st.Decisive {
				t.Errorf("%s, %q, decisive %t; want %s, %q", st, st.Message, st.Decisive, tc.verdict, tc.message)
			}
		})
	}
	bad := Check{Name: "typo", Metric: MetricQuery, RenderErr: errors.New("render the query template: boom")}
	if st := bad.Judge(Measurement{}, canary.Evidence{}, false); st.Verdict != canary.VerdictBlind ||
		st.Message != "typo: the query does not render: render the query template: boom" {
		t.Errorf("%s, %q", st, st.Message)
	}
}
