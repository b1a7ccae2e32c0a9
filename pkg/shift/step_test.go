package shift

import (
	"errors"
	"flag"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"sluice.dev/sluice/pkg/analysis"
	"sluice.dev/sluice/pkg/analysis/stats"
	"sluice.dev/sluice/pkg/canary"
	"sluice.dev/sluice/pkg/routing"
)

// lesson are the classic Istio canary lesson's settings: step 20, max 70,
// threshold 5, interval 30s.
func lesson(t *testing.T) canary.Settings {
	t.Helper()
	s, problems := canary.BuiltinDefaults().Parse(map[string]string{
		canary.AnnotationStepWeight: "20", canary.AnnotationMaxWeight: "70",
		canary.AnnotationThreshold: "5", canary.AnnotationInterval: "30s",
	})
	if len(problems) > 0 {
		t.Fatal(problems)
	}
	return s
}

var t0 = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)

// measured is a measurement of a canary that got 1,200 requests with the
// given errors and slow ones (over 500ms), and of a primary that got 4,800
// with primaryErrors.
func measured(errors, slow, primaryErrors float64) *analysis.Measurement {
	return &analysis.Measurement{
		Canary: analysis.Sample{Requests: 1200, Errors: errors, Durations: []stats.Bucket{
			{UpperBound: 100, Count: 1200 - slow}, {UpperBound: 500, Count: 1200 - slow}, {UpperBound: 1000, Count: 1200},
			{UpperBound: math.Inf(1), Count: 1200}}},
		Primary: analysis.Sample{Requests: 4800, Errors: primaryErrors, Durations: []stats.Bucket{
			{UpperBound: 100, Count: 4800}, {UpperBound: math.Inf(1), Count: 4800}}},
	}
}

var (
	healthy = measured(0, 0, 24)
	// failing fails half its requests: decisively bad.
	failing = measured(600, 0, 24)
	// worse fails 0.83% of its requests, within min-success-rate 99, but
	// measurably more than its primary, which fails none: a counted failure.
	worse = measured(10, 0, 0)
	slow  = measured(0, 1200, 24)
	// quiet gets 12 requests per interval: too few to judge at once.
	quiet  = &analysis.Measurement{Canary: analysis.Sample{Requests: 12}, Primary: analysis.Sample{Requests: 30}}
	silent = &analysis.Measurement{}
	//lint:ignore ST1005 the message as the analysis words it
	blind = &analysis.Measurement{Err: errors.New("Prometheus query failed: connection refused")}
)

// update rewrites the golden transcripts: go test ./pkg/shift -run . -update
var update = flag.Bool("update", false, "rewrite the golden transcripts in testdata/")

// world plays the cluster around Step: it applies each decision the way the
// reconciler does and lets the test change what the user and the kubelet do.
// It writes what happens at each step into a transcript, which must equal the
// test's golden file in testdata/, so that a change in the story a user reads
// shows as a diff.
type world struct {
	t          *testing.T
	o          Observation
	events     []string
	checks     *analysis.Measurement
	promoted   bool
	transcript strings.Builder
	// untold: the rows of a table test tell no story worth a golden file.
	untold bool
	// receivers answer the webhooks, by name: a result, or nil while the
	// call has not ended. A webhook without one never answers.
	receivers map[string]func(HookCall) *canary.HookStatus
	// calls are the webhook calls answered, in order.
	calls []HookCall
}

// stepWithHooks steps as the reconciler does: again from the same
// observation while the webhooks asked answer.
func (w *world) stepWithHooks() Decision {
	for {
		d := Step(w.o)
		news := false
		for _, c := range d.Hooks {
			if _, ok := w.o.Hooks[c.ID]; ok {
				continue
			}
			receive := w.receivers[c.Spec.Name]
			if receive == nil {
				continue
			}
			res := receive(c)
			if res == nil {
				continue
			}
			if w.o.Hooks == nil {
				w.o.Hooks = map[string]canary.HookStatus{}
			}
			res.Name, res.Type, res.Revision, res.Time = c.Spec.Name, c.Spec.Type, c.Payload.Revision, metav1.NewTime(w.o.Now)
			w.o.Hooks[c.ID] = *res
			w.calls = append(w.calls, c)
			fmt.Fprintf(&w.transcript, "    webhook %s (%s) at weight %d, phase %s: %s %s\n",
				c.Spec.Name, c.Spec.Type, c.Payload.CanaryWeight, c.Payload.Phase, res.Result, res.Message)
			news = true
		}
		if !news {
			return d
		}
	}
}

