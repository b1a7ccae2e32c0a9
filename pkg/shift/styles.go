package shift

import (
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"sluice.dev/sluice/pkg/canary"
	"sluice.dev/sluice/pkg/routing"
)

// The release styles: the stages of a rollout before, or instead of, the
// weights. An A/B test sends the requests that match to the canary for a
// number of analysed iterations, then promotes; mirroring copies the
// traffic to the canary for a number of analysed iterations, then the
// weights begin.

// abTest reports whether the rollout is an A/B test.
func (s *stepper) abTest() bool { return len(s.o.Settings.Match) > 0 }

// mirroring reports whether the rollout is in its mirrored iterations.
func (s *stepper) mirroring() bool {
	return s.o.Settings.Mirror && s.st.CanaryWeight == 0 && s.st.Iterations < s.o.Settings.Iterations
}

// begin starts the analysis of a ready canary: its first iteration, or its
// first weight.
func (s *stepper) begin() {
	switch {
	case s.abTest():
		s.iterate("the matching requests go to the canary")
	case s.mirroring():
		s.iterate(fmt.Sprintf("mirroring %d%% of the traffic to the canary", s.o.Settings.MirrorPercent))
	default:
		s.advance()
	}
}

// next takes the next step of a canary that passed a round: its next
// iteration, or its next weight.
func (s *stepper) next() {
	if s.abTest() || s.mirroring() {
		s.st.Iterations++
	}
	// The last mirrored iteration passed: the weights begin.
	s.begin()
}

// iterate starts iteration st.Iterations+1, which does what.
func (s *stepper) iterate(what string) {
	n := s.st.Iterations + 1
	s.st.LastStepTime = metav1.NewTime(s.o.Now)
	s.newStep()
	s.event(step, "Advanced", "Advance %s canary iteration %d/%d: %s", s.id(), n, s.o.Settings.Iterations, what)
	s.transition(canary.PhaseProgressing, fmt.Sprintf("canary iteration %d/%d", n, s.o.Settings.Iterations))
	s.d.RequeueAfter = s.o.Settings.Interval.Duration
}

// final reports whether the round under way is the last before the
// promotion.
func (s *stepper) final() bool {
	switch {
	case s.abTest():
		return s.st.Iterations+1 >= s.o.Settings.Iterations
	case s.mirroring():
		return false
	}
	return s.st.CanaryWeight >= s.o.Settings.MaxWeight
}

// routing is what the route sends in the rollout's stage: everything to
// the primary outside an analysis; the matching requests, the mirrored
// copies or the weight (and the sticky clients) during it, and on during
// its promotion.
func (s *stepper) routing() routing.Routing {
	if !analysing(s.st.Phase) || s.st.StepStartTime.IsZero() {
		return routing.Routing{}
	}
	switch set := s.o.Settings; {
	case s.abTest():
		return routing.Routing{Match: set.Match}
	case s.mirroring():
		return routing.Routing{MirrorPercent: set.MirrorPercent}
	case set.Session != nil:
		return routing.Routing{CanaryWeight: s.st.CanaryWeight, Sticky: &routing.Sticky{
			Cookie: set.Session.Cookie, Value: s.st.CanaryRevision, MaxAge: set.Session.SessionMaxAge(),
		}}
	default:
		return routing.Routing{CanaryWeight: s.st.CanaryWeight}
	}
}
