package mesh

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	istiov1 "istio.io/client-go/pkg/apis/networking/v1"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
	"sigs.k8s.io/yaml"
)

// These tests need no cluster: they check the routing table built from each
// API and how a request finds its rule in it.

func virtualService(t *testing.T, spec string) *istiov1.VirtualService {
	t.Helper()
	vs := &istiov1.VirtualService{}
	if err := yaml.Unmarshal([]byte("metadata: {name: web, namespace: shop}\nspec:\n"+indent(spec)), vs); err != nil {
		t.Fatalf("VirtualService: %v", err)
	}
	return vs
}

func httpRoute(t *testing.T, name, spec string) *gatewayv1.HTTPRoute {
	t.Helper()
	hr := &gatewayv1.HTTPRoute{}
	if err := yaml.Unmarshal([]byte("metadata: {name: "+name+", namespace: shop}\nspec:\n"+indent(spec)), hr); err != nil {
		t.Fatalf("HTTPRoute: %v", err)
	}
	return hr
}

func indent(s string) string {
	return "  " + strings.ReplaceAll(strings.TrimSpace(s), "\n", "\n  ") + "\n"
}

// describe writes a table as one line per rule, for readable comparisons:
// conditions (= exact, ^= prefix, ~= regex, /= path segments, ? present),
// "|" between ORed matches, then destinations with weights and headers.
func describe(rules []rule) []string {
	var out []string
	for _, r := range rules {
		var matches []string
		for _, m := range r.matches {
			matches = append(matches, describeMatch(m))
		}
		if len(matches) == 0 {
			matches = []string{"any"}
		}
		line := strings.Join(matches, " | ") + " ->"
		for _, d := range r.dests {
			line += fmt.Sprintf(" %s/%s:%d", d.service.namespace, d.service.name, d.weight)
			if d.header != nil {
				line += describeHeader(d.header)
			}
		}
		for _, m := range r.mirrors {
			line += fmt.Sprintf(" mirror %s/%s@%g%%", m.service.namespace, m.service.name, m.percent)
		}
		out = append(out, line)
	}
	return out
}

func describeMatch(m match) string {
	if m.never {
		return "never"
	}
	var conds []string
	if m.path != nil {
		conds = append(conds, "path"+describeString(*m.path))
	}
	for _, h := range m.headers {
		conds = append(conds, h.name+describeString(h.stringMatch))
	}
	if len(conds) == 0 {
		return "any"
	}
	return strings.Join(conds, " & ")
}

func describeString(s stringMatch) string {
	return map[matchKind]string{present: "?", exact: "=", prefix: "^=", regex: "~=", segments: "/="}[s.kind] + s.value
}

func describeHeader(h http.Header) string {
	var kv []string
	for name, values := range h {
		kv = append(kv, name+": "+strings.Join(values, ", "))
	}
	slices.Sort(kv)
	return "{" + strings.Join(kv, "; ") + "}"
}

