package shift

import (
	"context"
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

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
			r.Events.StepEvent(dep, "Warning", "WebhookFailed", fmt.Sprintf("event webhook %s: %v", c.Spec.Name, err))
			continue
		}
		r.Hooks.Send(call)
	}
}
