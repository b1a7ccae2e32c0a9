package mesh

import (
	"math/rand/v2"
	"net/http"
	"regexp"
	"strings"
)

// The routing table: what a VirtualService or an HTTPRoute says, in one form
// that Route follows without knowing which API it came from.

// Request is what routing looks at in a request.
type Request struct {
	// Host is the authority, without a port.
	Host string
	// Path is the URL path; empty means "/".
	Path   string
	Header http.Header
}

// rule sends the requests it matches to its destinations. Rules are tried in
// order and the first whose match holds takes the request.
type rule struct {
	// matches are ORed; a rule without any matches every request.
	matches []match
	dests   []dest
	mirrors []mirror
	// rank orders the rules of HTTPRoutes by the Gateway API's precedence;
	// unused for a VirtualService, whose order is its list's.
	rank rank
}

// match is a set of conditions, ANDed.
type match struct {
	// path is nil for any path.
	path    *stringMatch
	headers []headerMatch
	// never is set when the route asks for something the simulator does not
	// model (a query match, an invalid regex): such a match holds for no
	// request, so that traffic meant elsewhere does not land on its
	// destinations by mistake.
	never bool
}

type matchKind int

const (
	// present holds for any value, the empty one too.
	present matchKind = iota
	exact
	prefix
	// regex is an RE2 expression that must match the whole value, as
	// Envoy's safe_regex does.
	regex
	// segments is the Gateway API's PathPrefix: whole path segments, so
	// that /api matches /api/v1 but not /apis.
	segments
)

type stringMatch struct {
	kind  matchKind
	value string
	re    *regexp.Regexp
}

type headerMatch struct {
	name string
	stringMatch
}

// dest is a Service that a rule sends requests to.
type dest struct {
	service service
	weight  int32
	// header is added to the answers of this destination: how a route sets
	// a sticky cookie.
	header http.Header
}

// mirror is a Service that gets a copy of percent of a rule's requests.
type mirror struct {
	service service
	percent float64
}

// service names a Service; an empty name is a backend that is no Service,
// which the simulator cannot answer for.
type service struct {
	namespace, name string
}

// newStringMatch compiles a condition; a regex that does not compile gives
// ok false.
func newStringMatch(kind matchKind, value string) (stringMatch, bool) {
	m := stringMatch{kind: kind, value: value}
	if kind == regex {
		re, err := regexp.Compile(`^(?:` + value + `)$`)
		if err != nil {
			return m, false
		}
		m.re = re
	}
	return m, true
}

func (m stringMatch) holds(v string) bool {
	switch m.kind {
	case present:
		return true
	case exact:
		return v == m.value
	case prefix:
		return strings.HasPrefix(v, m.value)
	case regex:
		return m.re.MatchString(v)
	case segments:
		p := strings.TrimSuffix(m.value, "/")
		return v == p || strings.HasPrefix(v, p+"/")
	}
	return false
}

func (m match) holds(r Request) bool {
	if m.never {
		return false
	}
	if m.path != nil {
		path := r.Path
		if path == "" {
			path = "/"
		}
		if !m.path.holds(path) {
			return false
		}
	}
	for _, h := range m.headers {
		v, ok := headerValue(r.Header, h.name)
		if !ok || !h.holds(v) {
			return false
		}
	}
	return true
}

// headerValue is the value a proxy matches a header against: all the
// request's lines of that header joined, the cookie's with "; " as an
// HTTP/2 proxy rejoins them, and whether the request has the header at all.
func headerValue(h http.Header, name string) (string, bool) {
	values := h.Values(name)
	if len(values) == 0 {
		return "", false
	}
	sep := ","
	if strings.EqualFold(name, "cookie") {
		sep = "; "
	}
	return strings.Join(values, sep), true
}

func (r *rule) holds(req Request) bool {
	if len(r.matches) == 0 {
		return true
	}
	for _, m := range r.matches {
		if m.holds(req) {
			return true
		}
	}
	return false
}

// firstMatch is the rule that takes req, nil if none does.
func firstMatch(rules []rule, req Request) *rule {
	for i := range rules {
		if rules[i].holds(req) {
			return &rules[i]
		}
	}
	return nil
}

// pick chooses a destination by the weights; nil when they are all 0.
func (r *rule) pick() *dest {
	total := int64(0)
	for _, d := range r.dests {
		total += int64(max(d.weight, 0))
	}
	if total == 0 {
		return nil
	}
	n := rand.Int64N(total)
	for i := range r.dests {
		w := int64(max(r.dests[i].weight, 0))
		if n < w {
			return &r.dests[i]
		}
		n -= w
	}
	return nil
}

// headerOps are a route's edits of response headers.
type headerOps struct {
	set, add [][2]string
	remove   []string
}

func (o headerOps) apply(h http.Header) {
	for _, kv := range o.set {
		h.Set(kv[0], kv[1])
	}
	for _, kv := range o.add {
		h.Add(kv[0], kv[1])
	}
	for _, name := range o.remove {
		h.Del(name)
	}
}

// responseHeader is the header that ops, the route's first, give an answer.
func responseHeader(ops ...headerOps) http.Header {
	h := http.Header{}
	for _, o := range ops {
		o.apply(h)
	}
	if len(h) == 0 {
		return nil
	}
	return h
}
