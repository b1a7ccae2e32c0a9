// Package canary holds sluice's user-facing contract that the webhook and the
// shifter share: the annotation names on a Deployment, the settings they
// carry, and how both are validated.
package canary

import (
	"crypto/sha256"
	"encoding/hex"
)

// Annotations a user sets on a Deployment.
const (
	// AnnotationEnabled opts a Deployment in with the value EnabledValue.
	AnnotationEnabled = "sluice.dev/canary"
	// AnnotationStepWeight is the canary weight added per step.
	AnnotationStepWeight = "sluice.dev/step-weight"
	// AnnotationStepWeights lists explicit weights and overrides step-weight.
	AnnotationStepWeights = "sluice.dev/step-weights"
	// AnnotationMaxWeight is the weight at which promotion starts.
	AnnotationMaxWeight = "sluice.dev/max-weight"
	// AnnotationInterval is the time between analysis checks.
	AnnotationInterval = "sluice.dev/interval"
	// AnnotationThreshold is the number of failed checks before a rollback.
	AnnotationThreshold = "sluice.dev/threshold"
	// AnnotationMinSuccessRate is the minimum request success rate, in percent.
	AnnotationMinSuccessRate = "sluice.dev/min-success-rate"
	// AnnotationMaxRequestDuration is the maximum P99 request duration.
	AnnotationMaxRequestDuration = "sluice.dev/max-request-duration"
	// AnnotationAnalysisWindow is the PromQL range of each check.
	AnnotationAnalysisWindow = "sluice.dev/analysis-window"
	// AnnotationMinRequests is the least number of canary requests a check
	// needs to judge; below it, the check is inconclusive.
	AnnotationMinRequests = "sluice.dev/min-requests"
	// AnnotationEvidenceDeadline is how long a step may wait for enough
	// requests to judge before the canary is rolled back.
	AnnotationEvidenceDeadline = "sluice.dev/evidence-deadline"
	// AnnotationBlindDeadline is how long the analysis may be blind before
	// the canary is rolled back.
	AnnotationBlindDeadline = "sluice.dev/blind-deadline"
	// AnnotationPort is the service port.
	AnnotationPort = "sluice.dev/port"
	// AnnotationGateways lists the gateways of the route.
	AnnotationGateways = "sluice.dev/gateways"
	// AnnotationHosts lists extra hosts of the route.
	AnnotationHosts = "sluice.dev/hosts"
	// AnnotationProgressDeadline is the time the canary may take to become ready.
	AnnotationProgressDeadline = "sluice.dev/progress-deadline"
	// AnnotationSkipAnalysis "true" lets updates through as plain rolling updates.
	AnnotationSkipAnalysis = "sluice.dev/skip-analysis"
	// AnnotationVirtualService names an existing VirtualService to adopt.
	AnnotationVirtualService = "sluice.dev/virtualservice"
	// AnnotationRouter picks the routing API: RouterIstio or
	// RouterGatewayAPI.
	AnnotationRouter = "sluice.dev/router"
	// AnnotationHTTPRoute names an existing HTTPRoute to adopt.
	AnnotationHTTPRoute = "sluice.dev/httproute"
	// AnnotationConfirmRollout "manual" makes a new revision wait, its
	// canary at zero replicas, until kubectl sluice resume or promote.
	AnnotationConfirmRollout = "sluice.dev/confirm-rollout"
	// AnnotationConfirmPromotion "manual" holds a canary that passed its
	// analysis at max-weight, still analysed, until kubectl sluice promote.
	AnnotationConfirmPromotion = "sluice.dev/confirm-promotion"
	// AnnotationPolicy names the CanaryPolicy of the Deployment's
	// namespace, or, with the prefix "cluster/", a ClusterCanaryPolicy,
	// whose settings the Deployment takes where its own annotations leave
	// them out.
	AnnotationPolicy = "sluice.dev/policy"
)

// Annotations only sluice writes.
const (
	// AnnotationCanaryTemplate holds the diverted pod template, as JSON.
	AnnotationCanaryTemplate = "sluice.dev/canary-template"
	// AnnotationCanaryRevision holds a short hash of the diverted template.
	AnnotationCanaryRevision = "sluice.dev/canary-revision"
)

// Values of AnnotationEnabled.
const (
	EnabledValue  = "enabled"
	DisabledValue = "disabled"
)

// Values of AnnotationRouter.
const (
	RouterIstio      = "istio"
	RouterGatewayAPI = "gateway-api"
)

// Prefix is the prefix of every sluice annotation.
const Prefix = "sluice.dev/"

// Enabled reports whether annotations opt a Deployment in.
func Enabled(annotations map[string]string) bool {
	return annotations[AnnotationEnabled] == EnabledValue
}

// Internal reports whether key is an annotation that only sluice writes.
func Internal(key string) bool {
	return key == AnnotationCanaryTemplate || key == AnnotationCanaryRevision
}

// Revision is the short hash that names a pod template in
// AnnotationCanaryRevision, computed over its JSON as stored in
// AnnotationCanaryTemplate.
func Revision(templateJSON []byte) string {
	sum := sha256.Sum256(templateJSON)
	return hex.EncodeToString(sum[:5])
}