func newWorld(t *testing.T) *world {
	w := &world{t: t, o: Observation{Now: t0, Namespace: "shop", Name: "web", Settings: lesson(t), PrimaryRevision: "r1", PrimaryReady: true}}
	t.Cleanup(func() {
		if !t.Failed() && !w.untold {
			w.compareGolden()
		}
	})
	return w
}

// step runs Step until it asks for nothing more at this moment, running the
// analysis with w.checks when asked.
func (w *world) step() Decision {
	w.t.Helper()
	fmt.Fprintf(&w.transcript, "%s  primary %s, pending %q, canary ready %t, routed %d\n",
		w.o.Now.Sub(t0), w.o.PrimaryRevision, w.o.PendingRevision, w.o.CanaryReady, w.o.Routed.CanaryWeight)
	// The world counts the pending template's revisions alike as the webhook
	// and the shifter do.
	w.o.PendingPrimaryRevision = w.o.PendingRevision
	d := w.stepWithHooks()
	if d.RunChecks {
		// As the reconciler does: the decision to measure is dropped, and
		// Step decides again from the same observation, measured.
		w.record(d, false)
		w.o.Measurement = w.checks
		d = w.stepWithHooks()
		if d.RunChecks {
			w.t.Fatal("Step asks for checks again when given them")
		}
	}
	for _, e := range d.Events {
		w.events = append(w.events, e.Message)
	}
	w.record(d, true)
	st := d.Status
	w.o.Status = &st
	w.o.Routed = d.Routing
	w.o.Measurement = nil
	if d.Promote {
		w.promoted = true
		w.o.PrimaryRevision = w.o.PendingPrimaryRevision
		w.o.PendingRevision, w.o.PendingPrimaryRevision = "", ""
		w.o.PrimaryReady = false
	}
	return d
}

// record writes a decision into the transcript: the status, the events
// (of a decision that is carried out) and what the reconciler is asked to
// do.
func (w *world) record(d Decision, carriedOut bool) {
	st := d.Status
	fmt.Fprintf(&w.transcript, "    %s weight %d, failed checks %d, canary %s, primary %s: %s\n",
		st.Phase, st.CanaryWeight, st.FailedChecks, st.CanaryRevision, st.PrimaryRevision, st.Message)
	if w.o.Measurement != nil {
		for _, c := range st.Checks {
			fmt.Fprintf(&w.transcript, "    check %s\n", c)
		}
	}
	for _, e := range d.Events {
		if !carriedOut {
			break
		}
		kind := "Normal"
		if e.Warning {
			kind = "Warning"
		}
		where := "Canary"
		if e.Main {
			where = "Canary+Deployment"
		}
		fmt.Fprintf(&w.transcript, "    event %s %s (%s): %s\n", kind, e.Reason, where, e.Message)
	}
	if r := d.Routing; len(r.Match) > 0 || r.MirrorPercent > 0 || r.Sticky != nil {
		fmt.Fprintf(&w.transcript, "    routing: match %v, mirror %d%%, sticky %v\n", r.Match, r.MirrorPercent, r.Sticky)
	}
	var actions []string
	if d.Canary != CanaryKeep {
		actions = append(actions, map[CanaryAction]string{CanaryRun: "run the canary", CanaryScaleDown: "scale the canary down"}[d.Canary])
	}
	if d.Promote {
		actions = append(actions, "promote")
	}
	if d.RunChecks {
		actions = append(actions, "run the checks")
	}
	if d.RequeueAfter > 0 {
		actions = append(actions, "look again in "+d.RequeueAfter.String())
	}
	if d.Outcome.Phase != "" {
		actions = append(actions, fmt.Sprintf("count a rollout %s after %s", d.Outcome.Phase, d.Outcome.Took))
	}
	if len(actions) > 0 {
		fmt.Fprintf(&w.transcript, "    then: %s\n", strings.Join(actions, ", "))
	}
}

// compareGolden compares the transcript with testdata/<test name>.golden, or
// writes that file with -update.
func (w *world) compareGolden() {
	path := filepath.Join("testdata", strings.NewReplacer("/", "-", " ", "_").Replace(w.t.Name())+".golden")
	got := w.transcript.String()
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			w.t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			w.t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		w.t.Fatalf("%v (write it with go test ./pkg/shift -run '%s$' -update)", err, w.t.Name())
	}
	if got != string(want) {
		w.t.Errorf("the transcript differs from %s (review the change, then go test ./pkg/shift -update):\n%s",
			path, lineDiff(string(want), got))
	}
}

