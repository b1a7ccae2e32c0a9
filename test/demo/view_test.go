package main

import (
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"sluice.dev/sluice/pkg/canary"
)

func TestRender(t *testing.T) {
	created := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	cr := &canary.Canary{
		ObjectMeta: metav1.ObjectMeta{Name: "jx-progressive", Namespace: "jx-staging", CreationTimestamp: metav1.NewTime(created)},
		Spec:       canary.CanarySpec{Settings: canary.Settings{StepWeights: []int32{20, 40, 60, 80}, MaxWeight: 70, Threshold: 5}},
		Status: canary.CanaryStatus{Phase: canary.PhaseProgressing, CanaryWeight: 40, FailedChecks: 1, Checks: []canary.CheckStatus{
			{Name: "request-success-rate", Verdict: canary.VerdictFailed, Value: ptr.To(54.2), PrimaryValue: ptr.To(99.5),
				Min: ptr.To(99.0), Unit: "%", Samples: ptr.To[int64](240)},
			{Name: "request-duration", Verdict: canary.VerdictPassed, Value: ptr.To(25.0), Max: ptr.To(500.0), Unit: "ms",
				Samples: ptr.To[int64](480)},
		}},
	}
	shares := []share{{"hello, progressive!", 0.6}, {"hello, rolling update!", 0.4}}
	block, key := render(cr, shares, created.Add(2*time.Minute))
	want := []string{
		"  NAME             PHASE         WEIGHT              STEP   FAILED   CHECKS                          PAUSED   AGE",
		"  jx-progressive   Progressing   [####......]  40%   2/4    1/5      success-rate:FAIL,duration:ok   no       2m",
		`  answers  60% "hello, progressive!"   40% "hello, rolling update!"`,
		"  checks  request-success-rate 54.20% (primary 99.50%, min 99%, 240 requests): Failed",
		"          request-duration 25ms (max 500ms, 480 requests): Passed",
	}
	if strings.Join(block, "\n") != strings.Join(want, "\n") {
		t.Errorf("render:\n%s\nwant:\n%s", strings.Join(block, "\n"), strings.Join(want, "\n"))
	}
	// Time passing and another mix of answers are no change worth a block.
	if _, later := render(cr, shares[:1], created.Add(time.Hour)); later != key {
		t.Errorf("the key changed with the clock and the answers:\n%s\n%s", key, later)
	}
	cr.Status.CanaryWeight = 60
	if _, moved := render(cr, shares, created.Add(2*time.Minute)); moved == key {
		t.Error("the key did not change with the weight")
	}
}
