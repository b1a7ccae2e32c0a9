package main

import (
	"flag"
	"testing"

	"sluice.dev/sluice/pkg/canary"
)

var rollouts = flag.Int("rollouts", 1000, "rollouts per simulated row")

// TestGoals runs the seeded simulation with the default settings and checks
// the goals against sluice's rows. The threshold rule must miss some of them
// on the same traffic, or the simulation would not show what sluice solves.
func TestGoals(t *testing.T) {
	rows := Simulate(canary.BuiltinDefaults().Settings(), 0, *rollouts, []float64{1, 10, 100}, []Model{Healthy, BadErrors, BadLatency})
	t.Logf("%d rollouts per row\n%s", *rollouts, Markdown(rows))
	for _, miss := range Goals(rows, RuleSluice) {
		t.Error(miss)
	}
	misses := Goals(rows, RuleThreshold)
	if len(misses) == 0 {
		t.Error("the threshold rule meets every goal: the simulation does not show the problem")
	}
	for _, miss := range misses {
		t.Log("expected:", miss)
	}
}

// TestSameTraffic: both rules, at the same weight in the same interval, see
// the same requests; another weight splits the same requests otherwise.
func TestSameTraffic(t *testing.T) {
	interval := canary.BuiltinDefaults().Interval
	a, b := newTraffic(7, 10, interval, Healthy).window(3, 20), newTraffic(7, 10, interval, BadErrors).window(3, 20)
	if a.Canary.Requests != b.Canary.Requests || a.Primary.Requests != b.Primary.Requests || a.Primary.Errors != b.Primary.Errors ||
		a.Canary.Errors > b.Canary.Errors {
		t.Errorf("windows differ: %+v vs %+v", a, b)
	}
	c := newTraffic(7, 10, interval, Healthy).window(3, 50)
	if c.Canary.Requests+c.Primary.Requests != a.Canary.Requests+a.Primary.Requests {
		t.Error("a weight change changed the requests reaching the service")
	}
}

// TestSilenceRollsBackAtTheEvidenceDeadline: a canary without requests is
// held, then rolled back for silence exactly at the evidence deadline.
func TestSilenceRollsBackAtTheEvidenceDeadline(t *testing.T) {
	s := canary.BuiltinDefaults().Settings()
	r := sluice(newTraffic(1, 1e-9, s.Interval.Duration, Healthy), s)
	if want := int(s.EvidenceDeadline.Duration / s.Interval.Duration); r.Promoted || r.Cause != BySilence || r.Intervals != want {
		t.Errorf("%+v; want a rollback for silence after %d intervals", r, want)
	}
}
