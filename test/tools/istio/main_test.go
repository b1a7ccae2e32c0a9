package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/yaml"
)

// validate runs the command on args and returns its exit code and output.
func validate(t *testing.T, stdin string, args ...string) (int, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(args, strings.NewReader(stdin), &stdout, &stderr)
	if stderr.Len() > 0 {
		t.Logf("stderr: %s", stderr.String())
	}
	return code, stdout.String()
}

func TestGoodVirtualServicesPass(t *testing.T) {
	code, out := validate(t, "", "testdata/good.yaml")
	if code != 0 {
		t.Errorf("exit %d; want 0. Output:\n%s", code, out)
	}
	for _, want := range []string{
		"testdata/good.yaml: VirtualService shop/web: ok\n",
		"testdata/good.yaml: VirtualService shop/web-promoted: ok\n",
		// Weights are proportions to Istio: 3 and 1 need not sum to 100.
		"testdata/good.yaml: VirtualService shop/web-proportions: ok\n",
		"testdata/good.yaml: ConfigMap shop/not-istio: skipped: v1 ConfigMap is not a kind Istio validates\n",
		"testdata/good.yaml: VirtualService shop/web-deprecated-mirror: ok\n",
		`testdata/good.yaml: VirtualService shop/web-deprecated-mirror: warning: using deprecated setting "mirrorPercent"`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

// Each of these passes the CRD's OpenAPI schema (the API server takes it
// without Istio's webhook) and is refused by Istio's own validation.
var refused = map[string]string{
	"all-weights-zero": "configuration is invalid: total destination weight = 0",
	"negative-weight":  "configuration is invalid: weight -10 < 0",
	"mirror-over-100":  "configuration is invalid: mirror_percentage must have a max value of 100 (it has 150.000000)",
	"bad-header-regex": "configuration is invalid: \"headers\": error parsing regexp: missing closing ): `(yes`",
}

func TestBadVirtualServicesAreRefused(t *testing.T) {
	code, out := validate(t, "", "testdata/bad.yaml")
	if code != 1 {
		t.Errorf("exit %d; want 1", code)
	}
	if n := strings.Count(out, "\n"); n != len(refused) {
		t.Errorf("%d lines; want one per object, %d:\n%s", n, len(refused), out)
	}
	for name, msg := range refused {
		want := "testdata/bad.yaml: VirtualService shop/" + name + ": invalid: " + msg
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

func TestOtherIstioKindsAreValidatedToo(t *testing.T) {
	code, out := validate(t, "", "testdata/mixed.yaml")
	if code != 1 {
		t.Errorf("exit %d; want 1", code)
	}
	for _, want := range []string{
		"testdata/mixed.yaml: DestinationRule shop/web: ok\n",
		"testdata/mixed.yaml: DestinationRule shop/bad-subset-name: invalid: configuration is invalid: subset name is invalid: Canary_1\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

func TestStdinAndBrokenInput(t *testing.T) {
	good, err := os.ReadFile("testdata/good.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if code, out := validate(t, string(good), "-"); code != 0 || !strings.Contains(out, "-: VirtualService shop/web: ok\n") {
		t.Errorf("good.yaml on stdin: exit %d, output:\n%s", code, out)
	}
	// The API server would prune a field beside spec; Istio's webhook refuses it.
	extra := "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: x}\nspec: {hosts: [a]}\nextra: 1\n"
	if code, out := validate(t, extra, "-"); code != 1 || !strings.Contains(out, `-: VirtualService x: invalid: unknown field "extra"`) {
		t.Errorf("a field beside spec: exit %d, output:\n%s", code, out)
	}
	if code, out := validate(t, "not: [yaml", "-"); code != 1 || !strings.Contains(out, "-: document 1:") {
		t.Errorf("broken YAML: exit %d, output:\n%s", code, out)
	}
	if code, _ := validate(t, "", "testdata/no-such-file.yaml"); code != 2 {
		t.Errorf("a missing file: exit %d; want 2", code)
	}
	if code, _ := validate(t, ""); code != 2 {
		t.Errorf("no arguments: exit %d; want 2", code)
	}
}

// review posts an AdmissionReview for the YAML object to the webhook, as the
// API server does, and returns the response.
func review(t *testing.T, url, object string) *admissionv1.AdmissionResponse {
	t.Helper()
	raw, err := yaml.YAMLToJSON([]byte(object))
	if err != nil {
		t.Fatal(err)
	}
	req := admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"},
		Request: &admissionv1.AdmissionRequest{
			UID:       types.UID("review-1"),
			Kind:      metav1.GroupVersionKind{Group: "networking.istio.io", Version: "v1", Kind: "VirtualService"},
			Resource:  metav1.GroupVersionResource{Group: "networking.istio.io", Version: "v1", Resource: "virtualservices"},
			Namespace: "shop",
			Operation: admissionv1.Create,
			Object:    runtime.RawExtension{Raw: raw},
		},
	}
	body, err := json.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Post(url+"/validate", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST /validate: %s", resp.Status)
	}
	var got admissionv1.AdmissionReview
	if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
		t.Fatalf("decode the AdmissionReview answer: %v", err)
	}
	if got.Response == nil || got.Response.UID != "review-1" {
		t.Fatalf("answer %+v; want a response to UID review-1", got.Response)
	}
	return got.Response
}

func TestWebhookDeniesWithIstiosMessage(t *testing.T) {
	mux, err := webhookMux()
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(mux)
	defer srv.Close()

	docs := strings.Split(readFile(t, "testdata/good.yaml"), "\n---\n")
	if resp := review(t, srv.URL, docs[0]); !resp.Allowed {
		t.Errorf("good VirtualService denied: %v", resp.Result)
	}
	for _, doc := range strings.Split(readFile(t, "testdata/bad.yaml"), "\n---\n") {
		resp := review(t, srv.URL, doc)
		if resp.Allowed {
			t.Errorf("allowed:\n%s", doc)
			continue
		}
		matched := false
		for _, msg := range refused {
			matched = matched || strings.Contains(resp.Result.Message, msg)
		}
		if !matched {
			t.Errorf("denied with %q; want one of Istio's messages for testdata/bad.yaml", resp.Result.Message)
		}
	}
}

func TestServeListensOnLoopbackOnly(t *testing.T) {
	for _, addr := range []string{"127.0.0.1:9443", "[::1]:9443", "localhost:9443"} {
		if err := loopbackOnly(addr); err != nil {
			t.Errorf("%s: %v", addr, err)
		}
	}
	for _, addr := range []string{":9443", "0.0.0.0:9443", "192.0.2.1:9443", "example.com:9443"} {
		if err := loopbackOnly(addr); err == nil {
			t.Errorf("%s: accepted; want refused", addr)
		}
	}
}

func readFile(t *testing.T, name string) string {
	t.Helper()
	raw, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return string(raw)
}

// A document that does not decode ends the file: the ones before it are
// still reported, in order.
func TestBrokenDocumentAfterGoodOnes(t *testing.T) {
	in := readFile(t, "testdata/good.yaml") + "\n---\nnot: [yaml\n"
	code, out := validate(t, in, "-")
	if code != 1 {
		t.Errorf("exit %d; want 1", code)
	}
	first, broken := strings.Index(out, "-: VirtualService shop/web: ok"), strings.Index(out, "-: document 6:")
	if first < 0 || broken < first {
		t.Errorf("want shop/web's line, then the sixth document's error:\n%s", out)
	}
}