func TestVirtualServiceTable(t *testing.T) {
	for _, tc := range []struct {
		name, spec string
		want       []string
	}{{
		name: "a lone destination takes everything, weight or not",
		spec: `
hosts: [web]
http:
  - route: [{destination: {host: web-primary}}]`,
		want: []string{"any -> shop/web-primary:1"},
	}, {
		name: "weights, and hosts short, with a namespace, or in full",
		spec: `
hosts: [web]
http:
  - route:
      - {destination: {host: web-primary.shop.svc.cluster.local}, weight: 80}
      - {destination: {host: web-canary.other}, weight: 20}
      - {destination: {host: web-old}}`,
		want: []string{"any -> shop/web-primary:80 other/web-canary:20 shop/web-old:0"},
	}, {
		name: "header and URI conditions, ANDed in a match and matches ORed, routes in order",
		spec: `
hosts: [web]
http:
  - match:
      - headers: {x-canary: {exact: insider}, user-agent: {regex: ".*Firefox.*"}}
      - headers: {cookie: {regex: "^(.*?;)?(canary=always)(;.*)?$"}}
        uri: {prefix: /api}
      - headers: {x-debug: {}}
    route: [{destination: {host: web-canary}}]
  - route: [{destination: {host: web-primary}}]`,
		want: []string{
			`user-agent~=.*Firefox.* & x-canary=insider | path^=/api & cookie~=^(.*?;)?(canary=always)(;.*)?$ | x-debug? -> shop/web-canary:1`,
			"any -> shop/web-primary:1",
		},
	}, {
		name: "conditions the simulator does not model, or a regex RE2 refuses, match nothing",
		spec: `
hosts: [web]
http:
  - match: [{method: {exact: POST}}, {headers: {x-canary: {regex: "(?!x)"}}}, {queryParams: {v: {exact: "2"}}}, {withoutHeaders: {x: {}}}]
    route: [{destination: {host: web-canary}}]`,
		want: []string{"never | never | never | never -> shop/web-canary:1"},
	}, {
		name: "response headers: the route's, then each destination's",
		spec: `
hosts: [web]
http:
  - headers: {response: {set: {x-route: all}}}
    route:
      - destination: {host: web-primary}
        weight: 50
      - destination: {host: web-canary}
        weight: 50
        headers: {response: {set: {set-cookie: "canary=r2; Max-Age=3600"}, add: {x-route: canary}}}`,
		want: []string{"any -> shop/web-primary:50{X-Route: all} shop/web-canary:50{Set-Cookie: canary=r2; Max-Age=3600; X-Route: all, canary}"},
	}, {
		name: "mirror: a percentage, or every request without one; and the list of mirrors",
		spec: `
hosts: [web]
http:
  - route: [{destination: {host: web-primary}}]
    mirror: {host: web-canary}
  - route: [{destination: {host: web-primary}}]
    mirror: {host: web-canary.shop.svc.cluster.local}
    mirrorPercentage: {value: 12.5}
  - route: [{destination: {host: web-primary}}]
    mirrors:
      - destination: {host: web-a}
        percentage: {value: 30}
      - destination: {host: web-b}`,
		want: []string{
			"any -> shop/web-primary:1 mirror shop/web-canary@100%",
			"any -> shop/web-primary:1 mirror shop/web-canary@12.5%",
			"any -> shop/web-primary:1 mirror shop/web-a@30% mirror shop/web-b@100%",
		},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			if got := describe(istioRules(virtualService(t, tc.spec))); !slices.Equal(got, tc.want) {
				t.Errorf("table\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
		})
	}
}

func TestHTTPRouteTable(t *testing.T) {
	for _, tc := range []struct {
		name, spec string
		want       []string
	}{{
		name: "weights default to 1; a backend's namespace to the route's; a backend that is no Service has no name",
		spec: `
rules:
  - backendRefs:
      - {name: web-primary, port: 80}
      - {name: web-canary, namespace: other, port: 80, weight: 3}
      - {name: web-off, port: 80, weight: 0}
      - {group: example.com, kind: Bucket, name: b}`,
		want: []string{"any -> shop/web-primary:1 other/web-canary:3 shop/web-off:0 /:1"},
	}, {
		name: "headers Exact by default or RegularExpression, names lowercased; the default path matches any",
		spec: `
rules:
  - matches:
      - headers: [{name: X-Canary, value: insider}, {name: cookie, type: RegularExpression, value: ".*canary=always.*"}]
        path: {type: PathPrefix, value: /}
    backendRefs: [{name: web-canary, port: 80}]`,
		want: []string{"x-canary=insider & cookie~=.*canary=always.* -> shop/web-canary:1"},
	}, {
		name: "precedence: an exact path, then the longest prefix, then the most headers; ties in order",
		spec: `
rules:
  - backendRefs: [{name: all, port: 80}]
  - matches: [{headers: [{name: a, value: "1"}]}]
    backendRefs: [{name: one-header, port: 80}]
  - matches: [{headers: [{name: a, value: "1"}, {name: b, value: "2"}]}]
    backendRefs: [{name: two-headers, port: 80}]
  - matches: [{headers: [{name: c, value: "3"}]}]
    backendRefs: [{name: one-header-later, port: 80}]
  - matches: [{path: {type: PathPrefix, value: /api}}, {path: {type: Exact, value: /api/v1}}]
    backendRefs: [{name: api, port: 80}]
  - matches: [{path: {type: RegularExpression, value: "/v[0-9]+"}, headers: [{name: a, value: "1"}]}]
    backendRefs: [{name: regex, port: 80}]
  - matches: [{method: POST}, {queryParams: [{name: v, value: "2"}]}]
    backendRefs: [{name: unmodelled, port: 80}]`,
		want: []string{
			"path=/api/v1 -> shop/api:1",
			"path/=/api -> shop/api:1",
			"a=1 & b=2 -> shop/two-headers:1",
			"a=1 -> shop/one-header:1",
			"c=3 -> shop/one-header-later:1",
			"any -> shop/all:1",
			"never -> shop/unmodelled:1",
			"never -> shop/unmodelled:1",
			"path~=/v[0-9]+ & a=1 -> shop/regex:1",
		},
	}, {
		name: "response headers: the rule's, then each backend's; mirrors by percent, fraction, or all",
		spec: `
rules:
  - filters:
      - type: ResponseHeaderModifier
        responseHeaderModifier: {set: [{name: X-Route, value: all}]}
      - type: RequestMirror
        requestMirror: {backendRef: {name: web-canary, port: 80}, percent: 25}
    backendRefs:
      - {name: web-primary, port: 80}
      - name: web-canary
        port: 80
        filters:
          - type: ResponseHeaderModifier
            responseHeaderModifier: {add: [{name: Set-Cookie, value: "canary=r2; Max-Age=3600"}]}
  - matches: [{headers: [{name: a, value: "1"}]}]
    filters:
      - type: RequestMirror
        requestMirror: {backendRef: {name: web-canary, port: 80}, fraction: {numerator: 1, denominator: 8}}
      - type: RequestMirror
        requestMirror: {backendRef: {name: web-shadow, namespace: other, port: 80}}
    backendRefs: [{name: web-primary, port: 80}]`,
		want: []string{
			"a=1 -> shop/web-primary:1 mirror shop/web-canary@12.5% mirror other/web-shadow@100%",
			"any -> shop/web-primary:1{X-Route: all} shop/web-canary:1{Set-Cookie: canary=r2; Max-Age=3600; X-Route: all} mirror shop/web-canary@25%",
		},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			if got := describe(gatewayRules(httpRoute(t, "web", tc.spec))); !slices.Equal(got, tc.want) {
				t.Errorf("table\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
		})
	}
}

// request is a request for "/" with header lines "Name: value".
func request(path string, lines ...string) Request {
	h := http.Header{}
	for _, l := range lines {
		name, value, _ := strings.Cut(l, ": ")
		h.Add(name, value)
	}
	return Request{Host: "web", Path: path, Header: h}
}

// routed is the first destination of the rule req takes, "" for none.
func routed(rules []rule, req Request) string {
	r := firstMatch(rules, req)
	if r == nil || len(r.dests) == 0 {
		return ""
	}
	return r.dests[0].service.name
}

func TestVirtualServiceMatches(t *testing.T) {
	rules := istioRules(virtualService(t, `
hosts: [web]
http:
  - match: [{headers: {x-canary: {exact: insider}, x-region: {prefix: eu-}}}]
    route: [{destination: {host: insider-in-eu}}]
  - match: [{headers: {x-canary: {regex: "insider|tester"}}}]
    route: [{destination: {host: insider}}]
  - match: [{headers: {cookie: {regex: "^(.*?;\\s*)?canary=always(;.*)?$"}}}]
    route: [{destination: {host: cookie}}]
  - match: [{headers: {x-any: {regex: ".*"}}}]
    route: [{destination: {host: any-value}}]
  - match: [{uri: {prefix: /admin}}]
    route: [{destination: {host: admin}}]
  - route: [{destination: {host: rest}}]`))
	for _, tc := range []struct {
		name string
		req  Request
		want string
	}{
		{"no header", request("/"), "rest"},
		{"exact and prefix, both met", request("/", "X-Canary: insider", "X-Region: eu-west"), "insider-in-eu"},
		{"the first route that matches wins over a later one", request("/", "X-Canary: insider"), "insider"},
		{"regex alternatives", request("/", "X-Canary: tester"), "insider"},
		{"a regex matches the whole value, not a part", request("/", "X-Canary: an insider"), "rest"},
		{"nor a prefix", request("/", "X-Canary: insiders"), "rest"},
		{"header names are case-insensitive", request("/", "x-CANARY: tester"), "insider"},
		{"the cookie among others", request("/", "Cookie: session=1; canary=always; theme=dark"), "cookie"},
		{"the cookie alone", request("/", "Cookie: canary=always"), "cookie"},
		{"the cookie in a second Cookie line", request("/", "Cookie: session=1", "Cookie: canary=always"), "cookie"},
		{"a cookie of another value", request("/", "Cookie: canary=alwaysnot"), "rest"},
		{"a cookie of another name", request("/", "Cookie: nocanary=always"), "rest"},
		{"an empty header is there", request("/", "X-Any: "), "any-value"},
		{"a URI prefix", request("/admin/users"), "admin"},
		{"an empty path is /", request(""), "rest"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := routed(rules, tc.req); got != tc.want {
				t.Errorf("routed to %q; want %q", got, tc.want)
			}
		})
	}
}

func TestHTTPRouteMatches(t *testing.T) {
	rules := gatewayRules(httpRoute(t, "web", `
rules:
  - backendRefs: [{name: rest, port: 80}]
  - matches: [{headers: [{name: x-canary, value: insider}]}]
    backendRefs: [{name: insider, port: 80}]
  - matches: [{headers: [{name: x-canary, value: insider}, {name: x-region, type: RegularExpression, value: "eu-.*"}]}]
    backendRefs: [{name: insider-in-eu, port: 80}]
  - matches: [{headers: [{name: cookie, type: RegularExpression, value: "(.*?;\\s*)?canary=always(;.*)?"}]}]
    backendRefs: [{name: cookie, port: 80}]
  - matches: [{headers: [{name: x-tie, value: "1"}]}]
    backendRefs: [{name: tie-first, port: 80}]
  - matches: [{headers: [{name: x-tie, value: "1"}]}]
    backendRefs: [{name: tie-second, port: 80}]
  - matches: [{path: {type: PathPrefix, value: /api/}}]
    backendRefs: [{name: api, port: 80}]
  - matches: [{path: {type: Exact, value: /api/health}}]
    backendRefs: [{name: health, port: 80}]`))
	for _, tc := range []struct {
		name string
		req  Request
		want string
	}{
		{"no header: the rule without matches", request("/"), "rest"},
		{"a header match beats the rule without, though listed later", request("/", "X-Canary: insider"), "insider"},
		{"two header matches beat one", request("/", "X-Canary: insider", "X-Region: eu-west"), "insider-in-eu"},
		{"a regex matches the whole value", request("/", "X-Canary: insider", "X-Region: us-eu-west"), "insider"},
		{"exact is exact", request("/", "X-Canary: Insider"), "rest"},
		{"the cookie among others", request("/", "Cookie: a=b;canary=always"), "cookie"},
		{"a cookie of another value", request("/", "Cookie: canary=never"), "rest"},
		{"ties go to the rule listed first", request("/", "X-Tie: 1"), "tie-first"},
		{"a longer path prefix beats header matches", request("/api/users", "X-Canary: insider"), "api"},
		{"a prefix matches whole segments: /api/ takes /api", request("/api"), "api"},
		{"but not /apis", request("/apis"), "rest"},
		{"an exact path beats a prefix", request("/api/health"), "health"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := routed(rules, tc.req); got != tc.want {
				t.Errorf("routed to %q; want %q", got, tc.want)
			}
		})
	}
}

