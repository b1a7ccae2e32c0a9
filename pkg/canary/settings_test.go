package canary

import (
	"maps"
	"math"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// knownList is the list of known annotations as the unknown-key message
// spells it, written out so that a change in wording or order breaks tests.
const knownList = "sluice.dev/canary, sluice.dev/step-weight, sluice.dev/step-weights, sluice.dev/max-weight, " +
	"sluice.dev/interval, sluice.dev/threshold, sluice.dev/min-success-rate, sluice.dev/max-request-duration, " +
	"sluice.dev/analysis-window, sluice.dev/min-requests, sluice.dev/evidence-deadline, sluice.dev/blind-deadline, sluice.dev/port, sluice.dev/gateways, sluice.dev/hosts, " +
	"sluice.dev/progress-deadline, sluice.dev/skip-analysis, sluice.dev/confirm-rollout, sluice.dev/confirm-promotion, sluice.dev/router, sluice.dev/virtualservice, sluice.dev/httproute, sluice.dev/match-headers, sluice.dev/match-cookie, sluice.dev/iterations, sluice.dev/mirror, sluice.dev/mirror-percent, sluice.dev/session-cookie, sluice.dev/policy, " +
	"sluice.dev/canary-template, sluice.dev/canary-revision"

func checkProblems(t *testing.T, annotations map[string]string, want []string) Settings {
	t.Helper()
	got, problems := BuiltinDefaults().Parse(annotations)
	if !slices.Equal(problems, want) {
		t.Errorf("Parse(%q) problems:\n got  %q\n want %q", annotations, problems, want)
	}
	return got
}

func TestParseProblems(t *testing.T) {
	tests := []struct {
		name        string
		annotations map[string]string
		want        []string
	}{
		// step-weight
		{"step-weight abc", map[string]string{"sluice.dev/step-weight": "abc"},
			[]string{`sluice.dev/step-weight: "abc" is not an integer between 1 and 100`}},
		{"step-weight 0", map[string]string{"sluice.dev/step-weight": "0"},
			[]string{`sluice.dev/step-weight: "0" is not an integer between 1 and 100`}},
		{"step-weight 101", map[string]string{"sluice.dev/step-weight": "101"},
			[]string{`sluice.dev/step-weight: "101" is not an integer between 1 and 100`}},
		{"step-weight -5", map[string]string{"sluice.dev/step-weight": "-5"},
			[]string{`sluice.dev/step-weight: "-5" is not an integer between 1 and 100`}},
		{"step-weight 1.5", map[string]string{"sluice.dev/step-weight": "1.5"},
			[]string{`sluice.dev/step-weight: "1.5" is not an integer between 1 and 100`}},
		{"step-weight empty", map[string]string{"sluice.dev/step-weight": ""},
			[]string{`sluice.dev/step-weight: "" is not an integer between 1 and 100`}},
		{"step-weight overflows int32", map[string]string{"sluice.dev/step-weight": "99999999999"},
			[]string{`sluice.dev/step-weight: "99999999999" is not an integer between 1 and 100`}},

		// step-weights
		{"step-weights abc", map[string]string{"sluice.dev/step-weights": "abc"},
			[]string{`sluice.dev/step-weights: "abc" is not a comma-separated list of strictly increasing integers between 1 and 100`}},
		{"step-weights empty", map[string]string{"sluice.dev/step-weights": ""},
			[]string{`sluice.dev/step-weights: "" is not a comma-separated list of strictly increasing integers between 1 and 100`}},
		{"step-weights with 0", map[string]string{"sluice.dev/step-weights": "0,10,50"},
			[]string{`sluice.dev/step-weights: "0,10,50" is not a comma-separated list of strictly increasing integers between 1 and 100`}},
		{"step-weights with 101", map[string]string{"sluice.dev/step-weights": "10,50,101"},
			[]string{`sluice.dev/step-weights: "10,50,101" is not a comma-separated list of strictly increasing integers between 1 and 100`}},
		{"step-weights repeated", map[string]string{"sluice.dev/step-weights": "10,10,50"},
			[]string{`sluice.dev/step-weights: "10,10,50" is not a comma-separated list of strictly increasing integers between 1 and 100`}},
		{"step-weights decreasing", map[string]string{"sluice.dev/step-weights": "50,10"},
			[]string{`sluice.dev/step-weights: "50,10" is not a comma-separated list of strictly increasing integers between 1 and 100`}},
		{"step-weights empty item", map[string]string{"sluice.dev/step-weights": "10,,50"},
			[]string{`sluice.dev/step-weights: "10,,50" is not a comma-separated list of strictly increasing integers between 1 and 100`}},
		{"step-weights trailing comma", map[string]string{"sluice.dev/step-weights": "10,50,"},
			[]string{`sluice.dev/step-weights: "10,50," is not a comma-separated list of strictly increasing integers between 1 and 100`}},
		{"step-weights never reach default max-weight", map[string]string{"sluice.dev/step-weights": "5,10,25"},
			[]string{`sluice.dev/step-weights: "5,10,25" never reaches sluice.dev/max-weight 50; end the list at or above it`}},
		{"step-weights one short of default max-weight", map[string]string{"sluice.dev/step-weights": "10,49"},
			[]string{`sluice.dev/step-weights: "10,49" never reaches sluice.dev/max-weight 50; end the list at or above it`}},
		{"step-weights never reach max-weight 70", map[string]string{"sluice.dev/step-weights": "10,20,60", "sluice.dev/max-weight": "70"},
			[]string{`sluice.dev/step-weights: "10,20,60" never reaches sluice.dev/max-weight 70; end the list at or above it`}},

		// max-weight
		{"max-weight abc", map[string]string{"sluice.dev/max-weight": "abc"},
			[]string{`sluice.dev/max-weight: "abc" is not an integer between 1 and 100`}},
		{"max-weight 0", map[string]string{"sluice.dev/max-weight": "0"},
			[]string{`sluice.dev/max-weight: "0" is not an integer between 1 and 100`}},
		{"max-weight 101", map[string]string{"sluice.dev/max-weight": "101"},
			[]string{`sluice.dev/max-weight: "101" is not an integer between 1 and 100`}},

		// interval
		{"interval abc", map[string]string{"sluice.dev/interval": "abc"},
			[]string{`sluice.dev/interval: "abc" is not a Go duration of at least 1s, such as 30s or 2m`}},
		{"interval 999ms", map[string]string{"sluice.dev/interval": "999ms"},
			[]string{`sluice.dev/interval: "999ms" is not a Go duration of at least 1s, such as 30s or 2m`}},
		{"interval 0s", map[string]string{"sluice.dev/interval": "0s"},
			[]string{`sluice.dev/interval: "0s" is not a Go duration of at least 1s, such as 30s or 2m`}},
		{"interval -1s", map[string]string{"sluice.dev/interval": "-1s"},
			[]string{`sluice.dev/interval: "-1s" is not a Go duration of at least 1s, such as 30s or 2m`}},
		{"interval without unit", map[string]string{"sluice.dev/interval": "60"},
			[]string{`sluice.dev/interval: "60" is not a Go duration of at least 1s, such as 30s or 2m`}},
		{"interval empty", map[string]string{"sluice.dev/interval": ""},
			[]string{`sluice.dev/interval: "" is not a Go duration of at least 1s, such as 30s or 2m`}},

		// threshold
		{"threshold abc", map[string]string{"sluice.dev/threshold": "abc"},
			[]string{`sluice.dev/threshold: "abc" is not an integer between 1 and 1000`}},
		{"threshold 0", map[string]string{"sluice.dev/threshold": "0"},
			[]string{`sluice.dev/threshold: "0" is not an integer between 1 and 1000`}},
		{"threshold 1001", map[string]string{"sluice.dev/threshold": "1001"},
			[]string{`sluice.dev/threshold: "1001" is not an integer between 1 and 1000`}},

		// min-success-rate
		{"min-success-rate abc", map[string]string{"sluice.dev/min-success-rate": "abc"},
			[]string{`sluice.dev/min-success-rate: "abc" is not a number between 0 and 100`}},
		{"min-success-rate -0.1", map[string]string{"sluice.dev/min-success-rate": "-0.1"},
			[]string{`sluice.dev/min-success-rate: "-0.1" is not a number between 0 and 100`}},
		{"min-success-rate 100.1", map[string]string{"sluice.dev/min-success-rate": "100.1"},
			[]string{`sluice.dev/min-success-rate: "100.1" is not a number between 0 and 100`}},
		{"min-success-rate NaN", map[string]string{"sluice.dev/min-success-rate": "NaN"},
			[]string{`sluice.dev/min-success-rate: "NaN" is not a number between 0 and 100`}},
		{"min-success-rate Inf", map[string]string{"sluice.dev/min-success-rate": "Inf"},
			[]string{`sluice.dev/min-success-rate: "Inf" is not a number between 0 and 100`}},
		{"min-success-rate -Inf", map[string]string{"sluice.dev/min-success-rate": "-Inf"},
			[]string{`sluice.dev/min-success-rate: "-Inf" is not a number between 0 and 100`}},
		{"min-success-rate percent sign", map[string]string{"sluice.dev/min-success-rate": "99%"},
			[]string{`sluice.dev/min-success-rate: "99%" is not a number between 0 and 100`}},

		// max-request-duration
		{"max-request-duration abc", map[string]string{"sluice.dev/max-request-duration": "abc"},
			[]string{`sluice.dev/max-request-duration: "abc" is not a Go duration of at least 1ms, such as 30s or 2m`}},
		{"max-request-duration 0s", map[string]string{"sluice.dev/max-request-duration": "0s"},
			[]string{`sluice.dev/max-request-duration: "0s" is not a Go duration of at least 1ms, such as 30s or 2m`}},
		{"max-request-duration -1s", map[string]string{"sluice.dev/max-request-duration": "-1s"},
			[]string{`sluice.dev/max-request-duration: "-1s" is not a Go duration of at least 1ms, such as 30s or 2m`}},
		{"max-request-duration 999us", map[string]string{"sluice.dev/max-request-duration": "999us"},
			[]string{`sluice.dev/max-request-duration: "999us" is not a Go duration of at least 1ms, such as 30s or 2m`}},
		{"max-request-duration 500 without unit", map[string]string{"sluice.dev/max-request-duration": "500"},
			[]string{`sluice.dev/max-request-duration: "500" is not a Go duration of at least 1ms, such as 30s or 2m`}},

		// analysis-window
		{"analysis-window abc", map[string]string{"sluice.dev/analysis-window": "abc"},
			[]string{`sluice.dev/analysis-window: "abc" is not a Go duration of at least 1s, such as 30s or 2m`}},
		{"analysis-window 999ms", map[string]string{"sluice.dev/analysis-window": "999ms"},
			[]string{`sluice.dev/analysis-window: "999ms" is not a Go duration of at least 1s, such as 30s or 2m`}},
		{"analysis-window 0s", map[string]string{"sluice.dev/analysis-window": "0s"},
			[]string{`sluice.dev/analysis-window: "0s" is not a Go duration of at least 1s, such as 30s or 2m`}},
		{"analysis-window -1s", map[string]string{"sluice.dev/analysis-window": "-1s"},
			[]string{`sluice.dev/analysis-window: "-1s" is not a Go duration of at least 1s, such as 30s or 2m`}},

		// port
		{"port abc", map[string]string{"sluice.dev/port": "abc"},
			[]string{`sluice.dev/port: "abc" is not an integer between 1 and 65535`}},
		{"port 0", map[string]string{"sluice.dev/port": "0"},
			[]string{`sluice.dev/port: "0" is not an integer between 1 and 65535`}},
		{"port 65536", map[string]string{"sluice.dev/port": "65536"},
			[]string{`sluice.dev/port: "65536" is not an integer between 1 and 65535`}},
		{"port -1", map[string]string{"sluice.dev/port": "-1"},
			[]string{`sluice.dev/port: "-1" is not an integer between 1 and 65535`}},
		{"port named", map[string]string{"sluice.dev/port": "http"},
			[]string{`sluice.dev/port: "http" is not an integer between 1 and 65535`}},

		// gateways
		{"gateways abc_def", map[string]string{"sluice.dev/gateways": "abc_def"},
			[]string{`sluice.dev/gateways: "abc_def" is not a comma-separated list of gateway names, such as istio-system/public or mesh`}},
		{"gateways empty", map[string]string{"sluice.dev/gateways": ""},
			[]string{`sluice.dev/gateways: "" is not a comma-separated list of gateway names, such as istio-system/public or mesh`}},
		{"gateways empty item", map[string]string{"sluice.dev/gateways": "mesh,,istio-system/public"},
			[]string{`sluice.dev/gateways: "mesh,,istio-system/public" is not a comma-separated list of gateway names, such as istio-system/public or mesh`}},
		{"gateways trailing comma", map[string]string{"sluice.dev/gateways": "mesh,"},
			[]string{`sluice.dev/gateways: "mesh," is not a comma-separated list of gateway names, such as istio-system/public or mesh`}},
		{"gateways upper-case namespace", map[string]string{"sluice.dev/gateways": "Istio-System/public"},
			[]string{`sluice.dev/gateways: "Istio-System/public" is not a comma-separated list of gateway names, such as istio-system/public or mesh`}},
		{"gateways dotted namespace", map[string]string{"sluice.dev/gateways": "istio.system/public"},
			[]string{`sluice.dev/gateways: "istio.system/public" is not a comma-separated list of gateway names, such as istio-system/public or mesh`}},
		{"gateways empty namespace", map[string]string{"sluice.dev/gateways": "/public"},
			[]string{`sluice.dev/gateways: "/public" is not a comma-separated list of gateway names, such as istio-system/public or mesh`}},
		{"gateways two slashes", map[string]string{"sluice.dev/gateways": "a/b/c"},
			[]string{`sluice.dev/gateways: "a/b/c" is not a comma-separated list of gateway names, such as istio-system/public or mesh`}},
		{"gateways namespace without name", map[string]string{"sluice.dev/gateways": "istio-system/"},
			[]string{`sluice.dev/gateways: "istio-system/" is not a comma-separated list of gateway names, such as istio-system/public or mesh`}},
		{"gateways one bad among good", map[string]string{"sluice.dev/gateways": "mesh, Bad "},
			[]string{`sluice.dev/gateways: "mesh, Bad " is not a comma-separated list of gateway names, such as istio-system/public or mesh`}},

		// hosts
		{"hosts abc_def", map[string]string{"sluice.dev/hosts": "abc_def"},
			[]string{`sluice.dev/hosts: "abc_def" is not a comma-separated list of host names, such as app.example.com or *.example.com`}},
		{"hosts empty", map[string]string{"sluice.dev/hosts": ""},
			[]string{`sluice.dev/hosts: "" is not a comma-separated list of host names, such as app.example.com or *.example.com`}},
		{"hosts upper case", map[string]string{"sluice.dev/hosts": "Staging.example.com"},
			[]string{`sluice.dev/hosts: "Staging.example.com" is not a comma-separated list of host names, such as app.example.com or *.example.com`}},
		{"hosts url", map[string]string{"sluice.dev/hosts": "https://staging.example.com"},
			[]string{`sluice.dev/hosts: "https://staging.example.com" is not a comma-separated list of host names, such as app.example.com or *.example.com`}},
		{"hosts wildcard in middle", map[string]string{"sluice.dev/hosts": "app.*.example.com"},
			[]string{`sluice.dev/hosts: "app.*.example.com" is not a comma-separated list of host names, such as app.example.com or *.example.com`}},
		{"hosts empty item", map[string]string{"sluice.dev/hosts": "a.example.com,,b.example.com"},
			[]string{`sluice.dev/hosts: "a.example.com,,b.example.com" is not a comma-separated list of host names, such as app.example.com or *.example.com`}},

		// progress-deadline
		{"min-requests 0", map[string]string{"sluice.dev/min-requests": "0"},
			[]string{`sluice.dev/min-requests: "0" is not an integer between 1 and 1000000`}},
		{"min-requests 2.5", map[string]string{"sluice.dev/min-requests": "2.5"},
			[]string{`sluice.dev/min-requests: "2.5" is not an integer between 1 and 1000000`}},
		{"evidence-deadline 10", map[string]string{"sluice.dev/evidence-deadline": "10"},
			[]string{`sluice.dev/evidence-deadline: "10" is not a Go duration of at least 1s, such as 30s or 2m`}},
		{"blind-deadline 500ms", map[string]string{"sluice.dev/blind-deadline": "500ms"},
			[]string{`sluice.dev/blind-deadline: "500ms" is not a Go duration of at least 1s, such as 30s or 2m`}},
		{"progress-deadline abc", map[string]string{"sluice.dev/progress-deadline": "abc"},
			[]string{`sluice.dev/progress-deadline: "abc" is not a Go duration of at least 1s, such as 30s or 2m`}},
		{"progress-deadline 999ms", map[string]string{"sluice.dev/progress-deadline": "999ms"},
			[]string{`sluice.dev/progress-deadline: "999ms" is not a Go duration of at least 1s, such as 30s or 2m`}},
		{"progress-deadline 0s", map[string]string{"sluice.dev/progress-deadline": "0s"},
			[]string{`sluice.dev/progress-deadline: "0s" is not a Go duration of at least 1s, such as 30s or 2m`}},
		{"progress-deadline -1s", map[string]string{"sluice.dev/progress-deadline": "-1s"},
			[]string{`sluice.dev/progress-deadline: "-1s" is not a Go duration of at least 1s, such as 30s or 2m`}},

		// skip-analysis
		{"skip-analysis abc", map[string]string{"sluice.dev/skip-analysis": "abc"},
			[]string{`sluice.dev/skip-analysis: "abc" is not "true" or "false"`}},
		{"skip-analysis yes", map[string]string{"sluice.dev/skip-analysis": "yes"},
			[]string{`sluice.dev/skip-analysis: "yes" is not "true" or "false"`}},
		{"confirm-rollout Manual", map[string]string{"sluice.dev/confirm-rollout": "Manual"},
			[]string{`sluice.dev/confirm-rollout: "Manual" is not "auto" or "manual"`}},
		{"confirm-promotion yes", map[string]string{"sluice.dev/confirm-promotion": "yes"},
			[]string{`sluice.dev/confirm-promotion: "yes" is not "auto" or "manual"`}},
		{"skip-analysis True", map[string]string{"sluice.dev/skip-analysis": "True"},
			[]string{`sluice.dev/skip-analysis: "True" is not "true" or "false"`}},
		{"skip-analysis 1", map[string]string{"sluice.dev/skip-analysis": "1"},
			[]string{`sluice.dev/skip-analysis: "1" is not "true" or "false"`}},
		{"skip-analysis empty", map[string]string{"sluice.dev/skip-analysis": ""},
			[]string{`sluice.dev/skip-analysis: "" is not "true" or "false"`}},

		// router, and the routes each can adopt
		{"router unknown", map[string]string{"sluice.dev/router": "linkerd"},
			[]string{`sluice.dev/router: "linkerd" is not one of istio, gateway-api`}},
		{"httproute with istio", map[string]string{"sluice.dev/httproute": "web"},
			[]string{`sluice.dev/httproute: "web" names an HTTPRoute, which router istio does not use; set sluice.dev/router: gateway-api, or remove it`}},
		{"virtualservice with gateway-api", map[string]string{"sluice.dev/router": "gateway-api", "sluice.dev/virtualservice": "web"},
			[]string{`sluice.dev/virtualservice: "web" names a VirtualService, which router gateway-api does not use; set sluice.dev/router: istio, or remove it`}},
		{"httproute upper case", map[string]string{"sluice.dev/router": "gateway-api", "sluice.dev/httproute": "Web"},
			[]string{`sluice.dev/httproute: "Web" is not the name of an HTTPRoute (a DNS-1123 subdomain)`}},
		// virtualservice
		{"virtualservice abc_def", map[string]string{"sluice.dev/virtualservice": "abc_def"},
			[]string{`sluice.dev/virtualservice: "abc_def" is not the name of a VirtualService (a DNS-1123 subdomain)`}},
		{"virtualservice empty", map[string]string{"sluice.dev/virtualservice": ""},
			[]string{`sluice.dev/virtualservice: "" is not the name of a VirtualService (a DNS-1123 subdomain)`}},
		{"virtualservice upper case", map[string]string{"sluice.dev/virtualservice": "MyService"},
			[]string{`sluice.dev/virtualservice: "MyService" is not the name of a VirtualService (a DNS-1123 subdomain)`}},
		{"virtualservice namespaced", map[string]string{"sluice.dev/virtualservice": "default/my-vs"},
			[]string{`sluice.dev/virtualservice: "default/my-vs" is not the name of a VirtualService (a DNS-1123 subdomain)`}},

		// canary
		{"canary yes", map[string]string{"sluice.dev/canary": "yes"},
			[]string{`sluice.dev/canary: "yes" is not "enabled" or "disabled"`}},
		{"canary abc", map[string]string{"sluice.dev/canary": "abc"},
			[]string{`sluice.dev/canary: "abc" is not "enabled" or "disabled"`}},
		{"canary true", map[string]string{"sluice.dev/canary": "true"},
			[]string{`sluice.dev/canary: "true" is not "enabled" or "disabled"`}},
		{"canary Enabled", map[string]string{"sluice.dev/canary": "Enabled"},
			[]string{`sluice.dev/canary: "Enabled" is not "enabled" or "disabled"`}},
		{"canary empty", map[string]string{"sluice.dev/canary": ""},
			[]string{`sluice.dev/canary: "" is not "enabled" or "disabled"`}},

		// quoting of odd values
		{"value with quotes and newline", map[string]string{"sluice.dev/port": "\"8080\"\n"},
			[]string{`sluice.dev/port: "\"8080\"\n" is not an integer between 1 and 65535`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkProblems(t, tt.annotations, tt.want)
		})
	}
}

func TestParseUnknownAnnotation(t *testing.T) {
	tests := []struct {
		name        string
		annotations map[string]string
		want        []string
	}{
		{"missing dash", map[string]string{"sluice.dev/stepweight": "20"},
			[]string{"sluice.dev/stepweight is not a sluice annotation; the known ones are " + knownList}},
		{"plural typo", map[string]string{"sluice.dev/gateway": "mesh"},
			[]string{"sluice.dev/gateway is not a sluice annotation; the known ones are " + knownList}},
		{"upper case", map[string]string{"sluice.dev/Canary": "enabled"},
			[]string{"sluice.dev/Canary is not a sluice annotation; the known ones are " + knownList}},
		{"bare prefix", map[string]string{"sluice.dev/": "x"},
			[]string{"sluice.dev/ is not a sluice annotation; the known ones are " + knownList}},
		{"two unknown sorted", map[string]string{"sluice.dev/zzz": "1", "sluice.dev/aaa": "2"},
			[]string{
				"sluice.dev/aaa is not a sluice annotation; the known ones are " + knownList,
				"sluice.dev/zzz is not a sluice annotation; the known ones are " + knownList,
			}},
		{"other prefixes ignored", map[string]string{
			"kubernetes.io/change-cause": "x", "sluice.io/stepweight": "x", "app.sluice.dev/x": "y", "deployment.kubernetes.io/revision": "3",
		}, nil},
		{"internal annotations accepted", map[string]string{
			"sluice.dev/canary-template": `{"spec":{}}`, "sluice.dev/canary-revision": "0123456789",
		}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkProblems(t, tt.annotations, tt.want)
		})
	}
}

