// Package gatewayapi routes a Deployment's traffic with a Gateway API
// HTTPRoute (gateway.networking.k8s.io/v1): one that sluice makes and owns,
// attached to the Gateways of sluice.dev/gateways or, for the traffic inside
// the cluster, to the Deployment's Service (the GAMMA mesh binding); or one
// that the user wrote and names with sluice.dev/httproute, of which sluice
// sets only the weights.
package gatewayapi

import (
	"encoding/json"
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	"sluice.dev/sluice/pkg/canary"
	"sluice.dev/sluice/pkg/routing"
)

// Router is the Gateway API router.
type Router struct{}

var _ routing.Router = Router{}

// Name implements routing.Router.
func (Router) Name() string { return canary.RouterGatewayAPI }

// Kind implements routing.Router.
func (Router) Kind() string { return "HTTPRoute" }

// AddToScheme implements routing.Router.
func (Router) AddToScheme(s *runtime.Scheme) error { return gatewayv1.Install(s) }

// New implements routing.Router.
func (Router) New() client.Object { return &gatewayv1.HTTPRoute{} }

// Adopted implements routing.Router.
func (Router) Adopted(s canary.Settings) (name, annotation string) {
	return s.HTTPRoute, canary.AnnotationHTTPRoute
}

// Unsupported implements routing.Router.
func (Router) Unsupported(s canary.Settings) []string {
	var out []string
	for _, h := range s.Hosts {
		if h == "*" {
			out = append(out, fmt.Sprintf("%s: %q: an HTTPRoute's hostname cannot be a bare *; leave it out to match every host, "+
				"or name a wildcard domain such as *.example.com", canary.AnnotationHosts, h))
		}
	}
	return out
}

// Mesh in sluice.dev/gateways stands for the traffic inside the cluster, as
// in Istio's gateways.
const Mesh = "mesh"

// Build implements routing.Router: the Deployment's hosts, on its Gateways
// (the mesh when it names none), to the primary and the canary by weight.
func (Router) Build(t routing.Target, r routing.Routing) client.Object {
	dep := t.Deployment
	route := &gatewayv1.HTTPRoute{ObjectMeta: routing.OwnedBy(dep, dep.Name)}
	gateways := t.Settings.Gateways
	if len(gateways) == 0 {
		gateways = []string{Mesh}
	}
	for _, g := range gateways {
		route.Spec.ParentRefs = append(route.Spec.ParentRefs, parent(dep.Name, g))
	}
	for _, h := range t.Settings.Hosts {
		route.Spec.Hostnames = append(route.Spec.Hostnames, gatewayv1.Hostname(h))
	}
	route.Spec.Rules = []gatewayv1.HTTPRouteRule{{BackendRefs: []gatewayv1.HTTPBackendRef{
		backendRef(t.Primary(), t.Port, 100-r.CanaryWeight),
		backendRef(t.Canary(), t.Port, r.CanaryWeight),
	}}}
	return route
}

// parent is the parent reference of gateway: the Deployment's Service for
// the mesh, else a Gateway named namespace/name or, in the route's own
// namespace, name.
func parent(service, gateway string) gatewayv1.ParentReference {
	if gateway == Mesh {
		return gatewayv1.ParentReference{Group: ptr.To[gatewayv1.Group](""), Kind: ptr.To[gatewayv1.Kind]("Service"), Name: gatewayv1.ObjectName(service)}
	}
	ref := gatewayv1.ParentReference{Group: ptr.To[gatewayv1.Group](gatewayv1.GroupName), Kind: ptr.To[gatewayv1.Kind]("Gateway")}
	if ns, name, found := strings.Cut(gateway, "/"); found {
		ref.Namespace, ref.Name = ptr.To(gatewayv1.Namespace(ns)), gatewayv1.ObjectName(name)
	} else {
		ref.Name = gatewayv1.ObjectName(gateway)
	}
	return ref
}

func backendRef(service string, port, weight int32) gatewayv1.HTTPBackendRef {
	return gatewayv1.HTTPBackendRef{BackendRef: gatewayv1.BackendRef{
		BackendObjectReference: gatewayv1.BackendObjectReference{Name: gatewayv1.ObjectName(service), Port: ptr.To(port)},
		Weight:                 ptr.To(weight),
	}}
}

// Check implements routing.Router.
func (Router) Check(t routing.Target, route client.Object) string {
	var primary, canary bool
	for _, b := range backends(route.(*gatewayv1.HTTPRoute), t) {
		primary, canary = primary || !b.canary, canary || b.canary
	}
	if !primary || !canary {
		return fmt.Sprintf("has no rule with backendRefs to both Services %s and %s", t.Primary(), t.Canary())
	}
	return ""
}

// Routed implements routing.Router: the weight of the first backendRef to
// the canary.
func (Router) Routed(t routing.Target, route client.Object) routing.Routing {
	for _, b := range backends(route.(*gatewayv1.HTTPRoute), t) {
		if b.canary {
			return routing.Routing{CanaryWeight: b.weight}
		}
	}
	return routing.Routing{}
}

// Patch implements routing.Router: a JSON patch of the weights of the
// backendRefs to the primary and the canary.
func (Router) Patch(t routing.Target, route client.Object, r routing.Routing) (client.Patch, error) {
	var ops []map[string]any
	for _, b := range backends(route.(*gatewayv1.HTTPRoute), t) {
		want := 100 - r.CanaryWeight
		if b.canary {
			want = r.CanaryWeight
		}
		if b.weight == want {
			continue
		}
		path := fmt.Sprintf("/spec/rules/%d/backendRefs/%d", b.rule, b.ref)
		// The test guards against rules that changed since they were read.
		ops = append(ops,
			map[string]any{"op": "test", "path": path + "/name", "value": b.name},
			map[string]any{"op": "add", "path": path + "/weight", "value": want})
	}
	if len(ops) == 0 {
		return nil, nil
	}
	raw, err := json.Marshal(ops)
	if err != nil {
		return nil, fmt.Errorf("encode the weights of HTTPRoute %s/%s: %w", route.GetNamespace(), route.GetName(), err)
	}
	return client.RawPatch(types.JSONPatchType, raw), nil
}

// backend is a backendRef of an HTTPRoute rule to the primary or the canary
// Service of a Deployment.
type backend struct {
	// rule and ref locate it: spec.rules[rule].backendRefs[ref].
	rule, ref int
	name      string
	canary    bool
	weight    int32
}

// backends lists the backendRefs of route to the Services of t's primary
// and canary, in the order of the rules.
func backends(route *gatewayv1.HTTPRoute, t routing.Target) []backend {
	var out []backend
	for i, rule := range route.Spec.Rules {
		for j, ref := range rule.BackendRefs {
			if !isService(ref.BackendObjectReference, route.Namespace) {
				continue
			}
			name := string(ref.Name)
			if isCanary := name == t.Canary(); isCanary || name == t.Primary() {
				// A backendRef without a weight has the API's default, 1.
				out = append(out, backend{rule: i, ref: j, name: name, canary: isCanary, weight: ptr.Deref(ref.Weight, 1)})
			}
		}
	}
	return out
}

// isService reports whether ref is a Service of namespace ns.
func isService(ref gatewayv1.BackendObjectReference, ns string) bool {
	return ptr.Deref(ref.Group, "") == "" && ptr.Deref(ref.Kind, "Service") == "Service" &&
		(ref.Namespace == nil || string(*ref.Namespace) == ns)
}
