package shift

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	istiov1 "istio.io/client-go/pkg/apis/networking/v1"
	appsv1 "k8s.io/api/apps/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"sluice.dev/sluice/pkg/canary"
)

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
	vs, err := managedRoutes(ctx, c, dep)
	if err != nil {
		return err
	}
	if vs != nil {
		if err := patchWeight(ctx, c, vs, dep.Name, 0); err != nil {
			return err
		}
	}
	run := &appsv1.Deployment{}
	if err := c.Get(ctx, types.NamespacedName{Namespace: dep.Namespace, Name: canaryName(dep.Name)}, run); err != nil {
		return client.IgnoreNotFound(err)
	}
	if !metav1.IsControlledBy(run, dep) {
		return nil
	}
	_, err = scaleDown(ctx, c, run)
	return err
}

// scaleDown sets the canary Deployment run to zero replicas unless it has
// none already, and reports whether it wrote.
func scaleDown(ctx context.Context, c client.Client, run *appsv1.Deployment) (bool, error) {
	if ptr.Deref(run.Spec.Replicas, 1) == 0 {
		return false, nil
	}
	run.Spec.Replicas = ptr.To[int32](0)
	if err := c.Update(ctx, run); err != nil {
		return false, fmt.Errorf("scale down canary Deployment %s/%s: %w", run.Namespace, run.Name, err)
	}
	return true, nil
}

// managedRoutes returns the VirtualService whose weights sluice sets for dep:
// its own, or one it adopted; nil when there is none.
func managedRoutes(ctx context.Context, c client.Client, dep *appsv1.Deployment) (*istiov1.VirtualService, error) {
	name := dep.Name
	// The VirtualService setting has no default to take from the installation.
	if s, _ := canary.BuiltinDefaults().Parse(dep.Annotations); s.VirtualService != "" {
		name = s.VirtualService
	}
	vs := &istiov1.VirtualService{}
	err := c.Get(ctx, types.NamespacedName{Namespace: dep.Namespace, Name: name}, vs)
	switch {
	case apierrors.IsNotFound(err):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("get VirtualService %s/%s: %w", dep.Namespace, name, err)
	case metav1.IsControlledBy(vs, dep) || name != dep.Name:
		return vs, nil
	}
	return nil, nil
}

// patchWeight sets the weight of the route to <name>-canary, and the rest to
// <name>-primary, touching nothing else of vs.
func patchWeight(ctx context.Context, c client.Client, vs *istiov1.VirtualService, name string, weight int32) error {
	ops := weightPatch(vs, name, weight)
	if len(ops) == 0 {
		return nil
	}
	raw, err := json.Marshal(ops)
	if err != nil {
		return err
	}
	if err := c.Patch(ctx, vs, client.RawPatch(types.JSONPatchType, raw)); err != nil {
		return fmt.Errorf("set canary weight %d on VirtualService %s/%s: %w", weight, vs.Namespace, vs.Name, err)
	}
	return nil
}