// lineDiff shows the lines of want and got from the first that differs.
func lineDiff(want, got string) string {
	a, b := strings.Split(want, "\n"), strings.Split(got, "\n")
	i := 0
	for i < len(a) && i < len(b) && a[i] == b[i] {
		i++
	}
	return fmt.Sprintf("from line %d\nwant:\n  %s\ngot:\n  %s", i+1,
		strings.Join(a[i:min(len(a), i+8)], "\n  "), strings.Join(b[i:min(len(b), i+8)], "\n  "))
}

func (w *world) after(d time.Duration) *world { w.o.Now = w.o.Now.Add(d); return w }

func (w *world) expectEvents(t *testing.T, want ...string) {
	t.Helper()
	if !slices.Equal(w.events, want) {
		t.Errorf("events:\n  %s\nwant:\n  %s", strings.Join(w.events, "\n  "), strings.Join(want, "\n  "))
	}
	w.events = nil
}

func (w *world) expectStatus(t *testing.T, phase canary.Phase, weight, failed int32) {
	t.Helper()
	st := w.o.Status
	if st.Phase != phase || st.CanaryWeight != weight || st.FailedChecks != failed {
		t.Errorf("status %s weight %d failed checks %d; want %s weight %d failed checks %d",
			st.Phase, st.CanaryWeight, st.FailedChecks, phase, weight, failed)
	}
}

func TestLessonHappyPath(t *testing.T) {
	w := newWorld(t)
	w.step()
	w.expectEvents(t, "Initialization done! web.shop")
	w.expectStatus(t, canary.PhaseInitialized, 0, 0)

	w.o.PendingRevision = "r2"
	d := w.after(time.Second).step()
	w.expectEvents(t, "New revision detected! Scaling up web-canary.shop")
	w.expectStatus(t, canary.PhaseProgressing, 0, 0)
	if d.Canary != CanaryRun || d.RequeueAfter != 10*time.Minute {
		t.Errorf("canary action %v, requeue %s; want run, and a look at the progress deadline in 10m", d.Canary, d.RequeueAfter)
	}

	w.o.CanaryReady = true
	w.checks = healthy
	d = w.after(5 * time.Second).step()
	w.expectEvents(t, "Starting canary analysis for web.shop", "Advance web.shop canary weight 20")
	w.expectStatus(t, canary.PhaseProgressing, 20, 0)
	if d.RequeueAfter != 30*time.Second {
		t.Errorf("requeue %s; want the interval", d.RequeueAfter)
	}

	if d := w.after(10 * time.Second).step(); d.RequeueAfter != 20*time.Second || len(w.events) > 0 {
		t.Errorf("before the interval: requeue %s, events %v; want to wait 20s more", d.RequeueAfter, w.events)
	}
	w.after(20 * time.Second).step()
	w.expectEvents(t, "Advance web.shop canary weight 40")
	w.after(30 * time.Second).step()
	w.expectEvents(t, "Advance web.shop canary weight 60")
	w.after(30 * time.Second).step()
	w.expectEvents(t, "Advance web.shop canary weight 80")
	w.expectStatus(t, canary.PhaseProgressing, 80, 0)
	if w.promoted {
		t.Fatal("promoted on reaching max-weight, unjudged there")
	}
	w.after(30 * time.Second).step()
	w.expectEvents(t, "Copying web-canary.shop template spec to web.shop")
	w.expectStatus(t, canary.PhasePromoting, 80, 0)
	if !w.promoted {
		t.Fatal("no promotion after the analysis at max-weight passed")
	}

	w.after(time.Second).step()
	w.expectEvents(t)
	w.expectStatus(t, canary.PhasePromoting, 80, 0)

	w.o.PrimaryReady = true
	d = w.after(time.Second).step()
	w.expectEvents(t, "Routing all traffic to primary", "Promotion completed! Scaling down web-canary.shop")
	w.expectStatus(t, canary.PhaseSucceeded, 0, 0)
	if d.Canary != CanaryScaleDown || w.o.Status.PrimaryRevision != "r2" {
		t.Errorf("canary action %v, primary revision %s; want scale down, r2", d.Canary, w.o.Status.PrimaryRevision)
	}
}