// TestHTTPRoutesMerge: rules of several routes for one host compete by
// precedence, and the older route wins a tie.
func TestHTTPRoutesMerge(t *testing.T) {
	older := httpRoute(t, "b-older", `
rules:
  - matches: [{headers: [{name: x-canary, value: insider}]}]
    backendRefs: [{name: older-insider, port: 80}]
  - backendRefs: [{name: older-rest, port: 80}]`)
	newer := httpRoute(t, "a-newer", `
rules:
  - matches: [{headers: [{name: x-canary, value: insider}, {name: x-beta, value: "1"}]}]
    backendRefs: [{name: newer-beta, port: 80}]
  - matches: [{headers: [{name: x-canary, value: insider}]}]
    backendRefs: [{name: newer-insider, port: 80}]`)
	older.CreationTimestamp.Time = newer.CreationTimestamp.Add(-1)
	routes := []*gatewayv1.HTTPRoute{newer, older}
	slices.SortFunc(routes, olderFirst)
	rules := mergeRules(gatewayRules(routes[0]), gatewayRules(routes[1]))
	for _, tc := range []struct {
		req  Request
		want string
	}{
		{request("/"), "older-rest"},
		{request("/", "X-Canary: insider"), "older-insider"},
		{request("/", "X-Canary: insider", "X-Beta: 1"), "newer-beta"},
	} {
		if got := routed(rules, tc.req); got != tc.want {
			t.Errorf("%v routed to %q; want %q", tc.req.Header, got, tc.want)
		}
	}
}

