package canary

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Phase is where a canary stands.
// +kubebuilder:validation:Enum=Initialized;Progressing;Promoting;Succeeded;Failed
type Phase string

// The phases of a canary, in the order of a rollout.
const (
	// PhaseInitialized: routing is in place, all traffic goes to the primary.
	PhaseInitialized Phase = "Initialized"
	// PhaseProgressing: a canary runs and takes a share of the traffic.
	PhaseProgressing Phase = "Progressing"
	// PhasePromoting: the canary template is being copied to the primary.
	PhasePromoting Phase = "Promoting"
	// PhaseSucceeded: the last canary was promoted.
	PhaseSucceeded Phase = "Succeeded"
	// PhaseFailed: the last canary was rolled back.
	PhaseFailed Phase = "Failed"
)

// ConditionPromoted is the condition type that tells whether the last canary
// was promoted.
const ConditionPromoted = "Promoted"

// CheckStatus is the last result of one analysis check.
type CheckStatus struct {
	// Name of the check: request-success-rate or request-duration.
	Name string `json:"name"`
	// Value measured, as text ("99.20" percent, "412" milliseconds); empty
	// when there was no data.
	Value string `json:"value,omitempty"`
	// Threshold the value was compared with, as text.
	Threshold string `json:"threshold"`
	// Passed is the verdict.
	Passed bool `json:"passed"`
	// Message explains a failed check.
	Message string `json:"message,omitempty"`
}

// CanaryStatus is the observed state of a Deployment's canary.
type CanaryStatus struct {
	// Phase is where the canary stands.
	Phase Phase `json:"phase,omitempty"`
	// CanaryWeight is the share of traffic, in percent, sent to the canary.
	CanaryWeight int32 `json:"canaryWeight"`
	// FailedChecks counts the failed checks of the canary under analysis.
	FailedChecks int32 `json:"failedChecks"`
	// CanaryRevision is the revision under analysis.
	CanaryRevision string `json:"canaryRevision,omitempty"`
	// PrimaryRevision is the revision the primary runs; during an analysis,
	// the one it ran when the analysis started.
	PrimaryRevision string `json:"primaryRevision,omitempty"`
	// PromotedPrimaryRevision is, while Promoting, the revision the primary
	// runs once the canary is promoted, counted as PrimaryRevision is.
	PromotedPrimaryRevision string `json:"promotedPrimaryRevision,omitempty"`
	// LastFailedRevision is the revision of the last rolled-back canary.
	LastFailedRevision string `json:"lastFailedRevision,omitempty"`
	// RevisionStartTime is when the canary under analysis was detected.
	RevisionStartTime metav1.Time `json:"revisionStartTime,omitempty"`
	// LastTransitionTime is when the phase last changed.
	LastTransitionTime metav1.Time `json:"lastTransitionTime,omitempty"`
	// LastStepTime is when the weight last changed or a check last ran: the
	// next check is due one interval later.
	LastStepTime metav1.Time `json:"lastStepTime,omitempty"`
	// Message says what happened last, in words.
	Message string `json:"message,omitempty"`
	// Checks are the last results of each analysis check.
	Checks []CheckStatus `json:"checks,omitempty"`
	// Conditions hold the Promoted condition.
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`
	// ObservedGeneration is the Canary generation the status is for.
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
}

// Canary is the state of the canary releases of one opted-in Deployment, of
// the same name and namespace. The shifter creates and updates it; users read
// it with kubectl get canary and kubectl describe canary.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:categories=sluice
// +kubebuilder:printcolumn:name="Status",type=string,JSONPath=`.status.phase`
// +kubebuilder:printcolumn:name="Weight",type=integer,JSONPath=`.status.canaryWeight`
// +kubebuilder:printcolumn:name="FailedChecks",type=integer,JSONPath=`.status.failedChecks`
// +kubebuilder:printcolumn:name="LastTransitionTime",type=string,JSONPath=`.status.lastTransitionTime`
type Canary struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// Spec is the Deployment's settings, with the defaults applied.
	Spec Settings `json:"spec,omitempty"`
	// Status is the observed state.
	Status CanaryStatus `json:"status,omitempty"`
}

// CanaryList is a list of Canaries.
// +kubebuilder:object:root=true
type CanaryList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Canary `json:"items"`
}
