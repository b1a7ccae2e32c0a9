package mutate_test

import (
	"testing"

	"sluice.dev/sluice/pkg/canary"
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
