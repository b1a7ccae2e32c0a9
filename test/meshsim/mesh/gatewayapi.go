package mesh

import (
	"cmp"
	"slices"
	"strings"

	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// rank is the Gateway API's precedence of a match, its most important
// criterion first: an exact path, then the longest path prefix, then the
// most header matches. Method and query matches, the criteria in between,
// are not modelled (such matches hold for no request).
type rank struct {
	exactPath    bool
	prefixLength int
	headers      int
}

// compareRanks is negative when a's match takes precedence over b's.
func compareRanks(a, b rank) int {
	if a.exactPath != b.exactPath {
		if a.exactPath {
			return -1
		}
		return 1
	}
	return cmp.Or(cmp.Compare(b.prefixLength, a.prefixLength), cmp.Compare(b.headers, a.headers))
}

// servesHTTPRoute: host is one of hr's hostnames (a leading "*." matches
// any subdomain), or a Service that hr is attached to as a GAMMA mesh
// route, by its short or its full name.
func servesHTTPRoute(hr *gatewayv1.HTTPRoute, host string) bool {
	for _, h := range hr.Spec.Hostnames {
		if hostnameMatches(string(h), host) {
			return true
		}
	}
	for _, p := range hr.Spec.ParentRefs {
		if s, ok := parentService(p, hr.Namespace); ok && (host == s.name || host == s.name+"."+s.namespace+".svc.cluster.local") {
			return true
		}
	}
	return false
}

func hostnameMatches(pattern, host string) bool {
	if suffix, ok := strings.CutPrefix(pattern, "*"); ok {
		return strings.HasSuffix(host, suffix) && len(host) > len(suffix)
	}
	return pattern == host
}

// parentService is the Service a parentRef attaches a route to; ok false
// for a Gateway or any other parent.
func parentService(p gatewayv1.ParentReference, namespace string) (service, bool) {
	if p.Group == nil || *p.Group != "" || p.Kind == nil || *p.Kind != "Service" {
		return service{}, false
	}
	if p.Namespace != nil {
		namespace = string(*p.Namespace)
	}
	return service{namespace: namespace, name: string(p.Name)}, true
}

// httpRouteHosts is every host hr serves that a client can name: its hostnames
// without wildcards and its parent Services' full names.
func httpRouteHosts(hr *gatewayv1.HTTPRoute) []string {
	var out []string
	for _, h := range hr.Spec.Hostnames {
		if !strings.HasPrefix(string(h), "*") {
			out = append(out, string(h))
		}
	}
	for _, p := range hr.Spec.ParentRefs {
		if s, ok := parentService(p, hr.Namespace); ok {
			out = append(out, s.name+"."+s.namespace+".svc.cluster.local")
		}
	}
	return out
}

// gatewayRules is the table of hr: one rule per match, in the order of the
// Gateway API's precedence, ties in the order of the route's rules.
func gatewayRules(hr *gatewayv1.HTTPRoute) []rule {
	var out []rule
	for _, r := range hr.Spec.Rules {
		base := rule{dests: gatewayDests(r, hr.Namespace), mirrors: gatewayMirrors(r.Filters, hr.Namespace)}
		matches := r.Matches
		if len(matches) == 0 {
			// The API's default: a path prefix of "/".
			matches = []gatewayv1.HTTPRouteMatch{{}}
		}
		for _, m := range matches {
			one := base
			one.matches, one.rank = []match{gatewayMatch(m)}, gatewayRank(m)
			out = append(out, one)
		}
	}
	slices.SortStableFunc(out, func(a, b rule) int { return compareRanks(a.rank, b.rank) })
	return out
}

// mergeRules orders the rules of several routes for one host, given oldest
// route first, by the precedence across routes: rank, then the older
// route, then the order within a route.
func mergeRules(tables ...[]rule) []rule {
	var out []rule
	for _, t := range tables {
		out = append(out, t...)
	}
	slices.SortStableFunc(out, func(a, b rule) int { return compareRanks(a.rank, b.rank) })
	return out
}

func gatewayMatch(m gatewayv1.HTTPRouteMatch) match {
	if len(m.QueryParams) > 0 || m.Method != nil {
		return match{never: true}
	}
	path, ok := gatewayPath(m.Path)
	if !ok {
		return match{never: true}
	}
	out := match{path: path}
	for _, h := range m.Headers {
		sm, ok := gatewayHeader(h)
		if !ok {
			return match{never: true}
		}
		out.headers = append(out.headers, headerMatch{name: strings.ToLower(string(h.Name)), stringMatch: sm})
	}
	return out
}

func gatewayHeader(h gatewayv1.HTTPHeaderMatch) (stringMatch, bool) {
	switch {
	case h.Type == nil || *h.Type == gatewayv1.HeaderMatchExact:
		return newStringMatch(exact, h.Value)
	case *h.Type == gatewayv1.HeaderMatchRegularExpression:
		return newStringMatch(regex, h.Value)
	}
	return stringMatch{}, false
}

// gatewayPath compiles a path match; nil for one that any path meets.
func gatewayPath(p *gatewayv1.HTTPPathMatch) (*stringMatch, bool) {
	if p == nil || p.Value == nil {
		return nil, true
	}
	kind := segments
	if p.Type != nil {
		switch *p.Type {
		case gatewayv1.PathMatchExact:
			kind = exact
		case gatewayv1.PathMatchRegularExpression:
			kind = regex
		}
	}
	if kind == segments && strings.TrimSuffix(*p.Value, "/") == "" {
		return nil, true
	}
	sm, ok := newStringMatch(kind, *p.Value)
	return &sm, ok
}

func gatewayRank(m gatewayv1.HTTPRouteMatch) rank {
	r := rank{headers: len(m.Headers), prefixLength: 1}
	if p := m.Path; p != nil && p.Value != nil {
		switch {
		case p.Type != nil && *p.Type == gatewayv1.PathMatchExact:
			r.exactPath = true
		case p.Type != nil && *p.Type == gatewayv1.PathMatchRegularExpression:
			// Implementation-specific: here, after every prefix.
			r.prefixLength = 0
		default:
			r.prefixLength = len(*p.Value)
		}
	}
	return r
}

func gatewayDests(r gatewayv1.HTTPRouteRule, namespace string) []dest {
	ruleOps := gatewayOps(r.Filters)
	var out []dest
	for _, b := range r.BackendRefs {
		weight := int32(1)
		if b.Weight != nil {
			weight = *b.Weight
		}
		out = append(out, dest{
			service: backendService(b.BackendObjectReference, namespace),
			weight:  weight,
			header:  responseHeader(ruleOps, gatewayOps(b.Filters)),
		})
	}
	return out
}

// backendService names the Service of a backendRef; a backend of any other
// kind gets the empty name, which answers as a backend that cannot serve.
func backendService(b gatewayv1.BackendObjectReference, namespace string) service {
	if (b.Group != nil && *b.Group != "") || (b.Kind != nil && *b.Kind != "Service") {
		return service{}
	}
	if b.Namespace != nil {
		namespace = string(*b.Namespace)
	}
	return service{namespace: namespace, name: string(b.Name)}
}

// gatewayOps gathers the response header edits of filters.
func gatewayOps(filters []gatewayv1.HTTPRouteFilter) headerOps {
	var out headerOps
	for _, f := range filters {
		m := f.ResponseHeaderModifier
		if f.Type != gatewayv1.HTTPRouteFilterResponseHeaderModifier || m == nil {
			continue
		}
		for _, h := range m.Set {
			out.set = append(out.set, [2]string{string(h.Name), h.Value})
		}
		for _, h := range m.Add {
			out.add = append(out.add, [2]string{string(h.Name), h.Value})
		}
		out.remove = append(out.remove, m.Remove...)
	}
	return out
}

func gatewayMirrors(filters []gatewayv1.HTTPRouteFilter, namespace string) []mirror {
	var out []mirror
	for _, f := range filters {
		m := f.RequestMirror
		if f.Type != gatewayv1.HTTPRouteFilterRequestMirror || m == nil {
			continue
		}
		out = append(out, mirror{service: backendService(m.BackendRef, namespace), percent: mirrorPercent(m)})
	}
	return out
}

// mirrorPercent: percent, or fraction (of 100 by default), or all.
func mirrorPercent(m *gatewayv1.HTTPRequestMirrorFilter) float64 {
	switch {
	case m.Percent != nil:
		return float64(*m.Percent)
	case m.Fraction != nil:
		denominator := int32(100)
		if m.Fraction.Denominator != nil && *m.Fraction.Denominator > 0 {
			denominator = *m.Fraction.Denominator
		}
		return 100 * float64(m.Fraction.Numerator) / float64(denominator)
	}
	return 100
}
