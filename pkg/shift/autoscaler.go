package shift

import (
	"context"
	"fmt"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"sluice.dev/sluice/pkg/canary"
	"sluice.dev/sluice/pkg/routing"
)

// A canary of an autoscaled Deployment gets an autoscaler of its own, so that
// under load it scales like the primary: a HorizontalPodAutoscaler named
// <name>-canary, with the primary's metrics and bounds and the canary
// Deployment as its target, owned by that Deployment, and deleted whenever
// the canary is scaled down.

// autoscalerTarget indexes HorizontalPodAutoscalers by the Deployment they
// scale.
const autoscalerTarget = "sluice.spec.scaleTargetRef.deployment"

// scaledDeployment is the name of the apps Deployment a scales; "" for any
// other target.
func scaledDeployment(a *autoscalingv2.HorizontalPodAutoscaler) string {
	ref := a.Spec.ScaleTargetRef
	if ref.Kind != "Deployment" || !strings.HasPrefix(ref.APIVersion, appsv1.GroupName+"/") {
		return ""
	}
	return ref.Name
}

// indexAutoscalerTarget is the index function of autoscalerTarget.
func indexAutoscalerTarget(obj client.Object) []string {
	if name := scaledDeployment(obj.(*autoscalingv2.HorizontalPodAutoscaler)); name != "" {
		return []string{name}
	}
	return nil
}

// primaryAutoscaler returns the autoscaler that scales dep; nil when none
// does. Of several (which the HPA controller refuses to act on), the first by
// name.
func (r *Reconciler) primaryAutoscaler(ctx context.Context, dep *appsv1.Deployment) (*autoscalingv2.HorizontalPodAutoscaler, error) {
	list := &autoscalingv2.HorizontalPodAutoscalerList{}
	if err := r.Client.List(ctx, list, client.InNamespace(dep.Namespace), client.MatchingFields{autoscalerTarget: dep.Name}); err != nil {
		return nil, fmt.Errorf("list the autoscalers of %s/%s: %w", dep.Namespace, dep.Name, err)
	}
	var first *autoscalingv2.HorizontalPodAutoscaler
	for i := range list.Items {
		if a := &list.Items[i]; first == nil || a.Name < first.Name {
			first = a
		}
	}
	return first, nil
}

// canaryAutoscaler is the autoscaler of run, the canary Deployment: primary's
// spec, aimed at run.
func canaryAutoscaler(primary *autoscalingv2.HorizontalPodAutoscaler, run *appsv1.Deployment) *autoscalingv2.HorizontalPodAutoscaler {
	a := &autoscalingv2.HorizontalPodAutoscaler{
		ObjectMeta: metav1.ObjectMeta{
			Name: run.Name, Namespace: run.Namespace,
			Labels:          map[string]string{routing.ManagedByLabel: routing.ManagedBy},
			OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(run, appsv1.SchemeGroupVersion.WithKind("Deployment"))},
		},
		Spec: *primary.Spec.DeepCopy(),
	}
	a.Spec.ScaleTargetRef = autoscalingv2.CrossVersionObjectReference{APIVersion: appsv1.SchemeGroupVersion.String(), Kind: "Deployment", Name: run.Name}
	return a
}

// ensureCanaryAutoscaler makes the autoscaler of run, the canary Deployment
// of dep, follow primary; with no primary autoscaler, it deletes run's.
func (r *Reconciler) ensureCanaryAutoscaler(ctx context.Context, run *appsv1.Deployment, primary *autoscalingv2.HorizontalPodAutoscaler) error {
	if primary == nil {
		return deleteCanaryAutoscaler(ctx, r.Client, run)
	}
	want := canaryAutoscaler(primary, run)
	current := &autoscalingv2.HorizontalPodAutoscaler{}
	found, err := r.read(ctx, client.ObjectKeyFromObject(want), current)
	switch {
	case err != nil:
		return err
	case !found:
		if err := r.Client.Create(ctx, want); err != nil {
			return fmt.Errorf("create the canary's autoscaler %s/%s: %w", want.Namespace, want.Name, err)
		}
		r.created(want)
	case !metav1.IsControlledBy(current, run):
		return fmt.Errorf("the HorizontalPodAutoscaler %s/%s exists and is not the canary's; sluice leaves it alone", want.Namespace, want.Name)
	case !equality.Semantic.DeepEqual(current.Spec, want.Spec):
		current.Spec = want.Spec
		if err := r.Client.Update(ctx, current); err != nil {
			return fmt.Errorf("update the canary's autoscaler %s/%s: %w", want.Namespace, want.Name, err)
		}
		r.wrote(current)
	}
	return nil
}

// deleteCanaryAutoscaler deletes the autoscaler that run, a canary
// Deployment, owns, if it has one.
func deleteCanaryAutoscaler(ctx context.Context, c client.Client, run *appsv1.Deployment) error {
	a := &autoscalingv2.HorizontalPodAutoscaler{}
	err := c.Get(ctx, client.ObjectKeyFromObject(run), a)
	if err != nil || !metav1.IsControlledBy(a, run) {
		return client.IgnoreNotFound(err)
	}
	if err := c.Delete(ctx, a, client.Preconditions{UID: ptr.To(a.UID)}); client.IgnoreNotFound(err) != nil {
		return fmt.Errorf("delete the canary's autoscaler %s/%s: %w", a.Namespace, a.Name, err)
	}
	return nil
}

// autoscaledDeployments maps an autoscaler to the opted-in Deployment whose
// rollout it concerns: the one it scales, or for a canary's autoscaler, the
// canary's primary.
func (r *Reconciler) autoscaledDeployments(ctx context.Context, obj client.Object) []reconcile.Request {
	a, ok := obj.(*autoscalingv2.HorizontalPodAutoscaler)
	if !ok {
		return nil
	}
	name := scaledDeployment(a)
	if a.Labels[routing.ManagedByLabel] == routing.ManagedBy {
		name = strings.TrimSuffix(name, routing.CanaryName(""))
	}
	dep := &appsv1.Deployment{}
	if name == "" || r.Client.Get(ctx, types.NamespacedName{Namespace: a.Namespace, Name: name}, dep) != nil || !canary.Enabled(dep.Annotations) {
		return nil
	}
	return []reconcile.Request{{NamespacedName: types.NamespacedName{Namespace: a.Namespace, Name: name}}}
}
