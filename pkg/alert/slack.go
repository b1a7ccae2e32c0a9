package alert

import "strings"

// slackMessage is the body of a Slack incoming webhook: Block Kit blocks,
// and the text that notifications and old clients show instead.
type slackMessage struct {
	Text   string       `json:"text"`
	Blocks []slackBlock `json:"blocks"`
}

// slackBlock is a header, section or context block; each uses the fields
// its type needs.
type slackBlock struct {
	Type     string      `json:"type"`
	Text     *slackText  `json:"text,omitempty"`
	Fields   []slackText `json:"fields,omitempty"`
	Elements []slackText `json:"elements,omitempty"`
}

// slackText is a text object, plain_text or mrkdwn.
type slackText struct {
	Type string `json:"type"`
	Text string `json:"text"`
}

// Block Kit's limits, in characters; Slack refuses a message over any.
const (
	slackHeaderMax = 150
	slackTextMax   = 3000
	slackFieldMax  = 2000
)

// slackBody shapes m as a header with the canary and what happened, a
// section with the event's message and the facts as fields, and a context
// with the command to look and the alerts held back.
func slackBody(m Message) slackMessage {
	section := slackBlock{Type: "section"}
	if m.Text != "" {
		section.Text = &slackText{"mrkdwn", truncate(slackEscape(m.Text), slackTextMax)}
	}
	for _, f := range m.facts() {
		section.Fields = append(section.Fields, slackText{"mrkdwn", truncate("*"+f.name+"*\n"+slackEscape(f.value), slackFieldMax)})
	}
	context := slackBlock{Type: "context", Elements: []slackText{{"mrkdwn", "`" + slackEscape(m.command()) + "`"}}}
	if note := m.heldNote(); note != "" {
		context.Elements = append(context.Elements, slackText{"mrkdwn", note})
	}
	return slackMessage{
		Text: slackEscape(m.Summary()),
		Blocks: []slackBlock{
			{Type: "header", Text: &slackText{"plain_text", truncate(m.title(), slackHeaderMax)}},
			section,
			context,
		},
	}
}

// slackEscape escapes the three characters that Slack's mrkdwn reads as
// markup, so that a message about "<none>" shows as written.
var slackEscape = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace
