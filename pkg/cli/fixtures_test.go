package cli

import (
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	"sluice.dev/sluice/pkg/canary"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/ with the output")

// golden compares got with testdata/<name>.golden, or writes it with
// -update.
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./pkg/cli -update to write it)", err)
	}
	if got != string(want) {
		t.Errorf("output differs from %s (go test ./pkg/cli -update rewrites it):\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}

// now is the fixtures' present.
var now = time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)

func ago(d time.Duration) metav1.Time { return metav1.NewTime(now.Add(-d)) }

func settings() canary.Settings {
	s := canary.BuiltinDefaults().Settings()
	s.StepWeights, s.MaxWeight = []int32{20, 40, 60, 80}, 70
	s.Interval = metav1.Duration{Duration: 30 * time.Second}
	return s
}

func condition(typ string, status metav1.ConditionStatus, reason, message string, since time.Duration) metav1.Condition {
	return metav1.Condition{Type: typ, Status: status, Reason: reason, Message: message, LastTransitionTime: ago(since)}
}

// progressing is a canary at its second step, one failed check counted,
// one check failing now and one without enough requests.
func progressing() canary.Canary {
	return canary.Canary{
		ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web", CreationTimestamp: ago(72 * time.Hour), UID: "web-uid"},
		Spec:       canary.CanarySpec{Settings: settings()},
		Status: canary.CanaryStatus{
			Phase: canary.PhaseProgressing, CanaryWeight: 40, FailedChecks: 1,
			CanaryRevision: "9f8e7d6c5b", PrimaryRevision: "1a2b3c4d5e",
			RevisionStartTime: ago(3 * time.Minute), LastTransitionTime: ago(3 * time.Minute),
			LastStepTime: ago(10 * time.Second), StepStartTime: ago(70 * time.Second),
			Message: "advancement halted: 1 of 5 failed checks",
			Checks: []canary.CheckStatus{
				{Name: "request-success-rate", Verdict: canary.VerdictPassed, Value: ptr.To(99.6), PrimaryValue: ptr.To(99.5),
					Min: ptr.To(99.0), Unit: "%", Samples: ptr.To[int64](1200)},
				{Name: "request-duration", Verdict: canary.VerdictFailed, Value: ptr.To(740.0), Max: ptr.To(500.0), Unit: "ms",
					Samples: ptr.To[int64](1200), Message: "request-duration: slow request rate 3% (36 of 1200) is above the allowed 1%"},
				{Name: "checkout-conversion", Verdict: canary.VerdictInconclusive, Samples: ptr.To[int64](12),
					Message: "checkout-conversion: 12 requests, 30 needed to judge"},
			},
			Evidence: &canary.Evidence{Requests: 1200, Errors: 5, SlowRequests: 36, PrimaryRequests: 4800, PrimaryErrors: 24,
				TotalRequests: 2000, TotalErrors: 8, TotalSlowRequests: 40},
			Policy: &canary.PolicySnapshot{Kind: "CanaryPolicy", Name: "shop", Generation: 2},
			Webhooks: []canary.HookStatus{
				{Name: "acceptance", Type: canary.HookPreRollout, Revision: "9f8e7d6c5b", Result: canary.HookSucceeded,
					Message: "200 OK: 40 tests passed", Time: ago(150 * time.Second)},
				{Name: "more-traffic", Type: canary.HookConfirmTrafficIncrease, Revision: "9f8e7d6c5b", Result: canary.HookUnreachable,
					Message: "no answer within 10s", Time: ago(10 * time.Second)},
				{Name: "ticket", Type: canary.HookConfirmPromotion, Revision: "1a2b3c4d5e", Result: canary.HookSucceeded,
					Message: "200 OK", Time: ago(26 * time.Hour)},
			},
			Conditions: []metav1.Condition{
				condition(canary.ConditionProgressing, metav1.ConditionTrue, "NewRevision", "revision 9f8e7d6c5b is rolled out", 3*time.Minute),
				condition(canary.ConditionPromoted, metav1.ConditionTrue, "Succeeded", "revision 1a2b3c4d5e promoted", 26*time.Hour),
			},
		},
	}
}

// paused is a canary held at its first step by a person.
func paused() canary.Canary {
	cr := canary.Canary{
		ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "search", CreationTimestamp: ago(5 * 24 * time.Hour)},
		Spec: canary.CanarySpec{Settings: settings(), Intent: &canary.Intent{
			Action: canary.ActionPause, Revision: "77aa88bb99", RequestedBy: "alice@example.com", RequestedAt: ago(2 * time.Minute)}},
		Status: canary.CanaryStatus{
			Phase: canary.PhaseProgressing, CanaryWeight: 20, CanaryRevision: "77aa88bb99", PrimaryRevision: "66ff55ee44",
			RevisionStartTime: ago(4 * time.Minute), LastTransitionTime: ago(4 * time.Minute), LastStepTime: ago(3 * time.Minute),
			PausedAt: ptr.To(ago(2 * time.Minute)), Message: "paused at canary weight 20",
			Checks: []canary.CheckStatus{
				{Name: "request-success-rate", Verdict: canary.VerdictPassed, Value: ptr.To(100.0), Min: ptr.To(99.0), Unit: "%", Samples: ptr.To[int64](300)},
				{Name: "request-duration", Verdict: canary.VerdictBlind, Unit: "ms", Max: ptr.To(500.0), Message: "Prometheus: connection refused"},
			},
			Conditions: []metav1.Condition{
				condition(canary.ConditionPaused, metav1.ConditionTrue, "Paused", "paused by alice@example.com", 2*time.Minute),
			},
		},
	}
	cr.Status.ObservedIntent = &canary.IntentStatus{Intent: *cr.Spec.Intent, Result: canary.IntentApplied, Message: "paused at canary weight 20"}
	return cr
}

