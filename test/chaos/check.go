package main

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	istiov1 "istio.io/client-go/pkg/apis/networking/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"sluice.dev/sluice/pkg/canary"
	"sluice.dev/sluice/test/sluice"
)

// checkWeights checks that every HTTP route of a VirtualService sends all of
// the traffic somewhere: its weights add up to 100. The shifter patches the
// weights of both destinations in one write, so no state in between may
// ever be stored.
func (l *ledger) checkWeights(vs *istiov1.VirtualService) {
	for i, route := range vs.Spec.GetHttp() {
		dests := route.GetRoute()
		if len(dests) < 2 {
			continue
		}
		sum, parts := int32(0), []string{}
		for _, d := range dests {
			sum += d.GetWeight()
			parts = append(parts, fmt.Sprintf("%s=%d", d.GetDestination().GetHost(), d.GetWeight()))
		}
		if sum != 100 {
			l.mu.Lock()
			l.violate(vs.Name, fmt.Sprintf("VirtualService %s (resourceVersion %s) route %d: weights %s add up to %d, not 100",
				vs.Name, vs.ResourceVersion, i, strings.Join(parts, ", "), sum))
			l.mu.Unlock()
		}
	}
}

// checkPrimaries checks every change of a primary seen so far that is
// settled: seen at least minAge ago and not possibly the work of an update
// whose answer is not in yet. With minAge 0 it checks all that are left.
func (l *ledger) checkPrimaries(minAge time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := time.Now()
	for _, a := range l.apps {
		for ; a.checked < len(a.versions); a.checked++ {
			i := a.checked
			v := a.versions[i]
			if minAge > 0 && (now.Sub(v.at) < minAge || (!a.inflight.IsZero() && a.inflight.Before(v.at))) {
				break
			}
			if i == 0 || a.versions[i-1].primary == v.primary {
				continue
			}
			for _, p := range a.checkPrimary(a.versions[i-1], v) {
				l.violate(a.name, p)
			}
		}
	}
}

// byRV lists the accepted updates of a, in the order etcd stored them.
func (a *app) byRV() []*update {
	var out []*update
	for _, u := range a.updates {
		if u.accepted() {
			out = append(out, u)
		}
	}
	slices.SortStableFunc(out, func(x, y *update) int { return cmp.Compare(x.rv, y.rv) })
	return out
}

// windowAt replays the updates stored up to rv: open is the diverted update
// whose template is pending then (nil if none), and last the last update
// that changed a template or the canary.
func (a *app) windowAt(rv uint64) (open, last *update) {
	for _, u := range a.byRV() {
		if u.rv > rv {
			break
		}
		switch u.result {
		case diverted:
			if open == nil || open.pendingRevision != u.pendingRevision {
				open = u
			}
			last = u
		case plain, cleared:
			// A plain rollout during an outage leaves the canary
			// annotations behind; sluice must drop them, not run them.
			open, last = nil, u
		}
	}
	return open, last
}

// appliedLast is the last accepted update up to rv that sent template t.
func (a *app) appliedLast(t string, rv uint64) *update {
	var found *update
	for _, u := range a.byRV() {
		if u.rv <= rv && u.template == t {
			found = u
		}
	}
	return found
}

