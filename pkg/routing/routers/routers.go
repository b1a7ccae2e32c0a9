// Package routers lists the routers sluice can route with. A new router is
// a package of its own and one line in All.
package routers

import (
	"sluice.dev/sluice/pkg/canary"
	"sluice.dev/sluice/pkg/routing"
	"sluice.dev/sluice/pkg/routing/gatewayapi"
	"sluice.dev/sluice/pkg/routing/istio"
)

// All returns every router, the default (Istio) first.
func All() []routing.Router {
	return []routing.Router{istio.Router{}, gatewayapi.Router{}}
}

// For returns the router that s picks. Parsed settings always pick one of
// All; For falls back on the first for any other.
func For(s canary.Settings) routing.Router {
	all := All()
	for _, r := range all {
		if r.Name() == s.Router {
			return r
		}
	}
	return all[0]
}

// ParseWithPolicy is canary.Defaults.ParseWithPolicy, and then, for
// settings valid so far, the problems of what their router cannot do: the
// one check of a Deployment's settings, for the webhook and the shifter.
func ParseWithPolicy(d canary.Defaults, p *canary.PolicySnapshot, annotations map[string]string) (canary.Settings, map[string]string, []string) {
	s, sources, problems := d.ParseWithPolicy(p, annotations)
	if len(problems) == 0 {
		problems = For(s).Unsupported(s)
	}
	return s, sources, problems
}