func TestParseSeveralProblems(t *testing.T) {
	tests := []struct {
		name        string
		annotations map[string]string
		want        []string
	}{
		{
			name: "every annotation wrong",
			annotations: map[string]string{
				"sluice.dev/canary":               "yes",
				"sluice.dev/step-weight":          "0",
				"sluice.dev/step-weights":         "abc",
				"sluice.dev/max-weight":           "101",
				"sluice.dev/interval":             "999ms",
				"sluice.dev/threshold":            "1001",
				"sluice.dev/min-success-rate":     "NaN",
				"sluice.dev/max-request-duration": "0s",
				"sluice.dev/analysis-window":      "-1s",
				"sluice.dev/port":                 "65536",
				"sluice.dev/gateways":             "Bad_Gateway",
				"sluice.dev/hosts":                "bad_host",
				"sluice.dev/progress-deadline":    "0s",
				"sluice.dev/skip-analysis":        "yes",
				"sluice.dev/virtualservice":       "Bad_VS",
				"sluice.dev/stepweight":           "20",
			},
			want: []string{
				`sluice.dev/analysis-window: "-1s" is not a Go duration of at least 1s, such as 30s or 2m`,
				`sluice.dev/canary: "yes" is not "enabled" or "disabled"`,
				`sluice.dev/gateways: "Bad_Gateway" is not a comma-separated list of gateway names, such as istio-system/public or mesh`,
				`sluice.dev/hosts: "bad_host" is not a comma-separated list of host names, such as app.example.com or *.example.com`,
				`sluice.dev/interval: "999ms" is not a Go duration of at least 1s, such as 30s or 2m`,
				`sluice.dev/max-request-duration: "0s" is not a Go duration of at least 1ms, such as 30s or 2m`,
				`sluice.dev/max-weight: "101" is not an integer between 1 and 100`,
				`sluice.dev/min-success-rate: "NaN" is not a number between 0 and 100`,
				`sluice.dev/port: "65536" is not an integer between 1 and 65535`,
				`sluice.dev/progress-deadline: "0s" is not a Go duration of at least 1s, such as 30s or 2m`,
				`sluice.dev/skip-analysis: "yes" is not "true" or "false"`,
				`sluice.dev/step-weight: "0" is not an integer between 1 and 100`,
				`sluice.dev/step-weights: "abc" is not a comma-separated list of strictly increasing integers between 1 and 100`,
				"sluice.dev/stepweight is not a sluice annotation; the known ones are " + knownList,
				`sluice.dev/threshold: "1001" is not an integer between 1 and 1000`,
				`sluice.dev/virtualservice: "Bad_VS" is not the name of a VirtualService (a DNS-1123 subdomain)`,
			},
		},
		{
			name: "three problems, valid ones ignored",
			annotations: map[string]string{
				"sluice.dev/canary":      "enabled",
				"sluice.dev/threshold":   "0",
				"sluice.dev/step-weight": "abc",
				"sluice.dev/max-weight":  "70",
				"sluice.dev/port":        "0",
			},
			want: []string{
				`sluice.dev/port: "0" is not an integer between 1 and 65535`,
				`sluice.dev/step-weight: "abc" is not an integer between 1 and 100`,
				`sluice.dev/threshold: "0" is not an integer between 1 and 1000`,
			},
		},
		{
			// The default max-weight was not the user's: no second message about it.
			name: "invalid max-weight and short step-weights",
			annotations: map[string]string{
				"sluice.dev/max-weight":   "abc",
				"sluice.dev/step-weights": "10,20",
			},
			want: []string{
				`sluice.dev/max-weight: "abc" is not an integer between 1 and 100`,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkProblems(t, tt.annotations, tt.want)
			if !t.Failed() && !slices.IsSorted(tt.want) {
				t.Errorf("expected problems in the test are not sorted: %q", tt.want)
			}
		})
	}
}