// checkPrimary checks one change of the primary template: the new template
// is one the user applied, rolled out plainly by the update that sent it,
// or promoted after passing analysis while it was the pending canary; its
// update is not older than that of the template it replaces; and it was
// promoted once.
func (a *app) checkPrimary(prev, v version) []string {
	change := fmt.Sprintf("the primary changed from template %s to %s at resourceVersion %d", prev.primary, v.primary, v.rv)
	// stale reports u, the update that justifies the change, if it is
	// older than the last update before rv of the template it replaced.
	stale := func(u *update, rv uint64) []string {
		if replaced := a.appliedLast(prev.primary, rv); replaced != nil && u.rv < replaced.rv {
			return []string{fmt.Sprintf("stale promotion: %s, applied by update #%d (resourceVersion %d), older than update #%d (resourceVersion %d) that applied the template it replaced",
				change, u.id, u.rv, replaced.id, replaced.rv)}
		}
		return nil
	}
	// A watch that lists again skips versions: the change happened after
	// the previous version seen, at v or before.
	var open *update
	for _, u := range a.byRV() {
		if u.rv <= prev.rv || u.rv > v.rv {
			continue
		}
		if u.result == plain && u.primary == v.primary {
			return stale(u, u.rv-1)
		}
		if o, _ := a.windowAt(u.rv); o != nil && o.pendingTemplate == v.primary {
			open = o
		}
	}
	if o, _ := a.windowAt(prev.rv); open == nil && o != nil && o.pendingTemplate == v.primary {
		open = o
	}
	if open == nil {
		o, last := a.windowAt(v.rv)
		what := "no update"
		if last != nil {
			what = fmt.Sprintf("the last update, #%d (%s of template %s), left %s pending", last.id, last.result, last.template, orNone(o))
		}
		return []string{fmt.Sprintf("%s, but %s: neither a plain rollout of it nor its canary", change, what)}
	}
	problems := stale(open, prev.rv)
	rev := open.pendingRevision
	if open.promotedRV != 0 && open.promotedRV != v.rv {
		problems = append(problems, fmt.Sprintf("promoted twice: %s, promoting update #%d (revision %s) again after resourceVersion %d",
			change, open.id, rev, open.promotedRV))
	}
	open.promotedRV = v.rv
	passed, failed := false, uint64(0)
	for _, s := range a.history() {
		if s.rv <= open.rv || s.deleted {
			continue
		}
		if s.st.CanaryRevision == rev && slices.Contains([]canary.Phase{canary.PhasePromoting, canary.PhaseSucceeded}, s.st.Phase) {
			passed = true
		}
		if s.rv < v.rv && s.st.Phase == canary.PhaseFailed && s.st.LastFailedRevision == rev && failed == 0 {
			failed = s.rv
		}
	}
	if !passed {
		problems = append(problems, fmt.Sprintf("%s without passing analysis: the Canary was never seen promoting revision %s of update #%d", change, rev, open.id))
	}
	if failed != 0 {
		problems = append(problems, fmt.Sprintf("%s: revision %s of update #%d had failed (Canary Failed at resourceVersion %d)", change, rev, open.id, failed))
	}
	return problems
}

// shownPromoted reports whether the answer to one of the later updates
// shows u's template as the primary: the shifter promoted it, though the
// watches, listing again after an API server restart, may have skipped both
// the primary's change and the Canary's Succeeded. The search ends at a
// plain rollout of the same template, or another canary of it, which
// could be what the answer shows.
func shownPromoted(u *update, later []*update) bool {
	for _, l := range later {
		switch {
		case l.template == u.pendingTemplate && (l.result == plain || l.result == diverted):
			return false
		case l.primary == u.pendingTemplate:
			return true
		}
	}
	return false
}

func orNone(u *update) string {
	if u == nil {
		return "no canary"
	}
	return fmt.Sprintf("template %s (update #%d) as the canary", u.pendingTemplate, u.id)
}

// The messages of the shifter's events that end a rollout.
const (
	promotedEvent = "Promotion completed!"
	failedEvent   = "Canary failed!"
)

