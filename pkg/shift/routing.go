package shift

import (
	"context"
	"fmt"
	"maps"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"sluice.dev/sluice/pkg/canary"
	"sluice.dev/sluice/pkg/routing"
	"sluice.dev/sluice/pkg/routing/routers"
)

// route is the route through which the shifter sends a Deployment's
// traffic, and the router that reads and patches it.
type route struct {
	router routing.Router
	target routing.Target
	obj    client.Object
}

// ensureRouting creates the Services of dep and its route, or reads the
// route it adopts. It returns nil when the route cannot serve (one of that
// name belongs to someone else, or the adopted one is missing or does not
// route to the Deployment), having reported why.
func (r *Reconciler) ensureRouting(ctx context.Context, dep *appsv1.Deployment, cr *canary.Canary, s canary.Settings) (*route, error) {
	t := routing.Target{Deployment: dep, Settings: s, Port: servicePort(dep, s)}
	selector := dep.Spec.Selector.MatchLabels
	for _, svc := range []*corev1.Service{
		service(dep, t.Primary(), selector, t.Port),
		service(dep, t.Canary(), canaryLabels(selector), t.Port),
		service(dep, dep.Name, selector, t.Port),
	} {
		// Read from the cache first: most reconciles find them all there.
		err := r.Client.Get(ctx, client.ObjectKeyFromObject(svc), &corev1.Service{})
		if apierrors.IsNotFound(err) {
			err = client.IgnoreAlreadyExists(r.Client.Create(ctx, svc))
		}
		if err != nil {
			return nil, fmt.Errorf("ensure Service %s/%s: %w", svc.Namespace, svc.Name, err)
		}
	}
	rt := routers.For(s)
	rte := &route{router: rt, target: t, obj: rt.New()}
	name, annotation := rt.Adopted(s)
	if name != "" {
		found, err := r.read(ctx, types.NamespacedName{Namespace: dep.Namespace, Name: name}, rte.obj)
		if err != nil {
			return nil, r.unserved(ctx, dep, cr, rt, err)
		}
		if !found {
			return nil, r.conflict(ctx, dep, cr, fmt.Sprintf("%s %s.%s, named by %s, does not exist", rt.Kind(), name, dep.Namespace, annotation))
		}
		if why := rt.Check(t, rte.obj); why != "" {
			return nil, r.conflict(ctx, dep, cr, fmt.Sprintf("%s %s.%s, named by %s, %s", rt.Kind(), name, dep.Namespace, annotation, why))
		}
		return rte, nil
	}
	found, err := r.read(ctx, client.ObjectKeyFromObject(dep), rte.obj)
	if err != nil {
		return nil, r.unserved(ctx, dep, cr, rt, err)
	}
	if !found {
		rte.obj = rt.Build(t, routing.Routing{CanaryWeight: cr.Status.CanaryWeight})
		if err := r.Client.Create(ctx, rte.obj); err != nil {
			return nil, fmt.Errorf("create %s %s/%s: %w", rt.Kind(), dep.Namespace, dep.Name, err)
		}
		r.created(rte.obj)
		return rte, nil
	}
	if !metav1.IsControlledBy(rte.obj, dep) {
		return nil, r.conflict(ctx, dep, cr, fmt.Sprintf(
			"%s %s.%s exists and was not created by sluice; sluice leaves it alone and does nothing for this Deployment "+
				"(to have sluice set only its weights, annotate the Deployment %s: %s)", rt.Kind(), dep.Name, dep.Namespace, annotation, dep.Name))
	}
	return rte, nil
}

// unserved reports a router whose API the cluster does not serve as a
// conflict, which waits for the user; it returns other errors as they are.
func (r *Reconciler) unserved(ctx context.Context, dep *appsv1.Deployment, cr *canary.Canary, rt routing.Router, err error) error {
	if !meta.IsNoMatchError(err) {
		return err
	}
	return r.conflict(ctx, dep, cr, fmt.Sprintf("router %s routes with %s objects, which this cluster does not serve: install their CRDs "+
		"(then restart sluice's shifter, so that it watches them), or pick another router with %s", rt.Name(), rt.Kind(), canary.AnnotationRouter))
}

// setRouting makes the route send want.
func (r *Reconciler) setRouting(ctx context.Context, rte *route, want routing.Routing) error {
	wrote, err := patchRoute(ctx, r.Client, rte, want)
	if wrote {
		r.wrote(rte.obj)
	}
	return err
}

// patchRoute patches the route to send want, and reports whether it wrote.
func patchRoute(ctx context.Context, c client.Client, rte *route, want routing.Routing) (bool, error) {
	patch, err := rte.router.Patch(rte.target, rte.obj, want)
	if err != nil || patch == nil {
		return false, err
	}
	if err := c.Patch(ctx, rte.obj, patch); err != nil {
		return false, fmt.Errorf("set canary weight %d on %s %s/%s: %w", want.CanaryWeight, rte.router.Kind(),
			rte.obj.GetNamespace(), rte.obj.GetName(), err)
	}
	return true, nil
}

// managedRoutes returns the routes that send dep's traffic, of every router:
// its own, or ones it adopted. It reads them with settings taken from the
// annotations alone, and creates nothing: what an opt-out or an uninstall
// sends back to the primary, whichever router the Deployment used.
func managedRoutes(ctx context.Context, c client.Client, dep *appsv1.Deployment) ([]*route, error) {
	var out []*route
	for _, rt := range routers.All() {
		// A route to adopt is named by an annotation, which has no default
		// to take from the installation or a policy; the router may come
		// from either, so each router reads the annotations as its own.
		annotations := maps.Clone(dep.Annotations)
		if annotations == nil {
			annotations = map[string]string{}
		}
		annotations[canary.AnnotationRouter] = rt.Name()
		s, _ := canary.BuiltinDefaults().Parse(annotations)
		name, _ := rt.Adopted(s)
		if name == "" {
			name = dep.Name
		}
		obj := rt.New()
		err := c.Get(ctx, types.NamespacedName{Namespace: dep.Namespace, Name: name}, obj)
		switch {
		case apierrors.IsNotFound(err) || meta.IsNoMatchError(err):
			// Not there, or its API is not installed.
			continue
		case err != nil:
			return nil, fmt.Errorf("get %s %s/%s: %w", rt.Kind(), dep.Namespace, name, err)
		case metav1.IsControlledBy(obj, dep) || name != dep.Name:
			// The port too: a route sent back to the primary is written whole.
			out = append(out, &route{router: rt, target: routing.Target{Deployment: dep, Settings: s, Port: servicePort(dep, s)}, obj: obj})
		}
	}
	return out, nil
}

// servicePort is the port from the settings, else the first container port,
// else 80.
func servicePort(dep *appsv1.Deployment, s canary.Settings) int32 {
	if s.Port != 0 {
		return s.Port
	}
	for _, c := range dep.Spec.Template.Spec.Containers {
		for _, p := range c.Ports {
			return p.ContainerPort
		}
	}
	return 80
}

// service selects the pods that selector matches, on port.
func service(dep *appsv1.Deployment, name string, selector map[string]string, port int32) *corev1.Service {
	return &corev1.Service{
		ObjectMeta: routing.OwnedBy(dep, name),
		Spec: corev1.ServiceSpec{
			Selector: selector,
			Ports: []corev1.ServicePort{{
				Name: "http", Port: port, TargetPort: intstr.FromInt32(port), Protocol: corev1.ProtocolTCP,
			}},
		},
	}
}
