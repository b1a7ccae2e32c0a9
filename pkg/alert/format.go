package alert

import (
	"encoding/json"
	"fmt"
	"unicode/utf16"

	"sluice.dev/sluice/pkg/canary"
)

// body is the JSON that provider p receives for m.
func body(p canary.AlertProvider, m Message) ([]byte, error) {
	var v any
	switch p {
	case canary.AlertSlack:
		v = slackBody(m)
	case canary.AlertMSTeams:
		v = teamsBody(m)
	case canary.AlertDiscord:
		v = discordBody(m)
	case canary.AlertGeneric:
		v = genericBody(m)
	default:
		return nil, fmt.Errorf("unknown provider %q; use slack, msteams, discord or generic", p)
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encode the %s message: %w", p, err)
	}
	return b, nil
}

// truncate cuts s to at most n characters, the last an ellipsis when cut.
// Characters are counted as JavaScript counts them, in UTF-16 code units,
// since that is how Slack and Discord measure their limits.
func truncate(s string, n int) string {
	if utf16Len(s) <= n {
		return s
	}
	end, units := 0, 0
	for i, r := range s {
		if units += utf16.RuneLen(r); units > n-1 {
			end = i
			break
		}
	}
	return s[:end] + "…"
}

// utf16Len is the length of s in UTF-16 code units.
func utf16Len(s string) int {
	n := 0
	for _, r := range s {
		n += utf16.RuneLen(r)
	}
	return n
}