// account gives every diverted update of a its outcome once all is quiet:
// promoted, failed, cancelled by a later update, or still pending where
// sluice must leave it; and checks that the Canary's events tell as many
// completed promotions and failures. The recorder's writers run in
// parallel, so the events' order says nothing and only counts are compared.
// final is the Deployment as it is now; kills are when a shifter was killed
// with SIGKILL. It returns the problems, and how many outcome events are
// missing that a killed shifter may have taken with it.
func (a *app) account(final *appsv1.Deployment, events []corev1.Event, kills []time.Time) (problems []string, lost int32) {
	expected := map[string]int32{}
	// untold counts the promotions whose completion the shifter may not
	// have seen, so may not have told; mayBeLost those told around a kill.
	var untold int32
	mayBeLost := map[string]int32{}
	expect := func(event string, told time.Time) {
		expected[event]++
		if killedAround(kills, told) {
			mayBeLost[event]++
		}
	}
	ups := a.byRV()
	for i, u := range ups {
		if u.result != diverted {
			continue
		}
		open, _ := a.windowAt(u.rv)
		if open != u {
			u.outcome, u.by = "the same as a pending one", open
			continue
		}
		var by *update
		for _, later := range ups[i+1:] {
			if o, _ := a.windowAt(later.rv); o != u {
				by = later
				break
			}
		}
		episode, ended := a.episode(u)
		// Succeeded implies the promotion, also when a re-listing watch
		// skipped the primary's change (and so its checks); so does the
		// answer to a later update, when both watches skipped it.
		promoted := u.promotedRV != 0 || episode == canary.PhaseSucceeded || shownPromoted(u, ups[i+1:])
		switch {
		case promoted && episode == canary.PhaseFailed:
			problems = append(problems, fmt.Sprintf("update #%d (template %s, revision %s) was both promoted and failed", u.id, u.pendingTemplate, u.pendingRevision))
		case episode == canary.PhaseSucceeded:
			u.outcome = "promoted"
			expect(promotedEvent, ended)
		case promoted && by != nil && a.completionTold(u):
			u.outcome, u.by = "promoted, its completion cut short", by
			expect(promotedEvent, a.nextCanaryAt(u))
		case promoted && by != nil:
			u.outcome, u.by = "promoted, its completion cut short", by
			untold++
		case promoted:
			problems = append(problems, fmt.Sprintf("update #%d (template %s, revision %s) was promoted, but its Canary was never seen Succeeded",
				u.id, u.pendingTemplate, u.pendingRevision))
		case episode == canary.PhaseFailed:
			u.outcome = "failed"
			expect(failedEvent, ended)
		case a.failedBefore(u):
			u.outcome = "failed before, not restarted"
		case by != nil:
			u.outcome, u.by = "cancelled", by
		case final.Annotations[canary.AnnotationSkipAnalysis] == "true":
			u.outcome = "left pending under skip-analysis"
		default:
			problems = append(problems, fmt.Sprintf("update #%d (template %s, revision %s) is unaccounted for: neither promoted, failed nor cancelled once quiet",
				u.id, u.pendingTemplate, u.pendingRevision))
		}
	}
	actual := map[string]int32{}
	for _, e := range events {
		for _, m := range []string{promotedEvent, failedEvent} {
			if strings.HasPrefix(e.Message, m) {
				actual[m] += max(e.Count, 1)
			}
		}
	}
	if n, must := actual[promotedEvent], expected[promotedEvent]; n < must-mayBeLost[promotedEvent] || n > must+untold {
		problems = append(problems, fmt.Sprintf("%d events %q for %d promotions that must tell it (%d of them around a kill -9 of a shifter) and %d that may",
			n, promotedEvent, must, mayBeLost[promotedEvent], untold))
	} else {
		lost += max(must-n, 0)
	}
	if n, want := actual[failedEvent], expected[failedEvent]; n < want-mayBeLost[failedEvent] || n > want {
		problems = append(problems, fmt.Sprintf("%d events %q for %d failed updates (%d of them around a kill -9 of a shifter)",
			n, failedEvent, want, mayBeLost[failedEvent]))
	} else {
		lost += want - n
	}
	return problems, lost
}

// killedAround reports whether a shifter was killed with SIGKILL around
// told, when a status that tells an outcome was seen. The shifter keeps the
// events of a status it wrote in memory until it writes them: within
// milliseconds, or up to a minute of retries while the API server is away.
// Killed then, or while its write was on the way, it takes them along.
func killedAround(kills []time.Time, told time.Time) bool {
	for _, k := range kills {
		if !told.IsZero() && k.After(told.Add(-5*time.Second)) && k.Before(told.Add(time.Minute)) {
			return true
		}
	}
	return false
}

// nextCanaryAt is when the Canary was first seen on a later revision after
// u's promotion: when the shifter completed that promotion and told it.
func (a *app) nextCanaryAt(u *update) time.Time {
	for _, s := range a.history() {
		if s.rv > u.promotedRV && !s.deleted && s.st.CanaryRevision != u.pendingRevision {
			return s.at
		}
	}
	return time.Time{}
}

// completionTold reports whether the shifter must have told the completion
// of the promotion of u, which a newer update cut short: it completes a
// promotion before it takes up the next canary, which it can only do while
// the primary runs u's template. A plain rollout that replaced the primary
// first may have come before the shifter looked.
func (a *app) completionTold(u *update) bool {
	for _, v := range a.versions {
		if v.rv <= u.promotedRV || v.primary == u.pendingTemplate {
			continue
		}
		for _, p := range a.byRV() {
			if p.result == plain && p.rv > u.promotedRV && p.rv <= v.rv {
				return false
			}
		}
		return true
	}
	return true
}

