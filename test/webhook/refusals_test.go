package webhook_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"sluice.dev/sluice/pkg/canary"
	"sluice.dev/sluice/test/cluster"
)

const denied = `admission webhook "deployments.sluice.dev" denied the request: sluice: `

// TestInvalidSettingsAreRefused: every refusal names the annotation, the
// value and what is allowed, and nothing of the request is stored.
func TestInvalidSettingsAreRefused(t *testing.T) {
	setup(t)
	cases := []struct {
		annotations []string
		message     string
	}{
		{[]string{`sluice.dev/step-weight: "abc"`}, `sluice.dev/step-weight: "abc" is not an integer between 1 and 100`},
		{[]string{`sluice.dev/step-weight: "0"`}, `sluice.dev/step-weight: "0" is not an integer between 1 and 100`},
		{[]string{`sluice.dev/step-weights: "5,ten"`}, `sluice.dev/step-weights: "5,ten" is not a comma-separated list of strictly increasing integers between 1 and 100`},
		{[]string{`sluice.dev/step-weights: "5,10,10,50"`}, `sluice.dev/step-weights: "5,10,10,50" is not a comma-separated list of strictly increasing integers between 1 and 100`},
		{[]string{`sluice.dev/step-weights: "0,50"`}, `sluice.dev/step-weights: "0,50" is not a comma-separated list of strictly increasing integers between 1 and 100`},
		{[]string{`sluice.dev/step-weights: "5,10,25"`}, `sluice.dev/step-weights: "5,10,25" never reaches sluice.dev/max-weight 50; end the list at or above it`},
		{[]string{`sluice.dev/max-weight: "half"`}, `sluice.dev/max-weight: "half" is not an integer between 1 and 100`},
		{[]string{`sluice.dev/max-weight: "101"`}, `sluice.dev/max-weight: "101" is not an integer between 1 and 100`},
		{[]string{`sluice.dev/interval: "often"`}, `sluice.dev/interval: "often" is not a Go duration of at least 1s, such as 30s or 2m`},
		{[]string{`sluice.dev/interval: "500ms"`}, `sluice.dev/interval: "500ms" is not a Go duration of at least 1s, such as 30s or 2m`},
		{[]string{`sluice.dev/threshold: "0"`}, `sluice.dev/threshold: "0" is not an integer between 1 and 1000`},
		{[]string{`sluice.dev/threshold: "1001"`}, `sluice.dev/threshold: "1001" is not an integer between 1 and 1000`},
		{[]string{`sluice.dev/min-success-rate: "99.5%"`}, `sluice.dev/min-success-rate: "99.5%" is not a number between 0 and 100`},
		{[]string{`sluice.dev/min-success-rate: "101"`}, `sluice.dev/min-success-rate: "101" is not a number between 0 and 100`},
		{[]string{`sluice.dev/max-request-duration: "fast"`}, `sluice.dev/max-request-duration: "fast" is not a Go duration of at least 1ms, such as 30s or 2m`},
		{[]string{`sluice.dev/max-request-duration: "0s"`}, `sluice.dev/max-request-duration: "0s" is not a Go duration of at least 1ms, such as 30s or 2m`},
		{[]string{`sluice.dev/analysis-window: "1 minute"`}, `sluice.dev/analysis-window: "1 minute" is not a Go duration of at least 1s, such as 30s or 2m`},
		{[]string{`sluice.dev/analysis-window: "0s"`}, `sluice.dev/analysis-window: "0s" is not a Go duration of at least 1s, such as 30s or 2m`},
		{[]string{`sluice.dev/port: "http"`}, `sluice.dev/port: "http" is not an integer between 1 and 65535`},
		{[]string{`sluice.dev/port: "70000"`}, `sluice.dev/port: "70000" is not an integer between 1 and 65535`},
		{[]string{`sluice.dev/gateways: "public gateway"`}, `sluice.dev/gateways: "public gateway" is not a comma-separated list of gateway names, such as istio-system/public or mesh`},
		{[]string{`sluice.dev/hosts: "a b.example.com"`}, `sluice.dev/hosts: "a b.example.com" is not a comma-separated list of host names, such as app.example.com or *.example.com`},
		{[]string{`sluice.dev/progress-deadline: "soon"`}, `sluice.dev/progress-deadline: "soon" is not a Go duration of at least 1s, such as 30s or 2m`},
		{[]string{`sluice.dev/progress-deadline: "500ms"`}, `sluice.dev/progress-deadline: "500ms" is not a Go duration of at least 1s, such as 30s or 2m`},
		{[]string{`sluice.dev/skip-analysis: "yes"`}, `sluice.dev/skip-analysis: "yes" is not "true" or "false"`},
		{[]string{`sluice.dev/confirm-rollout: "Manual"`}, `sluice.dev/confirm-rollout: "Manual" is not "auto" or "manual"`},
		{[]string{`sluice.dev/virtualservice: "My_Routes"`}, `sluice.dev/virtualservice: "My_Routes" is not the name of a VirtualService (a DNS-1123 subdomain)`},
		{[]string{`sluice.dev/router: "linkerd"`}, `sluice.dev/router: "linkerd" is not one of istio, gateway-api`},
		{[]string{`sluice.dev/httproute: "web"`}, `sluice.dev/httproute: "web" names an HTTPRoute, which router istio does not use; set sluice.dev/router: gateway-api, or remove it`},
		{[]string{`sluice.dev/router: "gateway-api"`, `sluice.dev/hosts: "*"`}, `sluice.dev/hosts: "*": an HTTPRoute's hostname cannot be a bare *; ` +
			`leave it out to match every host, or name a wildcard domain such as *.example.com`},
		{[]string{`sluice.dev/stepweight: "20"`}, "sluice.dev/stepweight is not a sluice annotation; the known ones are sluice.dev/canary, " +
			"sluice.dev/step-weight, sluice.dev/step-weights, sluice.dev/max-weight, sluice.dev/interval, sluice.dev/threshold, " +
			"sluice.dev/min-success-rate, sluice.dev/max-request-duration, sluice.dev/analysis-window, sluice.dev/min-requests, " +
			"sluice.dev/evidence-deadline, sluice.dev/blind-deadline, sluice.dev/port, " +
			"sluice.dev/gateways, sluice.dev/hosts, sluice.dev/progress-deadline, sluice.dev/skip-analysis, " +
			"sluice.dev/confirm-rollout, sluice.dev/confirm-promotion, " +
			"sluice.dev/router, sluice.dev/virtualservice, sluice.dev/httproute, sluice.dev/match-headers, sluice.dev/match-cookie, sluice.dev/iterations, sluice.dev/mirror, sluice.dev/mirror-percent, sluice.dev/session-cookie, sluice.dev/policy, sluice.dev/canary-template, sluice.dev/canary-revision"},
		{
			[]string{`sluice.dev/threshold: "x"`, `sluice.dev/interval: "1"`},
			`sluice.dev/interval: "1" is not a Go duration of at least 1s, such as 30s or 2m; sluice.dev/threshold: "x" is not an integer between 1 and 1000`,
		},
	}
	ns := env.NewNamespace(t)
	kubectl(t, manifest("example.com/web:v1"), "apply", "-n", ns, "-f", "-")
	for _, tc := range cases {
		t.Run(tc.message, func(t *testing.T) {
			want := denied + "invalid sluice settings: " + tc.message
			bad := manifest("example.com/web:v2", tc.annotations...)
			_, stderr, err := tryKubectl(t, bad, "apply", "-n", ns, "-f", "-")
			if err == nil || !strings.Contains(stderr, want) {
				t.Errorf("update: err %v, stderr %q; want the refusal %q", err, stderr, want)
			}
			other := env.NewNamespace(t)
			_, stderr, err = tryKubectl(t, bad, "create", "-n", other, "-f", "-")
			if err == nil || !strings.Contains(stderr, want) {
				t.Errorf("create: err %v, stderr %q; want the refusal %q", err, stderr, want)
			}
			if _, err := env.Clientset(t).AppsV1().Deployments(other).Get(t.Context(), app, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
				t.Errorf("refused create stored a Deployment (get: %v)", err)
			}
		})
	}
	expectState(t, ns, state{primary: "example.com/web:v1", replicaSets: []string{"example.com/web:v1"}, replicas: 2})
}

