package mesh

import (
	"slices"
	"strings"

	networkingv1 "istio.io/api/networking/v1"
	istiov1 "istio.io/client-go/pkg/apis/networking/v1"
)

// servesVirtualService: vs's hosts include host, by its full name or by the
// short name of a Service in its namespace.
func servesVirtualService(vs *istiov1.VirtualService, host string) bool {
	for _, h := range vs.Spec.GetHosts() {
		if h == host || h+"."+vs.Namespace+".svc.cluster.local" == host {
			return true
		}
	}
	return false
}

// istioRules is the table of vs: its HTTP routes in order, as Istio tries
// them.
func istioRules(vs *istiov1.VirtualService) []rule {
	var rules []rule
	for _, h := range vs.Spec.GetHttp() {
		rules = append(rules, istioRule(h, vs.Namespace))
	}
	return rules
}

func istioRule(h *networkingv1.HTTPRoute, namespace string) rule {
	r := rule{mirrors: istioMirrors(h, namespace)}
	for _, m := range h.GetMatch() {
		r.matches = append(r.matches, istioMatch(m))
	}
	routeOps := istioOps(h.GetHeaders().GetResponse())
	dests := h.GetRoute()
	for _, d := range dests {
		weight := d.GetWeight()
		// Istio gives a lone destination all the traffic, weight or not.
		if len(dests) == 1 {
			weight = 1
		}
		r.dests = append(r.dests, dest{
			service: serviceOf(d.GetDestination().GetHost(), namespace),
			weight:  weight,
			header:  responseHeader(routeOps, istioOps(d.GetHeaders().GetResponse())),
		})
	}
	return r
}

// istioMatch models the header and URI conditions; a match with any other
// condition holds for no request.
func istioMatch(m *networkingv1.HTTPMatchRequest) match {
	if m.GetScheme() != nil || m.GetMethod() != nil || m.GetAuthority() != nil || len(m.GetQueryParams()) > 0 ||
		len(m.GetWithoutHeaders()) > 0 || len(m.GetSourceLabels()) > 0 || m.GetPort() != 0 || m.GetSourceNamespace() != "" {
		return match{never: true}
	}
	var out match
	if u := m.GetUri(); u != nil {
		sm, ok := istioString(u)
		if !ok {
			return match{never: true}
		}
		out.path = &sm
	}
	names := make([]string, 0, len(m.GetHeaders()))
	for name := range m.GetHeaders() {
		names = append(names, name)
	}
	// Sorted, so that the same VirtualService always gives the same table.
	slices.Sort(names)
	for _, name := range names {
		sm, ok := istioString(m.GetHeaders()[name])
		if !ok {
			return match{never: true}
		}
		out.headers = append(out.headers, headerMatch{name: name, stringMatch: sm})
	}
	return out
}

// istioString compiles a StringMatch; one without exact, prefix or regex
// asks only that the header be there.
func istioString(s *networkingv1.StringMatch) (stringMatch, bool) {
	switch t := s.GetMatchType().(type) {
	case *networkingv1.StringMatch_Exact:
		return newStringMatch(exact, t.Exact)
	case *networkingv1.StringMatch_Prefix:
		return newStringMatch(prefix, t.Prefix)
	case *networkingv1.StringMatch_Regex:
		return newStringMatch(regex, t.Regex)
	}
	return newStringMatch(present, "")
}

func istioOps(o *networkingv1.Headers_HeaderOperations) headerOps {
	return headerOps{set: sortedPairs(o.GetSet()), add: sortedPairs(o.GetAdd()), remove: o.GetRemove()}
}

func sortedPairs(m map[string]string) [][2]string {
	var out [][2]string
	for k, v := range m {
		out = append(out, [2]string{k, v})
	}
	slices.SortFunc(out, func(a, b [2]string) int { return strings.Compare(a[0], b[0]) })
	return out
}

// istioMirrors: mirror with mirrorPercentage (all requests without it), and
// the newer list of mirrors.
func istioMirrors(h *networkingv1.HTTPRoute, namespace string) []mirror {
	var out []mirror
	if d := h.GetMirror(); d != nil {
		out = append(out, mirror{service: serviceOf(d.GetHost(), namespace), percent: istioPercent(h.GetMirrorPercentage())})
	}
	for _, p := range h.GetMirrors() {
		out = append(out, mirror{service: serviceOf(p.GetDestination().GetHost(), namespace), percent: istioPercent(p.GetPercentage())})
	}
	return out
}

func istioPercent(p *networkingv1.Percent) float64 {
	if p == nil {
		return 100
	}
	return p.GetValue()
}

// serviceOf names the Service of a destination host (name, name.ns, or
// name.ns.svc.cluster.local).
func serviceOf(host, defaultNamespace string) service {
	name, rest, _ := strings.Cut(host, ".")
	namespace, _, _ := strings.Cut(rest, ".")
	if namespace == "" {
		namespace = defaultNamespace
	}
	return service{namespace: namespace, name: name}
}