func TestBuiltinDefaults(t *testing.T) {
	want := Settings{
		Router:             RouterIstio,
		StepWeights:        []int32{10, 20, 30, 40, 50},
		MaxWeight:          50,
		Interval:           metav1.Duration{Duration: time.Minute},
		Threshold:          5,
		MinSuccessRate:     99,
		MaxRequestDuration: metav1.Duration{Duration: 500 * time.Millisecond},
		AnalysisWindow:     metav1.Duration{Duration: time.Minute},
		MinRequests:        30,
		EvidenceDeadline:   metav1.Duration{Duration: time.Hour},
		BlindDeadline:      metav1.Duration{Duration: 10 * time.Minute},
		ProgressDeadline:   metav1.Duration{Duration: 10 * time.Minute},
	}
	if got := BuiltinDefaults().Settings(); !reflect.DeepEqual(got, want) {
		t.Errorf("BuiltinDefaults().Settings() = %+v, want %+v", got, want)
	}
	for _, annotations := range []map[string]string{nil, {}, {"sluice.dev/canary": "enabled"}} {
		got := checkProblems(t, annotations, nil)
		if !reflect.DeepEqual(got, want) {
			t.Errorf("Parse(%q) = %+v, want %+v", annotations, got, want)
		}
	}
}

func TestParseValid(t *testing.T) {
	with := func(change func(*Settings)) Settings {
		s := BuiltinDefaults().Settings()
		change(&s)
		return s
	}
	tests := []struct {
		name        string
		annotations map[string]string
		want        Settings
	}{
		{"no annotations", nil, BuiltinDefaults().Settings()},
		{"classic lesson step 20 max 70",
			map[string]string{"sluice.dev/step-weight": "20", "sluice.dev/max-weight": "70"},
			with(func(s *Settings) { s.StepWeights = []int32{20, 40, 60, 80}; s.MaxWeight = 70 })},
		{"step 30 max 100 capped at 100",
			map[string]string{"sluice.dev/step-weight": "30", "sluice.dev/max-weight": "100"},
			with(func(s *Settings) { s.StepWeights = []int32{30, 60, 90, 100}; s.MaxWeight = 100 })},
		{"step 25 max 100 exact",
			map[string]string{"sluice.dev/step-weight": "25", "sluice.dev/max-weight": "100"},
			with(func(s *Settings) { s.StepWeights = []int32{25, 50, 75, 100}; s.MaxWeight = 100 })},
		{"step only with default max",
			map[string]string{"sluice.dev/step-weight": "20"},
			with(func(s *Settings) { s.StepWeights = []int32{20, 40, 60} })},
		{"step 1 max 3",
			map[string]string{"sluice.dev/step-weight": "1", "sluice.dev/max-weight": "3"},
			with(func(s *Settings) { s.StepWeights = []int32{1, 2, 3}; s.MaxWeight = 3 })},
		{"step 100",
			map[string]string{"sluice.dev/step-weight": "100"},
			with(func(s *Settings) { s.StepWeights = []int32{100} })},
		{"step above max",
			map[string]string{"sluice.dev/step-weight": "60", "sluice.dev/max-weight": "50"},
			with(func(s *Settings) { s.StepWeights = []int32{60} })},
		{"max-weight 1",
			map[string]string{"sluice.dev/max-weight": "1"},
			with(func(s *Settings) { s.StepWeights = []int32{10}; s.MaxWeight = 1 })},
		{"max-weight only 100",
			map[string]string{"sluice.dev/max-weight": "100"},
			with(func(s *Settings) {
				s.StepWeights = []int32{10, 20, 30, 40, 50, 60, 70, 80, 90, 100}
				s.MaxWeight = 100
			})},
		{"step-weight trimmed",
			map[string]string{"sluice.dev/step-weight": " 20 ", "sluice.dev/max-weight": "\t70\n"},
			with(func(s *Settings) { s.StepWeights = []int32{20, 40, 60, 80}; s.MaxWeight = 70 })},
		{"explicit step-weights override",
			map[string]string{"sluice.dev/step-weights": "5,10,25,50"},
			with(func(s *Settings) { s.StepWeights = []int32{5, 10, 25, 50} })},
		{"explicit step-weights override step-weight",
			map[string]string{"sluice.dev/step-weights": "5,10,25,50", "sluice.dev/step-weight": "20"},
			with(func(s *Settings) { s.StepWeights = []int32{5, 10, 25, 50} })},
		{"explicit step-weights beyond max-weight",
			map[string]string{"sluice.dev/step-weights": "5,10,25,50,80", "sluice.dev/max-weight": "60"},
			with(func(s *Settings) { s.StepWeights = []int32{5, 10, 25, 50, 80}; s.MaxWeight = 60 })},
		{"explicit step-weights trimmed",
			map[string]string{"sluice.dev/step-weights": " 5 , 10,\t25 ,50 "},
			with(func(s *Settings) { s.StepWeights = []int32{5, 10, 25, 50} })},
		{"explicit step-weights bounds",
			map[string]string{"sluice.dev/step-weights": "1,100"},
			with(func(s *Settings) { s.StepWeights = []int32{1, 100} })},
		{"interval 1s bound",
			map[string]string{"sluice.dev/interval": "1s"},
			with(func(s *Settings) { s.Interval = metav1.Duration{Duration: time.Second} })},
		{"interval 2m30s trimmed",
			map[string]string{"sluice.dev/interval": " 2m30s "},
			with(func(s *Settings) { s.Interval = metav1.Duration{Duration: 150 * time.Second} })},
		{"threshold bounds 1",
			map[string]string{"sluice.dev/threshold": "1"},
			with(func(s *Settings) { s.Threshold = 1 })},
		{"threshold bounds 1000",
			map[string]string{"sluice.dev/threshold": "1000"},
			with(func(s *Settings) { s.Threshold = 1000 })},
		{"min-success-rate 0",
			map[string]string{"sluice.dev/min-success-rate": "0"},
			with(func(s *Settings) { s.MinSuccessRate = 0 })},
		{"min-success-rate 100",
			map[string]string{"sluice.dev/min-success-rate": "100"},
			with(func(s *Settings) { s.MinSuccessRate = 100 })},
		{"min-success-rate 99.5",
			map[string]string{"sluice.dev/min-success-rate": "99.5"},
			with(func(s *Settings) { s.MinSuccessRate = 99.5 })},
		{"max-request-duration 1ms bound",
			map[string]string{"sluice.dev/max-request-duration": "1ms"},
			with(func(s *Settings) { s.MaxRequestDuration = metav1.Duration{Duration: time.Millisecond} })},
		{"max-request-duration 1.5s",
			map[string]string{"sluice.dev/max-request-duration": "1.5s"},
			with(func(s *Settings) { s.MaxRequestDuration = metav1.Duration{Duration: 1500 * time.Millisecond} })},
		{"analysis-window 1s bound",
			map[string]string{"sluice.dev/analysis-window": "1s"},
			with(func(s *Settings) { s.AnalysisWindow = metav1.Duration{Duration: time.Second} })},
		{"analysis-window 5m",
			map[string]string{"sluice.dev/analysis-window": "5m"},
			with(func(s *Settings) { s.AnalysisWindow = metav1.Duration{Duration: 5 * time.Minute} })},
		{"port 1",
			map[string]string{"sluice.dev/port": "1"},
			with(func(s *Settings) { s.Port = 1 })},
		{"port 65535",
			map[string]string{"sluice.dev/port": "65535"},
			with(func(s *Settings) { s.Port = 65535 })},
		{"port 8080",
			map[string]string{"sluice.dev/port": "8080"},
			with(func(s *Settings) { s.Port = 8080 })},
		{"gateways",
			map[string]string{"sluice.dev/gateways": "jx-gateway.istio-system.svc.cluster.local,istio-system/public,mesh"},
			with(func(s *Settings) {
				s.Gateways = []string{"jx-gateway.istio-system.svc.cluster.local", "istio-system/public", "mesh"}
			})},
		{"gateways trimmed",
			map[string]string{"sluice.dev/gateways": " jx-gateway.istio-system.svc.cluster.local ,\tistio-system/public, mesh\n"},
			with(func(s *Settings) {
				s.Gateways = []string{"jx-gateway.istio-system.svc.cluster.local", "istio-system/public", "mesh"}
			})},
		{"hosts",
			map[string]string{"sluice.dev/hosts": "staging.example.com,*.example.com"},
			with(func(s *Settings) { s.Hosts = []string{"staging.example.com", "*.example.com"} })},
		{"hosts trimmed",
			map[string]string{"sluice.dev/hosts": "  staging.example.com , *.example.com  "},
			with(func(s *Settings) { s.Hosts = []string{"staging.example.com", "*.example.com"} })},
		{"progress-deadline 1s bound",
			map[string]string{"sluice.dev/progress-deadline": "1s"},
			// The blind deadline follows the Deployment's progress deadline.
			with(func(s *Settings) {
				s.ProgressDeadline, s.BlindDeadline = metav1.Duration{Duration: time.Second}, metav1.Duration{Duration: time.Second}
			})},
		{"progress-deadline 1h",
			map[string]string{"sluice.dev/progress-deadline": "1h"},
			with(func(s *Settings) {
				s.ProgressDeadline, s.BlindDeadline = metav1.Duration{Duration: time.Hour}, metav1.Duration{Duration: time.Hour}
			})},
		{"blind-deadline overrides the progress deadline",
			map[string]string{"sluice.dev/progress-deadline": "1h", "sluice.dev/blind-deadline": "2m"},
			with(func(s *Settings) {
				s.ProgressDeadline, s.BlindDeadline = metav1.Duration{Duration: time.Hour}, metav1.Duration{Duration: 2 * time.Minute}
			})},
		{"min-requests 1 bound", map[string]string{"sluice.dev/min-requests": "1"}, with(func(s *Settings) { s.MinRequests = 1 })},
		{"evidence-deadline 2h", map[string]string{"sluice.dev/evidence-deadline": "2h"},
			with(func(s *Settings) { s.EvidenceDeadline = metav1.Duration{Duration: 2 * time.Hour} })},
		{"skip-analysis true",
			map[string]string{"sluice.dev/skip-analysis": "true"},
			with(func(s *Settings) { s.SkipAnalysis = true })},
		{"skip-analysis false",
			map[string]string{"sluice.dev/skip-analysis": "false"},
			with(func(s *Settings) { s.SkipAnalysis = false })},
		{"manual gates",
			map[string]string{"sluice.dev/confirm-rollout": "manual", "sluice.dev/confirm-promotion": "manual"},
			with(func(s *Settings) { s.ConfirmRollout, s.ConfirmPromotion = GateManual, GateManual })},
		{"auto gates, as the defaults",
			map[string]string{"sluice.dev/confirm-rollout": "auto", "sluice.dev/confirm-promotion": "auto"},
			BuiltinDefaults().Settings()},
		{"virtualservice",
			map[string]string{"sluice.dev/virtualservice": "my-app.v1"},
			with(func(s *Settings) { s.VirtualService = "my-app.v1" })},
		{"canary enabled",
			map[string]string{"sluice.dev/canary": "enabled"},
			BuiltinDefaults().Settings()},
		{"canary disabled",
			map[string]string{"sluice.dev/canary": "disabled"},
			BuiltinDefaults().Settings()},
		{"everything at once",
			map[string]string{
				"sluice.dev/canary":               "enabled",
				"sluice.dev/step-weight":          "20",
				"sluice.dev/max-weight":           "70",
				"sluice.dev/interval":             "30s",
				"sluice.dev/threshold":            "3",
				"sluice.dev/min-success-rate":     "95",
				"sluice.dev/max-request-duration": "250ms",
				"sluice.dev/analysis-window":      "2m",
				"sluice.dev/port":                 "8080",
				"sluice.dev/gateways":             "istio-system/public",
				"sluice.dev/hosts":                "staging.example.com",
				"sluice.dev/progress-deadline":    "5m",
				"sluice.dev/skip-analysis":        "true",
				"sluice.dev/virtualservice":       "my-app",
				"sluice.dev/canary-template":      "{}",
				"sluice.dev/canary-revision":      "44136fa355",
				"kubernetes.io/change-cause":      "upgrade",
			},
			Settings{
				Router:             RouterIstio,
				StepWeights:        []int32{20, 40, 60, 80},
				MaxWeight:          70,
				Interval:           metav1.Duration{Duration: 30 * time.Second},
				Threshold:          3,
				MinSuccessRate:     95,
				MaxRequestDuration: metav1.Duration{Duration: 250 * time.Millisecond},
				AnalysisWindow:     metav1.Duration{Duration: 2 * time.Minute},
				MinRequests:        30,
				EvidenceDeadline:   metav1.Duration{Duration: time.Hour},
				BlindDeadline:      metav1.Duration{Duration: 5 * time.Minute},
				Port:               8080,
				Gateways:           []string{"istio-system/public"},
				Hosts:              []string{"staging.example.com"},
				ProgressDeadline:   metav1.Duration{Duration: 5 * time.Minute},
				SkipAnalysis:       true,
				VirtualService:     "my-app",
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := checkProblems(t, tt.annotations, nil)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Parse(%q) =\n %+v\nwant\n %+v", tt.annotations, got, tt.want)
			}
		})
	}
}

