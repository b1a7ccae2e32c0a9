package main

import (
	"fmt"
	"io"
	"strings"

	"sluice.dev/sluice/pkg/canary"
)

// snapshot is what the live view shows at one moment.
type snapshot struct {
	phase  canary.Phase
	weight int32
	shares []share
	checks []canary.CheckStatus
}

// key is what of a snapshot is worth a new line outside a terminal: not the
// mix of answers, which changes with every request.
func (s snapshot) key() string {
	return fmt.Sprintf("%s %d %v", s.phase, s.weight, s.checks)
}

// render draws the status block of a snapshot.
func render(s snapshot) []string {
	lines := []string{fmt.Sprintf("  phase   %-12s canary weight %s", s.phase, bar(s.weight, 20))}
	lines = append(lines, answersLine(s.shares))
	for i, c := range s.checks {
		label := "  checks  "
		if i > 0 {
			label = "          "
		}
		lines = append(lines, label+c.String())
	}
	return lines
}

// answersLine shows the mix of the loop's answers.
func answersLine(shares []share) string {
	var mix []string
	for _, sh := range shares {
		mix = append(mix, fmt.Sprintf("%3.0f%% %q", 100*sh.fraction, sh.text))
	}
	return "  answers " + strings.Join(mix, "  ")
}

// bar draws weight percent as a bar of width cells.
func bar(weight int32, width int) string {
	full := int(weight) * width / 100
	return fmt.Sprintf("[%s%s] %3d%%", strings.Repeat("#", full), strings.Repeat(".", width-full), weight)
}

// screen shows the demo's narration, events and status block. On a
// terminal the block is redrawn in place under the scrolling lines;
// otherwise a block is printed only when it differs from the last, so that
// the output stays readable in a log. The transcript gets the plain lines.
type screen struct {
	out        io.Writer
	transcript io.Writer
	terminal   bool
	block      []string // as last drawn
	key        string   // of the block last printed as plain lines
}

// line prints a line above the block.
func (s *screen) line(format string, args ...any) {
	text := fmt.Sprintf(format, args...)
	fmt.Fprintln(s.transcript, text)
	if s.terminal {
		s.erase()
		fmt.Fprintln(s.out, text)
		s.draw(s.block)
		return
	}
	fmt.Fprintln(s.out, text)
}

// say narrates a step.
func (s *screen) say(format string, args ...any) {
	s.line("")
	s.line("==> "+format, args...)
}

// show replaces the status block. Outside a terminal, and in the
// transcript, it is printed only when its key (what matters of it) changes.
func (s *screen) show(block []string, key string) {
	if s.terminal && strings.Join(block, "\n") != strings.Join(s.block, "\n") {
		s.erase()
		s.draw(block)
	}
	s.block = block
	if key == s.key {
		return
	}
	s.key = key
	for _, l := range block {
		fmt.Fprintln(s.transcript, l)
		if !s.terminal {
			fmt.Fprintln(s.out, l)
		}
	}
}

// settle ends the live block: it stays on screen as ordinary lines.
func (s *screen) settle() { s.block, s.key = nil, "" }

// clear ends the live block and removes it from a terminal.
func (s *screen) clear() {
	if s.terminal {
		s.erase()
	}
	s.settle()
}

func (s *screen) draw(block []string) {
	for _, l := range block {
		fmt.Fprintln(s.out, l)
	}
}

// erase removes the block drawn last: up one line per line, clear below.
func (s *screen) erase() {
	if n := len(s.block); n > 0 {
		fmt.Fprintf(s.out, "\x1b[%dA\x1b[J", n)
	}
}
