package canary

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// ClusterPolicyPrefix in AnnotationPolicy forces the cluster-scoped policy
// of that name.
const ClusterPolicyPrefix = "cluster/"

// DefaultClusterPolicy is the ClusterCanaryPolicy that applies to every
// opted-in Deployment that names no policy, if it exists.
const DefaultClusterPolicy = "default"

// Policy kinds, as the Canary status names them.
const (
	KindCanaryPolicy        = "CanaryPolicy"
	KindClusterCanaryPolicy = "ClusterCanaryPolicy"
)

// PolicySpec are the release rules a policy gives the Deployments that use
// it. Each setting stands in for the installation's default of the
// annotation of the same name; a Deployment's own annotation overrides it.
// +kubebuilder:validation:XValidation:rule="!has(self.stepWeights) || !has(self.maxWeight) || self.stepWeights[size(self.stepWeights) - 1] >= self.maxWeight",message="stepWeights must end at or above maxWeight"
type PolicySpec struct {
	// StepWeight is the canary weight added per step, in percent.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=100
	// +optional
	StepWeight *int32 `json:"stepWeight,omitempty"`
	// StepWeights are explicit weights, strictly increasing; they override
	// stepWeight.
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=100
	// +kubebuilder:validation:items:Minimum=1
	// +kubebuilder:validation:items:Maximum=100
	// +kubebuilder:validation:XValidation:rule="self.isSorted()",message="stepWeights must be strictly increasing"
	// +listType=set
	// +optional
	StepWeights []int32 `json:"stepWeights,omitempty"`
	// MaxWeight is the weight at which the promotion starts, once the
	// canary passed its analysis there.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=100
	// +optional
	MaxWeight *int32 `json:"maxWeight,omitempty"`
	// Interval is the time between analyses.
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('1s')",message="interval must be at least 1s"
	// +optional
	Interval *metav1.Duration `json:"interval,omitempty"`
	// Threshold is the number of failed checks that rolls back.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=1000
	// +optional
	Threshold *int32 `json:"threshold,omitempty"`
	// MinSuccessRate is the minimum request success rate, in percent.
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=100
	// +optional
	MinSuccessRate *float64 `json:"minSuccessRate,omitempty"`
	// MaxRequestDuration is the maximum P99 request duration.
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('1ms')",message="maxRequestDuration must be at least 1ms"
	// +optional
	MaxRequestDuration *metav1.Duration `json:"maxRequestDuration,omitempty"`
	// AnalysisWindow is the longest period one analysis counts, and the
	// range of custom checks' {{.Window}}.
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('1s')",message="analysisWindow must be at least 1s"
	// +optional
	AnalysisWindow *metav1.Duration `json:"analysisWindow,omitempty"`
	// MinRequests is the least number of canary requests a check needs to
	// judge.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=1000000
	// +optional
	MinRequests *int32 `json:"minRequests,omitempty"`
	// EvidenceDeadline is how long a step may hold for lack of requests.
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('1s')",message="evidenceDeadline must be at least 1s"
	// +optional
	EvidenceDeadline *metav1.Duration `json:"evidenceDeadline,omitempty"`
	// BlindDeadline is how long the analysis may be blind.
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('1s')",message="blindDeadline must be at least 1s"
	// +optional
	BlindDeadline *metav1.Duration `json:"blindDeadline,omitempty"`
	// ProgressDeadline is how long the canary may take to become ready.
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('1s')",message="progressDeadline must be at least 1s"
	// +optional
	ProgressDeadline *metav1.Duration `json:"progressDeadline,omitempty"`
	// ConfirmRollout manual makes each new revision wait for kubectl
	// sluice resume or promote before its canary starts.
	// +optional
	ConfirmRollout *Gate `json:"confirmRollout,omitempty"`
	// ConfirmPromotion manual holds a canary that passed at max-weight,
	// still analysed, until kubectl sluice promote.
	// +optional
	ConfirmPromotion *Gate `json:"confirmPromotion,omitempty"`
	// Router is the routing API of the Deployments: istio (a
	// VirtualService) or gateway-api (an HTTPRoute).
	// +kubebuilder:validation:Enum=istio;gateway-api
	// +optional
	Router *string `json:"router,omitempty"`
	// Match makes each rollout an A/B test: requests that meet any of these
	// go to the canary (sluice.dev/match-headers, match-cookie).
	// +kubebuilder:validation:MaxItems=16
	// +optional
	Match []RequestMatch `json:"match,omitempty"`
	// Iterations is the number of analysed intervals of an A/B test, or of
	// the mirroring.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=1000
	// +optional
	Iterations *int32 `json:"iterations,omitempty"`
	// Mirror copies the traffic to the canary before the weights.
	// +optional
	Mirror *bool `json:"mirror,omitempty"`
	// MirrorPercent is the share of the requests mirrored.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=100
	// +optional
	MirrorPercent *int32 `json:"mirrorPercent,omitempty"`
	// SessionCookie keeps a client that got the canary on it: NAME, or
	// NAME; max-age=DURATION.
	// +optional
	SessionCookie *string `json:"sessionCookie,omitempty"`
	// Checks add custom checks, and turn built-in ones
	// (request-success-rate, request-duration) off.
	// +kubebuilder:validation:MaxItems=20
	// +listType=map
	// +listMapKey=name
	// +optional
	Checks []CheckSpec `json:"checks,omitempty"`
	// Prometheus is where the checks query; the shifter's --prometheus-url
	// when unset.
	// +optional
	Prometheus *PrometheusSpec `json:"prometheus,omitempty"`
	// Webhooks are called at the points of each rollout their types name.
	// +kubebuilder:validation:MaxItems=20
	// +listType=map
	// +listMapKey=name
	// +optional
	Webhooks []WebhookSpec `json:"webhooks,omitempty"`
	// Alerts send the rollouts' news to chat channels or endpoints.
	// +kubebuilder:validation:MaxItems=10
	// +listType=map
	// +listMapKey=name
	// +optional
	Alerts []AlertSpec `json:"alerts,omitempty"`
}

