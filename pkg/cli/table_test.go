package cli

import (
	"bytes"
	"slices"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"sluice.dev/sluice/pkg/canary"
)

func TestBar(t *testing.T) {
	cases := []struct {
		weight int32
		width  int
		want   string
	}{
		{0, 10, "[..........]   0%"},
		{40, 10, "[####......]  40%"},
		{45, 10, "[####......]  45%"},
		{100, 10, "[##########] 100%"},
		{20, 20, "[####................]  20%"},
		{120, 10, "[##########] 120%"},
	}
	for _, tc := range cases {
		if got := Bar(tc.weight, tc.width); got != tc.want {
			t.Errorf("Bar(%d, %d) = %q; want %q", tc.weight, tc.width, got, tc.want)
		}
	}
}

func TestStepOf(t *testing.T) {
	cases := []struct {
		name       string
		weights    []int32
		maxWeight  int32
		phase      canary.Phase
		weight     int32
		wantSteps  []int32
		wantStepOf string
	}{
		{"step-weight 20, max-weight 70", []int32{20, 40, 60, 80}, 70, canary.PhaseProgressing, 40, []int32{20, 40, 60, 80}, "2/4"},
		{"the canary starts", []int32{20, 40, 60, 80}, 70, canary.PhaseProgressing, 0, []int32{20, 40, 60, 80}, "0/4"},
		{"promoting at the last step", []int32{20, 40, 60, 80}, 70, canary.PhasePromoting, 80, []int32{20, 40, 60, 80}, "4/4"},
		{"weights past max-weight are never taken", []int32{5, 10, 50, 80, 100}, 50, canary.PhaseWaitingPromotion, 50, []int32{5, 10, 50}, "3/3"},
		{"waiting for confirmation", []int32{10, 20}, 20, canary.PhaseWaiting, 0, []int32{10, 20}, "0/2"},
		{"no rollout", []int32{10, 20}, 20, canary.PhaseSucceeded, 0, []int32{10, 20}, "-"},
		{"no status yet", []int32{10, 20}, 20, "", 0, []int32{10, 20}, "-"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cr := &canary.Canary{Spec: canary.CanarySpec{Settings: canary.Settings{StepWeights: tc.weights, MaxWeight: tc.maxWeight}},
				Status: canary.CanaryStatus{Phase: tc.phase, CanaryWeight: tc.weight}}
			if got := Steps(cr.Spec.Settings); !slices.Equal(got, tc.wantSteps) {
				t.Errorf("Steps = %v; want %v", got, tc.wantSteps)
			}
			if got := StepOf(cr); got != tc.wantStepOf {
				t.Errorf("StepOf = %s; want %s", got, tc.wantStepOf)
			}
		})
	}
}

func TestStage(t *testing.T) {
	ab := canary.Settings{StepWeights: []int32{20, 40}, MaxWeight: 40, Iterations: 3,
		Match: []canary.RequestMatch{{Headers: []canary.HeaderMatch{{Name: "x-canary", Value: "insider"}}}}}
	mirror := canary.Settings{StepWeights: []int32{20, 40}, MaxWeight: 40, Iterations: 2, Mirror: true, MirrorPercent: 100}
	cases := []struct {
		name       string
		settings   canary.Settings
		phase      canary.Phase
		weight     int32
		iterations int32
		want       string
	}{
		{"A/B test under way", ab, canary.PhaseProgressing, 0, 2, "A/B 2/3"},
		{"A/B test promoting", ab, canary.PhasePromoting, 0, 3, "A/B 3/3"},
		{"A/B test over", ab, canary.PhaseSucceeded, 0, 3, "-"},
		{"mirroring", mirror, canary.PhaseProgressing, 0, 1, "mirror 1/2"},
		{"mirrored, before the first step", mirror, canary.PhaseProgressing, 0, 2, "0/2"},
		{"weights after the mirror", mirror, canary.PhaseProgressing, 20, 2, "1/2"},
		{"weights only", canary.Settings{StepWeights: []int32{20, 40}, MaxWeight: 40}, canary.PhaseProgressing, 40, 0, "2/2"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cr := &canary.Canary{Spec: canary.CanarySpec{Settings: tc.settings},
				Status: canary.CanaryStatus{Phase: tc.phase, CanaryWeight: tc.weight, Iterations: tc.iterations}}
			if got := stage(cr); got != tc.want {
				t.Errorf("stage = %q; want %q", got, tc.want)
			}
		})
	}
}

func TestCompactChecks(t *testing.T) {
	got := compactChecks([]canary.CheckStatus{
		{Name: "request-success-rate", Verdict: canary.VerdictPassed},
		{Name: "request-duration", Verdict: canary.VerdictFailed},
		{Name: "checkout-conversion", Verdict: canary.VerdictInconclusive},
		{Name: "errors", Verdict: canary.VerdictBlind},
		{Name: "future", Verdict: "Skipped"},
	})
	if want := "success-rate:ok,duration:FAIL,checkout-conversion:?,errors:blind,future:Skipped"; got != want {
		t.Errorf("compactChecks = %q; want %q", got, want)
	}
	if got := compactChecks(nil); got != "-" {
		t.Errorf("compactChecks(nil) = %q", got)
	}
}

// TestRowPrinter: outside a terminal, get --watch prints the header and
// every canary once, then only the rows of canaries that changed, aligned
// under the header; time passing changes no row.
func TestRowPrinter(t *testing.T) {
	var out bytes.Buffer
	p := &rowPrinter{out: &out}
	web, api := progressing(), succeeded()
	opts := TableOptions{Now: now}
	if err := p.print([]canary.Canary{api, web}, opts); err != nil {
		t.Fatal(err)
	}
	opts.Now = now.Add(time.Hour)
	if err := p.print([]canary.Canary{api, web}, opts); err != nil {
		t.Fatal(err)
	}
	web.Status.CanaryWeight = 60
	web.Status.Conditions = append(web.Status.Conditions, metav1.Condition{Type: canary.ConditionPaused, Status: metav1.ConditionTrue})
	if err := p.print([]canary.Canary{api, web}, opts); err != nil {
		t.Fatal(err)
	}
	want := `NAME   PHASE         WEIGHT              STEP   FAILED   CHECKS                                                PAUSED   AGE
api    Succeeded     [..........]   0%   -      0/5      -                                                     no       40d
web    Progressing   [####......]  40%   2/4    1/5      success-rate:ok,duration:FAIL,checkout-conversion:?   no       3d
web    Progressing   [######....]  60%   3/4    1/5      success-rate:ok,duration:FAIL,checkout-conversion:?   yes      3d1h
`
	if out.String() != want {
		t.Errorf("rows:\n%s\nwant:\n%s", out.String(), want)
	}
}
