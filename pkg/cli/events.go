package cli

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// Occurrence is one time an event happened. Kubernetes folds an event that
// repeats an earlier one (same object, reason and message) into the
// earlier Event, counting it (`x2 over 5m` in kubectl describe): a view
// that lists Events by their first time, or shows each Event once, misses
// the repeat. Occurrences unfolds them.
type Occurrence struct {
	// Time is when it happened.
	Time time.Time
	// Type is Normal or Warning.
	Type, Reason, Message string
	// Count is how many times the event had happened by this occurrence;
	// more than 1 for a repeat.
	Count int32
	// First is when the event happened first, for a repeat.
	First time.Time
	// id identifies the occurrence among every other: the Event and its
	// count.
	id string
	// seq orders occurrences of the same second: the creation time in
	// nanoseconds that the recorders put in an Event's name; firstSeq is
	// that of the event's first occurrence.
	seq, firstSeq int64
}

// Occurrences unfolds events into the times they happened, oldest first:
// an Event that happened once is one occurrence; an Event counted N times
// is its first occurrence and its last one (at its last timestamp, with
// the count). The times of the occurrences in between are not recorded.
func Occurrences(events []corev1.Event) []Occurrence {
	var out []Occurrence
	for _, e := range events {
		first, last := eventTimes(e)
		count := max(e.Count, 1)
		if e.Series != nil {
			count = max(count, e.Series.Count)
		}
		base := Occurrence{Type: e.Type, Reason: e.Reason, Message: e.Message}
		id := string(e.UID)
		if id == "" {
			id = e.Namespace + "/" + e.Name
		}
		seq := nameNanos(e.Name, first)
		o := base
		o.Time, o.Count, o.id, o.seq, o.firstSeq = first, 1, id+"#1", seq, seq
		out = append(out, o)
		if count > 1 {
			// A repeat is known to the second only: it goes after what is
			// known to have happened in that second, and repeats of one
			// second keep the order of their first occurrences.
			o := base
			o.Time, o.Count, o.First, o.id = last, count, first, fmt.Sprintf("%s#%d", id, count)
			o.seq, o.firstSeq = last.Truncate(time.Second).Add(time.Second-1).UnixNano(), seq
			out = append(out, o)
		}
	}
	slices.SortStableFunc(out, func(a, b Occurrence) int {
		return cmp.Or(a.Time.Compare(b.Time), cmp.Compare(a.seq, b.seq), cmp.Compare(a.firstSeq, b.firstSeq))
	})
	return out
}

// eventTimes are when an event happened first and last, from whichever
// fields its recorder set: core/v1's timestamps, or events.k8s.io/v1's
// event time and series.
func eventTimes(e corev1.Event) (first, last time.Time) {
	first = e.FirstTimestamp.Time
	if first.IsZero() {
		first = e.EventTime.Time
	}
	if first.IsZero() {
		first = e.CreationTimestamp.Time
	}
	last = e.LastTimestamp.Time
	if e.Series != nil && e.Series.LastObservedTime.After(last) {
		last = e.Series.LastObservedTime.Time
	}
	if last.Before(first) {
		last = first
	}
	return first, last
}

// nameNanos is the creation time in nanoseconds that client-go's recorder
// and sluice's name an Event after (<object>.<hex nanos>), if the name
// has it and it falls in the second of at; at's own nanoseconds otherwise.
func nameNanos(name string, at time.Time) int64 {
	i := strings.LastIndexByte(name, '.')
	if i < 0 {
		return at.UnixNano()
	}
	n, err := strconv.ParseInt(name[i+1:], 16, 64)
	if err != nil || !time.Unix(0, n).Truncate(time.Second).Equal(at.Truncate(time.Second)) {
		return at.UnixNano()
	}
	return n
}

// Since keeps the occurrences at or after t, to the second: the times of
// events and of a Canary's status have no finer precision.
func Since(occurrences []Occurrence, t time.Time) []Occurrence {
	t = t.Truncate(time.Second)
	return slices.DeleteFunc(slices.Clone(occurrences), func(o Occurrence) bool { return o.Time.Before(t) })
}

// RevisionStarted is the reason of the shifter's event for a new revision.
const RevisionStarted = "NewRevision"

// OfRevision keeps the occurrences of the revision detected at start: from
// the shifter's last "New revision detected!" of that second on, since the
// events of the second before it (the previous rollout's end, the
// Canary's initialization) are not of the revision.
func OfRevision(occurrences []Occurrence, start time.Time) []Occurrence {
	out := Since(occurrences, start)
	second := start.Truncate(time.Second)
	for i := len(out) - 1; i >= 0; i-- {
		if out[i].Reason == RevisionStarted && out[i].Time.Truncate(time.Second).Equal(second) {
			return out[i:]
		}
	}
	return out
}

// EventLog remembers the occurrences a live view has shown, so that it
// shows each once, and an event again when its count grows.
type EventLog struct {
	shown map[string]bool
}

// Unseen returns the occurrences not shown yet, in order, and marks them
// shown.
func (l *EventLog) Unseen(occurrences []Occurrence) []Occurrence {
	if l.shown == nil {
		l.shown = map[string]bool{}
	}
	var out []Occurrence
	for _, o := range occurrences {
		if !l.shown[o.id] {
			l.shown[o.id] = true
			out = append(out, o)
		}
	}
	return out
}

// FormatOccurrence writes an occurrence in one line: its time, type,
// reason and message, and for a repeat the count and the first time:
// "12:00:05  Normal   Advanced         Advance web.shop canary weight 20".
func FormatOccurrence(o Occurrence, now time.Time, loc *time.Location) string {
	return formatOccurrence(o, clock(o.Time, now, loc), now, loc)
}

// FormatOccurrences writes occurrences a line each, as FormatOccurrence,
// their times in one column: all with the date if one is not of today.
func FormatOccurrences(occurrences []Occurrence, now time.Time, loc *time.Location) []string {
	dated := slices.ContainsFunc(occurrences, func(o Occurrence) bool { return len(clock(o.Time, now, loc)) > len("15:04:05") })
	lines := make([]string, len(occurrences))
	for i, o := range occurrences {
		at := clock(o.Time, now, loc)
		if dated {
			at = o.Time.In(orLocal(loc)).Format(time.DateTime)
		}
		lines[i] = formatOccurrence(o, at, now, loc)
	}
	return lines
}

func formatOccurrence(o Occurrence, at string, now time.Time, loc *time.Location) string {
	line := fmt.Sprintf("%s  %-7s  %-15s  %s", at, o.Type, o.Reason, o.Message)
	if o.Count > 1 {
		line += fmt.Sprintf(" (x%d since %s)", o.Count, clock(o.First, now, loc))
	}
	return line
}

// clock writes t in loc: the time of day if t is on now's day, with the
// date otherwise.
func clock(t, now time.Time, loc *time.Location) string {
	t, now = t.In(orLocal(loc)), now.In(orLocal(loc))
	if y, m, d := t.Date(); y == now.Year() && m == now.Month() && d == now.Day() {
		return t.Format(time.TimeOnly)
	}
	return t.Format(time.DateTime)
}

func orLocal(loc *time.Location) *time.Location {
	if loc == nil {
		return time.Local
	}
	return loc
}
