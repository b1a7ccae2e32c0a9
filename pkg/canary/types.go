package canary

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Phase is where a canary stands.
// +kubebuilder:validation:Enum=Initialized;Waiting;Progressing;WaitingPromotion;Promoting;Succeeded;Failed
type Phase string

// The phases of a canary, in the order of a rollout.
const (
	// PhaseInitialized: routing is in place, all traffic goes to the primary.
	PhaseInitialized Phase = "Initialized"
	// PhaseWaiting: a new revision waits for its rollout to be confirmed
	// (confirm-rollout: manual), its canary at zero replicas.
	PhaseWaiting Phase = "Waiting"
	// PhaseProgressing: a canary runs and takes a share of the traffic.
	PhaseProgressing Phase = "Progressing"
	// PhaseWaitingPromotion: the canary holds at max-weight, still
	// analysed, until its promotion is confirmed (confirm-promotion: manual).
	PhaseWaitingPromotion Phase = "WaitingPromotion"
	// PhasePromoting: the canary template is being copied to the primary.
	PhasePromoting Phase = "Promoting"
	// PhaseSucceeded: the last canary was promoted.
	PhaseSucceeded Phase = "Succeeded"
	// PhaseFailed: the last canary was rolled back.
	PhaseFailed Phase = "Failed"
)

// Condition types of a Canary.
const (
	// ConditionPromoted tells whether the last canary was promoted.
	ConditionPromoted = "Promoted"
	// ConditionBlind is True while the analysis cannot see the canary's
	// metrics: Prometheus cannot be reached, refuses the query or times out.
	// The canary holds its weight meanwhile.
	ConditionBlind = "Blind"
	// ConditionProgressing is True while a revision is rolled out (from
	// its detection to its promotion or rollback), False otherwise.
	ConditionProgressing = "Progressing"
	// ConditionPaused is True while someone holds the rollout at its
	// weight (kubectl sluice pause); its interval clock stops.
	ConditionPaused = "Paused"
)

// Action is what a person or a pipeline asks of a rollout.
// +kubebuilder:validation:Enum=Pause;Resume;Promote;Abort;Retry
type Action string

// The actions of kubectl sluice.
const (
	// ActionPause holds the rollout at its weight; the interval clock stops.
	ActionPause Action = "Pause"
	// ActionResume undoes a pause, and confirms a rollout that waits for
	// confirm-rollout.
	ActionResume Action = "Resume"
	// ActionPromote skips the remaining steps and promotes once the canary
	// is ready (after the pending analysis, unless SkipAnalysis).
	ActionPromote Action = "Promote"
	// ActionAbort rolls the canary back now.
	ActionAbort Action = "Abort"
	// ActionRetry runs the last failed revision again.
	ActionRetry Action = "Retry"
)

// Intent is the last thing a person or a pipeline asked of the rollout of
// one revision. sluice never writes it: kubectl sluice does, and sluice's
// webhook stamps who asked and when.
type Intent struct {
	// Action asked.
	Action Action `json:"action"`
	// Revision is the canary revision the action is about (the status'
	// canaryRevision as the asker saw it); an intent about another
	// revision than the current one is ignored.
	// +kubebuilder:validation:MinLength=1
	Revision string `json:"revision"`
	// SkipAnalysis, with Promote, promotes without the pending analysis.
	// +optional
	SkipAnalysis bool `json:"skipAnalysis,omitempty"`
	// RequestedBy is the user who asked, as the API server authenticated
	// them; set by sluice's webhook.
	// +optional
	RequestedBy string `json:"requestedBy,omitempty"`
	// RequestedAt is when the webhook admitted the intent.
	// +optional
	RequestedAt metav1.Time `json:"requestedAt,omitempty"`
}

// IntentStatus is what the shifter made of an intent.
type IntentStatus struct {
	Intent `json:",inline"`
	// Result is Applied, or Ignored (the intent was about an older
	// revision, or means nothing in the phase it came in).
	// +kubebuilder:validation:Enum=Applied;Ignored
	Result string `json:"result"`
	// Message says what the intent did, or why it was ignored.
	// +optional
	Message string `json:"message,omitempty"`
}

// The results of an intent.
const (
	IntentApplied = "Applied"
	IntentIgnored = "Ignored"
)

// CanarySpec is a Canary's desired state: the Deployment's settings, which
// the shifter writes, and the intent of people and pipelines, which it never
// does.
type CanarySpec struct {
	Settings `json:",inline"`
	// Intent is the last action asked of the rollout (kubectl sluice
	// pause, resume, promote, abort, retry).
	// +optional
	Intent *Intent `json:"intent,omitempty"`
}

// Verdict is the judgement of one check.
// +kubebuilder:validation:Enum=Passed;Failed;Inconclusive;Blind
type Verdict string

// The verdicts of a check.
const (
	// VerdictPassed: the value is good, on enough evidence.
	VerdictPassed Verdict = "Passed"
	// VerdictFailed: the value is bad; it counts toward the threshold.
	VerdictFailed Verdict = "Failed"
	// VerdictInconclusive: too few requests, or no data, to judge; the step
	// holds and nothing is counted.
	VerdictInconclusive Verdict = "Inconclusive"
	// VerdictBlind: the metrics could not be read; the step holds and
	// nothing is counted.
	VerdictBlind Verdict = "Blind"
)

