package canary

import (
	"reflect"
	"slices"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestParseStyles(t *testing.T) {
	type styles struct {
		Match         []RequestMatch
		Iterations    int32
		Mirror        bool
		MirrorPercent int32
		Session       *SessionSpec
	}
	header := func(name, value string, regex bool) RequestMatch {
		return RequestMatch{Headers: []HeaderMatch{{Name: name, Value: value, Regex: regex}}}
	}
	for _, tc := range []struct {
		name        string
		annotations map[string]string
		want        styles
		problems    []string
	}{
		{"none", nil, styles{}, nil},
		{"A/B by headers, one per line, ORed", map[string]string{
			AnnotationMatchHeaders: "x-canary=insider\n  x-region ~= eu-.*\n", AnnotationIterations: "10",
		}, styles{Match: []RequestMatch{header("x-canary", "insider", false), header("x-region", "eu-.*", true)}, Iterations: 10}, nil},
		{"A/B by cookie", map[string]string{AnnotationMatchCookie: "canary=always"},
			styles{Match: []RequestMatch{header("cookie", `^(.*?;\s*)?canary=always(;.*)?$`, true)}, Iterations: 1}, nil},
		{"mirror at the default percent", map[string]string{AnnotationMirror: "true"}, styles{Mirror: true, MirrorPercent: 100, Iterations: 1}, nil},
		{"mirror half for 3 intervals", map[string]string{AnnotationMirror: "true", AnnotationMirrorPercent: "50", AnnotationIterations: "3"},
			styles{Mirror: true, MirrorPercent: 50, Iterations: 3}, nil},
		{"session cookie", map[string]string{AnnotationSessionCookie: "sluice-canary"}, styles{Session: &SessionSpec{Cookie: "sluice-canary"}}, nil},
		{"session cookie with max-age", map[string]string{AnnotationSessionCookie: "sc; max-age=12h"},
			styles{Session: &SessionSpec{Cookie: "sc", MaxAge: &metav1.Duration{Duration: 12 * time.Hour}}}, nil},

		{"header upper case", map[string]string{AnnotationMatchHeaders: "X-Canary=1"}, styles{}, []string{
			`sluice.dev/match-headers: "X-Canary=1" has "X-Canary=1", which is not name=value or name~=regex (a lower-case header name, not cookie, and a value or an RE2 regular expression)`}},
		{"header cookie", map[string]string{AnnotationMatchHeaders: "cookie=a"}, styles{}, []string{
			`sluice.dev/match-headers: "cookie=a" has "cookie=a", which is not name=value or name~=regex (a lower-case header name, not cookie, and a value or an RE2 regular expression)`}},
		{"bad regex", map[string]string{AnnotationMatchHeaders: "x-a~=(("}, styles{}, []string{
			`sluice.dev/match-headers: "x-a~=((" has "x-a~=((", which is not name=value or name~=regex (a lower-case header name, not cookie, and a value or an RE2 regular expression)`}},
		{"no condition", map[string]string{AnnotationMatchHeaders: "\n"}, styles{}, []string{
			`sluice.dev/match-headers: "\n" has no condition; write one per line, name=value or name~=regex`}},
		{"cookie without value", map[string]string{AnnotationMatchCookie: "canary"}, styles{}, []string{
			`sluice.dev/match-cookie: "canary" is not name=value, a cookie name and value such as canary=always`}},
		{"iterations alone", map[string]string{AnnotationIterations: "3"}, styles{Iterations: 3}, []string{
			"sluice.dev/iterations counts the intervals of an A/B test (sluice.dev/match-headers, sluice.dev/match-cookie) or of sluice.dev/mirror; set one of them, or remove it"}},
		{"iterations out of range", map[string]string{AnnotationMatchCookie: "a=b", AnnotationIterations: "0"}, styles{}, []string{
			`sluice.dev/iterations: "0" is not an integer between 1 and 1000`}},
		{"mirror-percent without mirror", map[string]string{AnnotationMirrorPercent: "20"}, styles{}, []string{
			`sluice.dev/mirror-percent needs sluice.dev/mirror: "true"`}},
		{"A/B and mirror", map[string]string{AnnotationMatchCookie: "a=b", AnnotationMirror: "true"}, styles{}, []string{
			"sluice.dev/mirror and an A/B test do not go together: pick one"}},
		{"A/B and session", map[string]string{AnnotationMatchCookie: "a=b", AnnotationSessionCookie: "s"}, styles{}, []string{
			"sluice.dev/session-cookie and an A/B test do not go together: the matching requests are the canary's already"}},
		{"session max-age too short", map[string]string{AnnotationSessionCookie: "s; max-age=10s"}, styles{}, []string{
			`sluice.dev/session-cookie: "s; max-age=10s" is not a cookie name, optionally followed by ; max-age=DURATION of at least 1m, such as sluice-canary; max-age=12h`}},
		{"styles on an adopted route", map[string]string{AnnotationVirtualService: "front", AnnotationMirror: "true"}, styles{}, []string{
			"on a route sluice adopts (front) sluice sets only weights: remove the A/B test, the mirroring and the session cookie, or let sluice make its own route"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, problems := BuiltinDefaults().Parse(tc.annotations)
			if !slices.Equal(problems, tc.problems) {
				t.Fatalf("problems\n %q\nwant\n %q", problems, tc.problems)
			}
			if len(problems) > 0 {
				return
			}
			got := styles{s.Match, s.Iterations, s.Mirror, s.MirrorPercent, s.Session}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("styles %+v; want %+v", got, tc.want)
			}
		})
	}
}

// A policy's A/B matches reach the settings, and a Deployment's own
// conditions replace them.
func TestPolicyMatch(t *testing.T) {
	policy := &PolicySnapshot{Kind: KindCanaryPolicy, Name: "ab", Spec: PolicySpec{
		Match: []RequestMatch{{Headers: []HeaderMatch{{Name: "x-team", Value: "qa"}, {Name: "x-env", Value: "stag.*", Regex: true}}}},
	}}
	s, _, problems := BuiltinDefaults().ParseWithPolicy(policy, nil)
	if len(problems) > 0 || !reflect.DeepEqual(s.Match, policy.Spec.Match) || s.Iterations != 1 {
		t.Errorf("from the policy: match %+v, iterations %d, problems %q", s.Match, s.Iterations, problems)
	}
	s, _, problems = BuiltinDefaults().ParseWithPolicy(policy, map[string]string{AnnotationMatchHeaders: "x-canary=1"})
	if want := []RequestMatch{{Headers: []HeaderMatch{{Name: "x-canary", Value: "1"}}}}; len(problems) > 0 || !reflect.DeepEqual(s.Match, want) {
		t.Errorf("the Deployment's own: match %+v, problems %q", s.Match, problems)
	}
}