// TestParseInvalidKeepsDefaults checks that a refused value leaves the
// default in place rather than a zero or partial value.
func TestParseInvalidKeepsDefaults(t *testing.T) {
	tests := []struct {
		name        string
		annotations map[string]string
	}{
		{"step-weight", map[string]string{"sluice.dev/step-weight": "abc"}},
		{"step-weights", map[string]string{"sluice.dev/step-weights": "5,10,25"}},
		{"max-weight", map[string]string{"sluice.dev/max-weight": "0"}},
		{"interval", map[string]string{"sluice.dev/interval": "999ms"}},
		{"threshold", map[string]string{"sluice.dev/threshold": "1001"}},
		{"min-success-rate", map[string]string{"sluice.dev/min-success-rate": "NaN"}},
		{"max-request-duration", map[string]string{"sluice.dev/max-request-duration": "0s"}},
		{"analysis-window", map[string]string{"sluice.dev/analysis-window": "-1s"}},
		{"port", map[string]string{"sluice.dev/port": "65536"}},
		{"gateways", map[string]string{"sluice.dev/gateways": "mesh,Bad"}},
		{"hosts", map[string]string{"sluice.dev/hosts": "ok.example.com,bad_host"}},
		{"progress-deadline", map[string]string{"sluice.dev/progress-deadline": "0s"}},
		{"min-requests", map[string]string{"sluice.dev/min-requests": "0"}},
		{"evidence-deadline", map[string]string{"sluice.dev/evidence-deadline": "5"}},
		{"blind-deadline", map[string]string{"sluice.dev/blind-deadline": "-1m"}},
		{"skip-analysis", map[string]string{"sluice.dev/skip-analysis": "yes"}},
		{"canary", map[string]string{"sluice.dev/canary": "yes"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, problems := BuiltinDefaults().Parse(tt.annotations)
			if len(problems) != 1 {
				t.Fatalf("Parse(%q) problems = %q, want exactly one", tt.annotations, problems)
			}
			if want := BuiltinDefaults().Settings(); !reflect.DeepEqual(got, want) {
				t.Errorf("Parse(%q) =\n %+v\nwant the defaults\n %+v", tt.annotations, got, want)
			}
		})
	}
}