// TestForgedInternalAnnotationsAreRefused: only sluice writes the canary
// annotations.
func TestForgedInternalAnnotationsAreRefused(t *testing.T) {
	setup(t)
	forged := denied + "sluice.dev/canary-template and sluice.dev/canary-revision are written only by sluice: " +
		"this update sets or changes them. Leave them out of the manifest or keep the values the Deployment has; " +
		"to cancel a pending canary, apply the running version again"
	ns := env.NewNamespace(t)

	_, stderr, err := tryKubectl(t, manifest("example.com/web:v1", `sluice.dev/canary-revision: "abc"`), "create", "-n", ns, "-f", "-")
	want := denied + "sluice.dev/canary-template and sluice.dev/canary-revision are written only by sluice; remove them from the manifest"
	if err == nil || !strings.Contains(stderr, want) {
		t.Errorf("create with a forged revision: err %v, stderr %q; want %q", err, stderr, want)
	}

	kubectl(t, manifest("example.com/web:v1"), "apply", "-n", ns, "-f", "-")
	kubectl(t, manifest("example.com/web:v2"), "apply", "-n", ns, "-f", "-")
	for _, args := range [][]string{
		{"annotate", "--overwrite", "deployment/" + app, "sluice.dev/canary-revision=0123456789"},
		{"annotate", "--overwrite", "deployment/" + app, `sluice.dev/canary-template={"spec":{}}`},
		{"annotate", "deployment/" + app, "sluice.dev/canary-template-"},
	} {
		_, stderr, err := tryKubectl(t, "", append([]string{"-n", ns}, args...)...)
		if err == nil || !strings.Contains(stderr, forged) {
			t.Errorf("kubectl %s: err %v, stderr %q; want %q", strings.Join(args, " "), err, stderr, forged)
		}
	}
	expectState(t, ns, diverted)
}

