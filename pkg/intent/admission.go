// Package intent stamps each intent that someone writes into a Canary's
// spec (kubectl sluice pause, resume, promote, abort, retry) with the user
// the API server authenticated and the time, so that the shifter's events
// name who asked, and no client can claim to be someone else.
package intent

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"gomodules.xyz/jsonpatch/v2"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"sluice.dev/sluice/pkg/canary"
)

// Path is where the webhook serves the admissions of Canaries.
const Path = "/mutate-sluice-dev-v1alpha1-canary"

// Stamp sets spec.intent.requestedBy and requestedAt of a Canary whose
// intent changes, and keeps those of one whose intent does not.
type Stamp struct {
	// Now is the clock; time.Now when nil.
	Now func() time.Time
}

// Handle implements admission.Handler.
func (h Stamp) Handle(_ context.Context, req admission.Request) admission.Response {
	if req.Kind.Group != canary.GroupVersion.Group || req.Kind.Kind != "Canary" {
		return admission.Errored(http.StatusBadRequest, fmt.Errorf(
			"sluice's intent webhook handles Canaries, not %s; check the rules of its webhook configuration", req.Kind))
	}
	var obj, old canary.Canary
	if err := json.Unmarshal(req.Object.Raw, &obj); err != nil {
		return admission.Errored(http.StatusBadRequest, fmt.Errorf("decode the Canary: %w", err))
	}
	if len(req.OldObject.Raw) > 0 {
		if err := json.Unmarshal(req.OldObject.Raw, &old); err != nil {
			return admission.Errored(http.StatusBadRequest, fmt.Errorf("decode the old Canary: %w", err))
		}
	}
	in := obj.Spec.Intent
	if in == nil {
		return admission.Allowed("")
	}
	was := old.Spec.Intent
	stamped := *in
	if was != nil && was.Action == in.Action && was.Revision == in.Revision && was.SkipAnalysis == in.SkipAnalysis {
		// The same request: whoever writes the Canary now did not ask it.
		stamped.RequestedBy, stamped.RequestedAt = was.RequestedBy, was.RequestedAt
	} else {
		stamped.RequestedBy = req.UserInfo.Username
		stamped.RequestedAt = metav1.NewTime(h.now().Truncate(time.Second))
	}
	if stamped.RequestedBy == in.RequestedBy && stamped.RequestedAt.Equal(&in.RequestedAt) {
		return admission.Allowed("")
	}
	return admission.Patched("", jsonpatch.NewOperation("replace", "/spec/intent", stamped))
}

func (h Stamp) now() time.Time {
	if h.Now != nil {
		return h.Now()
	}
	return time.Now()
}
