package mutate_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/funcr"
	"github.com/prometheus/client_golang/prometheus"
	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"sluice.dev/sluice/pkg/canary"
	"sluice.dev/sluice/pkg/mutate"
)

// TestHandlerDefaults checks that the handler judges settings by the
// installation's defaults rather than the built-in ones: step weights that end
// below the default max-weight are refused only where that default is higher.
func TestHandlerDefaults(t *testing.T) {
	lowMax := canary.BuiltinDefaults()
	lowMax.MaxWeight = 30
	tests := []struct {
		name     string
		defaults canary.Defaults
		allowed  bool
		message  string
	}{
		{"built-in max-weight 50", canary.BuiltinDefaults(), false,
			`sluice: invalid sluice settings: sluice.dev/step-weights: "10,30" never reaches sluice.dev/max-weight 50; end the list at or above it`},
		{"default max-weight 30", lowMax, true, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			old, obj := divertingUpdate()
			obj.Annotations[canary.AnnotationStepWeights] = "10,30"
			res := serve(t, newWebhook(tt.defaults), updateReview(t, old, obj)).Response
			message := ""
			if res.Result != nil {
				message = res.Result.Message
			}
			if res.Allowed != tt.allowed || message != tt.message {
				t.Fatalf("allowed %v, message %q; want %v, %q", res.Allowed, message, tt.allowed, tt.message)
			}
			if tt.allowed && len(res.Patch) == 0 {
				t.Error("the template change was not diverted: no patch")
			}
		})
	}
}

// TestHandlerPolicies: the settings are judged with the policy the
// Deployment runs by, and a policy that does not exist is refused.
func TestHandlerPolicies(t *testing.T) {
	weights := canary.PolicySpec{StepWeights: []int32{10, 30}}
	clusterDefault := &canary.ClusterCanaryPolicy{ObjectMeta: metav1.ObjectMeta{Name: "default"}, Spec: weights}
	strict := &canary.CanaryPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "strict"}, Spec: weights}
	elsewhere := &canary.CanaryPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: "blog", Name: "strict"}, Spec: weights}
	never := `sluice: invalid sluice settings: sluice.dev/step-weights: "10,30" never reaches sluice.dev/max-weight 50; end the list at or above it`
	tests := []struct {
		name     string
		policies []client.Object
		// live are policies that only the API server has seen yet.
		live    []client.Object
		ref     string
		message string
	}{
		{"no policy", nil, nil, "", ""},
		{"the default cluster policy applies without a reference", []client.Object{clusterDefault}, nil, "", never},
		{"a namespaced policy", []client.Object{strict}, nil, "strict", never},
		{"a named policy not yet in the cache is read from the API server", nil, []client.Object{strict}, "strict", never},
		{"cluster/ skips the namespaced policy", []client.Object{strict}, []client.Object{strict}, "cluster/strict",
			"sluice: invalid sluice settings: sluice.dev/policy names a policy that does not exist: no ClusterCanaryPolicy strict; " +
				"create it, or name one that kubectl get canarypolicies,clustercanarypolicies lists"},
		{"a policy of another namespace", []client.Object{elsewhere}, nil, "strict",
			"sluice: invalid sluice settings: sluice.dev/policy names a policy that does not exist: no CanaryPolicy strict in namespace shop " +
				"and no ClusterCanaryPolicy strict; create it, or name one that kubectl get canarypolicies,clustercanarypolicies lists"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			old, obj := divertingUpdate()
			if tt.ref != "" {
				obj.Annotations[canary.AnnotationPolicy] = tt.ref
			}
			readers := mutate.PolicyReaders{Cache: policyReader(tt.policies...), Live: policyReader(tt.live...)}
			res := serve(t, webhookWith(canary.BuiltinDefaults(), readers), updateReview(t, old, obj)).Response
			message := ""
			if res.Result != nil {
				message = res.Result.Message
			}
			if res.Allowed != (tt.message == "") || message != tt.message {
				t.Fatalf("allowed %v, message %q; want %q", res.Allowed, message, tt.message)
			}
		})
	}
}

