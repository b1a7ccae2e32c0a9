// Package alert tells chat channels and endpoints the news of canary
// rollouts, as a policy's alerts ask: it words a Message, shapes it for each
// provider (Slack, Microsoft Teams, Discord, or sluice's own JSON), and sends
// it in the background, filtered by severity and limited per canary, so that
// a receiver that is slow or down holds up no reconcile.
package alert

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"sluice.dev/sluice/pkg/canary"
)

// Message is what an alert says: one event of a canary's rollout, with the
// state the canary was in.
type Message struct {
	// Namespace and Name of the Deployment (and its Canary).
	Namespace string
	Name      string
	// Revision is the canary revision the event is about.
	Revision string
	// Phase and CanaryWeight are the canary's when the event was recorded.
	Phase        canary.Phase
	CanaryWeight int32
	// Severity is how bad the event is; SeverityOf gives it. Empty is info.
	Severity canary.Severity
	// Reason is the event's reason, such as NewRevision, Promoted, Halted,
	// RollingBack or Failed.
	Reason string
	// Text is the event's message.
	Text string
	// FailingCheck is the check that failed, with its value and bounds;
	// nil when no check is to blame.
	FailingCheck *canary.CheckStatus
	// Time is when the event was recorded; Notify sets the present when
	// it is zero.
	Time time.Time

	// heldBack counts the alerts of this canary to one receiver that its
	// min interval held back since the last one sent. The Notifier sets it
	// per receiver, so callers cannot.
	heldBack int
}

// The event reasons whose alerts are errors: the canary is rolled back.
const (
	reasonRollingBack = "RollingBack"
	reasonFailed      = "Failed"
	reasonSuperseded  = "Superseded"
)

// The event reasons whose alerts are warnings even when the event is not.
const (
	reasonHalted = "Halted"
	reasonBlind  = "Blind"
)

// SeverityOf gives the severity of an alert about an event of reason, a
// Warning event if warning:
//
//   - error: the canary is rolled back (RollingBack, Failed, Superseded), so
//     someone should look now;
//   - warn: the rollout holds (Halted: a check failed; Blind: the analysis
//     cannot read the metrics), or sluice recorded any other Warning event,
//     which asks for attention but may mend by itself;
//   - info: everything else, the normal course of a rollout (NewRevision,
//     Advanced, Promoted, ...).
func SeverityOf(reason string, warning bool) canary.Severity {
	switch {
	case reason == reasonRollingBack, reason == reasonFailed, reason == reasonSuperseded:
		return canary.SeverityError
	case reason == reasonHalted, reason == reasonBlind, warning:
		return canary.SeverityWarn
	}
	return canary.SeverityInfo
}

// Wants reports whether an alert whose least severity is least sends a
// message of severity sev. Empty is info, the least, for both; so is a
// severity sluice does not know, so that a typo sends too much rather than
// nothing.
func Wants(least, sev canary.Severity) bool {
	return rank(sev) >= rank(least)
}

func rank(s canary.Severity) int {
	switch s {
	case canary.SeverityError:
		return 2
	case canary.SeverityWarn:
		return 1
	}
	return 0
}

// severity is m.Severity, info when empty, as receivers are shown it.
func (m Message) severity() canary.Severity {
	if m.Severity == "" {
		return canary.SeverityInfo
	}
	return m.Severity
}

// Summary is the message in one to three lines of plain text: what
// happened, the revision, weight and failing check, and the command that
// shows the whole story.
func (m Message) Summary() string {
	first := m.title()
	if m.Text != "" {
		first += ": " + m.Text
	}
	var facts []string
	for _, f := range m.facts() {
		facts = append(facts, strings.ToLower(f.name)+" "+f.value)
	}
	second := strings.Join(facts, ", ")
	if note := m.heldNote(); note != "" {
		second += "; " + note
	}
	return first + "\n" + second + "\n" + m.command()
}

// title names the canary and what happened, for a headline.
func (m Message) title() string {
	return fmt.Sprintf("%s/%s %s (%s)", m.Namespace, m.Name, m.Reason, m.severity())
}

// command is what shows the canary's whole story.
func (m Message) command() string {
	return fmt.Sprintf("kubectl sluice status %s -n %s", m.Name, m.Namespace)
}

// heldNote says how many alerts were held back before this one; empty when
// none were.
func (m Message) heldNote() string {
	if m.heldBack == 0 {
		return ""
	}
	return fmt.Sprintf("%d more held back since the last alert", m.heldBack)
}

// fact is one named detail of a message, a field of a chat card.
type fact struct{ name, value string }

// facts are the details of m that a card shows as fields: the revision, the
// weight, the phase and the failing check, those known.
func (m Message) facts() []fact {
	var fs []fact
	if m.Revision != "" {
		fs = append(fs, fact{"Revision", m.Revision})
	}
	fs = append(fs, fact{"Canary weight", fmt.Sprintf("%d%%", m.CanaryWeight)})
	if m.Phase != "" {
		fs = append(fs, fact{"Phase", string(m.Phase)})
	}
	if c := m.FailingCheck; c != nil {
		fs = append(fs, fact{"Failing check", checkLine(c)})
	}
	return fs
}

// checkLine is a check's name and value, with the bounds it is judged by:
// "request-success-rate 91.2% (min 99%, primary 99.95%)".
func checkLine(c *canary.CheckStatus) string {
	value := "no data"
	if c.Value != nil {
		value = number(*c.Value) + c.Unit
	}
	var bounds []string
	if c.Min != nil {
		bounds = append(bounds, "min "+number(*c.Min)+c.Unit)
	}
	if c.Max != nil {
		bounds = append(bounds, "max "+number(*c.Max)+c.Unit)
	}
	if c.PrimaryValue != nil {
		bounds = append(bounds, "primary "+number(*c.PrimaryValue)+c.Unit)
	}
	line := c.Name + " " + value
	if len(bounds) > 0 {
		line += " (" + strings.Join(bounds, ", ") + ")"
	}
	return line
}

// number writes v with four significant digits, as the analysis words its
// verdicts, but never in exponent form above 10,000, which latencies in
// milliseconds reach.
func number(v float64) string {
	if math.Abs(v) >= 1e4 {
		return strconv.FormatFloat(v, 'f', 0, 64)
	}
	return strconv.FormatFloat(v, 'g', 4, 64)
}
