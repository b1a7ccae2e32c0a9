// Package routers lists the routers sluice can route with. A new router is
// a package of its own and one line in All.
package routers

import (
	"sluice.dev/sluice/pkg/routing"
	"sluice.dev/sluice/pkg/routing/istio"
)

// All returns every router, the default (Istio) first.
func All() []routing.Router {
	return []routing.Router{istio.Router{}}
}

// Get returns the router named name; nil when there is none.
func Get(name string) routing.Router {
	for _, r := range All() {
		if r.Name() == name {
			return r
		}
	}
	return nil
}
