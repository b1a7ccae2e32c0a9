package shift

import (
	"context"
	"fmt"
	"slices"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"sluice.dev/sluice/pkg/alert"
	"sluice.dev/sluice/pkg/canary"
	"sluice.dev/sluice/pkg/hooks"
	"sluice.dev/sluice/pkg/secrets"
)

// maxHookPasses bounds the Steps of one reconcile that take in webhook
// results: each pass adds one at least, and a decision asks a handful.
const maxHookPasses = 10

// step decides for obs, taking in the results of the webhook calls the
// decision asks for as far as they are in, and starting the others.
func (r *Reconciler) step(ctx context.Context, dep *appsv1.Deployment, p *canary.PolicySnapshot, obs *Observation) Decision {
	d := Step(*obs)
	for range maxHookPasses {
		if !r.collect(ctx, dep, p, obs, d.Hooks) {
			break
		}
		d = Step(*obs)
	}
	return d
}

// collect asks for the results of calls, starting those not started, and
// reports whether one came in that obs lacked.
func (r *Reconciler) collect(ctx context.Context, dep *appsv1.Deployment, p *canary.PolicySnapshot, obs *Observation, calls []HookCall) bool {
	news := false
	for _, c := range calls {
		if _, ok := obs.Hooks[c.ID]; ok {
			continue
		}
		res, done := r.ask(ctx, dep, p, c)
		if !done {
			continue
		}
		if obs.Hooks == nil {
			obs.Hooks = map[string]canary.HookStatus{}
		}
		obs.Hooks[c.ID] = res
		news = true
	}
	return news
}

// ask returns the result of call c once it has ended, starting it the
// first time. Without a runner, every call ends unreachable, saying why.
func (r *Reconciler) ask(ctx context.Context, dep *appsv1.Deployment, p *canary.PolicySnapshot, c HookCall) (canary.HookStatus, bool) {
	if r.Hooks == nil {
		return canary.HookStatus{Name: c.Spec.Name, Type: c.Spec.Type, Revision: c.Payload.Revision, Result: canary.HookUnreachable,
			Message: "this shifter calls no webhooks", Time: metav1.NewTime(c.Payload.Time)}, true
	}
	return r.Hooks.Ask(types.NamespacedName{Namespace: dep.Namespace, Name: dep.Name}, c.ID, func() (hooks.Call, error) {
		return r.prepare(ctx, dep, p, c)
	})
}

// prepare makes call c, with its signing key read from the Secret its
// webhook names.
func (r *Reconciler) prepare(ctx context.Context, dep *appsv1.Deployment, p *canary.PolicySnapshot, c HookCall) (hooks.Call, error) {
	call := hooks.Call{Spec: c.Spec, Payload: c.Payload}
	ref := c.Spec.SigningSecret
	if ref == nil {
		return call, nil
	}
	key, err := secrets.KeyValue(ctx, r.APIReader, r.secretsNamespace(dep, p), *ref, fmt.Sprintf("the signing secret of webhook %s", c.Spec.Name))
	if err != nil {
		return call, err
	}
	call.Key = []byte(key)
	return call, nil
}

// secretsNamespace is where the Secrets of dep's policy are: the policy's
// namespace, or sluice's for a ClusterCanaryPolicy.
func (r *Reconciler) secretsNamespace(dep *appsv1.Deployment, p *canary.PolicySnapshot) string {
	if p != nil && p.Kind == canary.KindClusterCanaryPolicy {
		return r.PolicySecrets
	}
	return dep.Namespace
}

// send starts the event webhook calls of a decision whose status the API
// server took; nobody waits for them.
func (r *Reconciler) send(ctx context.Context, dep *appsv1.Deployment, p *canary.PolicySnapshot, calls []HookCall) {
	if r.Hooks == nil {
		return
	}
	for _, c := range calls {
		call, err := r.prepare(ctx, dep, p, c)
		if err != nil {
			r.Events.StepEvent(dep, corev1.EventTypeWarning, "WebhookFailed", fmt.Sprintf("event webhook %s: %v", c.Spec.Name, err))
			continue
		}
		r.Hooks.Send(call)
	}
}

// alert sends the events of a decision whose status the API server took to
// the alerts of dep's policy; nobody waits for them. An address that cannot
// be read is told in an event on the Canary.
func (r *Reconciler) alert(ctx context.Context, dep *appsv1.Deployment, cr *canary.Canary, d Decision) {
	if r.Alerts == nil || len(cr.Spec.Alerts) == 0 || len(d.Events) == 0 {
		return
	}
	var to []alert.ResolvedAlert
	for _, a := range cr.Spec.Alerts {
		addr, err := alert.Resolve(ctx, r.APIReader, r.secretsNamespace(dep, d.Status.Policy), a)
		if err != nil {
			r.Events.StepEvent(cr, corev1.EventTypeWarning, "AlertFailed", err.Error())
			continue
		}
		to = append(to, alert.ResolvedAlert{Spec: a, URL: addr})
	}
	st := d.Status
	var failing *canary.CheckStatus
	if i := slices.IndexFunc(st.Checks, func(c canary.CheckStatus) bool { return c.Verdict == canary.VerdictFailed }); i >= 0 {
		failing = &st.Checks[i]
	}
	for _, e := range d.Events {
		if !alerted(e) {
			continue
		}
		r.Alerts.Notify(ctx, to, alert.Message{Namespace: dep.Namespace, Name: dep.Name, Revision: st.CanaryRevision, Phase: st.Phase,
			CanaryWeight: st.CanaryWeight, Severity: alert.SeverityOf(e.Reason, e.Warning), Reason: e.Reason, Text: e.Message,
			FailingCheck: failing})
	}
}

// phaseEvents are the reasons of the step events that change the phase.
var phaseEvents = map[string]bool{"Waiting": true, "RolloutConfirmed": true, "WaitingPromotion": true, "Promoting": true,
	"Paused": true, "Resumed": true}

// alerted reports whether an event goes to the alerts: the phase changes
// (a new revision, its outcome, a gate, a pause) and every warning; a chat
// channel is not told each step. A failure is told once, by its rollback
// event, which gives the reason: the Failed event after it says no more.
func alerted(e Event) bool {
	return e.Reason != "Failed" && (e.Main || e.Warning || phaseEvents[e.Reason])
}
