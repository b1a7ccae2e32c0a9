package shift

import (
	"context"
	"slices"

	appsv1 "k8s.io/api/apps/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"sluice.dev/sluice/pkg/canary"
)

// policyUsers maps a changed policy to the opted-in Deployments that name it
// (or, for the default ClusterCanaryPolicy, name none), so that their
// Canaries show the new settings at once. A rollout under way keeps the
// policy it started with.
func (r *Reconciler) policyUsers(ctx context.Context, obj client.Object) []reconcile.Request {
	ref := canary.PolicyRef{Kind: canary.KindClusterCanaryPolicy, Name: obj.GetName()}
	var opts []client.ListOption
	if _, namespaced := obj.(*canary.CanaryPolicy); namespaced {
		ref.Kind = canary.KindCanaryPolicy
		opts = append(opts, client.InNamespace(obj.GetNamespace()))
	}
	deps := &appsv1.DeploymentList{}
	if err := r.Client.List(ctx, deps, opts...); err != nil {
		return nil
	}
	var out []reconcile.Request
	for _, d := range deps.Items {
		if refs, _ := canary.ReferencedPolicies(d.Annotations); canary.Enabled(d.Annotations) && slices.Contains(refs, ref) {
			out = append(out, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&d)})
		}
	}
	return out
}