// TestOversizedTemplateIsRefused: a template too large for an annotation is
// refused as a whole, with the sizes.
func TestOversizedTemplateIsRefused(t *testing.T) {
	setup(t)
	ns := env.NewNamespace(t)
	kubectl(t, manifest("example.com/web:v1"), "create", "-n", ns, "-f", "-")
	huge := strings.Replace(manifest("example.com/web:v2"), "          resources:",
		"          env:\n            - name: BLOB\n              value: "+strings.Repeat("x", 300*1024)+"\n          resources:", 1)
	_, stderr, err := tryKubectl(t, huge, "replace", "-n", ns, "-f", "-")
	want := regexp.MustCompile(regexp.QuoteMeta(denied+"the new pod template is ") + `\d+` +
		regexp.QuoteMeta(" bytes of JSON; sluice keeps it in the annotation sluice.dev/canary-template until it is promoted, "+
			"and with it the Deployment's annotations would total ") + `\d+` +
		regexp.QuoteMeta(` bytes, over the API server's limit of 262144 bytes (256 KiB); make the template or the other annotations smaller, `+
			`or set sluice.dev/skip-analysis: "true" to roll it out without a canary`))
	if err == nil || !want.MatchString(stderr) {
		t.Errorf("replace: err %v, stderr %q; want a match of %s", err, stderr, want)
	}
	expectState(t, ns, state{primary: "example.com/web:v1", replicaSets: []string{"example.com/web:v1"}, replicas: 2})
}

// review is the body of an AdmissionReview by alice of a kind in apps/v1.
func review(kind string, op admissionv1.Operation, object, oldObject string) string {
	raw, _ := json.Marshal(map[string]any{
		"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
		"request": map[string]any{
			"uid": "u1", "operation": op, "userInfo": map[string]any{"username": "alice"},
			"kind":      map[string]string{"group": "apps", "version": "v1", "kind": kind},
			"resource":  map[string]string{"group": "apps", "version": "v1", "resource": "x"},
			"object":    json.RawMessage(object),
			"oldObject": json.RawMessage(oldObject),
		},
	})
	return string(raw)
}

// webhookClient talks to the webhook server over TLS, trusting its CA.
func webhookClient(maxVersion uint16) *http.Client {
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(hook.CAPEM)
	return &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS10, MaxVersion: maxVersion}}}
}

