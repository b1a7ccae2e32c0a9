// Package istio routes a Deployment's traffic with an Istio VirtualService:
// one that sluice makes and owns, or one that the user wrote and names with
// sluice.dev/virtualservice, of which sluice sets only the weights.
package istio

import (
	"encoding/json"
	"fmt"

	networkingv1 "istio.io/api/networking/v1"
	istiov1 "istio.io/client-go/pkg/apis/networking/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"sluice.dev/sluice/pkg/canary"
	"sluice.dev/sluice/pkg/routing"
)

// Router is the Istio router.
type Router struct{}

var _ routing.Router = Router{}

// Name implements routing.Router.
func (Router) Name() string { return canary.RouterIstio }

// Kind implements routing.Router.
func (Router) Kind() string { return "VirtualService" }

// AddToScheme implements routing.Router.
func (Router) AddToScheme(s *runtime.Scheme) error { return istiov1.AddToScheme(s) }

// New implements routing.Router.
func (Router) New() client.Object { return &istiov1.VirtualService{} }

// Adopted implements routing.Router.
func (Router) Adopted(s canary.Settings) (name, annotation string) {
	return s.VirtualService, canary.AnnotationVirtualService
}

// Unsupported implements routing.Router.
func (Router) Unsupported(canary.Settings) []string { return nil }

// Build implements routing.Router: the Deployment's hosts, on its gateways
// and the mesh, to the primary and the canary by weight.
func (Router) Build(t routing.Target, r routing.Routing) client.Object {
	dep := t.Deployment
	vs := &istiov1.VirtualService{ObjectMeta: routing.OwnedBy(dep, dep.Name)}
	vs.Spec.Hosts = append([]string{dep.Name}, t.Settings.Hosts...)
	if len(t.Settings.Gateways) > 0 {
		vs.Spec.Gateways = append(append([]string{}, t.Settings.Gateways...), "mesh")
	}
	vs.Spec.Http = []*networkingv1.HTTPRoute{{
		Route: []*networkingv1.HTTPRouteDestination{
			{Destination: &networkingv1.Destination{Host: t.Primary()}, Weight: 100 - r.CanaryWeight},
			{Destination: &networkingv1.Destination{Host: t.Canary()}, Weight: r.CanaryWeight},
		},
	}}
	return vs
}

// Check implements routing.Router.
func (Router) Check(t routing.Target, route client.Object) string {
	if !routes(route.(*istiov1.VirtualService), t.Deployment.Name) {
		return fmt.Sprintf("has no HTTP route to both %s and %s", t.Primary(), t.Canary())
	}
	return ""
}

// Routed implements routing.Router: the weight of the first route to the
// canary.
func (Router) Routed(t routing.Target, route client.Object) routing.Routing {
	for _, b := range backends(route.(*istiov1.VirtualService), t.Deployment.Name) {
		if b.canary {
			return routing.Routing{CanaryWeight: b.weight}
		}
	}
	return routing.Routing{}
}

// Patch implements routing.Router: a JSON patch of the weights of the
// routes to the primary and the canary.
func (Router) Patch(t routing.Target, route client.Object, r routing.Routing) (client.Patch, error) {
	ops := weightPatch(route.(*istiov1.VirtualService), t.Deployment.Name, r.CanaryWeight)
	if len(ops) == 0 {
		return nil, nil
	}
	raw, err := json.Marshal(ops)
	if err != nil {
		return nil, fmt.Errorf("encode the weights of VirtualService %s/%s: %w", route.GetNamespace(), route.GetName(), err)
	}
	return client.RawPatch(types.JSONPatchType, raw), nil
}
