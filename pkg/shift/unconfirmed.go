package shift

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"sync"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	"sluice.dev/sluice/pkg/canary"
)

// unconfirmed holds, per Deployment, what a decision tells (its events and
// its outcome in the metrics) when its status write failed without saying
// whether the API server took it: an answer lost in a restart of the API
// server, a timeout while etcd was slow. Dropped with the error, the story
// of a write that did land would never be told, since the next reconcile
// starts from that status and decides nothing new; told, that of a write
// that did not land would be told twice, once more when the step is decided
// again. The next reconcile asks the API server.
type unconfirmed struct {
	mu     sync.Mutex
	writes map[types.NamespacedName]statusWrite
}

// statusWrite is a status write in doubt and what its decision tells.
type statusWrite struct {
	uid types.UID
	// status is the status written, as JSON: times in whole seconds, as the
	// API server stores them.
	status  []byte
	events  []Event
	outcome Outcome
	notify  []HookCall
}

func (u *unconfirmed) hold(cr *canary.Canary, d Decision) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.writes == nil {
		u.writes = map[types.NamespacedName]statusWrite{}
	}
	u.writes[client.ObjectKeyFromObject(cr)] = statusWrite{cr.UID, statusJSON(cr.Status), d.Events, d.Outcome, d.Notify}
}

func (u *unconfirmed) get(key types.NamespacedName) (statusWrite, bool) {
	u.mu.Lock()
	defer u.mu.Unlock()
	w, ok := u.writes[key]
	return w, ok
}

func (u *unconfirmed) forget(key types.NamespacedName) {
	u.mu.Lock()
	defer u.mu.Unlock()
	delete(u.writes, key)
}

// statusJSON is st as the API server stores it.
func statusJSON(st canary.CanaryStatus) []byte {
	// A struct of strings, numbers and times always marshals.
	b, _ := json.Marshal(st)
	return b
}

// writeStatus writes d's status to cr and tells d once the API server took
// it. A write in doubt keeps what d tells for confirm.
func (r *Reconciler) writeStatus(ctx context.Context, dep *appsv1.Deployment, cr *canary.Canary, d Decision) error {
	cr.Status = d.Status
	if err := r.Client.Status().Update(ctx, cr); err != nil {
		// A conflict is an answer: nothing was written.
		if !apierrors.IsConflict(err) {
			r.unconfirmed.hold(cr, d)
		}
		return fmt.Errorf("update Canary status %s/%s: %w", cr.Namespace, cr.Name, err)
	}
	r.wrote(cr)
	r.tell(ctx, dep, cr, d)
	return nil
}

// confirm settles a status write in doubt of dep's Canary: if the API server
// holds the status written, its decision is told now and the reconcile
// waits for the cache to catch up; otherwise the decision is made again from
// what the API server holds.
func (r *Reconciler) confirm(ctx context.Context, dep *appsv1.Deployment, cr *canary.Canary) error {
	key := client.ObjectKeyFromObject(cr)
	w, ok := r.unconfirmed.get(key)
	if !ok {
		return nil
	}
	live := &canary.Canary{}
	if err := r.APIReader.Get(ctx, key, live); client.IgnoreNotFound(err) != nil {
		return fmt.Errorf("confirm the status of Canary %s: %w", key, err)
	}
	r.unconfirmed.forget(key)
	if live.UID != w.uid || !bytes.Equal(statusJSON(live.Status), w.status) {
		return nil
	}
	r.tell(ctx, dep, live, Decision{Status: live.Status, Events: w.events, Outcome: w.outcome, Notify: w.notify})
	if !notOlder(cr.ResourceVersion, live.ResourceVersion) {
		r.wrote(live)
		return errBehind
	}
	return nil
}

// tell records the events of a decision whose status the API server took,
// main events on the Canary and the Deployment, steps on the Canary, and
// gives the metrics its status and outcome.
func (r *Reconciler) tell(ctx context.Context, dep *appsv1.Deployment, cr *canary.Canary, d Decision) {
	logger := log.FromContext(ctx)
	for _, e := range d.Events {
		kind := corev1.EventTypeNormal
		if e.Warning {
			kind = corev1.EventTypeWarning
		}
		if e.Main {
			r.Events.Event(cr, kind, e.Reason, e.Message)
			r.Events.Event(dep, kind, e.Reason, e.Message)
		} else {
			r.Events.StepEvent(cr, kind, e.Reason, e.Message)
		}
		logger.Info(e.Message)
	}
	r.send(ctx, dep, d.Status.Policy, d.Notify)
	r.alert(ctx, dep, cr, d)
	r.Metrics.observe(dep, d)
}
