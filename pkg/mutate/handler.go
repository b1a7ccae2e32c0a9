package mutate

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/go-logr/logr"
	"github.com/tidwall/gjson"
	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/webhook"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"sluice.dev/sluice/pkg/canary"
	"sluice.dev/sluice/pkg/policy"
)

// Path is where the webhook serves Deployment admissions.
const Path = "/mutate-apps-v1-deployment"

// Handler answers admission requests for Deployments with Decide.
type Handler struct {
	shifters []string
	defaults canary.Defaults
	policies PolicyReaders
	metrics  *Metrics
	log      logr.Logger
}

// PolicyReaders are where a Handler reads policies; a zero value looks none
// up.
type PolicyReaders struct {
	// Cache answers every lookup: each opted-in Deployment's admission makes
	// one.
	Cache client.Reader
	// Live, the API server, is asked when Cache has not seen a policy that a
	// Deployment names: one created by the same kubectl apply a moment
	// before may not have reached the cache yet.
	Live client.Reader
}

// NewHandler returns a handler that passes requests of the given shifter
// identities (user names) unchanged and checks settings against defaults,
// which must be valid (see canary.Defaults.Validate), and against the
// policies it reads.
func NewHandler(shifterIdentities []string, defaults canary.Defaults, policies PolicyReaders, metrics *Metrics, log logr.Logger) *Handler {
	return &Handler{shifters: shifterIdentities, defaults: defaults, policies: policies, metrics: metrics, log: log}
}

var jsonPatch = admissionv1.PatchTypeJSONPatch

// Handle implements admission.Handler.
func (h *Handler) Handle(ctx context.Context, req admission.Request) admission.Response {
	start := time.Now()
	d := h.decide(ctx, req)
	h.metrics.observe(req.Operation, d.Verdict, time.Since(start))

	// Passes are most requests: build the log line only when it is written.
	keys := func() []any {
		return []any{"namespace", req.Namespace, "name", req.Name, "operation", req.Operation,
			"user", req.UserInfo.Username, "dryRun", req.DryRun != nil && *req.DryRun}
	}
	switch d.Verdict {
	case Diverted:
		h.log.Info("diverted the new pod template to a canary", append(keys(), "revision", d.Revision)...)
	case Cleared:
		h.log.Info("cleared the pending canary", keys()...)
	case Denied:
		h.log.Info("denied", append(keys(), "reason", d.Message)...)
	case Errored:
		h.log.Error(nil, "could not read the request", append(keys(), "reason", d.Message)...)
	default:
		if h.log.V(1).Enabled() {
			h.log.V(1).Info("passed", append(keys(), "revision", d.Revision)...)
		}
	}
	return response(d)
}

func (h *Handler) decide(ctx context.Context, req admission.Request) Decision {
	if req.Kind.Group != "apps" || req.Kind.Version != "v1" || req.Kind.Kind != "Deployment" {
		return Decision{Verdict: Errored, Message: fmt.Sprintf(
			"sluice's webhook handles apps/v1 Deployments only, not %s; check the rules of its MutatingWebhookConfiguration", req.Kind)}
	}
	switch req.Operation {
	case admissionv1.Create:
	case admissionv1.Update:
		if len(req.OldObject.Raw) == 0 {
			return Decision{Verdict: Errored, Message: "the UPDATE request carries no oldObject"}
		}
	default:
		// Nothing else is registered; never stand in the way of it.
		return Decision{Verdict: Passed}
	}
	if len(req.Object.Raw) == 0 {
		return Decision{Verdict: Errored, Message: fmt.Sprintf("the %s request carries no object", req.Operation)}
	}
	r := Request{
		Operation:    req.Operation,
		FieldManager: gjson.Get(view(req.Options.Raw), "fieldManager").Str,
		FromShifter:  slices.Contains(h.shifters, req.UserInfo.Username),
		Object:       req.Object.Raw,
		OldObject:    req.OldObject.Raw,
	}
	if !r.FromShifter {
		var err error
		if r.Policy, err = h.policy(ctx, req.Namespace, req.Object.Raw); policy.IsNotFound(err) {
			r.PolicyProblem = err.Error()
		} else if err != nil {
			return Decision{Verdict: Errored, Message: err.Error()}
		}
	}
	return Decide(h.defaults, r)
}

// policy finds the policy that an opted-in Deployment, or one that names a
// policy, runs by.
func (h *Handler) policy(ctx context.Context, namespace string, object []byte) (*canary.PolicySnapshot, error) {
	annotations := gjson.Get(view(object), "metadata.annotations")
	named := annotations.Get(gjson.Escape(canary.AnnotationPolicy))
	if h.policies.Cache == nil || !named.Exists() && annotations.Get(gjson.Escape(canary.AnnotationEnabled)).Str != canary.EnabledValue {
		return nil, nil
	}
	var ref map[string]string
	if named.Exists() {
		ref = map[string]string{canary.AnnotationPolicy: named.Str}
	}
	snap, err := policy.Find(ctx, h.policies.Cache, namespace, ref)
	if policy.IsNotFound(err) && h.policies.Live != nil {
		return policy.Find(ctx, h.policies.Live, namespace, ref)
	}
	return snap, err
}

func response(d Decision) admission.Response {
	switch d.Verdict {
	case Denied:
		return admission.Denied("sluice: " + d.Message)
	case Errored:
		return admission.Response{AdmissionResponse: admissionv1.AdmissionResponse{
			Result: &metav1.Status{Code: http.StatusBadRequest, Reason: metav1.StatusReasonBadRequest, Message: "sluice: " + d.Message},
		}}
	}
	r := admission.Response{AdmissionResponse: admissionv1.AdmissionResponse{
		Allowed:  true,
		Result:   &metav1.Status{Code: http.StatusOK},
		Warnings: d.Warnings,
	}}
	if d.Patch != nil {
		r.Patch = d.Patch
		r.PatchType = &jsonPatch
	}
	return r
}

// NewWebhook wraps h in controller-runtime's admission webhook, as Serve
// registers it at Path. Panics become error responses. The handler logs each
// request with its own keys, so controller-runtime gets no per-request logger:
// building one costs each request as much as sluice's decision to pass it.
func NewWebhook(h *Handler) *webhook.Admission {
	return &webhook.Admission{
		Handler:        h,
		RecoverPanic:   ptr.To(true),
		LogConstructor: func(base logr.Logger, _ *admission.Request) logr.Logger { return base },
	}
}