// CheckSpec is one check of a policy: a custom one, or a built-in one
// turned off (their bounds are minSuccessRate and maxRequestDuration).
// +kubebuilder:validation:XValidation:rule="!(self.name in ['request-success-rate', 'request-duration']) || !has(self.query) && !has(self.min) && !has(self.max) && !has(self.compare) && !has(self.unit)",message="the built-in checks take only disabled; set their bounds with minSuccessRate and maxRequestDuration"
// +kubebuilder:validation:XValidation:rule="self.name in ['request-success-rate', 'request-duration'] || has(self.query)",message="a custom check needs a query"
// +kubebuilder:validation:XValidation:rule="self.name in ['request-success-rate', 'request-duration'] || has(self.min) || has(self.max) || has(self.compare)",message="a custom check needs min, max or compare: what is good"
// +kubebuilder:validation:XValidation:rule="!has(self.min) || !has(self.max) || self.min <= self.max",message="min must not be above max"
type CheckSpec struct {
	// Name of the check: request-success-rate or request-duration to turn
	// a built-in check off, or a DNS label for a custom one.
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	// +kubebuilder:validation:MaxLength=63
	Name string `json:"name"`
	// Query is the PromQL of a custom check, a Go template with
	// {{.Namespace}}, {{.Deployment}}, {{.Workload}} (the canary's, or the
	// primary's when compared), {{.Canary}}, {{.Primary}} and {{.Window}}
	// (the analysis window, such as 1m). It must give one number.
	// +kubebuilder:validation:MaxLength=4096
	// +optional
	Query string `json:"query,omitempty"`
	// Unit of the values, for people: "%", "ms", "req/s".
	// +kubebuilder:validation:MaxLength=16
	// +optional
	Unit string `json:"unit,omitempty"`
	// Min is the least good value.
	// +optional
	Min *float64 `json:"min,omitempty"`
	// Max is the greatest good value.
	// +optional
	Max *float64 `json:"max,omitempty"`
	// Compare judges the canary's value against the primary's, measured by
	// the same query over the same window.
	// +optional
	Compare *Comparison `json:"compare,omitempty"`
	// Disabled turns the check off.
	// +optional
	Disabled bool `json:"disabled,omitempty"`
}

// Comparison is how much worse than its primary a canary may be.
// +kubebuilder:validation:XValidation:rule="has(self.maxRelativeDegradation) || has(self.maxAbsoluteDegradation)",message="compare needs maxRelativeDegradation or maxAbsoluteDegradation"
type Comparison struct {
	// Against is what the canary is compared with: primary.
	// +kubebuilder:validation:Enum=primary
	Against string `json:"against"`
	// Better says which way is better: higher (a checkout rate) or lower
	// (an error budget burn).
	// +kubebuilder:validation:Enum=higher;lower
	Better string `json:"better"`
	// MaxRelativeDegradation is how much worse the canary's value may be,
	// in percent of the primary's.
	// +kubebuilder:validation:Minimum=0
	// +optional
	MaxRelativeDegradation *float64 `json:"maxRelativeDegradation,omitempty"`
	// MaxAbsoluteDegradation is how much worse the canary's value may be,
	// in the check's unit.
	// +kubebuilder:validation:Minimum=0
	// +optional
	MaxAbsoluteDegradation *float64 `json:"maxAbsoluteDegradation,omitempty"`
}