// episode is how the canary of diverted update u ended, as its Canary said:
// Succeeded or Failed with its revision after u and before the Canary took
// up the revision of a later update, or before a later update opened a
// canary of the same revision again; "" when neither. ended is when the
// Canary was seen so.
func (a *app) episode(u *update) (canary.Phase, time.Time) {
	rev := u.pendingRevision
	later, until := map[string]bool{}, uint64(0)
	for _, v := range a.byRV() {
		if v.rv <= u.rv || v.result != diverted {
			continue
		}
		if open, _ := a.windowAt(v.rv); open == v && v.pendingRevision == rev && until == 0 {
			until = v.rv
		}
		if v.pendingRevision != rev {
			later[v.pendingRevision] = true
		}
	}
	for _, s := range a.history() {
		// A deletion follows an opt-out, whose update already ended u's
		// canary; one that comes after u is the shifter catching up.
		if s.rv < u.rv || s.deleted {
			continue
		}
		if later[s.st.CanaryRevision] || (until != 0 && s.rv >= until) {
			return "", time.Time{}
		}
		if s.st.Phase == canary.PhaseFailed && s.st.LastFailedRevision == rev ||
			s.st.Phase == canary.PhaseSucceeded && s.st.CanaryRevision == rev {
			return s.st.Phase, s.at
		}
	}
	return "", time.Time{}
}

// failedBefore reports whether the Canary had failed the revision of u
// before u came: sluice does not restart it.
func (a *app) failedBefore(u *update) bool {
	before := false
	for _, s := range a.history() {
		if s.rv >= u.rv {
			break
		}
		before = !s.deleted && s.st.Phase == canary.PhaseFailed && s.st.LastFailedRevision == u.pendingRevision
	}
	return before
}

// quiet reads the live objects of one Deployment and lists why it is not
// settled (a phase that is not terminal, traffic on the canary, a canary
// running, a pending template that is not the failed one, objects of an
// opted-out Deployment left) and where its settled Canary's status
// disagrees with the objects (the primary's revision as the shifter
// computes it).
func quiet(ctx context.Context, c client.Client, ns, name string) (dep *appsv1.Deployment, unsettled, wrong []string) {
	key := client.ObjectKey{Namespace: ns, Name: name}
	dep = &appsv1.Deployment{}
	if err := c.Get(ctx, key, dep); err != nil {
		return nil, []string{fmt.Sprintf("read the Deployment: %v", err)}, nil
	}
	cr, vs, run := &canary.Canary{}, &istiov1.VirtualService{}, &appsv1.Deployment{}
	found := map[string]bool{}
	for what, obj := range map[string]client.Object{"Canary": cr, "VirtualService": vs, "canary Deployment": run} {
		k := key
		if what == "canary Deployment" {
			k.Name += "-canary"
		}
		err := c.Get(ctx, k, obj)
		found[what] = err == nil
		if err != nil && !apierrors.IsNotFound(err) {
			unsettled = append(unsettled, fmt.Sprintf("read the %s: %v", what, err))
		}
	}
	if !canary.Enabled(dep.Annotations) {
		for what, ok := range found {
			if ok {
				unsettled = append(unsettled, fmt.Sprintf("opted out, yet its %s is still there", what))
			}
		}
		return dep, unsettled, nil
	}
	if !found["Canary"] || !found["VirtualService"] {
		return dep, append(unsettled, fmt.Sprintf("opted in, yet Canary found %v, VirtualService found %v", found["Canary"], found["VirtualService"])), nil
	}
	st := cr.Status
	if !slices.Contains([]canary.Phase{canary.PhaseInitialized, canary.PhaseSucceeded, canary.PhaseFailed}, st.Phase) {
		unsettled = append(unsettled, fmt.Sprintf("Canary in phase %q, not Initialized, Succeeded or Failed", st.Phase))
	}
	if st.CanaryWeight != 0 {
		unsettled = append(unsettled, fmt.Sprintf("Canary weight %d, not 0", st.CanaryWeight))
	}
	for _, route := range vs.Spec.GetHttp() {
		for _, d := range route.GetRoute() {
			host, w := d.GetDestination().GetHost(), d.GetWeight()
			if strings.HasPrefix(host, name+"-canary") && w != 0 || strings.HasPrefix(host, name+"-primary") && w != 100 {
				unsettled = append(unsettled, fmt.Sprintf("VirtualService sends %d%% to %s", w, host))
			}
		}
	}
	if found["canary Deployment"] && ptr.Deref(run.Spec.Replicas, 1) != 0 {
		unsettled = append(unsettled, fmt.Sprintf("the canary Deployment runs %d replicas", ptr.Deref(run.Spec.Replicas, 1)))
	}
	if pending := dep.Annotations[canary.AnnotationCanaryRevision]; pending != "" && dep.Annotations[canary.AnnotationSkipAnalysis] != "true" &&
		(st.Phase != canary.PhaseFailed || st.LastFailedRevision != pending) {
		unsettled = append(unsettled, fmt.Sprintf("revision %s is pending, but the Canary is %s (last failed %q)", pending, st.Phase, st.LastFailedRevision))
	}
	raw, err := json.Marshal(dep.Spec.Template)
	if err != nil {
		return dep, append(unsettled, err.Error()), nil
	}
	if rev := canary.Revision(raw); st.PrimaryRevision != rev {
		wrong = append(wrong, fmt.Sprintf("status.primaryRevision %s, but the primary runs revision %s (template %s)", st.PrimaryRevision, rev, templateID(&dep.Spec.Template)))
	}
	return dep, unsettled, wrong
}