// succeeded is a canary whose last revision was promoted.
func succeeded() canary.Canary {
	return canary.Canary{
		ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "api", CreationTimestamp: ago(40 * 24 * time.Hour)},
		Spec:       canary.CanarySpec{Settings: settings()},
		Status: canary.CanaryStatus{
			Phase: canary.PhaseSucceeded, CanaryRevision: "abcdef0123", PrimaryRevision: "abcdef0123",
			LastTransitionTime: ago(time.Hour), Message: "revision abcdef0123 promoted",
			Conditions: []metav1.Condition{
				condition(canary.ConditionPromoted, metav1.ConditionTrue, "Succeeded", "revision abcdef0123 promoted", time.Hour),
			},
		},
	}
}

// failed is a canary rolled back in another namespace.
func failed() canary.Canary {
	return canary.Canary{
		ObjectMeta: metav1.ObjectMeta{Namespace: "billing", Name: "invoices", CreationTimestamp: ago(90 * time.Minute)},
		Spec:       canary.CanarySpec{Settings: settings()},
		Status: canary.CanaryStatus{
			Phase: canary.PhaseFailed, FailedChecks: 5, CanaryRevision: "0badc0ffee", LastFailedRevision: "0badc0ffee",
			PrimaryRevision: "5eed5eed55", RevisionStartTime: ago(20 * time.Minute), LastTransitionTime: ago(10 * time.Minute),
			Message: "revision 0badc0ffee rolled back: failed checks threshold reached 5",
			Checks: []canary.CheckStatus{
				{Name: "request-success-rate", Verdict: canary.VerdictFailed, Value: ptr.To(91.0), PrimaryValue: ptr.To(99.9),
					Min: ptr.To(99.0), Unit: "%", Samples: ptr.To[int64](400), Message: "request-success-rate: 91.00% is below the minimum 99%"},
			},
			Conditions: []metav1.Condition{
				condition(canary.ConditionPromoted, metav1.ConditionFalse, "Failed", "failed checks threshold reached 5", 10*time.Minute),
			},
		},
	}
}

// fresh is a canary the shifter has not written a status for yet.
func fresh() canary.Canary {
	return canary.Canary{
		ObjectMeta: metav1.ObjectMeta{Namespace: "billing", Name: "ledger", CreationTimestamp: ago(5 * time.Second)},
		Spec:       canary.CanarySpec{Settings: settings()},
	}
}

func deployment(name, image string, replicas, ready int32) *appsv1.Deployment {
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: name},
		Spec: appsv1.DeploymentSpec{Replicas: ptr.To(replicas), Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
			Containers: []corev1.Container{{Name: "app", Image: image}, {Name: "proxy", Image: "envoy:1.30"}}}}},
		Status: appsv1.DeploymentStatus{ReadyReplicas: ready},
	}
}

// withPending diverts a template of image, of revision rev, to d's
// annotations, as the webhook does.
func withPending(d *appsv1.Deployment, rev, image string) *appsv1.Deployment {
	t := d.Spec.Template.DeepCopy()
	t.Spec.Containers[0].Image = image
	raw, _ := json.Marshal(t)
	d.Annotations = map[string]string{canary.AnnotationCanaryRevision: rev, canary.AnnotationCanaryTemplate: string(raw)}
	return d
}

// event is an Event about the Canary web as sluice's recorder writes one,
// named after its creation time.
func event(typ, reason, message string, at time.Time) corev1.Event {
	return corev1.Event{
		ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web." + hexNanos(at), UID: types.UID("uid-" + hexNanos(at))},
		Type:       typ, Reason: reason, Message: message, Count: 1,
		FirstTimestamp: metav1.NewTime(at.Truncate(time.Second)), LastTimestamp: metav1.NewTime(at.Truncate(time.Second)),
	}
}

// folded is an Event that Kubernetes counted count times, last at last.
func folded(e corev1.Event, count int32, last time.Time) corev1.Event {
	e.Count = count
	e.LastTimestamp = metav1.NewTime(last.Truncate(time.Second))
	return e
}

func hexNanos(t time.Time) string { return strconv.FormatInt(t.UnixNano(), 16) }
