package istio

import (
	"fmt"

	istiov1 "istio.io/client-go/pkg/apis/networking/v1"

	"sluice.dev/sluice/pkg/routing"
)

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
// <name>-canary (short or qualified host names), in the order of the routes,
// but those of the rules sluice adds before the weighted one.
func backends(vs *istiov1.VirtualService, name string) []backend {
	var out []backend
	for i, route := range vs.Spec.GetHttp() {
		if route.GetName() == routing.MatchRule || route.GetName() == routing.StickyRule {
			continue
		}
		for j, d := range route.GetRoute() {
			host := d.GetDestination().GetHost()
			isCanary := routing.IsServiceHost(host, routing.CanaryName(name), vs.Namespace)
			if isCanary || routing.IsServiceHost(host, routing.PrimaryName(name), vs.Namespace) {
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
	var bs []routing.Backend
	for _, b := range backends(vs, name) {
		bs = append(bs, routing.Backend{Path: fmt.Sprintf("/spec/http/%d/route/%d", b.http, b.route), NameField: "/destination/host",
			Name: b.host, Canary: b.canary, Weight: b.weight})
	}
	return routing.WeightPatch(bs, weight)
}

// routesToBoth reports whether vs routes to both <name>-primary and
// <name>-canary.
func routesToBoth(vs *istiov1.VirtualService, name string) bool {
	var primary, canary bool
	for _, b := range backends(vs, name) {
		primary, canary = primary || !b.canary, canary || b.canary
	}
	return primary && canary
}