// PrometheusSpec is how to reach a Prometheus-compatible server: Prometheus,
// Thanos, Mimir, Cortex, VictoriaMetrics, or a hosted one.
// +kubebuilder:validation:XValidation:rule="!has(self.bearerTokenSecret) || !has(self.basicAuthSecret)",message="use bearerTokenSecret or basicAuthSecret, not both"
type PrometheusSpec struct {
	// Address is the server's base URL, such as
	// https://mimir.example.com/prometheus.
	// +kubebuilder:validation:XValidation:rule="isURL(self) && url(self).getScheme() in ['http', 'https']",message="address must be an http or https URL"
	Address string `json:"address"`
	// BearerTokenSecret holds a token sent as "Authorization: Bearer".
	// +optional
	BearerTokenSecret *SecretKeyRef `json:"bearerTokenSecret,omitempty"`
	// BasicAuthSecret holds the keys username and password.
	// +optional
	BasicAuthSecret *SecretRef `json:"basicAuthSecret,omitempty"`
	// CABundle is the PEM of the certificate authorities that sign the
	// server's certificate; the system's when empty.
	// +optional
	CABundle string `json:"caBundle,omitempty"`
	// Timeout bounds each query.
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('100ms') && duration(self) <= duration('5m')",message="timeout must be between 100ms and 5m"
	// +optional
	Timeout *metav1.Duration `json:"timeout,omitempty"`
}

// SecretRef names a Secret: in the policy's namespace, or for a
// ClusterCanaryPolicy in the namespace sluice runs in.
type SecretRef struct {
	// +kubebuilder:validation:MinLength=1
	Name string `json:"name"`
}

// SecretKeyRef names a key of a Secret, found as SecretRef says.
type SecretKeyRef struct {
	// +kubebuilder:validation:MinLength=1
	Name string `json:"name"`
	// +kubebuilder:validation:MinLength=1
	Key string `json:"key"`
}

// CanaryPolicy gives the release rules of the Deployments of its namespace
// that name it in sluice.dev/policy.
// +kubebuilder:object:root=true
// +kubebuilder:resource:categories=sluice
// +kubebuilder:printcolumn:name="StepWeights",type=string,JSONPath=`.spec.stepWeights`
// +kubebuilder:printcolumn:name="Interval",type=string,JSONPath=`.spec.interval`
// +kubebuilder:printcolumn:name="Threshold",type=integer,JSONPath=`.spec.threshold`
// +kubebuilder:printcolumn:name="Prometheus",type=string,JSONPath=`.spec.prometheus.address`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type CanaryPolicy struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec PolicySpec `json:"spec,omitempty"`
}

// CanaryPolicyList is a list of CanaryPolicies.
// +kubebuilder:object:root=true
type CanaryPolicyList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []CanaryPolicy `json:"items"`
}

// ClusterCanaryPolicy gives the release rules of the Deployments of every
// namespace that name it in sluice.dev/policy as cluster/NAME, or, if it is
// named default, of every opted-in Deployment that names no policy.
// +kubebuilder:object:root=true
// +kubebuilder:resource:scope=Cluster,categories=sluice
// +kubebuilder:printcolumn:name="StepWeights",type=string,JSONPath=`.spec.stepWeights`
// +kubebuilder:printcolumn:name="Interval",type=string,JSONPath=`.spec.interval`
// +kubebuilder:printcolumn:name="Threshold",type=integer,JSONPath=`.spec.threshold`
// +kubebuilder:printcolumn:name="Prometheus",type=string,JSONPath=`.spec.prometheus.address`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type ClusterCanaryPolicy struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec PolicySpec `json:"spec,omitempty"`
}

// ClusterCanaryPolicyList is a list of ClusterCanaryPolicies.
// +kubebuilder:object:root=true
type ClusterCanaryPolicyList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []ClusterCanaryPolicy `json:"items"`
}

// PolicySnapshot is the policy a rollout runs by, as it was when the
// rollout started.
type PolicySnapshot struct {
	// Kind is CanaryPolicy or ClusterCanaryPolicy.
	Kind string `json:"kind"`
	// Name of the policy.
	Name string `json:"name"`
	// Generation of the policy that was copied.
	Generation int64 `json:"generation"`
	// Spec as it was.
	Spec PolicySpec `json:"spec"`
}
