package cli

import (
	"bytes"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"sluice.dev/sluice/pkg/canary"
)

func table(t *testing.T, canaries []canary.Canary, opts TableOptions) string {
	t.Helper()
	var out bytes.Buffer
	opts.Now = now
	if err := RenderTable(&out, canaries, opts); err != nil {
		t.Fatal(err)
	}
	return out.String()
}

func TestGetTable(t *testing.T) {
	golden(t, "get", table(t, []canary.Canary{succeeded(), paused(), progressing()}, TableOptions{}))
}

func TestGetTableAllNamespaces(t *testing.T) {
	all := []canary.Canary{progressing(), failed(), succeeded(), fresh(), paused()}
	sortCanaries(all)
	golden(t, "get-all-namespaces", table(t, all, TableOptions{AllNamespaces: true}))
}

func TestGetTableWide(t *testing.T) {
	golden(t, "get-wide", table(t, []canary.Canary{succeeded(), paused(), progressing()}, TableOptions{Wide: true}))
}

func TestGetJSONAndYAML(t *testing.T) {
	for _, format := range []string{"json", "yaml"} {
		var one, list bytes.Buffer
		if err := printObjects(&one, format, []canary.Canary{failed()}, true); err != nil {
			t.Fatal(err)
		}
		golden(t, "get-one."+format, one.String())
		if err := printObjects(&list, format, []canary.Canary{failed(), fresh()}, false); err != nil {
			t.Fatal(err)
		}
		golden(t, "get-list."+format, list.String())
	}
}

// webEvents is the story of the Canary web: its last rollout a day ago,
// which Kubernetes folded the current one's repeats into, and the current
// one.
func webEvents() []corev1.Event {
	day := now.Add(-26 * time.Hour)
	return []corev1.Event{
		folded(event("Normal", "NewRevision", "New revision detected! Scaling up web-canary.shop", day), 2, now.Add(-3*time.Minute)),
		folded(event("Normal", "AnalysisStarted", "Starting canary analysis for web.shop", day.Add(5*time.Second)), 2, now.Add(-170*time.Second)),
		folded(event("Normal", "Advanced", "Advance web.shop canary weight 20", day.Add(5*time.Second+time.Millisecond)), 2, now.Add(-170*time.Second)),
		event("Normal", "Promoted", "Promotion completed! Scaling down web-canary.shop", day.Add(10*time.Minute)),
		// Two events of one second, told apart by their names.
		event("Normal", "Advanced", "Advance web.shop canary weight 40", now.Add(-80*time.Second+700*time.Millisecond)),
		event("Normal", "Sighted", "The analysis of web.shop reads the metrics again after 20s blind", now.Add(-80*time.Second+100*time.Millisecond)),
		event("Warning", "Halted", "Halt web.shop advancement request-duration: slow request rate 3% (36 of 1200) is above the allowed 1%",
			now.Add(-10*time.Second)),
	}
}

func status(t *testing.T, v StatusView) string {
	t.Helper()
	var out bytes.Buffer
	if err := RenderStatus(&out, v, StatusOptions{Now: now, Location: time.UTC}); err != nil {
		t.Fatal(err)
	}
	return out.String()
}

func webView(allEvents bool) StatusView {
	cr := progressing()
	v := StatusView{
		Canary:           &cr,
		Primary:          withPending(deployment("web", "example.com/web:v1", 3, 3), "9f8e7d6c5b", "example.com/web:v2"),
		CanaryDeployment: deployment("web-canary", "example.com/web:v2", 3, 2),
		Events:           Occurrences(webEvents()),
	}
	if !allEvents {
		v.EventsSince = cr.Status.RevisionStartTime.Time
		v.Events = OfRevision(v.Events, v.EventsSince)
	}
	return v
}

func TestStatusProgressing(t *testing.T) {
	golden(t, "status-progressing", status(t, webView(false)))
}

func TestStatusAllEvents(t *testing.T) {
	golden(t, "status-all-events", status(t, webView(true)))
}

// TestStatusPausedReadOnly: a user who may read canaries only sees no
// images and no events, and a note that says why.
func TestStatusPausedReadOnly(t *testing.T) {
	cr := paused()
	golden(t, "status-paused-read-only", status(t, StatusView{Canary: &cr, Notes: []string{
		"no images: kubectl sluice status needs get on deployments.apps in namespace shop: forbidden",
		"no events: kubectl sluice status needs list on events in namespace shop: forbidden",
	}}))
}

// TestStatusPendingRevision: a revision the webhook diverted that the
// shifter has not started yet, after a failed one.
func TestStatusPendingRevision(t *testing.T) {
	cr := failed()
	cr.Namespace = "shop"
	golden(t, "status-pending", status(t, StatusView{
		Canary:           &cr,
		Primary:          withPending(deployment("invoices", "example.com/invoices:v1", 2, 2), "feedfacefe", "example.com/invoices:v3"),
		CanaryDeployment: deployment("invoices-canary", "example.com/invoices:v2", 0, 0),
	}))
}

// TestStatusABTest: an A/B test tells its conditions and iterations.
func TestStatusABTest(t *testing.T) {
	v := webView(false)
	cr := v.Canary.DeepCopy()
	cr.Spec.Match = []canary.RequestMatch{
		{Headers: []canary.HeaderMatch{{Name: "x-canary", Value: "insider"}, {Name: "x-region", Value: "eu-.*", Regex: true}}},
		{Headers: []canary.HeaderMatch{canary.CookieMatch("canary", "always")}},
	}
	cr.Spec.Iterations, cr.Status.Iterations, cr.Status.CanaryWeight = 10, 3, 0
	v.Canary = cr
	golden(t, "status-ab-test", status(t, v))
}