// post sends body straight to the webhook server and returns its answer.
func post(t *testing.T, body string) *admissionv1.AdmissionResponse {
	t.Helper()
	url := fmt.Sprintf("https://127.0.0.1:%d/mutate-apps-v1-deployment", hook.Port)
	resp, err := webhookClient(0).Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var got admissionv1.AdmissionReview
	if err := json.Unmarshal(raw, &got); err != nil || got.Response == nil {
		t.Fatalf("answer %q is no AdmissionReview: %v", raw, err)
	}
	return got.Response
}

// TestBadReviewsGetClearAnswers posts malformed and misdirected
// AdmissionReviews straight to the webhook server.
func TestBadReviewsGetClearAnswers(t *testing.T) {
	setup(t)
	dep := `{"metadata":{"annotations":{"sluice.dev/canary":"enabled"}},"spec":{"template":{}}}`
	cases := []struct {
		name, body string
		code       int32
		message    string
	}{
		{"empty body", "", 400, "request body is empty"},
		{"not JSON", "{", 400, "couldn't get version/kind; json parse error: unexpected end of JSON input"},
		{"wrong kind", review("ReplicaSet", admissionv1.Update, dep, dep), 400,
			"sluice: sluice's webhook handles apps/v1 Deployments only, not apps/v1, Kind=ReplicaSet; check the rules of its MutatingWebhookConfiguration"},
		{"update without oldObject", review("Deployment", admissionv1.Update, dep, "null"), 400,
			"sluice: the UPDATE request carries no oldObject"},
		{"create without object", review("Deployment", admissionv1.Create, "null", "null"), 400,
			"sluice: the CREATE request carries no object"},
		{"object without a pod template", review("Deployment", admissionv1.Update, `{"metadata":{"annotations":{"sluice.dev/canary":"enabled"}}}`, dep), 400,
			"sluice: the object or the oldObject has no spec.template object; is it an apps/v1 Deployment?"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := post(t, tc.body)
			if r.Allowed || r.Result == nil || r.Result.Code != tc.code || r.Result.Message != tc.message {
				t.Errorf("answer allowed=%v result=%+v; want refused with %d %q", r.Allowed, r.Result, tc.code, tc.message)
			}
		})
	}
	// Old TLS versions are refused.
	if _, err := webhookClient(tls.VersionTLS11).Get(fmt.Sprintf("https://127.0.0.1:%d/healthz", hook.Port)); err == nil {
		t.Error("the webhook server accepted TLS 1.1")
	}
}

// TestHealthEndpoints: the probes the chart's Deployment uses answer 200.
func TestHealthEndpoints(t *testing.T) {
	setup(t)
	for _, path := range []string{"/healthz", "/readyz"} {
		resp, err := webhookClient(0).Get(fmt.Sprintf("https://127.0.0.1:%d%s", hook.Port, path))
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s: %s", path, resp.Status)
		}
	}
}

// TestAdmissionsAreCounted: sluice_webhook_admissions_total counts each
// request under its operation and what the webhook did with it.
func TestAdmissionsAreCounted(t *testing.T) {
	setup(t)
	ns := env.NewNamespace(t)
	before := admissions(t)
	kubectl(t, manifest("example.com/web:v1"), "apply", "-n", ns, "-f", "-")
	kubectl(t, manifest("example.com/web:v2"), "apply", "-n", ns, "-f", "-")
	kubectl(t, manifest("example.com/web:v1"), "apply", "-n", ns, "-f", "-")
	kubectl(t, "", "annotate", "-n", ns, "deployment/"+app, "note=counted")
	if _, _, err := tryKubectl(t, manifest("example.com/web:v2", `sluice.dev/port: "http"`), "apply", "-n", ns, "-f", "-"); err == nil {
		t.Error("a bad setting was not refused")
	}
	post(t, review("Deployment", admissionv1.Update, `{"metadata":{"annotations":{"sluice.dev/canary":"enabled"}}}`, `{"spec":{"template":{}}}`))
	after := admissions(t)
	// The API server admits an update again when it retries one that lost a
	// race with a controller's write, so a request may count more than once;
	// but only under its own labels.
	want := map[string]bool{"CREATE/passed": true, "UPDATE/diverted": true, "UPDATE/cleared": true,
		"UPDATE/passed": true, "UPDATE/denied": true, "UPDATE/error": true}
	for key, n := range after {
		if grew := n > before[key]; grew != want[key] {
			t.Errorf("%s went from %v to %v; want it to grow: %v", key, before[key], n, want[key])
		}
	}
	for key := range want {
		if _, ok := after[key]; !ok {
			t.Errorf("no %s counted", key)
		}
	}
}

