package alert

import "sluice.dev/sluice/pkg/canary"

// teamsMessage is the body that Teams workflows ("When a Teams webhook
// request is received") and incoming webhooks take: a message with one
// Adaptive Card attached.
type teamsMessage struct {
	Type        string            `json:"type"`
	Attachments []teamsAttachment `json:"attachments"`
}

// teamsAttachment holds the card. ContentURL is sent as null, as
// Microsoft's examples do.
type teamsAttachment struct {
	ContentType string    `json:"contentType"`
	ContentURL  *string   `json:"contentUrl"`
	Content     teamsCard `json:"content"`
}

// teamsCard is an Adaptive Card. Version 1.4 is the newest that every
// Teams client renders.
type teamsCard struct {
	Schema  string         `json:"$schema"`
	Type    string         `json:"type"`
	Version string         `json:"version"`
	Body    []teamsElement `json:"body"`
}

// teamsElement is a TextBlock or a FactSet; each uses the fields its type
// needs.
type teamsElement struct {
	Type     string      `json:"type"`
	Text     string      `json:"text,omitempty"`
	Wrap     bool        `json:"wrap,omitempty"`
	Weight   string      `json:"weight,omitempty"`
	Size     string      `json:"size,omitempty"`
	Color    string      `json:"color,omitempty"`
	FontType string      `json:"fontType,omitempty"`
	IsSubtle bool        `json:"isSubtle,omitempty"`
	Facts    []teamsFact `json:"facts,omitempty"`
}

// teamsFact is one row of a FactSet.
type teamsFact struct {
	Title string `json:"title"`
	Value string `json:"value"`
}

// teamsColors are the title's colors by severity, from the card's palette.
var teamsColors = map[canary.Severity]string{
	canary.SeverityInfo:  "accent",
	canary.SeverityWarn:  "warning",
	canary.SeverityError: "attention",
}

// teamsBody shapes m as a card: a title colored by severity, the event's
// message, the facts, the alerts held back and the command to look.
func teamsBody(m Message) teamsMessage {
	body := []teamsElement{{Type: "TextBlock", Text: m.title(), Wrap: true, Weight: "Bolder", Size: "Medium", Color: teamsColors[m.severity()]}}
	if m.Text != "" {
		body = append(body, teamsElement{Type: "TextBlock", Text: m.Text, Wrap: true})
	}
	facts := teamsElement{Type: "FactSet"}
	for _, f := range m.facts() {
		facts.Facts = append(facts.Facts, teamsFact{f.name, f.value})
	}
	body = append(body, facts)
	if note := m.heldNote(); note != "" {
		body = append(body, teamsElement{Type: "TextBlock", Text: note, Wrap: true, IsSubtle: true})
	}
	body = append(body, teamsElement{Type: "TextBlock", Text: m.command(), Wrap: true, FontType: "Monospace"})
	return teamsMessage{
		Type: "message",
		Attachments: []teamsAttachment{{
			ContentType: "application/vnd.microsoft.card.adaptive",
			Content: teamsCard{
				Schema:  "http://adaptivecards.io/schemas/adaptive-card.json",
				Type:    "AdaptiveCard",
				Version: "1.4",
				Body:    body,
			},
		}},
	}
}