// startAnalysis brings a world to weight 20 of revision r2.
func startAnalysis(t *testing.T) *world {
	w := newWorld(t)
	w.step()
	w.o.PendingRevision, w.o.CanaryReady = "r2", true
	w.after(time.Second).step()
	w.expectStatus(t, canary.PhaseProgressing, 20, 0)
	w.events = nil
	return w
}

// TestRollbackOnFailedChecks: a canary measurably worse than its primary
// fails a check each interval, and is rolled back at the threshold.
func TestRollbackOnFailedChecks(t *testing.T) {
	w := startAnalysis(t)
	w.checks = worse
	halt := "Halt web.shop advancement request-success-rate: canary error rate 0.833% (10 of 1200) is measurably worse than the primary's 0% (0 of 4800): " +
		"p = 1.7e-05 < 0.001 against 2× the primary's rate"
	for i := int32(1); i <= 4; i++ {
		w.after(30 * time.Second).step()
		w.expectStatus(t, canary.PhaseProgressing, 20, i)
		w.expectEvents(t, halt)
	}
	d := w.after(30 * time.Second).step()
	w.expectStatus(t, canary.PhaseFailed, 0, 5)
	w.expectEvents(t, halt, "Rolling back web.shop failed checks threshold reached 5", "Canary failed! Scaling down web-canary.shop")
	if d.Canary != CanaryScaleDown || w.o.Status.LastFailedRevision != "r2" || w.promoted {
		t.Errorf("canary %v, last failed %q, promoted %v", d.Canary, w.o.Status.LastFailedRevision, w.promoted)
	}

	// The same template again does not restart; another one does.
	w.after(time.Minute).step()
	w.expectEvents(t)
	w.o.PendingRevision = "r3"
	w.after(time.Second).step()
	w.expectEvents(t, "New revision detected! Scaling up web-canary.shop", "Starting canary analysis for web.shop", "Advance web.shop canary weight 20")
}

// TestDecisiveRollback: a canary that is bad with confidence is rolled back
// at once, without waiting for the threshold.
func TestDecisiveRollback(t *testing.T) {
	for _, tc := range []struct {
		name   string
		checks *analysis.Measurement
		reason string
	}{
		{"success rate", failing, "request-success-rate: error rate 50% (600 of 1200) since the analysis started is above the allowed 1% " +
			"with confidence (log-likelihood ratio 646.92 ≥ 6.90)"},
		{"latency", slow, "request-duration: slow request rate 100% (1200 of 1200) since the analysis started is above the allowed 1% " +
			"with confidence (log-likelihood ratio 1318.33 ≥ 6.90)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := startAnalysis(t)
			w.checks = tc.checks
			w.after(30 * time.Second).step()
			w.expectStatus(t, canary.PhaseFailed, 0, 0)
			w.expectEvents(t, "Rolling back web.shop "+tc.reason, "Canary failed! Scaling down web-canary.shop")
		})
	}
}

// TestTooFewRequestsHold: with too few requests a step holds, counts
// nothing, and judges the requests gathered since the canary reached its
// weight; without any, it rolls back at the evidence deadline.
func TestTooFewRequestsHold(t *testing.T) {
	t.Run("quiet", func(t *testing.T) {
		w := startAnalysis(t)
		w.checks = quiet
		for _, requests := range []int{12, 24} {
			w.after(30 * time.Second).step()
			w.expectStatus(t, canary.PhaseProgressing, 20, 0)
			w.expectEvents(t, fmt.Sprintf("Hold web.shop at canary weight 20: request-success-rate: not enough requests to judge: %[1]d at this weight, 30 needed; "+
				"request-duration: not enough requests to judge: %[1]d at this weight, 30 needed", requests))
		}
		w.after(30 * time.Second).step()
		w.expectEvents(t, "Advance web.shop canary weight 40")
	})
	t.Run("silent", func(t *testing.T) {
		w := startAnalysis(t)
		w.checks = silent
		w.heldThenRolledBack(t, 119, 20, "not enough traffic to judge: 0 requests in 1h0m0s at canary weight 20, 30 needed")
		if cond := apimeta.FindStatusCondition(w.o.Status.Conditions, canary.ConditionPromoted); cond == nil || cond.Reason != "NotEnoughTraffic" {
			t.Errorf("condition %+v; want reason NotEnoughTraffic", cond)
		}
	})
}