// TestPlainDeploymentsNeverReachTheWebhook: matchConditions keep every
// Deployment that is not opted in away from the webhook, whatever other
// sluice annotations it carries.
func TestPlainDeploymentsNeverReachTheWebhook(t *testing.T) {
	setup(t)
	for name, optIn := range map[string]string{
		"no sluice annotations": "team: web",
		"opted out":             "sluice.dev/canary: disabled",
	} {
		t.Run(name, func(t *testing.T) {
			ns := env.NewNamespace(t)
			before := total(admissions(t))
			plain := strings.NewReplacer("sluice.dev/canary: enabled", optIn, `sluice.dev/step-weight: "20"`, "tier: front").
				Replace(manifest("example.com/web:v1"))
			kubectl(t, plain, "apply", "-n", ns, "-f", "-")
			kubectl(t, "", "set", "image", "-n", ns, "deployment/"+app, "app=example.com/web:v2")
			kubectl(t, "", "scale", "-n", ns, "deployment/"+app, "--replicas=3")
			kubectl(t, "", "annotate", "-n", ns, "deployment/"+app, "note=hello")
			expectState(t, ns, state{primary: "example.com/web:v2", replicaSets: []string{"example.com/web:v1", "example.com/web:v2"}, replicas: 3})
			if after := total(admissions(t)); after != before {
				t.Errorf("the webhook saw %v requests for a Deployment that never opted in", after-before)
			}
		})
	}

	// The counter does count opted-in Deployments, so the check above can fail.
	other := env.NewNamespace(t)
	before := admissions(t)
	kubectl(t, manifest("example.com/web:v1"), "apply", "-n", other, "-f", "-")
	if after := admissions(t); after["CREATE/passed"] != before["CREATE/passed"]+1 {
		t.Errorf("admissions after an opted-in create: %v, before %v", after, before)
	}
}

// TestSettingsAreCheckedWhenOptingIn: settings of a Deployment that is not
// opted in are not the webhook's business, but the update that opts it in
// is refused while they are wrong.
func TestSettingsAreCheckedWhenOptingIn(t *testing.T) {
	setup(t)
	ns := env.NewNamespace(t)
	out := strings.NewReplacer("sluice.dev/canary: enabled", "sluice.dev/canary: disabled", `sluice.dev/step-weight: "20"`, `sluice.dev/step-weight: "abc"`).
		Replace(manifest("example.com/web:v1"))
	kubectl(t, out, "apply", "-n", ns, "-f", "-")
	_, stderr, err := tryKubectl(t, "", "annotate", "--overwrite", "-n", ns, "deployment/"+app, "sluice.dev/canary=enabled")
	want := denied + `invalid sluice settings: sluice.dev/step-weight: "abc" is not an integer between 1 and 100`
	if err == nil || !strings.Contains(stderr, want) {
		t.Errorf("opting in with a bad setting: err %v, stderr %q; want %q", err, stderr, want)
	}
	dep, err := env.Clientset(t).AppsV1().Deployments(ns).Get(t.Context(), app, metav1.GetOptions{})
	if err != nil || dep.Annotations["sluice.dev/canary"] != "disabled" {
		t.Errorf("after the refusal: %v, annotations %v; want still disabled", err, dep.Annotations)
	}
}

