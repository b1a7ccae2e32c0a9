package shift

import (
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"sluice.dev/sluice/pkg/canary"
)

func TestWrites(t *testing.T) {
	dep := func(rv string) *appsv1.Deployment {
		return &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web-canary", ResourceVersion: rv}}
	}
	cases := []struct {
		name    string
		wrote   string // resourceVersion written; "" for no write
		created bool
		after   time.Duration
		read    string // in the cache; "" for not found
		stale   bool
	}{
		{"never written", "", false, 0, "7", false},
		{"cache behind", "9", false, time.Second, "7", true},
		{"cache caught up", "9", false, time.Second, "9", false},
		{"cache ahead", "9", false, time.Second, "12", false},
		{"created, not yet in the cache", "9", true, time.Second, "", true},
		{"updated, then deleted by someone", "9", false, time.Second, "", false},
		{"a write that never showed is forgotten", "9", false, forgetAfter + time.Second, "7", false},
		{"opaque versions must be equal", "b", false, time.Second, "a", true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var w writes
			if c.wrote != "" {
				w.record(dep(c.wrote), c.created, t0)
			}
			if got := w.stale(dep(c.read), c.read != "", t0.Add(c.after)); got != c.stale {
				t.Errorf("stale %v; want %v", got, c.stale)
			}
		})
	}
	var w writes
	w.record(dep("9"), false, t0)
	w.record(dep("8"), false, t0) // an older write recorded later
	if !w.stale(dep("8"), true, t0) {
		t.Error("an older write recorded later replaced the newer one")
	}
	if w.stale(&canary.Canary{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web-canary", ResourceVersion: "7"}}, true, t0) {
		t.Error("a write of a Deployment made a Canary of the same name stale")
	}
	w.stale(dep("9"), true, t0)
	if w.stale(dep("7"), true, t0) {
		t.Error("a write the cache caught up with still counts")
	}
}
