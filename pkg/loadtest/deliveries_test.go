package loadtest

import (
	"testing"
	"time"
)

// TestDeliveries: a finished run's answer is kept for the time to live, and
// only the newest ones beyond the maximum; a run going on stays.
func TestDeliveries(t *testing.T) {
	t0 := time.Unix(1_800_000_000, 0)
	d := newDeliveries(10*time.Minute, 2)
	runs := map[string]*run{}
	for _, id := range []string{"a", "b", "c", "going"} {
		runs[id] = &run{delivery: id}
		d.add(runs[id])
	}
	for i, id := range []string{"a", "b", "c"} {
		runs[id].finishedAt = t0.Add(time.Duration(i) * time.Minute)
		d.finished(runs[id])
	}
	for _, tt := range []struct {
		id   string
		at   time.Duration
		want bool
	}{
		{"a", 0, false}, // the oldest beyond the maximum of 2
		{"b", 10*time.Minute + time.Minute - time.Second, true},
		{"c", 10*time.Minute + time.Minute - time.Second, true},
		{"b", 11 * time.Minute, false},
		{"c", 11 * time.Minute, true},
		{"c", 12 * time.Minute, false},
		{"going", time.Hour, true},
		{"unknown", 0, false},
	} {
		if got := d.get(tt.id, t0.Add(tt.at)); (got != nil) != tt.want || got != nil && got != runs[tt.id] {
			t.Errorf("get(%s) after %s = %v; want kept: %v", tt.id, tt.at, got, tt.want)
		}
	}
}