// heldThenRolledBack steps n intervals, in which the canary must hold at
// weight without a failed check, and one more, which must roll it back for
// reason.
func (w *world) heldThenRolledBack(t *testing.T, n int, weight int32, reason string) {
	t.Helper()
	for range n {
		w.after(30 * time.Second).step()
	}
	w.expectStatus(t, canary.PhaseProgressing, weight, 0)
	w.events = nil
	w.after(30 * time.Second).step()
	w.expectStatus(t, canary.PhaseFailed, 0, 0)
	w.expectEvents(t, "Rolling back web.shop "+reason, "Canary failed! Scaling down web-canary.shop")
}

// TestBlindIsNotBad: a blind analysis holds the weight and counts nothing,
// with a condition and one event each way; past the blind deadline it rolls
// back.
func TestBlindIsNotBad(t *testing.T) {
	w := startAnalysis(t)
	w.checks = blind
	w.after(30 * time.Second).step()
	w.expectStatus(t, canary.PhaseProgressing, 20, 0)
	w.expectEvents(t, "Holding web.shop at canary weight 20: the analysis cannot read the metrics (Prometheus query failed: connection refused); "+
		"rolled back if still blind after 10m0s")
	for range 3 {
		w.after(30 * time.Second).step()
	}
	w.expectStatus(t, canary.PhaseProgressing, 20, 0)
	w.expectEvents(t)
	if !apimeta.IsStatusConditionTrue(w.o.Status.Conditions, canary.ConditionBlind) {
		t.Errorf("conditions %+v; want Blind", w.o.Status.Conditions)
	}
	w.checks = healthy
	w.after(30 * time.Second).step()
	w.expectEvents(t, "The analysis of web.shop reads the metrics again after 2m0s blind", "Advance web.shop canary weight 40")
	if apimeta.IsStatusConditionTrue(w.o.Status.Conditions, canary.ConditionBlind) {
		t.Errorf("conditions %+v; want no longer Blind", w.o.Status.Conditions)
	}

	w.checks = blind
	w.heldThenRolledBack(t, 20, 40, "blind for 10m0s, longer than the blind deadline 10m0s: Prometheus query failed: connection refused")
	cond := apimeta.FindStatusCondition(w.o.Status.Conditions, canary.ConditionPromoted)
	if cond == nil || cond.Reason != "Blind" || apimeta.FindStatusCondition(w.o.Status.Conditions, canary.ConditionBlind) != nil {
		t.Errorf("conditions %+v; want Promoted False for Blind, and no Blind condition once the analysis ended", w.o.Status.Conditions)
	}
}

// TestWindowsCountEachRequestOnce: each measurement covers the time since
// the last one, at most the analysis window; a blind one leaves its time
// to the next.
func TestWindowsCountEachRequestOnce(t *testing.T) {
	w := startAnalysis(t)
	window := func(after time.Duration) time.Duration {
		t.Helper()
		w.after(after)
		d := Step(w.o)
		if !d.RunChecks {
			t.Fatalf("no measurement asked for after %s", after)
		}
		return d.Window
	}
	w.checks = healthy
	if got := window(30 * time.Second); got != 30*time.Second {
		t.Errorf("first window %s; want the 30s since the canary reached its weight", got)
	}
	w.o.Now = w.o.Now.Add(-30 * time.Second)
	w.after(30 * time.Second).step()
	w.checks = blind
	w.after(30 * time.Second).step()
	if got := window(30*time.Second + 400*time.Millisecond); got != time.Minute {
		t.Errorf("window after a blind measurement %s; want the whole minute since the last counted one, in whole seconds", got)
	}
	w.o.Now = w.o.Now.Add(time.Hour)
	if got := window(0); got != time.Minute {
		t.Errorf("window after an hour %s; want the analysis window, 1m", got)
	}
}

func TestProgressDeadline(t *testing.T) {
	w := newWorld(t)
	w.step()
	w.o.PendingRevision = "r2"
	w.after(time.Second).step()
	w.events = nil
	if d := w.after(9 * time.Minute).step(); d.RequeueAfter != time.Minute {
		t.Errorf("requeue %s; want the rest of the deadline", d.RequeueAfter)
	}
	w.after(time.Minute).step()
	w.expectEvents(t, "Rolling back web.shop progress deadline exceeded", "Canary failed! Scaling down web-canary.shop")
	w.expectStatus(t, canary.PhaseFailed, 0, 0)
}