// TestDiversionLogLine: one info line per diversion names the Deployment and
// the revision, and never holds the template, which may carry secrets in its
// env values.
func TestDiversionLogLine(t *testing.T) {
	var lines []string
	log := funcr.New(func(prefix, args string) { lines = append(lines, args) }, funcr.Options{})
	h := mutate.NewHandler(nil, canary.BuiltinDefaults(), mutate.PolicyReaders{}, mutate.NewMetrics(prometheus.NewRegistry()), log)
	old, obj := divertingUpdate()
	res := h.Handle(context.Background(), admission.Request{AdmissionRequest: admissionRequest(t, admissionv1.Update, old, obj)})
	if !res.Allowed || len(res.Patches) == 0 && len(res.Patch) == 0 {
		t.Fatalf("the update was not diverted: %+v", res.AdmissionResponse)
	}
	if len(lines) != 1 {
		t.Fatalf("logged %d lines, want 1: %q", len(lines), lines)
	}
	line := lines[0]
	revision := canary.Revision(mustJSON(t, obj.Spec.Template))
	for _, want := range []string{`"msg"="diverted the new pod template to a canary"`, `"namespace"="` + obj.Namespace + `"`,
		`"name"="` + obj.Name + `"`, `"revision"="` + revision + `"`} {
		if !strings.Contains(line, want) {
			t.Errorf("log line %s lacks %s", line, want)
		}
	}
	for _, secret := range []string{obj.Spec.Template.Spec.Containers[0].Image, obj.Spec.Template.Spec.Containers[0].Env[0].Name} {
		if strings.Contains(line, secret) {
			t.Errorf("log line %s shows the template (%s)", line, secret)
		}
	}
}

// TestHandlerReadsTheFieldManager: the field manager in the request's options
// is what tells `kubectl apply` of the primary's template, which cancels a
// pending canary, from `kubectl replace`, which rewrites kubectl's record of
// the last apply just the same and keeps it.
func TestHandlerReadsTheFieldManager(t *testing.T) {
	const v1, v2 = `{"spec":{"containers":[{"name":"app","image":"web:v1"}]}}`, `{"spec":{"containers":[{"name":"app","image":"web:v2"}]}}`
	const record = "kubectl.kubernetes.io/last-applied-configuration"
	deployment := func(template string, annotations map[string]string) []byte {
		return mustJSON(t, map[string]any{
			"metadata": map[string]any{"annotations": annotations},
			"spec":     map[string]any{"template": json.RawMessage(template)},
		})
	}
	revision := canary.Revision([]byte(v2))
	stored := deployment(v1, map[string]string{canary.AnnotationEnabled: canary.EnabledValue,
		canary.AnnotationCanaryTemplate: v2, canary.AnnotationCanaryRevision: revision, record: string(deployment(v2, nil))})
	update := deployment(v1, map[string]string{canary.AnnotationEnabled: canary.EnabledValue, record: string(deployment(v1, nil))})
	tests := []struct {
		manager, warning string
		carriedOver      bool
	}{
		{"kubectl-client-side-apply", "sluice: kubectl apply (field manager kubectl-client-side-apply) set the pod template back to the running primary's, " +
			"so the pending canary (revision " + revision + ") is cancelled; to run it after all, apply its version again", false},
		{"kubectl-replace", "", true},
	}
	h := mutate.NewHandler(nil, canary.BuiltinDefaults(), mutate.PolicyReaders{}, mutate.NewMetrics(prometheus.NewRegistry()), logr.Discard())
	for _, tt := range tests {
		t.Run(tt.manager, func(t *testing.T) {
			res := h.Handle(t.Context(), admission.Request{AdmissionRequest: admissionv1.AdmissionRequest{
				UID:       reviewUID,
				Kind:      metav1.GroupVersionKind{Group: "apps", Version: "v1", Kind: "Deployment"},
				Operation: admissionv1.Update,
				Object:    runtime.RawExtension{Raw: update},
				OldObject: runtime.RawExtension{Raw: stored},
				Options: runtime.RawExtension{Raw: []byte(`{"kind":"UpdateOptions","apiVersion":"meta.k8s.io/v1","fieldManager":"` +
					tt.manager + `"}`)},
			}})
			if !res.Allowed {
				t.Fatalf("refused: %+v", res.Result)
			}
			if got := strings.Join(res.Warnings, "\n"); got != tt.warning {
				t.Errorf("warnings %q; want %q", got, tt.warning)
			}
			if carriedOver := len(res.Patch) > 0; carriedOver != tt.carriedOver {
				t.Errorf("patch %s; want the pending canary carried over: %v", res.Patch, tt.carriedOver)
			}
		})
	}
}
