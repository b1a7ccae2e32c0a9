package shift

import (
	"context"
	"encoding/json"
	"fmt"

	networkingv1 "istio.io/api/networking/v1"
	istiov1 "istio.io/client-go/pkg/apis/networking/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"sluice.dev/sluice/pkg/canary"
)

// ensureRouting creates the Services and the VirtualService of dep. It
// returns a nil VirtualService when one of that name belongs to someone else.
func (r *Reconciler) ensureRouting(ctx context.Context, dep *appsv1.Deployment, cr *canary.Canary, s canary.Settings) (*istiov1.VirtualService, error) {
	port := servicePort(dep, s)
	selector := dep.Spec.Selector.MatchLabels
	for _, svc := range []*corev1.Service{
		service(dep, primaryName(dep.Name), selector, port),
		service(dep, canaryName(dep.Name), canaryLabels(selector), port),
		service(dep, dep.Name, selector, port),
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
	if s.VirtualService != "" {
		return r.adopt(ctx, dep, cr, s.VirtualService)
	}
	vs := &istiov1.VirtualService{}
	found, err := r.read(ctx, client.ObjectKeyFromObject(dep), vs)
	if err != nil {
		return nil, err
	}
	if !found {
		vs = virtualService(dep, s, cr.Status.CanaryWeight)
		if err := r.Client.Create(ctx, vs); err != nil {
			return nil, fmt.Errorf("create VirtualService %s/%s: %w", dep.Namespace, dep.Name, err)
		}
		r.created(vs)
		return vs, nil
	}
	if !metav1.IsControlledBy(vs, dep) {
		return nil, r.conflict(ctx, dep, cr, fmt.Sprintf(
			"VirtualService %s.%s exists and was not created by sluice; sluice leaves it alone and does nothing for this Deployment "+
				"(to have sluice set only its weights, annotate the Deployment %s: %s)", dep.Name, dep.Namespace, canary.AnnotationVirtualService, dep.Name))
	}
	return vs, nil
}

// adopt returns the VirtualService that the user named for sluice to set the
// weights of, or nil (and reports why) when it cannot serve.
func (r *Reconciler) adopt(ctx context.Context, dep *appsv1.Deployment, cr *canary.Canary, name string) (*istiov1.VirtualService, error) {
	vs := &istiov1.VirtualService{}
	found, err := r.read(ctx, types.NamespacedName{Namespace: dep.Namespace, Name: name}, vs)
	if err != nil {
		return nil, err
	}
	if !found {
		return nil, r.conflict(ctx, dep, cr, fmt.Sprintf("VirtualService %s.%s, named by %s, does not exist", name, dep.Namespace, canary.AnnotationVirtualService))
	}
	if !routes(vs, dep.Name) {
		return nil, r.conflict(ctx, dep, cr, fmt.Sprintf("VirtualService %s.%s, named by %s, has no HTTP route to both %s and %s",
			name, dep.Namespace, canary.AnnotationVirtualService, primaryName(dep.Name), canaryName(dep.Name)))
	}
	return vs, nil
}

func (r *Reconciler) setWeight(ctx context.Context, vs *istiov1.VirtualService, name string, weight int32) error {
	before := vs.ResourceVersion
	if err := patchWeight(ctx, r.Client, vs, name, weight); err != nil {
		return err
	}
	if vs.ResourceVersion != before {
		r.wrote(vs)
	}
	return nil
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
		ObjectMeta: ownedBy(dep, name),
		Spec: corev1.ServiceSpec{
			Selector: selector,
			Ports: []corev1.ServicePort{{
				Name: "http", Port: port, TargetPort: intstr.FromInt32(port), Protocol: corev1.ProtocolTCP,
			}},
		},
	}
}

// virtualService routes the Deployment's hosts to the primary and the canary
// Services, weight percent to the canary.
func virtualService(dep *appsv1.Deployment, s canary.Settings, weight int32) *istiov1.VirtualService {
	vs := &istiov1.VirtualService{ObjectMeta: ownedBy(dep, dep.Name)}
	vs.Spec.Hosts = append([]string{dep.Name}, s.Hosts...)
	if len(s.Gateways) > 0 {
		vs.Spec.Gateways = append(append([]string{}, s.Gateways...), "mesh")
	}
	vs.Spec.Http = []*networkingv1.HTTPRoute{{
		Route: []*networkingv1.HTTPRouteDestination{
			{Destination: &networkingv1.Destination{Host: primaryName(dep.Name)}, Weight: 100 - weight},
			{Destination: &networkingv1.Destination{Host: canaryName(dep.Name)}, Weight: weight},
		},
	}}
	return vs
}

// backend is a destination of a VirtualService's HTTP route that sends to
// the primary or the canary Service of a Deployment.
type backend struct {
	// http and route locate it: spec.http[http].route[route].
	http, route int
	host        string
	canary      bool
	weight      int32
}

// backends lists the destinations of vs that send to <name>-primary or
// <name>-canary (short or qualified host names), in the order of the routes.
func backends(vs *istiov1.VirtualService, name string) []backend {
	var out []backend
	for i, route := range vs.Spec.GetHttp() {
		for j, d := range route.GetRoute() {
			host := d.GetDestination().GetHost()
			isCanary := isHost(host, canaryName(name), vs.Namespace)
			if isCanary || isHost(host, primaryName(name), vs.Namespace) {
				out = append(out, backend{http: i, route: j, host: host, canary: isCanary, weight: d.GetWeight()})
			}
		}
	}
	return out
}

// weightPatch is a JSON patch that sets the weights of the routes to
// <name>-primary and <name>-canary and touches nothing else; nil when they
// are already right or absent.
func weightPatch(vs *istiov1.VirtualService, name string, weight int32) []map[string]any {
	var ops []map[string]any
	for _, b := range backends(vs, name) {
		want := 100 - weight
		if b.canary {
			want = weight
		}
		if b.weight == want {
			continue
		}
		path := fmt.Sprintf("/spec/http/%d/route/%d", b.http, b.route)
		// The test guards against a route list that changed since it was
		// read; "add" also sets a weight of 0, which the API leaves out.
		ops = append(ops,
			map[string]any{"op": "test", "path": path + "/destination/host", "value": b.host},
			map[string]any{"op": "add", "path": path + "/weight", "value": want})
	}
	return ops
}

// routedWeight is the weight of the first route to <name>-canary.
func routedWeight(vs *istiov1.VirtualService, name string) int32 {
	for _, b := range backends(vs, name) {
		if b.canary {
			return b.weight
		}
	}
	return 0
}

// routes reports whether vs routes to both <name>-primary and <name>-canary.
func routes(vs *istiov1.VirtualService, name string) bool {
	var primary, canary bool
	for _, b := range backends(vs, name) {
		primary, canary = primary || !b.canary, canary || b.canary
	}
	return primary && canary
}

// isHost reports whether host names Service svc of namespace ns.
func isHost(host, svc, ns string) bool {
	switch host {
	case svc, svc + "." + ns, svc + "." + ns + ".svc", svc + "." + ns + ".svc.cluster.local":
		return true
	}
	return false
}
