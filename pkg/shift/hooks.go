package shift

import (
	"fmt"
	"slices"
	"strconv"
	"time"

	"sluice.dev/sluice/pkg/canary"
	"sluice.dev/sluice/pkg/hooks"
)

// HookCall is a webhook call that a decision needs the answer of: the caller
// starts it unless it has, and steps again with its result once it is in.
type HookCall struct {
	// ID names the call; Observation.Hooks carries its result by it.
	ID      string
	Spec    canary.WebhookSpec
	Payload hooks.Payload
}

// answer is what the webhooks of one type said in one round.
type answer struct {
	// pending: some have not answered yet.
	pending bool
	// no is the first that did not answer 2xx, if any; nil when all did
	// (or there are none).
	no *canary.HookStatus
	// yesFrom is the first that answered 2xx, if any.
	yesFrom *canary.HookStatus
	// news: a result came in that the status did not have.
	news bool
}

// webhooks are the settings' webhooks of type t.
func (s *stepper) webhooks(t canary.HookType) []canary.WebhookSpec {
	var out []canary.WebhookSpec
	for _, h := range s.o.Settings.Webhooks {
		if h.Type == t {
			out = append(out, h)
		}
	}
	return out
}

// ask asks the webhooks of type t about round, and records the answers
// that are in.
func (s *stepper) ask(t canary.HookType, round string) answer {
	var a answer
	for _, h := range s.webhooks(t) {
		a.add(s.call(h, round))
	}
	return a
}

// askEachInterval asks the webhooks of type t until each has answered 2xx
// in this revision, once per interval: a webhook that said no (or could
// not be reached) is asked again an interval after its answer.
func (s *stepper) askEachInterval(t canary.HookType) answer {
	var a answer
	for _, h := range s.webhooks(t) {
		last := s.hookStatus(h.Name)
		switch {
		case last == nil:
			a.add(s.call(h, "first"))
		case last.Result == canary.HookSucceeded:
		case s.o.Now.Before(last.Time.Add(s.o.Settings.Interval.Duration)):
			a.no = cmpNo(a.no, last)
			s.requeue(last.Time.Add(s.o.Settings.Interval.Duration).Sub(s.o.Now))
		default:
			a.add(s.call(h, strconv.FormatInt(last.Time.Unix(), 10)))
		}
	}
	return a
}

func cmpNo(a, b *canary.HookStatus) *canary.HookStatus {
	if a != nil {
		return a
	}
	return b
}

func (a *answer) add(st *canary.HookStatus, news bool) {
	a.news = a.news || news
	switch {
	case st == nil:
		a.pending = true
	case st.Result != canary.HookSucceeded:
		a.no = cmpNo(a.no, st)
	default:
		a.yesFrom = cmpNo(a.yesFrom, st)
	}
}

// call asks webhook h about round: its result if it is in (recorded in the
// status, news if it was not), or nil while it is not.
func (s *stepper) call(h canary.WebhookSpec, round string) (*canary.HookStatus, bool) {
	revision := s.st.CanaryRevision
	id := hooks.CallID(s.o.Namespace, s.o.Name, revision, h.Name, round)
	s.d.Hooks = append(s.d.Hooks, HookCall{ID: id, Spec: h, Payload: s.payload(id, h, nil)})
	res, ok := s.o.Hooks[id]
	if !ok {
		return nil, false
	}
	if h.Type == canary.HookRollback && res.Result != canary.HookSucceeded {
		// A rollback webhook's no is the usual answer, asked each
		// interval: it costs no status write.
		return &res, false
	}
	news := s.setHookStatus(res)
	return s.hookStatus(h.Name), news
}

// payload is what webhook h is told now.
func (s *stepper) payload(id string, h canary.WebhookSpec, ev *hooks.Event) hooks.Payload {
	return hooks.Payload{APIVersion: hooks.APIVersion, ID: id, Type: h.Type, Webhook: h.Name,
		Name: s.o.Name, Namespace: s.o.Namespace, Phase: s.st.Phase, Revision: s.st.CanaryRevision,
		PrimaryRevision: s.st.PrimaryRevision, CanaryWeight: s.st.CanaryWeight, FailedChecks: s.st.FailedChecks,
		Checks: hooks.ChecksOf(s.st.Checks), Metadata: h.Metadata, Event: ev, Time: s.o.Now}
}

// hookStatus is the last result of webhook name in this revision, if any.
func (s *stepper) hookStatus(name string) *canary.HookStatus {
	i := slices.IndexFunc(s.st.Webhooks, func(h canary.HookStatus) bool {
		return h.Name == name && h.Revision == s.st.CanaryRevision
	})
	if i < 0 {
		return nil
	}
	return &s.st.Webhooks[i]
}