func TestNewRevisionRestartsAnalysis(t *testing.T) {
	w := startAnalysis(t)
	w.checks = healthy
	w.after(30 * time.Second).step()
	w.expectStatus(t, canary.PhaseProgressing, 40, 0)
	w.events = nil
	w.o.PendingRevision, w.o.CanaryReady = "r3", false
	d := w.after(time.Second).step()
	w.expectEvents(t, "New revision detected! Restarting analysis for web.shop")
	w.expectStatus(t, canary.PhaseProgressing, 0, 0)
	if d.Canary != CanaryRun || w.o.Status.CanaryRevision != "r3" {
		t.Errorf("canary %v revision %s; want the canary updated to r3", d.Canary, w.o.Status.CanaryRevision)
	}
}

func TestRevertToPrimaryTemplate(t *testing.T) {
	w := startAnalysis(t)
	w.o.PendingRevision = ""
	d := w.after(time.Second).step()
	w.expectEvents(t, "Canary reverted to the primary's template! Scaling down web-canary.shop")
	w.expectStatus(t, canary.PhaseInitialized, 0, 0)
	if d.Canary != CanaryScaleDown {
		t.Errorf("canary %v; want scale down", d.Canary)
	}
}

// TestRestartResumes: a shifter that restarts with the written status picks
// up at the same weight, and takes no step twice.
func TestRestartResumes(t *testing.T) {
	w := startAnalysis(t)
	w.checks = healthy
	w.after(30 * time.Second).step()
	written := *w.o.Status.DeepCopy()

	restarted := Observation{Now: w.o.Now.Add(10 * time.Second), Namespace: "shop", Name: "web", Settings: lesson(t),
		PrimaryRevision: "r1", PrimaryReady: true, PendingRevision: "r2", CanaryReady: true, Status: &written, Routed: routing.Routing{CanaryWeight: 40}}
	d := Step(restarted)
	if d.Status.CanaryWeight != 40 || len(d.Events) > 0 || d.RunChecks || d.RequeueAfter != 20*time.Second {
		t.Errorf("after a restart: weight %d, events %v, run checks %v, requeue %s; want weight 40 held until the interval",
			d.Status.CanaryWeight, d.Events, d.RunChecks, d.RequeueAfter)
	}
	if d.Status.LastStepTime != (metav1.Time{Time: w.o.Now}) {
		t.Errorf("last step time moved to %s", d.Status.LastStepTime)
	}
}

// TestWeightNotYetRoutedHoldsTheAnalysis: checks wait until the VirtualService
// carries the weight the status says.
func TestWeightNotYetRoutedHoldsTheAnalysis(t *testing.T) {
	w := startAnalysis(t)
	w.o.Routed = routing.Routing{}
	w.o.Now = w.o.Now.Add(time.Minute)
	d := Step(w.o)
	if d.RunChecks || len(d.Events) > 0 || d.Status.CanaryWeight != 20 || d.RequeueAfter != time.Second {
		t.Errorf("with weight 20 not routed yet: run checks %v, events %v, weight %d, requeue %s; want to hold and look again in 1s",
			d.RunChecks, d.Events, d.Status.CanaryWeight, d.RequeueAfter)
	}
}

// TestOutsideAnalysisTheCanaryIsScaledDown: a restart between the status
// write and the scale down of an ended canary still scales it down, in every
// phase without an analysis.
func TestOutsideAnalysisTheCanaryIsScaledDown(t *testing.T) {
	cases := []struct {
		name    string
		status  canary.CanaryStatus
		pending string
	}{
		{"initialized", canary.CanaryStatus{Phase: canary.PhaseInitialized, PrimaryRevision: "r1"}, ""},
		{"succeeded", canary.CanaryStatus{Phase: canary.PhaseSucceeded, PrimaryRevision: "r2", CanaryRevision: "r2"}, ""},
		{"failed, its template still pending", canary.CanaryStatus{Phase: canary.PhaseFailed, PrimaryRevision: "r1",
			CanaryRevision: "r2", LastFailedRevision: "r2"}, "r2"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := Step(Observation{Now: t0, Namespace: "shop", Name: "web", Settings: lesson(t), PrimaryRevision: "r1",
				PrimaryReady: true, PendingRevision: c.pending, Status: &c.status})
			if d.Canary != CanaryScaleDown || len(d.Events) > 0 || d.Promote {
				t.Errorf("canary %v, events %v, promote %v; want a quiet scale down", d.Canary, d.Events, d.Promote)
			}
		})
	}
}

