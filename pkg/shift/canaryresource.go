package shift

import (
	"context"
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/api/equality"

	"sluice.dev/sluice/pkg/canary"
	"sluice.dev/sluice/pkg/routing"
)

// ensureCanary creates the Canary of dep if cr, as read, is nil, or brings
// its spec to the current settings.
func (r *Reconciler) ensureCanary(ctx context.Context, dep *appsv1.Deployment, cr *canary.Canary, s canary.Settings) (*canary.Canary, error) {
	switch {
	case cr == nil:
		cr = &canary.Canary{ObjectMeta: routing.OwnedBy(dep, dep.Name), Spec: canary.CanarySpec{Settings: s}}
		if err := r.Client.Create(ctx, cr); err != nil {
			return nil, fmt.Errorf("create Canary %s/%s: %w", dep.Namespace, dep.Name, err)
		}
		r.created(cr)
	case !equality.Semantic.DeepEqual(cr.Spec.Settings, s):
		cr.Spec.Settings = s
		if err := r.Client.Update(ctx, cr); err != nil {
			return nil, fmt.Errorf("update Canary %s/%s: %w", dep.Namespace, dep.Name, err)
		}
		r.wrote(cr)
	}
	return cr, nil
}

// conflict reports why sluice does nothing for dep, once per message,
// through the one writer of the status.
func (r *Reconciler) conflict(ctx context.Context, dep *appsv1.Deployment, cr *canary.Canary, msg string) error {
	if cr.Status.Message == msg {
		return nil
	}
	st := *cr.Status.DeepCopy()
	st.Message = msg
	return r.writeStatus(ctx, dep, cr, Decision{Status: st, Events: []Event{{Warning: true, Main: true, Reason: "Conflict", Message: msg}}})
}