func TestHosts(t *testing.T) {
	vs := virtualService(t, "hosts: [web, web.example.com]")
	hr := httpRoute(t, "web", `
hostnames: [web.example.org, "*.wild.example.org"]
parentRefs:
  - {name: gw}
  - {group: "", kind: Service, name: web, port: 80}
  - {group: "", kind: Service, name: api, namespace: other, port: 80}`)
	for _, tc := range []struct {
		host      string
		vs, route bool
	}{
		{"web", true, true},
		{"web.shop.svc.cluster.local", true, true},
		{"web.example.com", true, false},
		{"web.example.org", false, true},
		{"a.wild.example.org", false, true},
		{"a.b.wild.example.org", false, true},
		{"wild.example.org", false, false},
		{"api", false, true},
		{"api.other.svc.cluster.local", false, true},
		{"api.shop.svc.cluster.local", false, false},
		{"gw", false, false},
	} {
		if got := servesVirtualService(vs, tc.host); got != tc.vs {
			t.Errorf("VirtualService serves %s: %v; want %v", tc.host, got, tc.vs)
		}
		if got := servesHTTPRoute(hr, tc.host); got != tc.route {
			t.Errorf("HTTPRoute serves %s: %v; want %v", tc.host, got, tc.route)
		}
	}
	if got, want := httpRouteHosts(hr), []string{"web.example.org", "web.shop.svc.cluster.local", "api.other.svc.cluster.local"}; !slices.Equal(got, want) {
		t.Errorf("hosts a client can name %v; want %v", got, want)
	}
}

