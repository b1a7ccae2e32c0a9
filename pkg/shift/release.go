package shift

import (
	"context"
	"errors"
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"sluice.dev/sluice/pkg/canary"
	"sluice.dev/sluice/pkg/routing"
	"sluice.dev/sluice/pkg/routing/routers"
)

// release runs when dep is no longer opted in: all traffic goes back to the
// primary first, then every object sluice made for dep is deleted.
func (r *Reconciler) release(ctx context.Context, dep *appsv1.Deployment) error {
	// The Canary goes too, and with it any status write still in doubt.
	r.unconfirmed.forget(client.ObjectKeyFromObject(dep))
	named := func(name string) metav1.ObjectMeta { return metav1.ObjectMeta{Namespace: dep.Namespace, Name: name} }
	// The routes first: sluice's own, or ones it adopted.
	routes, err := managedRoutes(ctx, r.Client, dep)
	if err != nil {
		return err
	}
	var made []client.Object
	for _, rt := range routers.All() {
		own := rt.New()
		own.SetNamespace(dep.Namespace)
		own.SetName(dep.Name)
		made = append(made, own)
	}
	made = append(made,
		&appsv1.Deployment{ObjectMeta: named(routing.CanaryName(dep.Name))},
		&corev1.Service{ObjectMeta: named(routing.PrimaryName(dep.Name))},
		&corev1.Service{ObjectMeta: named(routing.CanaryName(dep.Name))},
		&corev1.Service{ObjectMeta: named(dep.Name)},
		&canary.Canary{ObjectMeta: named(dep.Name)},
	)
	var owned []client.Object
	for _, obj := range made {
		if err := r.Client.Get(ctx, client.ObjectKeyFromObject(obj), obj); apierrors.IsNotFound(err) || meta.IsNoMatchError(err) {
			continue
		} else if err != nil {
			return fmt.Errorf("release %s/%s: %w", dep.Namespace, dep.Name, err)
		}
		if metav1.IsControlledBy(obj, dep) {
			owned = append(owned, obj)
		}
	}
	if len(routes) == 0 && len(owned) == 0 {
		return nil
	}
	// An opt-out followed at once by an opt-in may reach the cache apart:
	// the release must not undo a canary that the opt-in has started.
	live := &appsv1.Deployment{}
	if err := r.APIReader.Get(ctx, client.ObjectKeyFromObject(dep), live); client.IgnoreNotFound(err) != nil {
		return fmt.Errorf("release %s/%s: %w", dep.Namespace, dep.Name, err)
	} else if err == nil && live.DeletionTimestamp == nil && canary.Enabled(live.Annotations) {
		return errBehind
	}
	for _, rte := range routes {
		if err := r.setRouting(ctx, rte, routing.Routing{}); err != nil {
			return err
		}
	}
	for _, obj := range owned {
		err := r.Client.Delete(ctx, obj, client.Preconditions{UID: ptr.To(obj.GetUID())})
		if client.IgnoreNotFound(err) != nil {
			return fmt.Errorf("release %s/%s: delete %T %s: %w", dep.Namespace, dep.Name, obj, obj.GetName(), err)
		}
	}
	return nil
}

// Drain sends all traffic of every canary back to its primary and scales the
// canaries to zero: what sluice leaves behind when it is scaled to zero or
// uninstalled, so that no user is served a version that nothing watches. Each
// Deployment keeps its primary template and its diverted one in the
// annotation; when sluice comes back, the canary starts again.
func Drain(ctx context.Context, c client.Client) error {
	list := &canary.CanaryList{}
	if err := c.List(ctx, list); err != nil {
		return fmt.Errorf("drain: list canaries: %w", err)
	}
	var errs []error
	for _, cr := range list.Items {
		if err := drain(ctx, c, types.NamespacedName{Namespace: cr.Namespace, Name: cr.Name}); err != nil {
			errs = append(errs, fmt.Errorf("drain %s/%s: %w", cr.Namespace, cr.Name, err))
		}
	}
	return errors.Join(errs...)
}

func drain(ctx context.Context, c client.Client, key types.NamespacedName) error {
	dep := &appsv1.Deployment{}
	if err := c.Get(ctx, key, dep); err != nil {
		return client.IgnoreNotFound(err)
	}
	routes, err := managedRoutes(ctx, c, dep)
	if err != nil {
		return err
	}
	for _, rte := range routes {
		if _, err := patchRoute(ctx, c, rte, routing.Routing{}); err != nil {
			return err
		}
	}
	run := &appsv1.Deployment{}
	if err := c.Get(ctx, types.NamespacedName{Namespace: dep.Namespace, Name: routing.CanaryName(dep.Name)}, run); err != nil {
		return client.IgnoreNotFound(err)
	}
	if !metav1.IsControlledBy(run, dep) {
		return nil
	}
	_, err = stopCanary(ctx, c, run)
	return err
}
