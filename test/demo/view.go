package main

import (
	"bytes"
	"fmt"
	"strings"
	"time"

	"sluice.dev/sluice/pkg/canary"
	"sluice.dev/sluice/pkg/cli"
)

// render draws the live block: the canary as kubectl sluice get --watch
// shows it (one implementation, pkg/cli's), the mix of the loop's answers,
// and each check's last result. key is what of it is worth a new block
// outside a terminal: not the mix of answers, which changes with every
// request, nor the canary's age.
func render(cr *canary.Canary, shares []share, now time.Time) (block []string, key string) {
	table := func(now time.Time) []string {
		var b bytes.Buffer
		_ = cli.RenderTable(&b, []canary.Canary{*cr}, cli.TableOptions{Now: now})
		var lines []string
		for line := range strings.Lines(b.String()) {
			lines = append(lines, "  "+strings.TrimRight(line, "\n"))
		}
		return lines
	}
	var checks []string
	for i, c := range cr.Status.Checks {
		label := "  checks  "
		if i > 0 {
			label = "          "
		}
		checks = append(checks, label+c.String())
	}
	block = append(table(now), answersLine(shares))
	block = append(block, checks...)
	key = strings.Join(append(table(cr.CreationTimestamp.Time), checks...), "\n")
	return block, key
}

// answersLine shows the mix of the loop's answers.
func answersLine(shares []share) string {
	var mix []string
	for _, sh := range shares {
		mix = append(mix, fmt.Sprintf("%3.0f%% %q", 100*sh.fraction, sh.text))
	}
	return "  answers " + strings.Join(mix, "  ")
}

// screen is the demo's narration over pkg/cli's live view: the lines
// scroll, the canary's block is redrawn under them on a terminal, and the
// transcript gets the plain lines.
type screen struct {
	*cli.Live
}

// line prints a line above the block.
func (s *screen) line(format string, args ...any) { s.Line(fmt.Sprintf(format, args...)) }

// say narrates a step.
func (s *screen) say(format string, args ...any) {
	s.line("")
	s.line("==> "+format, args...)
}
