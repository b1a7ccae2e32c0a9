// Package hooks calls the lifecycle webhooks of a canary's policy: it builds
// the versioned JSON payload, signs it, and delivers it with timeouts,
// retries and a limit on concurrent calls per receiver, in the background,
// so that a receiver that hangs holds up no reconcile.
package hooks

import (
	"math"
	"time"

	"sluice.dev/sluice/pkg/canary"
)

// APIVersion names the version of the payload's schema. A change that a
// receiver written for it could misread gets a new version.
const APIVersion = "sluice.dev/hooks/v1"

// The HTTP headers of a call, besides Content-Type and User-Agent.
const (
	// HeaderSignature signs the body: "t=UNIX,v1=HEX", HEX being the
	// HMAC-SHA256 of "UNIX.BODY" under the webhook's key.
	HeaderSignature = "Sluice-Signature"
	// HeaderDelivery is the payload's id: the same for every attempt of
	// one call, and after a restart of the shifter, so that a receiver can
	// tell a repeat.
	HeaderDelivery = "Sluice-Delivery"
	// HeaderType is the webhook's type.
	HeaderType = "Sluice-Hook"
)

// Payload is the JSON body of every webhook call.
type Payload struct {
	// APIVersion is APIVersion.
	APIVersion string `json:"apiVersion"`
	// ID names the call; HeaderDelivery repeats it.
	ID string `json:"id"`
	// Type and Webhook are the type and name of the webhook called.
	Type    canary.HookType `json:"type"`
	Webhook string          `json:"webhook"`
	// Name and Namespace of the Deployment (and its Canary).
	Name      string `json:"name"`
	Namespace string `json:"namespace"`
	// Phase is the Canary's phase when the call was decided.
	Phase canary.Phase `json:"phase"`
	// Revision is the canary revision the call is about; PrimaryRevision
	// the primary's.
	Revision        string `json:"revision"`
	PrimaryRevision string `json:"primaryRevision,omitempty"`
	// CanaryWeight is the canary's share of the traffic, in percent.
	CanaryWeight int32 `json:"canaryWeight"`
	// FailedChecks counts the failed analyses of the revision so far.
	FailedChecks int32 `json:"failedChecks"`
	// Checks are the verdicts of the last analysis.
	Checks []Check `json:"checks,omitempty"`
	// Metadata is the webhook's metadata, as the policy gives it.
	Metadata map[string]string `json:"metadata,omitempty"`
	// Event is the event that an event webhook is told of.
	Event *Event `json:"event,omitempty"`
	// Time is when the call was decided.
	Time time.Time `json:"time"`
}

// Check is one check's verdict in the last analysis.
type Check struct {
	Name    string         `json:"name"`
	Verdict canary.Verdict `json:"verdict"`
	// Value is the canary's; PrimaryValue the primary's, when compared.
	Value        *float64 `json:"value,omitempty"`
	PrimaryValue *float64 `json:"primaryValue,omitempty"`
	// Min and Max are the bounds of a good value.
	Min  *float64 `json:"min,omitempty"`
	Max  *float64 `json:"max,omitempty"`
	Unit string   `json:"unit,omitempty"`
	// Message says why, in words.
	Message string `json:"message,omitempty"`
}

// Event is a Kubernetes event sluice recorded for the canary.
type Event struct {
	// Type is Normal or Warning.
	Type    string `json:"type"`
	Reason  string `json:"reason"`
	Message string `json:"message"`
}

// ChecksOf converts a Canary's check statuses for the payload.
func ChecksOf(statuses []canary.CheckStatus) []Check {
	if len(statuses) == 0 {
		return nil
	}
	out := make([]Check, len(statuses))
	for i, c := range statuses {
		out[i] = CheckOf(c)
	}
	return out
}

// CheckOf converts one check status. Values JSON cannot carry (NaN, ±Inf,
// which a query may give) are left out.
func CheckOf(c canary.CheckStatus) Check {
	return Check{Name: c.Name, Verdict: c.Verdict, Value: finite(c.Value), PrimaryValue: finite(c.PrimaryValue),
		Min: finite(c.Min), Max: finite(c.Max), Unit: c.Unit, Message: c.Message}
}

func finite(v *float64) *float64 {
	if v == nil || math.IsNaN(*v) || math.IsInf(*v, 0) {
		return nil
	}
	return v
}