// operatorDefaults are an installation's defaults that differ from the
// built-in ones in every field.
var operatorDefaults = Defaults{
	StepWeight:         15,
	MaxWeight:          30,
	Threshold:          3,
	Interval:           30 * time.Second,
	MaxRequestDuration: time.Second,
	AnalysisWindow:     2 * time.Minute,
	ProgressDeadline:   5 * time.Minute,
	MinSuccessRate:     95,
	MinRequests:        20,
	EvidenceDeadline:   time.Hour,
	BlindDeadline:      3 * time.Minute,
}

func TestParseWithDefaults(t *testing.T) {
	base := Settings{
		Router:             RouterIstio,
		StepWeights:        []int32{15, 30},
		MaxWeight:          30,
		Interval:           metav1.Duration{Duration: 30 * time.Second},
		Threshold:          3,
		MinSuccessRate:     95,
		MaxRequestDuration: metav1.Duration{Duration: time.Second},
		AnalysisWindow:     metav1.Duration{Duration: 2 * time.Minute},
		MinRequests:        20,
		EvidenceDeadline:   metav1.Duration{Duration: time.Hour},
		BlindDeadline:      metav1.Duration{Duration: 3 * time.Minute},
		ProgressDeadline:   metav1.Duration{Duration: 5 * time.Minute},
	}
	with := func(change func(*Settings)) Settings {
		s := base
		change(&s)
		return s
	}
	tests := []struct {
		name        string
		annotations map[string]string
		want        Settings
		problems    []string
	}{
		{"no annotations", nil, base, nil},
		{"step-weight overrides",
			map[string]string{"sluice.dev/step-weight": "10"},
			with(func(s *Settings) { s.StepWeights = []int32{10, 20, 30} }), nil},
		{"max-weight overrides, default step-weight",
			map[string]string{"sluice.dev/max-weight": "60"},
			with(func(s *Settings) { s.StepWeights = []int32{15, 30, 45, 60}; s.MaxWeight = 60 }), nil},
		{"step-weights reaching the default max-weight",
			map[string]string{"sluice.dev/step-weights": "10,30"},
			with(func(s *Settings) { s.StepWeights = []int32{10, 30} }), nil},
		{"step-weights short of the default max-weight",
			map[string]string{"sluice.dev/step-weights": "10,20"},
			base,
			[]string{`sluice.dev/step-weights: "10,20" never reaches sluice.dev/max-weight 30; end the list at or above it`}},
		{"every defaulted annotation overrides",
			map[string]string{
				"sluice.dev/interval":             "1m",
				"sluice.dev/threshold":            "5",
				"sluice.dev/min-success-rate":     "99",
				"sluice.dev/max-request-duration": "500ms",
				"sluice.dev/analysis-window":      "1m",
				"sluice.dev/progress-deadline":    "10m",
				"sluice.dev/min-requests":         "30",
				"sluice.dev/evidence-deadline":    "1h",
				"sluice.dev/blind-deadline":       "10m",
			},
			with(func(s *Settings) {
				s.Interval = metav1.Duration{Duration: time.Minute}
				s.Threshold = 5
				s.MinSuccessRate = 99
				s.MaxRequestDuration = metav1.Duration{Duration: 500 * time.Millisecond}
				s.AnalysisWindow = metav1.Duration{Duration: time.Minute}
				s.ProgressDeadline = metav1.Duration{Duration: 10 * time.Minute}
				s.MinRequests = 30
				s.EvidenceDeadline = metav1.Duration{Duration: time.Hour}
				s.BlindDeadline = metav1.Duration{Duration: 10 * time.Minute}
			}), nil},
		{"a refused value keeps the installation's default",
			map[string]string{"sluice.dev/max-weight": "0", "sluice.dev/threshold": "abc"},
			base,
			[]string{
				`sluice.dev/max-weight: "0" is not an integer between 1 and 100`,
				`sluice.dev/threshold: "abc" is not an integer between 1 and 1000`,
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, problems := operatorDefaults.Parse(tt.annotations)
			if !slices.Equal(problems, tt.problems) {
				t.Errorf("Parse(%q) problems:\n got  %q\n want %q", tt.annotations, problems, tt.problems)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Parse(%q) =\n %+v\nwant\n %+v", tt.annotations, got, tt.want)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	with := func(change func(*Defaults)) Defaults {
		d := BuiltinDefaults()
		change(&d)
		return d
	}
	tests := []struct {
		name     string
		defaults Defaults
		want     string // the error; "" for none
	}{
		{"built-in", BuiltinDefaults(), ""},
		{"an installation's", operatorDefaults, ""},
		{"lowest bounds", Defaults{StepWeight: 1, MaxWeight: 1, Threshold: 1, Interval: time.Second,
			MaxRequestDuration: time.Millisecond, AnalysisWindow: time.Second, ProgressDeadline: time.Second,
			MinRequests: 1, EvidenceDeadline: time.Second, BlindDeadline: time.Second}, ""},
		{"blind deadline 0: the progress deadline", with(func(d *Defaults) { d.BlindDeadline = 0 }), ""},
		{"blind deadline 500ms", with(func(d *Defaults) { d.BlindDeadline = 500 * time.Millisecond }),
			`invalid defaults: --default-blind-deadline: "500ms" is not a Go duration of at least 1s, such as 30s or 2m`},
		{"min requests 0", with(func(d *Defaults) { d.MinRequests = 0 }),
			`invalid defaults: --default-min-requests: "0" is not an integer between 1 and 1000000`},
		{"evidence deadline 0", with(func(d *Defaults) { d.EvidenceDeadline = 0 }),
			`invalid defaults: --default-evidence-deadline: "0s" is not a Go duration of at least 1s, such as 30s or 2m`},
		{"highest bounds", with(func(d *Defaults) { d.StepWeight, d.MaxWeight, d.Threshold, d.MinSuccessRate = 100, 100, 1000, 100 }), ""},
		{"step weight 0", with(func(d *Defaults) { d.StepWeight = 0 }),
			`invalid defaults: --default-step-weight: "0" is not an integer between 1 and 100`},
		{"step weight 101", with(func(d *Defaults) { d.StepWeight = 101 }),
			`invalid defaults: --default-step-weight: "101" is not an integer between 1 and 100`},
		{"max weight 0", with(func(d *Defaults) { d.MaxWeight = 0 }),
			`invalid defaults: --default-max-weight: "0" is not an integer between 1 and 100`},
		{"max weight 101", with(func(d *Defaults) { d.MaxWeight = 101 }),
			`invalid defaults: --default-max-weight: "101" is not an integer between 1 and 100`},
		{"interval 999ms", with(func(d *Defaults) { d.Interval = 999 * time.Millisecond }),
			`invalid defaults: --default-interval: "999ms" is not a Go duration of at least 1s, such as 30s or 2m`},
		{"threshold 0", with(func(d *Defaults) { d.Threshold = 0 }),
			`invalid defaults: --default-threshold: "0" is not an integer between 1 and 1000`},
		{"threshold 1001", with(func(d *Defaults) { d.Threshold = 1001 }),
			`invalid defaults: --default-threshold: "1001" is not an integer between 1 and 1000`},
		{"min success rate -0.5", with(func(d *Defaults) { d.MinSuccessRate = -0.5 }),
			`invalid defaults: --default-min-success-rate: "-0.5" is not a number between 0 and 100`},
		{"min success rate 100.1", with(func(d *Defaults) { d.MinSuccessRate = 100.1 }),
			`invalid defaults: --default-min-success-rate: "100.1" is not a number between 0 and 100`},
		{"min success rate NaN", with(func(d *Defaults) { d.MinSuccessRate = math.NaN() }),
			`invalid defaults: --default-min-success-rate: "NaN" is not a number between 0 and 100`},
		{"max request duration 0", with(func(d *Defaults) { d.MaxRequestDuration = 0 }),
			`invalid defaults: --default-max-request-duration: "0s" is not a Go duration of at least 1ms, such as 30s or 2m`},
		{"analysis window -1s", with(func(d *Defaults) { d.AnalysisWindow = -time.Second }),
			`invalid defaults: --default-analysis-window: "-1s" is not a Go duration of at least 1s, such as 30s or 2m`},
		{"progress deadline 500ms", with(func(d *Defaults) { d.ProgressDeadline = 500 * time.Millisecond }),
			`invalid defaults: --default-progress-deadline: "500ms" is not a Go duration of at least 1s, such as 30s or 2m`},
		{"zero value, every field", Defaults{}, "invalid defaults: " +
			`--default-analysis-window: "0s" is not a Go duration of at least 1s, such as 30s or 2m; ` +
			`--default-evidence-deadline: "0s" is not a Go duration of at least 1s, such as 30s or 2m; ` +
			`--default-interval: "0s" is not a Go duration of at least 1s, such as 30s or 2m; ` +
			`--default-max-request-duration: "0s" is not a Go duration of at least 1ms, such as 30s or 2m; ` +
			`--default-max-weight: "0" is not an integer between 1 and 100; ` +
			`--default-min-requests: "0" is not an integer between 1 and 1000000; ` +
			`--default-progress-deadline: "0s" is not a Go duration of at least 1s, such as 30s or 2m; ` +
			`--default-step-weight: "0" is not an integer between 1 and 100; ` +
			`--default-threshold: "0" is not an integer between 1 and 1000`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := ""
			if err := tt.defaults.Validate(); err != nil {
				got = err.Error()
			}
			if got != tt.want {
				t.Errorf("Validate() of %+v:\n got  %q\n want %q", tt.defaults, got, tt.want)
			}
		})
	}
}

func TestAddFlags(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want Defaults
	}{
		{"none", nil, BuiltinDefaults()},
		{"max weight and interval", []string{"--default-max-weight=30", "--default-interval=30s"},
			func() Defaults { d := BuiltinDefaults(); d.MaxWeight, d.Interval = 30, 30*time.Second; return d }()},
		{"every flag", []string{
			"--default-step-weight=15", "--default-max-weight=30", "--default-interval=30s", "--default-threshold=3",
			"--default-min-success-rate=95", "--default-max-request-duration=1s", "--default-analysis-window=2m",
			"--default-progress-deadline=5m", "--default-min-requests=20", "--default-evidence-deadline=1h",
			"--default-blind-deadline=3m", "--default-router=gateway-api",
		}, func() Defaults { d := operatorDefaults; d.Router = RouterGatewayAPI; return d }()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var d Defaults
			fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
			d.AddFlags(fs)
			if err := fs.Parse(tt.args); err != nil {
				t.Fatal(err)
			}
			if d != tt.want {
				t.Errorf("after %q: %+v, want %+v", tt.args, d, tt.want)
			}
		})
	}
}