// TestMisspeltOptInIsRefused: only opted-in Deployments reach the webhook, so
// the policy sluice-annotations, inside the API server, refuses an opt-in value
// or a sluice annotation that would silently leave a Deployment out.
func TestMisspeltOptInIsRefused(t *testing.T) {
	setup(t)
	ns := env.NewNamespace(t)
	refused := func(value string) string {
		return `ValidatingAdmissionPolicy 'sluice-annotations' with binding 'sluice-annotations' denied request: sluice.dev/canary: "` +
			value + `" is not "enabled" or "disabled"`
	}
	misspelt := strings.Replace(manifest("example.com/web:v1"), "sluice.dev/canary: enabled", "sluice.dev/canary: Enabled", 1)
	// The API server loads policies in the background; a dry run shows when
	// this one is in force without storing anything.
	cluster.Eventually(t, 30*time.Second, "policy in force", func(ctx context.Context) error {
		_, stderr, err := tryKubectl(t, misspelt, "create", "--dry-run=server", "-n", ns, "-f", "-")
		if err == nil || !strings.Contains(stderr, refused("Enabled")) {
			return fmt.Errorf("dry run: err %v, stderr %q", err, stderr)
		}
		return nil
	})
	if _, stderr, err := tryKubectl(t, misspelt, "create", "-n", ns, "-f", "-"); err == nil || !strings.Contains(stderr, refused("Enabled")) {
		t.Errorf("create: err %v, stderr %q; want %q", err, stderr, refused("Enabled"))
	}
	if _, err := env.Clientset(t).AppsV1().Deployments(ns).Get(t.Context(), app, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("refused create stored a Deployment (get: %v)", err)
	}
	plain := strings.Replace(manifest("example.com/web:v1"), "sluice.dev/canary: enabled", "team: web", 1)
	kubectl(t, plain, "create", "-n", ns, "-f", "-")
	if _, stderr, err := tryKubectl(t, "", "annotate", "-n", ns, "deployment/"+app, "sluice.dev/canary=true"); err == nil || !strings.Contains(stderr, refused("true")) {
		t.Errorf("annotate: err %v, stderr %q; want %q", err, stderr, refused("true"))
	}
	kubectl(t, "", "annotate", "-n", ns, "deployment/"+app, "sluice.dev/canary=disabled")

	// A misspelt key is as silent as a misspelt value.
	unknown := `ValidatingAdmissionPolicy 'sluice-annotations' with binding 'sluice-annotations' denied request: ` +
		"sluice.dev/canry is not a sluice annotation; the known ones are " + strings.Join(canary.KnownAnnotations(), ", ")
	if _, stderr, err := tryKubectl(t, "", "annotate", "-n", ns, "deployment/"+app, "sluice.dev/canry=enabled"); err == nil || !strings.Contains(stderr, unknown) {
		t.Errorf("annotate: err %v, stderr %q; want %q", err, stderr, unknown)
	}
}

func total(counts map[string]float64) float64 {
	sum := 0.0
	for _, v := range counts {
		sum += v
	}
	return sum
}

