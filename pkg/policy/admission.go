package policy

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"sluice.dev/sluice/pkg/canary"
)

// Path is where the webhook serves the admissions of CanaryPolicies and
// ClusterCanaryPolicies.
const Path = "/validate-sluice-dev-v1alpha1-policies"

// Admission refuses the policies that Validate finds fault with. It only
// ever allows or denies: it changes nothing.
type Admission struct{}

// Handle implements admission.Handler.
func (Admission) Handle(_ context.Context, req admission.Request) admission.Response {
	if req.Kind.Group != canary.GroupVersion.Group || req.Kind.Kind != canary.KindCanaryPolicy && req.Kind.Kind != canary.KindClusterCanaryPolicy {
		return admission.Errored(400, fmt.Errorf("sluice's policy webhook handles %s and %s, not %s; check the rules of its webhook configuration",
			canary.KindCanaryPolicy, canary.KindClusterCanaryPolicy, req.Kind))
	}
	var p struct {
		Spec canary.PolicySpec `json:"spec"`
	}
	if err := json.Unmarshal(req.Object.Raw, &p); err != nil {
		return admission.Errored(400, fmt.Errorf("decode the %s: %w", req.Kind.Kind, err))
	}
	if problems := Validate(p.Spec); len(problems) > 0 {
		return admission.Denied("sluice: invalid " + req.Kind.Kind + ": " + strings.Join(problems, "; "))
	}
	return admission.Allowed("")
}