// TestAddFlagsUsage checks that each flag names the annotation it defaults.
func TestAddFlagsUsage(t *testing.T) {
	var d Defaults
	fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
	d.AddFlags(fs)
	want := map[string]string{
		"default-step-weight":          "sluice.dev/step-weight",
		"default-max-weight":           "sluice.dev/max-weight",
		"default-interval":             "sluice.dev/interval",
		"default-threshold":            "sluice.dev/threshold",
		"default-min-success-rate":     "sluice.dev/min-success-rate",
		"default-max-request-duration": "sluice.dev/max-request-duration",
		"default-analysis-window":      "sluice.dev/analysis-window",
		"default-progress-deadline":    "sluice.dev/progress-deadline",
		"default-min-requests":         "sluice.dev/min-requests",
		"default-evidence-deadline":    "sluice.dev/evidence-deadline",
		"default-blind-deadline":       "sluice.dev/blind-deadline",
		"default-router":               "sluice.dev/router",
	}
	got := map[string]string{}
	fs.VisitAll(func(f *pflag.Flag) { got[f.Name] = f.Usage })
	if len(got) != len(want) {
		t.Errorf("flags %v, want %d of them", slices.Sorted(maps.Keys(got)), len(want))
	}
	for name, annotation := range want {
		if usage, wantUsage := got[name], "default of the "+annotation+" annotation"; !strings.HasPrefix(usage, wantUsage) {
			t.Errorf("--%s usage %q, want %q", name, usage, wantUsage)
		}
	}
}