// TestMainEvents: only the start and the outcome of a canary are also
// recorded on the Deployment.
func TestMainEvents(t *testing.T) {
	w := startAnalysis(t)
	w.o.Settings.Threshold = 1
	w.checks = worse
	rollback := w.after(30 * time.Second).step()
	w.o.PendingRevision, w.o.CanaryReady = "r3", false
	revision := w.after(time.Second).step()
	var main, canaryOnly []string
	for _, e := range append(rollback.Events, revision.Events...) {
		if e.Main {
			main = append(main, e.Reason)
		} else {
			canaryOnly = append(canaryOnly, e.Reason)
		}
	}
	if want := []string{"RollingBack", "Failed", "NewRevision"}; !slices.Equal(main, want) {
		t.Errorf("main events %v; want %v", main, want)
	}
	if want := []string{"Halted"}; !slices.Equal(canaryOnly, want) {
		t.Errorf("events on the Canary only %v; want %v", canaryOnly, want)
	}
}

// TestStaleCanaryIsNeverPromoted: a primary that changes under an analysis
// (an update the webhook did not divert, after an uninstall or during an
// outage) ends the canary as superseded, in both phases of the analysis, and
// the same revision does not start again.
func TestStaleCanaryIsNeverPromoted(t *testing.T) {
	for _, tc := range []struct {
		name string
		// toPhase brings the canary of r2 into the phase under test.
		toPhase func(*world)
	}{
		{"progressing", func(*world) {}},
		{"promoting, its promotion not written", func(w *world) {
			w.checks = healthy
			for range 4 {
				w.after(30 * time.Second).step()
			}
			w.expectStatus(w.t, canary.PhasePromoting, 80, 0)
			// The promotion failed: the template is still pending.
			w.o.PendingRevision, w.o.PrimaryRevision, w.promoted = "r2", "r1", false
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := startAnalysis(t)
			tc.toPhase(w)
			w.events = nil
			w.o.PrimaryRevision = "r9"
			d := w.after(time.Second).step()
			w.expectEvents(t, "Rolling back web.shop superseded: the primary changed from revision r1 to r9, an update sluice did not divert, "+
				"while the canary was analysed; a canary is never promoted over a newer release", "Canary failed! Scaling down web-canary.shop")
			w.expectStatus(t, canary.PhaseFailed, 0, 0)
			st := w.o.Status
			cond := apimeta.FindStatusCondition(st.Conditions, canary.ConditionPromoted)
			if d.Promote || w.promoted || d.Canary != CanaryScaleDown || st.LastFailedRevision != "r2" || st.PrimaryRevision != "r9" ||
				cond == nil || cond.Reason != "Superseded" {
				t.Errorf("promote %v (promoted %v), canary %v, last failed %q, primary %q, condition %+v; "+
					"want no promotion, a scale down, r2 failed, primary r9, reason Superseded", d.Promote, w.promoted, d.Canary,
					st.LastFailedRevision, st.PrimaryRevision, cond)
			}
			w.after(time.Minute).step()
			w.expectEvents(t)
			w.expectStatus(t, canary.PhaseFailed, 0, 0)
		})
	}
}

// TestNewRevisionOverAChangedPrimary: a template diverted after the primary
// changed under the analysis is judged against the new primary.
func TestNewRevisionOverAChangedPrimary(t *testing.T) {
	w := startAnalysis(t)
	w.o.PrimaryRevision, w.o.PendingRevision, w.o.CanaryReady = "r9", "r3", true
	w.checks = healthy
	w.after(time.Second).step()
	w.expectEvents(t, "New revision detected! Restarting analysis for web.shop", "Starting canary analysis for web.shop", "Advance web.shop canary weight 20")
	if st := w.o.Status; st.PrimaryRevision != "r9" || st.CanaryRevision != "r3" {
		t.Errorf("primary %s, canary %s; want r9, r3", st.PrimaryRevision, st.CanaryRevision)
	}
	w.after(30 * time.Second).step()
	w.expectStatus(t, canary.PhaseProgressing, 40, 0)
}

