package cli

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func occurrenceLines(occ []Occurrence) string {
	var lines []string
	for _, o := range occ {
		lines = append(lines, fmt.Sprintf("%s x%d %s", o.Time.UTC().Format(time.TimeOnly), o.Count, o.Message))
	}
	return strings.Join(lines, "\n")
}

func TestOccurrences(t *testing.T) {
	t0 := now.Add(-time.Hour)
	cases := []struct {
		name   string
		events []corev1.Event
		want   []string
	}{
		{
			name: "once each, ordered by time then by the nanoseconds in their names",
			events: []corev1.Event{
				event("Normal", "B", "second", t0.Add(900*time.Millisecond)),
				event("Normal", "C", "third", t0.Add(2*time.Second)),
				event("Normal", "A", "first", t0.Add(100*time.Millisecond)),
			},
			want: []string{"11:00:00 x1 first", "11:00:00 x1 second", "11:00:02 x1 third"},
		},
		{
			name: "a folded event is its first and its last occurrence, the last in order of its time",
			events: []corev1.Event{
				folded(event("Normal", "NewRevision", "New revision detected!", t0), 3, t0.Add(20*time.Minute)),
				event("Warning", "Failed", "Canary failed!", t0.Add(10*time.Minute)),
			},
			want: []string{"11:00:00 x1 New revision detected!", "11:10:00 x1 Canary failed!", "11:20:00 x3 New revision detected!"},
		},
		{
			name: "an events.k8s.io event counts its series",
			events: []corev1.Event{{
				ObjectMeta: metav1.ObjectMeta{Name: "web.series", UID: "s"}, Message: "Back-off",
				EventTime: metav1.NewMicroTime(t0),
				Series:    &corev1.EventSeries{Count: 4, LastObservedTime: metav1.NewMicroTime(t0.Add(time.Minute))},
			}},
			want: []string{"11:00:00 x1 Back-off", "11:01:00 x4 Back-off"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got, want := occurrenceLines(Occurrences(tc.events)), strings.Join(tc.want, "\n"); got != want {
				t.Errorf("occurrences:\n%s\nwant:\n%s", got, want)
			}
		})
	}
}

func TestSince(t *testing.T) {
	occ := Occurrences([]corev1.Event{
		folded(event("Normal", "NewRevision", "New revision detected!", now.Add(-time.Hour)), 2, now.Add(-time.Minute)),
		event("Normal", "Advanced", "Advance 20", now.Add(-time.Minute+300*time.Millisecond)),
		event("Normal", "Promoted", "Promotion completed!", now.Add(-30*time.Minute)),
	})
	// The revision started at 11:59:00.6: the events of its second count,
	// the repeat, known to the second only, after the other.
	got := occurrenceLines(Since(occ, now.Add(-time.Minute+600*time.Millisecond)))
	if want := "11:59:00 x1 Advance 20\n11:59:00 x2 New revision detected!"; got != want {
		t.Errorf("Since:\n%s\nwant:\n%s", got, want)
	}
}

// TestEventLogShowsRepeats: a live view shows each occurrence once, and
// an event again each time its count grows.
func TestEventLogShowsRepeats(t *testing.T) {
	var log EventLog
	e := event("Normal", "NewRevision", "New revision detected!", now.Add(-time.Hour))
	other := event("Normal", "Advanced", "Advance 20", now.Add(-50*time.Minute))
	steps := []struct {
		events []corev1.Event
		want   string
	}{
		{[]corev1.Event{e}, "11:00:00 x1 New revision detected!"},
		{[]corev1.Event{e, other}, "11:10:00 x1 Advance 20"},
		{[]corev1.Event{e, other}, ""},
		{[]corev1.Event{folded(e, 2, now.Add(-time.Minute)), other}, "11:59:00 x2 New revision detected!"},
		{[]corev1.Event{folded(e, 3, now), other}, "12:00:00 x3 New revision detected!"},
	}
	for i, s := range steps {
		if got := occurrenceLines(log.Unseen(Occurrences(s.events))); got != s.want {
			t.Errorf("step %d: new occurrences %q; want %q", i, got, s.want)
		}
	}
}

func TestFormatOccurrence(t *testing.T) {
	o := Occurrences([]corev1.Event{folded(event("Warning", "Halted", "Halt web.shop advancement", now.Add(-25*time.Hour)), 2, now.Add(-time.Minute))})
	got := FormatOccurrence(o[1], now, time.UTC)
	if want := "11:59:00  Warning  Halted           Halt web.shop advancement (x2 since 2026-11-29 11:00:00)"; got != want {
		t.Errorf("FormatOccurrence = %q; want %q", got, want)
	}
}

// TestOfRevision: the story of a revision starts at its "New revision
// detected!", not with what happened before it in the same second.
func TestOfRevision(t *testing.T) {
	start := now.Add(-time.Minute)
	occ := Occurrences([]corev1.Event{
		event("Normal", "Promoted", "Promotion completed!", start.Add(-time.Hour)),
		event("Normal", "Initialized", "Initialization done!", start.Add(100*time.Millisecond)),
		event("Normal", "NewRevision", "New revision detected!", start.Add(500*time.Millisecond)),
		event("Normal", "AnalysisStarted", "Starting canary analysis", start.Add(600*time.Millisecond)),
		event("Normal", "Advanced", "Advance 20", start.Add(2*time.Second)),
		// Another recorder's event that happened again in that second.
		folded(event("Warning", "Repeated", "Again", start.Add(-time.Hour+time.Millisecond)), 2, start),
	})
	got := occurrenceLines(OfRevision(occ, start.Add(500*time.Millisecond)))
	if want := "11:59:00 x1 New revision detected!\n11:59:00 x1 Starting canary analysis\n11:59:00 x2 Again\n11:59:02 x1 Advance 20"; got != want {
		t.Errorf("OfRevision:\n%s\nwant:\n%s", got, want)
	}
	// Without its event (dropped, or of another recorder), the second counts.
	got = occurrenceLines(OfRevision(slices.DeleteFunc(slices.Clone(occ), func(o Occurrence) bool { return o.Reason == "NewRevision" }), start))
	if want := "11:59:00 x1 Initialization done!\n11:59:00 x1 Starting canary analysis\n11:59:00 x2 Again\n11:59:02 x1 Advance 20"; got != want {
		t.Errorf("OfRevision without its event:\n%s\nwant:\n%s", got, want)
	}
}
