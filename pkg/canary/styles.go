package canary

import (
	"cmp"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// RequestMatch picks the requests an A/B rollout sends to the canary: those
// that carry every one of its headers.
type RequestMatch struct {
	// Headers must all match.
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=16
	Headers []HeaderMatch `json:"headers"`
}

// HeaderMatch is one condition on a request header.
type HeaderMatch struct {
	// Name of the header, lower case, such as x-canary; cookie matches the
	// whole Cookie header.
	// +kubebuilder:validation:Pattern=`^[a-z0-9][-a-z0-9_]*$`
	// +kubebuilder:validation:MaxLength=256
	Name string `json:"name"`
	// Value the header equals, or, with regex, an RE2 regular expression
	// the whole value must match.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=1024
	Value string `json:"value"`
	// Regex makes Value a regular expression.
	// +optional
	Regex bool `json:"regex,omitempty"`
}

// String is the condition as sluice.dev/match-headers writes it.
func (h HeaderMatch) String() string {
	if h.Regex {
		return h.Name + "~=" + h.Value
	}
	return h.Name + "=" + h.Value
}

// CookieMatch is the header condition on the Cookie header that matches the
// requests that carry cookie name with value: a regular expression, since
// neither Istio nor the Gateway API matches cookies by name.
func CookieMatch(name, value string) HeaderMatch {
	return HeaderMatch{Name: "cookie", Value: `^(.*?;\s*)?` + regexp.QuoteMeta(name+"="+value) + `(;.*)?$`, Regex: true}
}

// Annotations of the release styles.
const (
	// AnnotationMatchHeaders makes the rollout an A/B test: one condition
	// per line, name=value (equals) or name~=regex (RE2, whole value); a
	// request that meets any line goes to the canary, the others never do.
	AnnotationMatchHeaders = "sluice.dev/match-headers"
	// AnnotationMatchCookie is one more A/B condition: name=value, a
	// request that carries that cookie.
	AnnotationMatchCookie = "sluice.dev/match-cookie"
	// AnnotationIterations is the number of analysed intervals of an A/B
	// test, or of the mirroring before the weights.
	AnnotationIterations = "sluice.dev/iterations"
	// AnnotationMirror "true" mirrors the traffic to the canary, whose
	// answers are discarded, before any request is its to answer.
	AnnotationMirror = "sluice.dev/mirror"
	// AnnotationMirrorPercent is the share of requests mirrored.
	AnnotationMirrorPercent = "sluice.dev/mirror-percent"
	// AnnotationSessionCookie keeps a client that got the canary on it
	// for the rest of the rollout: NAME, or NAME; max-age=DURATION.
	AnnotationSessionCookie = "sluice.dev/session-cookie"
)

// SessionSpec is the cookie that keeps a client on the canary.
type SessionSpec struct {
	// Cookie is the cookie's name.
	// +kubebuilder:validation:Pattern=`^[!#$%&'*+\-.^_|~0-9A-Za-z]+$`
	// +kubebuilder:validation:MaxLength=128
	Cookie string `json:"cookie"`
	// MaxAge is how long a client keeps the cookie; 24h by default.
	// +optional
	MaxAge *metav1.Duration `json:"maxAge,omitempty"`
}

// policyMatch carries a policy's A/B matches to the parser, among the
// annotations the policy stands in for: they have no annotation of their
// own, since one of a policy's matches may AND several headers.
const policyMatch = "policy.sluice.dev/match"

// defaultSessionMaxAge is how long a session cookie lasts when the setting
// says nothing.
const defaultSessionMaxAge = 24 * time.Hour

// cookieName matches an RFC 6265 cookie name (an HTTP token).
var cookieName = regexp.MustCompile(`^[!#$%&'*+\-.^_|~0-9A-Za-z]+$`)

// cookieValue matches an RFC 6265 cookie value, unquoted.
var cookieValue = regexp.MustCompile(`^[!#$%&'()*+\-./0-9:<=>?@A-Z\[\]^_` + "`" + `a-z{|}~]*$`)

// headerName matches the header names sluice matches on: lower case, as
// Istio requires.
var headerName = regexp.MustCompile(`^[a-z0-9][-a-z0-9_]*$`)

// styles reads the release styles into s.
func (p *parser) styles(s *Settings) {
	if raw, ok := p.annotations[AnnotationMatchHeaders]; ok {
		s.Match = append(s.Match, p.headerLines(raw)...)
	}
	if raw, ok := p.annotations[policyMatch]; ok && !p.has(AnnotationMatchHeaders) && !p.has(AnnotationMatchCookie) {
		// The policy's; its schema checked it.
		_ = json.Unmarshal([]byte(raw), &s.Match)
	}
	if raw, ok := p.annotations[AnnotationMatchCookie]; ok {
		name, value, found := strings.Cut(strings.TrimSpace(raw), "=")
		if !found || !cookieName.MatchString(name) || value == "" || !cookieValue.MatchString(value) {
			p.fail(AnnotationMatchCookie, raw, "is not name=value, a cookie name and value such as canary=always")
		} else {
			s.Match = append(s.Match, RequestMatch{Headers: []HeaderMatch{CookieMatch(name, value)}})
		}
	}
	s.Mirror = p.boolean(AnnotationMirror)
	if _, ok := p.annotations[AnnotationMirrorPercent]; ok || s.Mirror {
		s.MirrorPercent = p.integer(AnnotationMirrorPercent, 100, 1, 100)
	}
	if raw, ok := p.annotations[AnnotationSessionCookie]; ok {
		s.Session = p.session(raw)
	}
	_, iterationsSet := p.annotations[AnnotationIterations]
	if len(s.Match) > 0 || s.Mirror || iterationsSet {
		s.Iterations = p.integer(AnnotationIterations, 1, 1, 1000)
	}
	p.combine(s, iterationsSet)
}

// headerLines reads one header condition per line.
func (p *parser) headerLines(raw string) []RequestMatch {
	var out []RequestMatch
	for line := range strings.SplitSeq(raw, "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		h, ok := parseHeaderMatch(line)
		if !ok {
			p.fail(AnnotationMatchHeaders, raw, fmt.Sprintf("has %q, which is not name=value or name~=regex "+
				"(a lower-case header name, not cookie, and a value or an RE2 regular expression)", line))
			return nil
		}
		out = append(out, RequestMatch{Headers: []HeaderMatch{h}})
	}
	if len(out) == 0 {
		p.fail(AnnotationMatchHeaders, raw, "has no condition; write one per line, name=value or name~=regex")
	}
	return out
}

func parseHeaderMatch(line string) (HeaderMatch, bool) {
	name, value, found := strings.Cut(line, "=")
	if !found {
		return HeaderMatch{}, false
	}
	h := HeaderMatch{Name: strings.TrimSpace(name), Value: strings.TrimSpace(value)}
	if n, isRegex := strings.CutSuffix(h.Name, "~"); isRegex {
		h.Name, h.Regex = strings.TrimSpace(n), true
		if _, err := regexp.Compile(h.Value); err != nil {
			return HeaderMatch{}, false
		}
	}
	return h, headerName.MatchString(h.Name) && h.Name != "cookie" && h.Value != ""
}

// session reads NAME or NAME; max-age=DURATION.
func (p *parser) session(raw string) *SessionSpec {
	name, attr, hasAttr := strings.Cut(raw, ";")
	sp := &SessionSpec{Cookie: strings.TrimSpace(name)}
	ok := cookieName.MatchString(sp.Cookie)
	if hasAttr {
		key, value, _ := strings.Cut(strings.TrimSpace(attr), "=")
		d, err := time.ParseDuration(strings.TrimSpace(value))
		ok = ok && strings.EqualFold(strings.TrimSpace(key), "max-age") && err == nil && d >= time.Minute
		sp.MaxAge = &metav1.Duration{Duration: d}
	}
	if !ok {
		p.fail(AnnotationSessionCookie, raw, "is not a cookie name, optionally followed by ; max-age=DURATION of at least 1m, such as sluice-canary; max-age=12h")
		return nil
	}
	return sp
}

// SessionMaxAge is how long a client keeps s's cookie.
func (s *SessionSpec) SessionMaxAge() time.Duration {
	if s.MaxAge == nil {
		return defaultSessionMaxAge
	}
	return s.MaxAge.Duration
}

// combine refuses the styles that do not go together. (An A/B test has no
// use for the step weights, which a policy may set for its other
// Deployments: it ignores them.)
func (p *parser) combine(s *Settings, iterationsSet bool) {
	switch {
	case len(s.Match) > 0 && s.Mirror:
		p.problems = append(p.problems, fmt.Sprintf("%s and an A/B test do not go together: pick one", AnnotationMirror))
	case len(s.Match) > 0 && s.Session != nil:
		p.problems = append(p.problems, fmt.Sprintf("%s and an A/B test do not go together: the matching requests are the canary's already", AnnotationSessionCookie))
	case iterationsSet && len(s.Match) == 0 && !s.Mirror:
		p.problems = append(p.problems, fmt.Sprintf("%s counts the intervals of an A/B test (%s, %s) or of %s; set one of them, or remove it",
			AnnotationIterations, AnnotationMatchHeaders, AnnotationMatchCookie, AnnotationMirror))
	case !s.Mirror && p.has(AnnotationMirrorPercent):
		p.problems = append(p.problems, fmt.Sprintf("%s needs %s: \"true\"", AnnotationMirrorPercent, AnnotationMirror))
	}
	if adopted := cmp.Or(s.VirtualService, s.HTTPRoute); adopted != "" && (len(s.Match) > 0 || s.Mirror || s.Session != nil) {
		p.problems = append(p.problems, fmt.Sprintf("on a route sluice adopts (%s) sluice sets only weights: remove the A/B test, "+
			"the mirroring and the session cookie, or let sluice make its own route", adopted))
	}
}

func (p *parser) has(key string) bool { _, ok := p.annotations[key]; return ok }