// final waits until every Deployment is settled and the watches have caught
// up with it; then checks every change of the primaries, the Canaries'
// status against the objects, and accounts for every update, giving the
// shifter and the events some time to catch up. What is still wrong at the
// deadlines is a violation.
func (l *ledger) final(ctx context.Context, c client.Client, cs kubernetes.Interface, ns, audit string, settle time.Duration) {
	unsettled := poll(ctx, settle, func() []violation { return l.objectProblems(ctx, c, ns, true) })
	var problems []violation
	if err := l.readAudit(audit); err != nil {
		problems = append(problems, violation{what: err.Error()})
	}
	l.checkPrimaries(0)
	problems = append(problems, poll(ctx, 30*time.Second, func() []violation {
		return append(l.objectProblems(ctx, c, ns, false), l.accountProblems(ctx, cs, ns)...)
	})...)
	l.mu.Lock()
	defer l.mu.Unlock()
	// Zero times: the whole schedule led to them.
	for _, p := range append(unsettled, problems...) {
		l.violations = append(l.violations, violation{app: p.app, what: "once quiet: " + p.what})
	}
}

// poll calls problems every second until it finds none or timeout passes,
// and returns what it found last.
func poll(ctx context.Context, timeout time.Duration, problems func() []violation) []violation {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		found := problems()
		if len(found) == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return found
		case <-tick.C:
		}
	}
}

// objectProblems checks the live objects of each Deployment: whether it is
// settled and seen so by the watches, or else whether its Canary's status
// agrees with them.
func (l *ledger) objectProblems(ctx context.Context, c client.Client, ns string, settling bool) []violation {
	var out []violation
	for _, name := range l.names() {
		dep, unsettled, wrong := quiet(ctx, c, ns, name)
		problems := wrong
		if settling {
			problems = unsettled
		}
		if dep != nil {
			l.mu.Lock()
			l.apps[name].final = dep
			if seen := l.apps[name].seenRV; settling && seen < parseRV(dep.ResourceVersion) {
				problems = append(problems, fmt.Sprintf("the watch is behind: resourceVersion %d seen, %s stored", seen, dep.ResourceVersion))
			}
			l.mu.Unlock()
		}
		for _, p := range problems {
			out = append(out, violation{app: name, what: p})
		}
	}
	return out
}

// accountProblems accounts for the updates of each Deployment, against its
// Canary's events.
func (l *ledger) accountProblems(ctx context.Context, cs kubernetes.Interface, ns string) []violation {
	var out []violation
	var lostEvents int32
	defer func() {
		l.mu.Lock()
		l.lostEvents = int(lostEvents)
		l.mu.Unlock()
	}()
	for _, name := range l.names() {
		events, err := sluice.Events(ctx, cs, ns, "Canary", name)
		if err != nil {
			out = append(out, violation{app: name, what: fmt.Sprintf("list events: %v", err)})
			continue
		}
		l.mu.Lock()
		a := l.apps[name]
		if a.final != nil {
			problems, lost := a.account(a.final, events, l.kills)
			for _, p := range problems {
				out = append(out, violation{app: name, what: p})
			}
			lostEvents += lost
		}
		l.mu.Unlock()
	}
	return out
}

func (l *ledger) names() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	names := make([]string, 0, len(l.apps))
	for n := range l.apps {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}
