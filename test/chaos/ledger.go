package main

import (
	"encoding/json"
	"strconv"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"

	"sluice.dev/sluice/pkg/canary"
)

// result is what became of one update, as the API server returned it.
type result int

const (
	// diverted: the returned object carries the template in the canary
	// annotations.
	diverted result = iota
	// plain: the returned object runs the template on the primary: the first
	// create, skip-analysis, opt-out.
	plain
	// cleared: the returned object carries no canary; a pending one, if
	// any, was cancelled.
	cleared
	// passed: stored, without a change of the templates (scale, back in
	// care).
	passed
	// refused: the guard policy refused it while the webhook was down.
	refused
	// notApplied: the request failed and nothing shows that it was applied.
	notApplied
)

func (r result) String() string {
	return [...]string{"diverted", "plain", "cleared", "passed", "refused", "not applied"}[r]
}

// update is one write of a Deployment by the suite.
type update struct {
	id   int // order of sending, over all Deployments
	line line
	// template is the template sent (its env SEQ); "" when the update sends
	// none of its own (scale, back in care).
	template string
	result   result
	// rv is the resourceVersion of the returned object: etcd's revision,
	// which orders every write of the cluster.
	rv uint64
	// pendingTemplate and pendingRevision are the canary annotations of the
	// returned object; primary is the template it runs.
	pendingTemplate, pendingRevision, primary string
	sent                                      time.Time
	err                                       string
	// promotedRV is the resourceVersion of the primary's change to this
	// update's template by the shifter; 0 until then.
	promotedRV uint64
	// outcome is the final accounting's verdict on a diverted update; by is
	// the update it names, if any.
	outcome string
	by      *update
}

func (u *update) accepted() bool { return u.result <= passed && u.rv > 0 }

// version is what the suite saw of one version of a Deployment.
type version struct {
	rv                                        uint64
	at                                        time.Time
	primary, pendingTemplate, pendingRevision string
	optedIn, skip                             bool
}

// statusSeen is one status of a Canary as the watch delivered it; deleted
// marks the Canary's deletion (an opt-out).
type statusSeen struct {
	rv      uint64
	at      time.Time
	st      canary.CanaryStatus
	deleted bool
}

// app is everything the suite did to and saw of one Deployment.
type app struct {
	name    string
	updates []*update
	// inflight is when the update in flight was sent; zero when none is.
	inflight time.Time
	lines    []line
	versions []version
	// seenRV is the newest resourceVersion the watch delivered.
	seenRV uint64
	// checked counts the versions whose change of primary was checked.
	checked int
	// statuses are the Canary's statuses as the watch delivered them;
	// audited those the audit log holds.
	statuses, audited []statusSeen
	// final is the Deployment once all is quiet.
	final *appsv1.Deployment
}

// ledger is the suite's record of every update and observation; one mutex
// guards it all.
type ledger struct {
	mu      sync.Mutex
	apps    map[string]*app
	updates int
	// progress holds when any Canary's status changed, in order.
	progress []time.Time
	// rollouts counts Canaries reaching Promoting or Failed.
	rollouts   map[canary.Phase]int
	violations []violation
	// auditOffset is how much of the audit log was read.
	auditOffset int64
	// kills are when a shifter was killed with SIGKILL; lostEvents counts
	// the outcome events missing once quiet that such a kill may have taken.
	kills      []time.Time
	lostEvents int
}

// violation is a broken invariant, with where to look.
type violation struct {
	app  string // "" when it concerns no single Deployment
	what string
	at   time.Time
}

func newLedger(names []string) *ledger {
	l := &ledger{apps: map[string]*app{}, rollouts: map[canary.Phase]int{}}
	for _, n := range names {
		l.apps[n] = &app{name: n}
	}
	return l
}

func (l *ledger) violate(app, what string) {
	l.violations = append(l.violations, violation{app: app, what: what, at: time.Now()})
}

// completed is the number of rollouts that were promoted or failed.
func (l *ledger) completed() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.rollouts[canary.PhasePromoting] + l.rollouts[canary.PhaseFailed]
}

func (a *app) lastStatus() *statusSeen {
	if len(a.statuses) == 0 {
		return nil
	}
	return &a.statuses[len(a.statuses)-1]
}

func parseRV(rv string) uint64 {
	n, _ := strconv.ParseUint(rv, 10, 64)
	return n
}

// templateID is the env SEQ of a template's first container: the suite's
// name of the template.
func templateID(t *corev1.PodTemplateSpec) string {
	if len(t.Spec.Containers) == 0 {
		return ""
	}
	for _, e := range t.Spec.Containers[0].Env {
		if e.Name == envSeq {
			return e.Value
		}
	}
	return ""
}

// versionOf reads what the suite tracks of a Deployment.
func versionOf(dep *appsv1.Deployment) version {
	v := version{
		rv: parseRV(dep.ResourceVersion), at: time.Now(), primary: templateID(&dep.Spec.Template),
		pendingRevision: dep.Annotations[canary.AnnotationCanaryRevision],
		optedIn:         canary.Enabled(dep.Annotations),
		skip:            dep.Annotations[canary.AnnotationSkipAnalysis] == "true",
	}
	if raw, ok := dep.Annotations[canary.AnnotationCanaryTemplate]; ok {
		pending := &corev1.PodTemplateSpec{}
		if json.Unmarshal([]byte(raw), pending) == nil {
			v.pendingTemplate = templateID(pending)
		}
	}
	return v
}

// sawDeployment records a version of a Deployment if what the suite tracks
// of it changed.
func (l *ledger) sawDeployment(dep *appsv1.Deployment) {
	l.mu.Lock()
	defer l.mu.Unlock()
	a, ok := l.apps[dep.Name]
	if !ok {
		return
	}
	v := versionOf(dep)
	a.seenRV = max(a.seenRV, v.rv)
	if n := len(a.versions); n > 0 {
		last := a.versions[n-1]
		// Only the tracked fields count: status writes come and go.
		last.rv, last.at = v.rv, v.at
		if v.rv <= a.versions[n-1].rv || v == last {
			return
		}
	}
	a.versions = append(a.versions, v)
}

// sawCanary records a status of a Canary, and counts rollouts.
func (l *ledger) sawCanary(cr *canary.Canary, deleted bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	a, ok := l.apps[cr.Name]
	if !ok {
		return
	}
	s := statusSeen{rv: parseRV(cr.ResourceVersion), at: time.Now(), st: *cr.Status.DeepCopy(), deleted: deleted}
	if last := a.lastStatus(); last != nil {
		if s.rv <= last.rv || (!deleted && !last.deleted && equality.Semantic.DeepEqual(s.st, last.st)) {
			return
		}
		// A rollout is done when its analysis ends: promoting (a new template
		// may cut the promotion short, after the primary changed) or failed.
		if done := s.st.Phase == canary.PhasePromoting || s.st.Phase == canary.PhaseFailed; done && !deleted &&
			(s.st.Phase != last.st.Phase || s.st.RevisionStartTime != last.st.RevisionStartTime) {
			l.rollouts[s.st.Phase]++
		}
	}
	a.statuses = append(a.statuses, s)
	l.progress = append(l.progress, s.at)
}
