package mutate_test

import (
	"context"
	"strings"
	"testing"

	"github.com/go-logr/logr/funcr"
	"github.com/prometheus/client_golang/prometheus"
	admissionv1 "k8s.io/api/admission/v1"
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

// TestDiversionLogLine: one info line per diversion names the Deployment and
// the revision, and never holds the template, which may carry secrets in its
// env values.
func TestDiversionLogLine(t *testing.T) {
	var lines []string
	log := funcr.New(func(prefix, args string) { lines = append(lines, args) }, funcr.Options{})
	h := mutate.NewHandler(nil, canary.BuiltinDefaults(), mutate.NewMetrics(prometheus.NewRegistry()), log)
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
