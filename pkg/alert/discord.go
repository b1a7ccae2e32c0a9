package alert

import (
	"time"

	"sluice.dev/sluice/pkg/canary"
)

// discordMessage is the body of a Discord webhook: a line of content, which
// notifications show, and one embed with the details.
type discordMessage struct {
	Content string         `json:"content"`
	Embeds  []discordEmbed `json:"embeds"`
}

// discordEmbed is a rich card; Color is an RGB integer.
type discordEmbed struct {
	Title       string         `json:"title"`
	Description string         `json:"description,omitempty"`
	Color       int            `json:"color"`
	Fields      []discordField `json:"fields,omitempty"`
	Footer      *discordFooter `json:"footer,omitempty"`
	Timestamp   string         `json:"timestamp,omitempty"`
}

// discordField is a named value of an embed; inline ones share a row.
type discordField struct {
	Name   string `json:"name"`
	Value  string `json:"value"`
	Inline bool   `json:"inline"`
}

// discordFooter is the small text under an embed.
type discordFooter struct {
	Text string `json:"text"`
}

// Discord's limits, in characters; Discord refuses a message over any.
const (
	discordContentMax     = 2000
	discordTitleMax       = 256
	discordDescriptionMax = 4096
	discordFieldNameMax   = 256
	discordFieldValueMax  = 1024
	discordFooterMax      = 2048
	// discordEmbedMax bounds the title, description, fields and footer of
	// an embed together.
	discordEmbedMax = 6000
)

// discordColors are the embed's colors by severity: blue, amber, red.
var discordColors = map[canary.Severity]int{
	canary.SeverityInfo:  0x3B82F6,
	canary.SeverityWarn:  0xF59E0B,
	canary.SeverityError: 0xDC2626,
}

// discordBody shapes m as its title for content and an embed colored by
// severity with the event's message, the facts and the command as fields,
// and the alerts held back in the footer. The message is cut to what the
// limits leave of the embed, since it is the only part of unbounded length.
func discordBody(m Message) discordMessage {
	e := discordEmbed{Title: truncate(m.title(), discordTitleMax), Color: discordColors[m.severity()]}
	fields := append(m.facts(), fact{"Look", "`" + m.command() + "`"})
	for _, f := range fields {
		e.Fields = append(e.Fields, discordField{
			Name:  truncate(f.name, discordFieldNameMax),
			Value: truncate(f.value, discordFieldValueMax),
			// The failing check is a long line; the rest share rows.
			Inline: f.name != "Failing check",
		})
	}
	if note := m.heldNote(); note != "" {
		e.Footer = &discordFooter{Text: truncate(note, discordFooterMax)}
	}
	if !m.Time.IsZero() {
		e.Timestamp = m.Time.UTC().Format(time.RFC3339)
	}
	if m.Text != "" {
		left := discordEmbedMax - embedLen(e)
		e.Description = truncate(m.Text, min(discordDescriptionMax, left))
	}
	return discordMessage{Content: truncate(m.title(), discordContentMax), Embeds: []discordEmbed{e}}
}

// embedLen is the length of the text of e that counts toward
// discordEmbedMax.
func embedLen(e discordEmbed) int {
	n := utf16Len(e.Title) + utf16Len(e.Description)
	for _, f := range e.Fields {
		n += utf16Len(f.Name) + utf16Len(f.Value)
	}
	if e.Footer != nil {
		n += utf16Len(e.Footer.Text)
	}
	return n
}
