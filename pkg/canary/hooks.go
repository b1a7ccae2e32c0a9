package canary

import (
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// HookType is when a lifecycle webhook is called, and what its answer does.
// +kubebuilder:validation:Enum=confirm-rollout;pre-rollout;rollout;confirm-traffic-increase;confirm-promotion;post-rollout;rollback;event
type HookType string

// The webhook types.
const (
	// HookConfirmRollout is asked before the canary is scaled up; anything
	// but 2xx keeps the revision Waiting, asked again each interval.
	HookConfirmRollout HookType = "confirm-rollout"
	// HookPreRollout runs once the canary is ready, before any traffic; a
	// failure counts as a failed check.
	HookPreRollout HookType = "pre-rollout"
	// HookRollout runs at each analysis, before the checks; a failure
	// counts as a failed check.
	HookRollout HookType = "rollout"
	// HookConfirmTrafficIncrease is asked before each weight increase;
	// anything but 2xx holds the weight, still analysed.
	HookConfirmTrafficIncrease HookType = "confirm-traffic-increase"
	// HookConfirmPromotion is asked at max-weight; anything but 2xx holds
	// there (WaitingPromotion), still analysed.
	HookConfirmPromotion HookType = "confirm-promotion"
	// HookPostRollout is told the outcome once; its failure changes nothing.
	HookPostRollout HookType = "post-rollout"
	// HookRollback is asked each analysis; a 2xx rolls back at once.
	HookRollback HookType = "rollback"
	// HookEvent is sent every event sluice records for the canary.
	HookEvent HookType = "event"
)

// Gate reports whether the type asks a question whose "no" (or silence)
// holds the rollout, rather than failing it.
func (t HookType) Gate() bool {
	return t == HookConfirmRollout || t == HookConfirmTrafficIncrease || t == HookConfirmPromotion
}

// WebhookSpec is a lifecycle webhook of a policy: an HTTP endpoint that
// sluice calls with a signed JSON payload at one point of each rollout.
type WebhookSpec struct {
	// Name of the webhook, unique in the policy.
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	// +kubebuilder:validation:MaxLength=63
	Name string `json:"name"`
	// Type is when it is called: confirm-rollout, pre-rollout, rollout,
	// confirm-traffic-increase, confirm-promotion, post-rollout, rollback
	// or event.
	Type HookType `json:"type"`
	// URL is where the payload is POSTed.
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:XValidation:rule="isURL(self) && url(self).getScheme() in ['http', 'https']",message="url must be an http or https URL"
	URL string `json:"url"`
	// Timeout bounds each attempt; 10s when unset.
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('100ms') && duration(self) <= duration('10m')",message="timeout must be between 100ms and 10m"
	// +optional
	Timeout *metav1.Duration `json:"timeout,omitempty"`
	// Retries is how many times a failed attempt (no answer, or a 5xx or
	// 429) is tried again, with backoff; 2 when unset.
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=10
	// +optional
	Retries *int32 `json:"retries,omitempty"`
	// Metadata is sent along in the payload, as the receiver's parameters.
	// +kubebuilder:validation:MaxProperties=50
	// +optional
	Metadata map[string]string `json:"metadata,omitempty"`
	// SigningSecret holds the key with which each request is signed
	// (HMAC-SHA256, header Sluice-Signature); unsigned when unset.
	// +optional
	SigningSecret *SecretKeyRef `json:"signingSecret,omitempty"`
}

// The defaults of a webhook's optional fields.
const (
	DefaultHookTimeout = 10 * time.Second
	DefaultHookRetries = 2
)

// AlertProvider is the chat or endpoint an alert goes to.
// +kubebuilder:validation:Enum=slack;msteams;discord;generic
type AlertProvider string

// The alert providers.
const (
	AlertSlack   AlertProvider = "slack"
	AlertMSTeams AlertProvider = "msteams"
	AlertDiscord AlertProvider = "discord"
	// AlertGeneric POSTs sluice's own JSON.
	AlertGeneric AlertProvider = "generic"
)

// Severity is how bad what an alert tells is, and, in an AlertSpec, the
// least that is sent.
// +kubebuilder:validation:Enum=info;warn;error
type Severity string

// The severities, from the least.
const (
	// SeverityInfo: every phase change.
	SeverityInfo Severity = "info"
	// SeverityWarn: halts, blind analyses and failures.
	SeverityWarn Severity = "warn"
	// SeverityError: failures only.
	SeverityError Severity = "error"
)

// AlertSpec sends the rollouts' news to a chat channel or an endpoint.
type AlertSpec struct {
	// Name of the alert, unique in the policy.
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	// +kubebuilder:validation:MaxLength=63
	Name string `json:"name"`
	// Provider is slack, msteams, discord or generic.
	Provider AlertProvider `json:"provider"`
	// AddressSecret holds the URL to POST to (a Slack or Discord incoming
	// webhook, a Teams workflow URL): URLs of chat webhooks are secrets.
	AddressSecret SecretKeyRef `json:"addressSecret"`
	// Severity is the least severity sent: info (every phase change), warn
	// (halts and failures) or error (failures only); info when unset.
	// +optional
	Severity Severity `json:"severity,omitempty"`
	// MinInterval is the least time between two alerts of one canary to
	// this provider; the ones in between are counted, and the next alert
	// says how many were held back. Failures are never held back. 1m when
	// unset.
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('0s') && duration(self) <= duration('24h')",message="minInterval must be between 0s and 24h"
	// +optional
	MinInterval *metav1.Duration `json:"minInterval,omitempty"`
}

// DefaultAlertMinInterval is AlertSpec.MinInterval when unset.
const DefaultAlertMinInterval = time.Minute

// HookStatus is the last call of one webhook in the current revision.
type HookStatus struct {
	// Name and Type of the webhook.
	Name string   `json:"name"`
	Type HookType `json:"type"`
	// Revision is the canary revision the call was about.
	Revision string `json:"revision"`
	// Result is Succeeded (2xx), Failed (another answer) or Unreachable
	// (no answer after the retries).
	Result HookResult `json:"result"`
	// Message says what the receiver answered, or why it could not.
	// +optional
	Message string `json:"message,omitempty"`
	// Time is when the call ended.
	Time metav1.Time `json:"time"`
}

// HookResult is how a webhook call ended.
type HookResult string

// The webhook results.
const (
	HookSucceeded   HookResult = "Succeeded"
	HookFailed      HookResult = "Failed"
	HookUnreachable HookResult = "Unreachable"
)
