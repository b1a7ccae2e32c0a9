package alert

import (
	"time"

	"sluice.dev/sluice/pkg/canary"
	"sluice.dev/sluice/pkg/hooks"
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
	FailingCheck *hooks.Check    `json:"failingCheck,omitempty"`
	// HeldBack counts the alerts held back since the last one sent.
	HeldBack int       `json:"heldBack,omitempty"`
	Command  string    `json:"command"`
	Time     time.Time `json:"time"`
}

// genericBody shapes m as sluice's own JSON.
func genericBody(m Message) genericMessage {
	g := genericMessage{
		APIVersion: APIVersion, Name: m.Name, Namespace: m.Namespace, Revision: m.Revision, Phase: m.Phase,
		CanaryWeight: m.CanaryWeight, Severity: m.severity(), Reason: m.Reason, Message: m.Text,
		HeldBack: m.heldBack, Command: m.command(), Time: m.Time,
	}
	if c := m.FailingCheck; c != nil {
		// The webhooks' shape of a check, not canary.CheckStatus: a
		// change of the API leaves this JSON alone.
		check := hooks.CheckOf(*c)
		g.FailingCheck = &check
	}
	return g
}
