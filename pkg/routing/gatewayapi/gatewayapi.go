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
	route.Spec.Rules = rules(t, r)
	return route
}

// rules are an A/B test's and the sticky clients' rules, which win over the
// weighted one by having header matches, then the weighted one.
func rules(t routing.Target, r routing.Routing) []gatewayv1.HTTPRouteRule {
	toCanary := []gatewayv1.HTTPBackendRef{backendRef(t.Canary(), t.Port, 1)}
	var out []gatewayv1.HTTPRouteRule
	if len(r.Match) > 0 {
		out = append(out, gatewayv1.HTTPRouteRule{Name: ptr.To[gatewayv1.SectionName](routing.MatchRule), Matches: matches(r.Match), BackendRefs: toCanary})
	}
	weightedCanary := backendRef(t.Canary(), t.Port, r.CanaryWeight)
	if r.Sticky != nil {
		sticky := []canary.RequestMatch{{Headers: []canary.HeaderMatch{r.Sticky.Match()}}}
		out = append(out, gatewayv1.HTTPRouteRule{Name: ptr.To[gatewayv1.SectionName](routing.StickyRule), Matches: matches(sticky), BackendRefs: toCanary})
		weightedCanary.Filters = []gatewayv1.HTTPRouteFilter{{
			Type:                   gatewayv1.HTTPRouteFilterResponseHeaderModifier,
			ResponseHeaderModifier: &gatewayv1.HTTPHeaderFilter{Add: []gatewayv1.HTTPHeader{{Name: "Set-Cookie", Value: r.Sticky.SetCookie()}}},
		}}
	}
	weighted := gatewayv1.HTTPRouteRule{BackendRefs: []gatewayv1.HTTPBackendRef{backendRef(t.Primary(), t.Port, 100-r.CanaryWeight), weightedCanary}}
	if r.MirrorPercent > 0 {
		weighted.Filters = []gatewayv1.HTTPRouteFilter{{
			Type: gatewayv1.HTTPRouteFilterRequestMirror,
			RequestMirror: &gatewayv1.HTTPRequestMirrorFilter{
				BackendRef: gatewayv1.BackendObjectReference{Name: gatewayv1.ObjectName(t.Canary()), Port: ptr.To(t.Port)},
				Percent:    ptr.To(r.MirrorPercent),
			},
		}}
	}
	return append(out, weighted)
}

// matches are the HTTPRoute matches of ms: one per RequestMatch (ORed),
// its headers ANDed.
func matches(ms []canary.RequestMatch) []gatewayv1.HTTPRouteMatch {
	out := make([]gatewayv1.HTTPRouteMatch, 0, len(ms))
	for _, m := range ms {
		var hm gatewayv1.HTTPRouteMatch
		for _, h := range m.Headers {
			typ := gatewayv1.HeaderMatchExact
			if h.Regex {
				typ = gatewayv1.HeaderMatchRegularExpression
			}
			hm.Headers = append(hm.Headers, gatewayv1.HTTPHeaderMatch{Type: ptr.To(typ), Name: gatewayv1.HTTPHeaderName(h.Name), Value: h.Value})
		}
		out = append(out, hm)
	}
	return out
}

// requestMatches reads matches back.
func requestMatches(ms []gatewayv1.HTTPRouteMatch) []canary.RequestMatch {
	var out []canary.RequestMatch
	for _, m := range ms {
		var rm canary.RequestMatch
		for _, h := range m.Headers {
			regex := ptr.Deref(h.Type, gatewayv1.HeaderMatchExact) == gatewayv1.HeaderMatchRegularExpression
			rm.Headers = append(rm.Headers, canary.HeaderMatch{Name: string(h.Name), Value: h.Value, Regex: regex})
		}
		out = append(out, rm)
	}
	return out
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

// Routed implements routing.Router: the weight of the first weighted
// backendRef to the canary, and what sluice's own rules and filters do.
func (Router) Routed(t routing.Target, route client.Object) routing.Routing {
	hr := route.(*gatewayv1.HTTPRoute)
	var r routing.Routing
	for _, b := range backends(hr, t) {
		if b.canary {
			r.CanaryWeight = b.weight
			break
		}
	}
	if t.Adopted() {
		return r
	}
	var stickyRule bool
	var cookie *routing.Sticky
	for _, rule := range hr.Spec.Rules {
		switch ptr.Deref(rule.Name, "") {
		case routing.MatchRule:
			r.Match = requestMatches(rule.Matches)
		case routing.StickyRule:
			stickyRule = true
		default:
			for _, f := range rule.Filters {
				if m := f.RequestMirror; f.Type == gatewayv1.HTTPRouteFilterRequestMirror && m != nil && string(m.BackendRef.Name) == t.Canary() {
					r.MirrorPercent = mirrorPercent(m)
				}
			}
			for _, ref := range rule.BackendRefs {
				for _, f := range ref.Filters {
					if f.ResponseHeaderModifier == nil {
						continue
					}
					for _, h := range f.ResponseHeaderModifier.Add {
						if c, ok := routing.ParseSetCookie(h.Value); ok && h.Name == "Set-Cookie" {
							cookie = &c
						}
					}
				}
			}
		}
	}
	r.Sticky = routing.ReadSticky(stickyRule, cookie)
	return r
}

// mirrorPercent is the percentage of the requests that m mirrors.
func mirrorPercent(m *gatewayv1.HTTPRequestMirrorFilter) int32 {
	switch {
	case m.Percent != nil:
		return *m.Percent
	case m.Fraction != nil:
		return m.Fraction.Numerator * 100 / ptr.Deref(m.Fraction.Denominator, 100)
	}
	return 100
}

// Patch implements routing.Router: on an adopted HTTPRoute, a JSON patch of
// the weights of the backendRefs to the primary and the canary; on
// sluice's own, its rules replaced.
func (rt Router) Patch(t routing.Target, route client.Object, r routing.Routing) (client.Patch, error) {
	if rt.Routed(t, route).Equal(r) {
		return nil, nil
	}
	ops := []map[string]any{{"op": "replace", "path": "/spec/rules", "value": rules(t, r)}}
	if t.Adopted() {
		ops = weightPatch(route.(*gatewayv1.HTTPRoute), t, r.CanaryWeight)
	}
	if len(ops) == 0 {
		return nil, nil
	}
	raw, err := json.Marshal(ops)
	if err != nil {
		return nil, fmt.Errorf("encode the rules of HTTPRoute %s/%s: %w", route.GetNamespace(), route.GetName(), err)
	}
	return client.RawPatch(types.JSONPatchType, raw), nil
}

// weightPatch is a JSON patch that sets the weights of the backendRefs to
// the primary and the canary and touches nothing else; nil when they are
// right already.
func weightPatch(route *gatewayv1.HTTPRoute, t routing.Target, weight int32) []map[string]any {
	var bs []routing.Backend
	for _, b := range backends(route, t) {
		bs = append(bs, routing.Backend{Path: fmt.Sprintf("/spec/rules/%d/backendRefs/%d", b.rule, b.ref), NameField: "/name",
			Name: b.name, Canary: b.canary, Weight: b.weight})
	}
	return routing.WeightPatch(bs, weight)
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
// and canary, in the order of the rules, but those of the rules sluice adds
// before the weighted one.
func backends(route *gatewayv1.HTTPRoute, t routing.Target) []backend {
	var out []backend
	for i, rule := range route.Spec.Rules {
		if name := ptr.Deref(rule.Name, ""); name == routing.MatchRule || name == routing.StickyRule {
			continue
		}
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