// CheckStatus is the last result of one analysis check.
type CheckStatus struct {
	// Name of the check, such as request-success-rate.
	Name string `json:"name"`
	// Verdict is the judgement of the value against the check's bounds.
	Verdict Verdict `json:"verdict"`
	// Value measured on the canary, in Unit; absent without data.
	// +optional
	Value *float64 `json:"value,omitempty"`
	// PrimaryValue is the primary's value over the same window, where the
	// check compares the canary with it.
	// +optional
	PrimaryValue *float64 `json:"primaryValue,omitempty"`
	// Min is the least good value, in Unit.
	// +optional
	Min *float64 `json:"min,omitempty"`
	// Max is the greatest good value, in Unit.
	// +optional
	Max *float64 `json:"max,omitempty"`
	// Unit of the values: "%" or "ms" for the built-in checks.
	// +optional
	Unit string `json:"unit,omitempty"`
	// Samples is the number of canary requests the verdict rests on.
	// +optional
	Samples *int64 `json:"samples,omitempty"`
	// Decisive marks a failure certain enough to roll back at once, whatever
	// the failed-checks threshold.
	// +optional
	Decisive bool `json:"decisive,omitempty"`
	// Message explains a verdict other than Passed.
	// +optional
	Message string `json:"message,omitempty"`
}

// Evidence is the request counts the analysis gathered: at the current
// weight, for the step's verdict and the comparison with the primary, and
// since the analysis started, for the sequential test of the canary.
type Evidence struct {
	// Until is the end of the last period counted: the next count starts
	// there, so that no request is counted twice.
	// +optional
	Until metav1.Time `json:"until,omitempty"`
	// Requests to the canary at this weight.
	Requests int64 `json:"requests"`
	// Errors are the canary's 5xx responses at this weight.
	Errors int64 `json:"errors"`
	// SlowRequests are the canary's requests slower than
	// max-request-duration at this weight.
	SlowRequests int64 `json:"slowRequests"`
	// PrimaryRequests are the requests to the primary at this weight.
	PrimaryRequests int64 `json:"primaryRequests"`
	// PrimaryErrors are the primary's 5xx responses at this weight.
	PrimaryErrors int64 `json:"primaryErrors"`
	// TotalRequests to the canary since the analysis started.
	TotalRequests int64 `json:"totalRequests"`
	// TotalErrors of the canary since the analysis started.
	TotalErrors int64 `json:"totalErrors"`
	// TotalSlowRequests of the canary since the analysis started.
	TotalSlowRequests int64 `json:"totalSlowRequests"`
}

// CanaryStatus is the observed state of a Deployment's canary.
type CanaryStatus struct {
	// Phase is where the canary stands.
	Phase Phase `json:"phase,omitempty"`
	// CanaryWeight is the share of traffic, in percent, sent to the canary.
	CanaryWeight int32 `json:"canaryWeight"`
	// Iterations counts the analysed intervals of an A/B test, or of the
	// mirroring, that passed.
	// +optional
	Iterations int32 `json:"iterations,omitempty"`
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
	// StepStartTime is when the canary reached its current weight, or when
	// a failed check was last counted there: the evidence of the step is
	// gathered since, and the evidence deadline counts from it.
	StepStartTime metav1.Time `json:"stepStartTime,omitempty"`
	// Evidence is the request counts the checks are judged on.
	// +optional
	Evidence *Evidence `json:"evidence,omitempty"`
	// Message says what happened last, in words.
	Message string `json:"message,omitempty"`
	// Checks are the last results of each analysis check.
	Checks []CheckStatus `json:"checks,omitempty"`
	// Conditions hold the Promoted and Blind conditions.
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`
	// Policy is the policy the canary under analysis runs by, as it was
	// when its analysis started: a policy changed or deleted meanwhile
	// applies from the next revision on.
	// +optional
	Policy *PolicySnapshot `json:"policy,omitempty"`
	// SettingSources says where each setting of the spec came from: the
	// annotation, a policy ("CanaryPolicy strict"), or the default.
	// +optional
	SettingSources map[string]string `json:"settingSources,omitempty"`
	// ObservedGeneration is the Canary generation the status is for.
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// ObservedIntent is the last intent the shifter acted on, and how.
	// +optional
	ObservedIntent *IntentStatus `json:"observedIntent,omitempty"`
	// PausedAt is when the rollout was paused; unset when it is not.
	// +optional
	PausedAt *metav1.Time `json:"pausedAt,omitempty"`
	// Webhooks are the last calls of the lifecycle webhooks in the current
	// revision, one per webhook; they also record that the pre-rollout and
	// post-rollout webhooks were called, so that a restarted shifter does
	// not call them again.
	// +listType=map
	// +listMapKey=name
	// +optional
	Webhooks []HookStatus `json:"webhooks,omitempty"`
}

// Canary is the state of the canary releases of one opted-in Deployment, of
// the same name and namespace. The shifter creates and updates it; users read
// it with kubectl get canary and kubectl describe canary.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:categories=sluice,shortName=scn
// +kubebuilder:printcolumn:name="Status",type=string,JSONPath=`.status.phase`
// +kubebuilder:printcolumn:name="Weight",type=integer,JSONPath=`.status.canaryWeight`
// +kubebuilder:printcolumn:name="Iteration",type=integer,JSONPath=`.status.iterations`,priority=1
// +kubebuilder:printcolumn:name="FailedChecks",type=integer,JSONPath=`.status.failedChecks`
// +kubebuilder:printcolumn:name="Paused",type=string,JSONPath=`.status.conditions[?(@.type=="Paused")].status`
// +kubebuilder:printcolumn:name="LastTransitionTime",type=string,JSONPath=`.status.lastTransitionTime`
type Canary struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// Spec is the Deployment's settings, with the defaults applied, and
	// the intent of people and pipelines.
	Spec CanarySpec `json:"spec,omitempty"`
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
