package alert

import (
	"math"
	"time"

	"sluice.dev/sluice/pkg/canary"
)

// APIVersion names the version of the generic provider's JSON. A change
// that a receiver written for it could misread gets a new version.
const APIVersion = "sluice.dev/alerts/v1"

// genericMessage is sluice's own JSON, for endpoints of one's own.
type genericMessage struct {
	APIVersion   string          `json:"apiVersion"`
	Name         string          `json:"name"`
	Namespace    string          `json:"namespace"`
	Revision     string          `json:"revision"`
	Phase        canary.Phase    `json:"phase"`
	CanaryWeight int32           `json:"canaryWeight"`
	Severity     canary.Severity `json:"severity"`
	Reason       string          `json:"reason"`
	Message      string          `json:"message"`
	FailingCheck *genericCheck   `json:"failingCheck,omitempty"`
	// HeldBack counts the alerts held back since the last one sent.
	HeldBack int       `json:"heldBack,omitempty"`
	Command  string    `json:"command"`
	Time     time.Time `json:"time"`
}

// genericCheck is the failing check. It is the alerts' own type, not
// canary.CheckStatus, so that a change of the API leaves this JSON alone.
type genericCheck struct {
	Name         string         `json:"name"`
	Verdict      canary.Verdict `json:"verdict"`
	Value        *float64       `json:"value,omitempty"`
	PrimaryValue *float64       `json:"primaryValue,omitempty"`
	Min          *float64       `json:"min,omitempty"`
	Max          *float64       `json:"max,omitempty"`
	Unit         string         `json:"unit,omitempty"`
	Message      string         `json:"message,omitempty"`
}

// genericBody shapes m as sluice's own JSON.
func genericBody(m Message) genericMessage {
	g := genericMessage{
		APIVersion: APIVersion, Name: m.Name, Namespace: m.Namespace, Revision: m.Revision, Phase: m.Phase,
		CanaryWeight: m.CanaryWeight, Severity: m.severity(), Reason: m.Reason, Message: m.Text,
		HeldBack: m.heldBack, Command: m.command(), Time: m.Time,
	}
	if c := m.FailingCheck; c != nil {
		g.FailingCheck = &genericCheck{
			Name: c.Name, Verdict: c.Verdict, Value: finite(c.Value), PrimaryValue: finite(c.PrimaryValue),
			Min: finite(c.Min), Max: finite(c.Max), Unit: c.Unit, Message: c.Message,
		}
	}
	return g
}

// finite is v, or nil when v is NaN or infinite, which JSON cannot hold:
// an alert loses the number rather than the whole message.
func finite(v *float64) *float64 {
	if v == nil || math.IsNaN(*v) || math.IsInf(*v, 0) {
		return nil
	}
	return v
}
