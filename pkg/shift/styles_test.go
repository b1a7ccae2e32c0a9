package shift

import (
	"testing"
	"time"

	"sluice.dev/sluice/pkg/canary"
	"sluice.dev/sluice/pkg/routing"
)

// styled is a world whose Deployment runs the lesson's settings with
// annotations added.
func styled(t *testing.T, annotations map[string]string) *world {
	t.Helper()
	all := map[string]string{
		canary.AnnotationStepWeight: "20", canary.AnnotationMaxWeight: "70",
		canary.AnnotationThreshold: "2", canary.AnnotationInterval: "30s",
	}
	for k, v := range annotations {
		all[k] = v
	}
	s, problems := canary.BuiltinDefaults().Parse(all)
	if len(problems) > 0 {
		t.Fatal(problems)
	}
	w := newWorld(t)
	w.o.Settings = s
	w.step()
	w.o.PendingRevision, w.o.CanaryReady = "r2", true
	w.checks = healthy
	w.events = nil
	return w
}

// TestABHappyPath: the matching requests go to the canary, the weight stays
// 0, for 3 analysed iterations; then the canary is promoted, and everything
// goes to the primary.
func TestABHappyPath(t *testing.T) {
	w := styled(t, map[string]string{canary.AnnotationMatchHeaders: "x-canary=insider", canary.AnnotationIterations: "3"})
	match := []canary.RequestMatch{{Headers: []canary.HeaderMatch{{Name: "x-canary", Value: "insider"}}}}
	d := w.after(time.Second).step()
	w.expectEvents(t, "New revision detected! Scaling up web-canary.shop", "Starting canary analysis for web.shop",
		"Advance web.shop canary iteration 1/3: the matching requests go to the canary")
	if want := (routing.Routing{Match: match}); !d.Routing.Equal(want) {
		t.Errorf("routing %+v; want %+v", d.Routing, want)
	}
	w.after(30 * time.Second).step()
	w.expectEvents(t, "Advance web.shop canary iteration 2/3: the matching requests go to the canary")
	w.after(30 * time.Second).step()
	w.expectEvents(t, "Advance web.shop canary iteration 3/3: the matching requests go to the canary")
	if st := w.o.Status; st.Iterations != 2 || st.CanaryWeight != 0 {
		t.Errorf("iterations %d, weight %d; want 2 passed, weight 0", st.Iterations, st.CanaryWeight)
	}
	d = w.after(30 * time.Second).step()
	w.expectEvents(t, "Copying web-canary.shop template spec to web.shop")
	if !d.Promote || !d.Routing.Equal(routing.Routing{Match: match}) {
		t.Errorf("promote %t, routing %+v; want a promotion, the matching requests on the canary meanwhile", d.Promote, d.Routing)
	}
	w.o.PrimaryReady = true
	d = w.after(time.Second).step()
	w.expectStatus(t, canary.PhaseSucceeded, 0, 0)
	if !d.Routing.Equal(routing.Routing{}) {
		t.Errorf("routing after the promotion %+v; want all to the primary", d.Routing)
	}
}

// TestABRollsBackAtThreshold: an A/B test's failed checks count as a
// weighted rollout's do.
func TestABRollsBackAtThreshold(t *testing.T) {
	w := styled(t, map[string]string{canary.AnnotationMatchCookie: "canary=always", canary.AnnotationIterations: "5"})
	w.after(time.Second).step()
	w.checks = worse
	w.after(30 * time.Second).step()
	w.after(30 * time.Second).step()
	w.expectStatus(t, canary.PhaseFailed, 0, 2)
	if d := w.after(time.Second).step(); !d.Routing.Equal(routing.Routing{}) {
		t.Errorf("routing after the rollback %+v; want all to the primary", d.Routing)
	}
}

// TestMirrorThenWeights: 2 mirrored iterations at weight 0, then the
// lesson's weights.
func TestMirrorThenWeights(t *testing.T) {
	w := styled(t, map[string]string{canary.AnnotationMirror: "true", canary.AnnotationMirrorPercent: "50", canary.AnnotationIterations: "2"})
	d := w.after(time.Second).step()
	w.expectEvents(t, "New revision detected! Scaling up web-canary.shop", "Starting canary analysis for web.shop",
		"Advance web.shop canary iteration 1/2: mirroring 50% of the traffic to the canary")
	if want := (routing.Routing{MirrorPercent: 50}); !d.Routing.Equal(want) {
		t.Errorf("routing %+v; want %+v", d.Routing, want)
	}
	w.after(30 * time.Second).step()
	w.expectEvents(t, "Advance web.shop canary iteration 2/2: mirroring 50% of the traffic to the canary")
	d = w.after(30 * time.Second).step()
	w.expectEvents(t, "Advance web.shop canary weight 20")
	if want := (routing.Routing{CanaryWeight: 20}); !d.Routing.Equal(want) {
		t.Errorf("routing %+v; want %+v", d.Routing, want)
	}
	for range 3 {
		w.after(30 * time.Second).step()
	}
	w.expectEvents(t, "Advance web.shop canary weight 40", "Advance web.shop canary weight 60", "Advance web.shop canary weight 80")
}

// TestSessionCookieFollowsTheRevision: the sticky cookie carries the
// canary's revision, so that a client of an earlier rollout is not taken
// for one of this.
func TestSessionCookieFollowsTheRevision(t *testing.T) {
	w := styled(t, map[string]string{canary.AnnotationSessionCookie: "sluice-canary; max-age=1h"})
	d := w.after(time.Second).step()
	want := routing.Routing{CanaryWeight: 20, Sticky: &routing.Sticky{Cookie: "sluice-canary", Value: "r2", MaxAge: time.Hour}}
	if !d.Routing.Equal(want) {
		t.Errorf("routing %+v; want %+v", d.Routing, want)
	}
	w.o.Routed = routing.Routing{CanaryWeight: 20}
	if d := w.after(30 * time.Second).step(); d.RunChecks || d.Status.CanaryWeight != 20 {
		t.Errorf("with the sticky rule not routed yet: checks %t, weight %d; want to wait for it", d.RunChecks, d.Status.CanaryWeight)
	}
}