func TestPick(t *testing.T) {
	r := rule{dests: []dest{{service: service{name: "off"}, weight: 0}, {service: service{name: "on"}, weight: 5}}}
	for range 100 {
		if d := r.pick(); d == nil || d.service.name != "on" {
			t.Fatalf("picked %v; want the only destination with a weight", d)
		}
	}
	if d := (&rule{dests: []dest{{weight: 0}}}).pick(); d != nil {
		t.Errorf("picked %v among weights of 0; want none", d)
	}
}

func TestParseClient(t *testing.T) {
	for _, tc := range []struct {
		in, name, value string
		share           float64
	}{
		{"x-canary: insider @20%", "X-Canary", "insider", 0.2},
		{"cookie: canary=always @10%", "Cookie", "canary=always", 0.1},
		{" Cookie:a=b; c=d@e @ 100 % ", "Cookie", "a=b; c=d@e", 1},
		{"x-empty: @0.5%", "X-Empty", "", 0.005},
	} {
		c, err := ParseClient(tc.in)
		if err != nil {
			t.Errorf("%q: %v", tc.in, err)
			continue
		}
		if got := c.Header.Values(tc.name); c.Share != tc.share || !slices.Equal(got, []string{tc.value}) || len(c.Header) != 1 {
			t.Errorf("%q: %+v; want %s: %q at %g", tc.in, c, tc.name, tc.value, tc.share)
		}
	}
	for _, bad := range []string{"", "x-canary: insider", "x-canary: insider @20", "x-canary: insider @0%", "x-canary: insider @101%",
		"x-canary: insider @lots%", "insider @20%", ": insider @20%", "x canary: insider @20%"} {
		if c, err := ParseClient(bad); err == nil {
			t.Errorf("%q: %+v; want an error", bad, c)
		} else if !strings.Contains(err.Error(), `want "NAME: VALUE @PERCENT%"`) {
			t.Errorf("%q: %v; want the error to show the form", bad, err)
		}
	}
}

func TestValidateClients(t *testing.T) {
	c := func(share float64) Client { return Client{Share: share, Header: http.Header{"X": {"y"}}} }
	if err := ValidateClients([]Client{c(0.2), c(0.8)}); err != nil {
		t.Errorf("shares of 100%%: %v", err)
	}
	for _, bad := range [][]Client{{c(0.5), c(0.6)}, {c(0)}, {c(-0.1)}, {c(1.5)}} {
		if err := ValidateClients(bad); err == nil {
			t.Errorf("%v: no error", bad)
		}
	}
}