// TestWebhookOutage: with the webhook down, the ValidatingAdmissionPolicy
// refuses template changes of opted-in Deployments with a clear message, and
// everything else keeps working, leaving sluice's care included.
func TestWebhookOutage(t *testing.T) {
	setup(t)
	// Two Deployments with a pending canary.
	ns, outNS := env.NewNamespace(t), env.NewNamespace(t)
	for _, n := range []string{ns, outNS} {
		kubectl(t, manifest("example.com/web:v1"), "apply", "-n", n, "-f", "-")
		kubectl(t, manifest("example.com/web:v2"), "apply", "-n", n, "-f", "-")
		expectState(t, n, diverted)
	}

	restart := hook.Outage(t)
	unavailable := "ValidatingAdmissionPolicy 'sluice-webhook-guard' with binding 'sluice-webhook-guard' denied request: " +
		"sluice: the sluice webhook is unavailable, so this change of spec.template could not be diverted to a canary and was refused; " +
		"nothing was changed. Retry when the webhook is back (kubectl -n sluice-system get pods). To roll out without a canary, " +
		`set the annotation sluice.dev/skip-analysis: "true" or turn sluice.dev/canary off in the same update. Scaling and other edits keep working.`
	// The API server loads the policy in the background; a dry run shows
	// when it is in force without storing anything.
	cluster.Eventually(t, 30*time.Second, "policy in force", func(ctx context.Context) error {
		_, stderr, err := tryKubectl(t, manifest("example.com/web:v3"), "apply", "--dry-run=server", "-n", ns, "-f", "-")
		if err == nil || !strings.Contains(stderr, unavailable) {
			return fmt.Errorf("dry run: err %v, stderr %q", err, stderr)
		}
		return nil
	})
	_, stderr, err := tryKubectl(t, manifest("example.com/web:v3"), "apply", "-n", ns, "-f", "-")
	if err == nil || !strings.Contains(stderr, unavailable) {
		t.Errorf("template change during the outage: err %v, stderr %q; want %q", err, stderr, unavailable)
	}
	_, stderr, err = tryKubectl(t, strings.Replace(manifest("example.com/web:v1"), "replicas: 2", "replicas: 3", 1), "replace", "-n", ns, "-f", "-")
	if err == nil || !strings.Contains(stderr, "this update would drop the pending canary") {
		t.Errorf("replace without the canary annotations during the outage: err %v, stderr %q; want a refusal", err, stderr)
	}
	// kubectl replace rewrites kubectl's record of the last apply with what
	// kubectl get printed; only an apply may drop the canary.
	printed, _ := kubectl(t, "", "get", "-n", ns, "deployment/"+app, "-o", "yaml")
	_, stderr, err = tryKubectl(t, withoutCanaryAnnotations(t, printed), "replace", "-n", ns, "-f", "-")
	if err == nil || !strings.Contains(stderr, "this update would drop the pending canary") {
		t.Errorf("replace of what kubectl get printed, without the canary annotations, during the outage: err %v, stderr %q; want a refusal", err, stderr)
	}
	kubectl(t, "", "scale", "-n", ns, "deployment/"+app, "--replicas=4")
	kubectl(t, "", "annotate", "-n", ns, "deployment/"+app, "note=still works")
	scaled := diverted
	scaled.replicas = 4
	expectState(t, ns, scaled)

	for _, optIn := range []string{"team: web", "sluice.dev/canary: disabled"} {
		plainNS := env.NewNamespace(t)
		kubectl(t, strings.Replace(manifest("example.com/web:v1"), "sluice.dev/canary: enabled", optIn, 1), "apply", "-n", plainNS, "-f", "-")
		kubectl(t, "", "set", "image", "-n", plainNS, "deployment/"+app, "app=example.com/web:v2")
		expectState(t, plainNS, state{primary: "example.com/web:v2", replicaSets: []string{"example.com/web:v1", "example.com/web:v2"}, replicas: 2})
	}

	// Leaving sluice's care in the same update lets a template change through
	// as a plain rolling update. Only the webhook removes the pending canary's
	// annotations, so they stay behind.
	skipping := manifest("example.com/web:v3", `sluice.dev/skip-analysis: "true"`)
	kubectl(t, skipping, "apply", "-n", ns, "-f", "-")
	optedOut := strings.Replace(manifest("example.com/web:v3"), "sluice.dev/canary: enabled", "sluice.dev/canary: disabled", 1)
	kubectl(t, optedOut, "apply", "-n", outNS, "-f", "-")
	left := state{primary: "example.com/web:v3", canary: "example.com/web:v2",
		replicaSets: []string{"example.com/web:v1", "example.com/web:v3"}, replicas: 2}
	for _, n := range []string{ns, outNS} {
		expectState(t, n, left)
	}

	// Taking the Deployments back while the webhook is still down would
	// start the old canary: the policy refuses it.
	for _, n := range []string{ns, outNS} {
		_, stderr, err := tryKubectl(t, manifest("example.com/web:v3"), "apply", "-n", n, "-f", "-")
		if err == nil || !strings.Contains(stderr, "this update takes the Deployment back into sluice's care while it still carries a canary left") {
			t.Errorf("taking %s back during the outage: err %v, stderr %q; want the policy's refusal", n, err, stderr)
		}
		expectState(t, n, left)
	}

	// With the webhook back, the update that takes the Deployment back into
	// sluice's care drops what was left, and says so.
	restart()
	for _, n := range []string{ns, outNS} {
		_, warnings := kubectl(t, manifest("example.com/web:v3"), "apply", "-n", n, "-f", "-")
		expectState(t, n, state{primary: "example.com/web:v3", replicaSets: left.replicaSets, replicas: 2})
		if !strings.Contains(warnings, "left from an update the webhook did not see were dropped") {
			t.Errorf("kubectl printed %q; want the webhook's warning about the leftover canary", warnings)
		}
	}
}

// TestBuildInfoIsExported: the webhook exports sluice_build_info with the
// version its --version tells.
func TestBuildInfoIsExported(t *testing.T) {
	setup(t)
	if err := hook.CheckBuildInfo(); err != nil {
		t.Error(err)
	}
}