// setHookStatus records res as its webhook's last result, and reports
// whether it is news: another call's than the one recorded.
func (s *stepper) setHookStatus(res canary.HookStatus) bool {
	// As the API server stores it, so that a result read back is no news.
	res.Time = res.Time.Rfc3339Copy()
	i := slices.IndexFunc(s.st.Webhooks, func(h canary.HookStatus) bool { return h.Name == res.Name })
	if i < 0 {
		s.st.Webhooks = append(s.st.Webhooks, res)
		return true
	}
	if old := s.st.Webhooks[i]; old.Revision == res.Revision && old.Result == res.Result && old.Message == res.Message &&
		old.Time.Equal(&res.Time) {
		return false
	}
	s.st.Webhooks[i] = res
	return true
}

// requeue asks to look again within after.
func (s *stepper) requeue(after time.Duration) {
	if s.d.RequeueAfter == 0 || after < s.d.RequeueAfter {
		s.d.RequeueAfter = after
	}
}

// waitForAnswers holds the rollout until the webhooks asked answer: their
// results wake the reconcile; the interval is a backstop.
func (s *stepper) waitForAnswers() {
	s.requeue(s.o.Settings.Interval.Duration)
}

// said describes a webhook's answer for events and messages.
func said(h *canary.HookStatus) string {
	if h.Result == canary.HookUnreachable {
		return fmt.Sprintf("webhook %s could not be reached: %s", h.Name, h.Message)
	}
	return fmt.Sprintf("webhook %s answered %s", h.Name, h.Message)
}

// waitForRollout holds a new revision in Waiting until its rollout is
// confirmed: by a person when the gate is manual, else by the
// confirm-rollout webhooks, asked once per interval until all say yes.
func (s *stepper) waitForRollout() {
	s.d.Canary = CanaryScaleDown
	if s.o.Settings.ConfirmRollout == canary.GateManual {
		return
	}
	a := s.askEachInterval(canary.HookConfirmRollout)
	switch {
	case a.pending:
		s.st.Message = "waiting for the confirm-rollout webhooks to answer"
		s.waitForAnswers()
	case a.no != nil:
		if a.news {
			s.event(step, "Waiting", "Waiting for the rollout of %s revision %s to be confirmed: %s", s.id(), s.st.CanaryRevision, said(a.no))
		}
		s.st.Message = "waiting for the confirm-rollout webhooks: " + said(a.no)
	default:
		s.confirmRollout("the confirm-rollout webhooks")
		s.progress()
	}
}

// preRollout runs the pre-rollout webhooks once the canary is ready, and
// reports whether all have passed. A failure counts as a failed check, and
// is tried again an interval later.
func (s *stepper) preRollout() bool {
	a := s.askEachInterval(canary.HookPreRollout)
	switch {
	case a.pending:
		s.waitForAnswers()
	case a.no != nil && a.news:
		s.haltFor([]string{said(a.no)})
	case a.no == nil:
		return true
	}
	return false
}

// gateAhead is the type of the webhooks that confirm the next move: the
// promotion at max-weight, a weight increase before it.
func (s *stepper) gateAhead(final bool) canary.HookType {
	if final {
		return canary.HookConfirmPromotion
	}
	return canary.HookConfirmTrafficIncrease
}

// holdAtWeight keeps a canary that passed its analysis at its weight, since
// a confirm-traffic-increase webhook did not confirm the next. The analysis
// goes on each interval, and its failures still count.
func (s *stepper) holdAtWeight(no *canary.HookStatus) {
	s.event(step, "Held", "Holding %s at canary weight %d: %s", s.id(), s.st.CanaryWeight, said(no))
	s.st.Message = fmt.Sprintf("holding at canary weight %d: %s", s.st.CanaryWeight, said(no))
	s.d.RequeueAfter = s.o.Settings.Interval.Duration
}

// tellOutcome calls the post-rollout webhooks about the revision that just
// ended, once each: their results stay in the status, so that a restarted
// shifter does not call them again. A failure is told, and changes nothing.
func (s *stepper) tellOutcome() {
	for _, h := range s.webhooks(canary.HookPostRollout) {
		if s.hookStatus(h.Name) != nil {
			continue
		}
		if res, news := s.call(h, string(s.st.Phase)); news && res.Result != canary.HookSucceeded {
			s.event(stepWarning, "PostRolloutFailed", "Post-rollout of %s revision %s: %s", s.id(), s.st.CanaryRevision, said(res))
		}
	}
}

// notify sends every event of the decision to the event webhooks.
func (s *stepper) notify() {
	hooksOfType := s.webhooks(canary.HookEvent)
	for i, e := range s.d.Events {
		typ := "Normal"
		if e.Warning {
			typ = "Warning"
		}
		for _, h := range hooksOfType {
			// One call per event: its reason and place in the decision,
			// at this time.
			id := hooks.CallID(s.o.Namespace, s.o.Name, s.st.CanaryRevision, h.Name,
				fmt.Sprintf("%s/%d/%d", e.Reason, i, s.o.Now.UnixNano()))
			s.d.Notify = append(s.d.Notify, HookCall{ID: id, Spec: h,
				Payload: s.payload(id, h, &hooks.Event{Type: typ, Reason: e.Reason, Message: e.Message})})
		}
	}
}