// TestSkipAnalysisLeftover: with skip-analysis on, a pending canary left by an
// update the webhook did not see never starts; if the plain rollout changed
// the primary under a running analysis, the analysis ends as superseded.
func TestSkipAnalysisLeftover(t *testing.T) {
	t.Run("not started", func(t *testing.T) {
		w := newWorld(t)
		w.step()
		w.events = nil
		w.o.Settings.SkipAnalysis = true
		w.o.PendingRevision, w.o.PrimaryRevision = "r2", "r3"
		d := w.after(time.Second).step()
		w.expectEvents(t)
		w.expectStatus(t, canary.PhaseInitialized, 0, 0)
		if d.Canary != CanaryScaleDown || w.o.Status.PrimaryRevision != "r3" {
			t.Errorf("canary %v, primary %s; want no canary, r3", d.Canary, w.o.Status.PrimaryRevision)
		}
	})
	t.Run("analysing", func(t *testing.T) {
		w := startAnalysis(t)
		w.o.Settings.SkipAnalysis = true
		w.o.PrimaryRevision = "r3"
		w.after(time.Second).step()
		w.expectStatus(t, canary.PhaseFailed, 0, 0)
		if cond := apimeta.FindStatusCondition(w.o.Status.Conditions, canary.ConditionPromoted); cond == nil || cond.Reason != "Superseded" || w.promoted {
			t.Errorf("condition %+v, promoted %v; want Superseded, no promotion", cond, w.promoted)
		}
	})
}

// promotingWorld brings a world to the promotion of r2, whose revision as
// the shifter counts it is p2, and stops before the promotion is written.
func promotingWorld(t *testing.T) *world {
	w := startAnalysis(t)
	w.checks = healthy
	for range 3 {
		w.after(30 * time.Second).step()
	}
	w.o.PendingPrimaryRevision, w.o.Measurement = "p2", healthy
	d := Step(w.after(30 * time.Second).o)
	w.o.Measurement = nil
	w.record(d, true)
	if !d.Promote || d.Status.PromotedPrimaryRevision != "p2" {
		t.Fatalf("promote %t, promoted primary %q; want a promotion to p2", d.Promote, d.Status.PromotedPrimaryRevision)
	}
	w.o.Status = &d.Status
	w.o.Routed = d.Routing
	w.events = nil
	return w
}

// TestPromotionsAreJudgedByThePrimary: whether the promotion is written is
// read from the primary, not from the pending template's absence, which a
// user's update can also cause.
func TestPromotionsAreJudgedByThePrimary(t *testing.T) {
	t.Run("a newer template right after the promotion", func(t *testing.T) {
		w := promotingWorld(t)
		w.o.PrimaryRevision, w.o.PendingRevision, w.o.CanaryReady = "p2", "r3", false
		d := Step(w.after(time.Second).o)
		w.record(d, true)
		var events []string
		for _, e := range d.Events {
			events = append(events, e.Message)
		}
		want := []string{"Routing all traffic to primary", "Promotion completed! Scaling down web-canary.shop", "New revision detected! Scaling up web-canary.shop"}
		if !slices.Equal(events, want) || d.Outcome.Phase != canary.PhaseSucceeded || d.Status.Phase != canary.PhaseProgressing ||
			d.Status.CanaryRevision != "r3" || d.Status.PrimaryRevision != "p2" || d.Canary != CanaryRun {
			t.Errorf("events %v, outcome %q, phase %s, canary %s over primary %s, action %v; want %v, Succeeded counted, r3 progressing over p2",
				events, d.Outcome.Phase, d.Status.Phase, d.Status.CanaryRevision, d.Status.PrimaryRevision, d.Canary, want)
		}
	})
	t.Run("the user dropped the canary before it was written", func(t *testing.T) {
		w := promotingWorld(t)
		w.o.PendingRevision = ""
		d := Step(w.after(time.Second).o)
		w.record(d, true)
		if d.Status.Phase != canary.PhaseInitialized || d.Outcome.Phase != "" || len(d.Events) != 1 || d.Events[0].Reason != "Reverted" {
			t.Errorf("phase %s, outcome %q, events %+v; want a revert, no rollout counted", d.Status.Phase, d.Outcome.Phase, d.Events)
		}
	})
	t.Run("a plain rollout, then the same template again", func(t *testing.T) {
		w := promotingWorld(t)
		// A skip-analysis update rolled r9 out while the webhook was down;
		// `kubectl rollout undo` then diverted r2 again.
		w.o.PrimaryRevision = "p9"
		d := Step(w.after(time.Second).o)
		w.record(d, true)
		if d.Promote || d.Status.Phase != canary.PhaseFailed || d.Outcome.Phase != canary.PhaseFailed {
			t.Errorf("promote %t, phase %s, outcome %q; want the canary superseded, not promoted", d.Promote, d.Status.Phase, d.Outcome.Phase)
		}
	})
}
