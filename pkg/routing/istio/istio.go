// Package istio routes a Deployment's traffic with an Istio VirtualService:
// one that sluice makes and owns, or one that the user wrote and names with
// sluice.dev/virtualservice, of which sluice sets only the weights.
package istio

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"

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
// and the mesh; an A/B test's and the sticky clients' rules first (Istio
// takes the first route that matches), then the weights.
func (Router) Build(t routing.Target, r routing.Routing) client.Object {
	dep := t.Deployment
	vs := &istiov1.VirtualService{ObjectMeta: routing.OwnedBy(dep, dep.Name)}
	vs.Spec.Hosts = append([]string{dep.Name}, t.Settings.Hosts...)
	if len(t.Settings.Gateways) > 0 {
		vs.Spec.Gateways = append(append([]string{}, t.Settings.Gateways...), "mesh")
	}
	vs.Spec.Http = routes(t, r)
	return vs
}

func routes(t routing.Target, r routing.Routing) []*networkingv1.HTTPRoute {
	toCanary := []*networkingv1.HTTPRouteDestination{{Destination: &networkingv1.Destination{Host: t.Canary()}}}
	var out []*networkingv1.HTTPRoute
	if len(r.Match) > 0 {
		out = append(out, &networkingv1.HTTPRoute{Name: routing.MatchRule, Match: matches(r.Match), Route: toCanary})
	}
	weightedCanary := &networkingv1.HTTPRouteDestination{Destination: &networkingv1.Destination{Host: t.Canary()}, Weight: r.CanaryWeight}
	if r.Sticky != nil {
		sticky := []canary.RequestMatch{{Headers: []canary.HeaderMatch{r.Sticky.Match()}}}
		out = append(out, &networkingv1.HTTPRoute{Name: routing.StickyRule, Match: matches(sticky), Route: toCanary})
		weightedCanary.Headers = &networkingv1.Headers{Response: &networkingv1.Headers_HeaderOperations{
			Add: map[string]string{"Set-Cookie": r.Sticky.SetCookie()},
		}}
	}
	weighted := &networkingv1.HTTPRoute{Route: []*networkingv1.HTTPRouteDestination{
		{Destination: &networkingv1.Destination{Host: t.Primary()}, Weight: 100 - r.CanaryWeight}, weightedCanary,
	}}
	if r.MirrorPercent > 0 {
		weighted.Mirror = &networkingv1.Destination{Host: t.Canary()}
		weighted.MirrorPercentage = &networkingv1.Percent{Value: float64(r.MirrorPercent)}
	}
	return append(out, weighted)
}

// matches are the Istio matches of ms: one per RequestMatch (ORed), its
// headers ANDed.
func matches(ms []canary.RequestMatch) []*networkingv1.HTTPMatchRequest {
	out := make([]*networkingv1.HTTPMatchRequest, 0, len(ms))
	for _, m := range ms {
		headers := map[string]*networkingv1.StringMatch{}
		for _, h := range m.Headers {
			if h.Regex {
				headers[h.Name] = &networkingv1.StringMatch{MatchType: &networkingv1.StringMatch_Regex{Regex: h.Value}}
			} else {
				headers[h.Name] = &networkingv1.StringMatch{MatchType: &networkingv1.StringMatch_Exact{Exact: h.Value}}
			}
		}
		out = append(out, &networkingv1.HTTPMatchRequest{Headers: headers})
	}
	return out
}

// requestMatches reads matches back.
func requestMatches(ms []*networkingv1.HTTPMatchRequest) []canary.RequestMatch {
	var out []canary.RequestMatch
	for _, m := range ms {
		var rm canary.RequestMatch
		for _, name := range slices.Sorted(maps.Keys(m.GetHeaders())) {
			sm := m.GetHeaders()[name]
			if re := sm.GetRegex(); re != "" {
				rm.Headers = append(rm.Headers, canary.HeaderMatch{Name: name, Value: re, Regex: true})
			} else {
				rm.Headers = append(rm.Headers, canary.HeaderMatch{Name: name, Value: sm.GetExact()})
			}
		}
		out = append(out, rm)
	}
	return out
}

// Check implements routing.Router.
func (Router) Check(t routing.Target, route client.Object) string {
	if !routesToBoth(route.(*istiov1.VirtualService), t.Deployment.Name) {
		return fmt.Sprintf("has no HTTP route to both %s and %s", t.Primary(), t.Canary())
	}
	return ""
}

// Routed implements routing.Router: the weight of the first weighted route
// to the canary, and what sluice's own rules and mirror do.
func (Router) Routed(t routing.Target, route client.Object) routing.Routing {
	vs := route.(*istiov1.VirtualService)
	var r routing.Routing
	for _, b := range backends(vs, t.Deployment.Name) {
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
	for _, h := range vs.Spec.GetHttp() {
		switch h.GetName() {
		case routing.MatchRule:
			r.Match = requestMatches(h.GetMatch())
		case routing.StickyRule:
			stickyRule = true
		default:
			if routing.IsServiceHost(h.GetMirror().GetHost(), t.Canary(), vs.Namespace) {
				r.MirrorPercent = int32(h.GetMirrorPercentage().GetValue())
				if h.GetMirrorPercentage() == nil {
					r.MirrorPercent = 100
				}
			}
			for _, d := range h.GetRoute() {
				if c, ok := routing.ParseSetCookie(d.GetHeaders().GetResponse().GetAdd()["Set-Cookie"]); ok {
					cookie = &c
				}
			}
		}
	}
	r.Sticky = routing.ReadSticky(stickyRule, cookie)
	return r
}

// Patch implements routing.Router: on an adopted VirtualService, a JSON
// patch of the weights of the routes to the primary and the canary; on
// sluice's own, its HTTP routes replaced.
func (rt Router) Patch(t routing.Target, route client.Object, r routing.Routing) (client.Patch, error) {
	if rt.Routed(t, route).Equal(r) {
		return nil, nil
	}
	var ops []map[string]any
	if t.Adopted() {
		ops = weightPatch(route.(*istiov1.VirtualService), t.Deployment.Name, r.CanaryWeight)
	} else {
		ops = []map[string]any{{"op": "replace", "path": "/spec/http", "value": routes(t, r)}}
	}
	if len(ops) == 0 {
		return nil, nil
	}
	raw, err := json.Marshal(ops)
	if err != nil {
		return nil, fmt.Errorf("encode the routes of VirtualService %s/%s: %w", route.GetNamespace(), route.GetName(), err)
	}
	return client.RawPatch(types.JSONPatchType, raw), nil
}