func TestEnabled(t *testing.T) {
	tests := []struct {
		annotations map[string]string
		want        bool
	}{
		{nil, false},
		{map[string]string{}, false},
		{map[string]string{"sluice.dev/canary": "enabled"}, true},
		{map[string]string{"sluice.dev/canary": "disabled"}, false},
		{map[string]string{"sluice.dev/canary": "yes"}, false},
		{map[string]string{"sluice.dev/canary": "Enabled"}, false},
		{map[string]string{"sluice.dev/canary": "true"}, false},
	}
	for _, tt := range tests {
		if got := Enabled(tt.annotations); got != tt.want {
			t.Errorf("Enabled(%q) = %v, want %v", tt.annotations, got, tt.want)
		}
	}
}

func TestInternal(t *testing.T) {
	tests := []struct {
		key  string
		want bool
	}{
		{"sluice.dev/canary-template", true},
		{"sluice.dev/canary-revision", true},
		{"sluice.dev/canary", false},
		{"sluice.dev/step-weight", false},
		{"sluice.dev/unknown", false},
		{"", false},
	}
	for _, tt := range tests {
		if got := Internal(tt.key); got != tt.want {
			t.Errorf("Internal(%q) = %v, want %v", tt.key, got, tt.want)
		}
	}
}

func TestRevision(t *testing.T) {
	hex10 := regexp.MustCompile(`^[0-9a-f]{10}$`)
	inputs := [][]byte{
		nil,
		[]byte(""),
		[]byte("{}"),
		[]byte(`{"metadata":{"labels":{"app":"demo"}},"spec":{"containers":[{"name":"app","image":"demo:1"}]}}`),
		[]byte(`{"metadata":{"labels":{"app":"demo"}},"spec":{"containers":[{"name":"app","image":"demo:2"}]}}`),
		[]byte(`{"metadata":{"labels":{"app":"demo"}},"spec":{"containers":[{"name":"app","image":"demo:1"}]}} `),
	}
	seen := map[string]string{}
	for _, in := range inputs[1:] { // nil and "" hash alike; compare the distinct inputs
		r := Revision(in)
		if !hex10.MatchString(r) {
			t.Errorf("Revision(%q) = %q, want 10 lower-case hex characters", in, r)
		}
		if again := Revision(append([]byte(nil), in...)); again != r {
			t.Errorf("Revision(%q) is not deterministic: %q then %q", in, r, again)
		}
		if prev, ok := seen[r]; ok {
			t.Errorf("Revision(%q) = Revision(%q) = %q", in, prev, r)
		}
		seen[r] = string(in)
	}
	if Revision(inputs[0]) != Revision(inputs[1]) {
		t.Errorf("Revision(nil) = %q, Revision(\"\") = %q; want equal", Revision(inputs[0]), Revision(inputs[1]))
	}
	// Known value: the first 5 bytes of SHA-256("{}"), so that a change of the
	// hash or its length breaks the test.
	if got, want := Revision([]byte("{}")), "44136fa355"; got != want {
		t.Errorf(`Revision("{}") = %q, want %q`, got, want)
	}
	// Deterministic across several calls.
	in := inputs[3]
	first := Revision(in)
	for range 5 {
		if got := Revision(in); got != first {
			t.Fatalf("Revision is not deterministic: %q then %q", first, got)
		}
	}
}
