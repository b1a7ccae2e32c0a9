package cli

import (
	"fmt"
	"io"
	"os"
	"strings"

	"golang.org/x/term"
)

// Live is a live view: lines that scroll (events, narration) above a block
// that shows the current state. On a terminal the block is redrawn in place
// under the lines; otherwise it is printed again only when its key (what
// matters of it, not a clock) changes, so that the output stays readable in
// a log. kubectl sluice get --watch and status --watch, and the demo, show
// canaries through it.
type Live struct {
	// Out is where the view is drawn.
	Out io.Writer
	// Terminal redraws the block in place.
	Terminal bool
	// Width and Height are the terminal's size, 0 when unknown: on a
	// terminal, block lines are cut to the width and the block to the
	// height, since lines that wrap or scroll away cannot be redrawn.
	Width, Height int
	// Transcript, when set, gets the plain lines and every block printed
	// as it would be outside a terminal.
	Transcript io.Writer

	block []string // as last drawn
	key   string   // of the block last printed as plain lines
	drawn int      // lines of the block on the terminal
}

// NewLive returns a Live view on out, redrawing in place when out is a
// terminal.
func NewLive(out io.Writer) *Live {
	l := &Live{Out: out}
	if f, ok := out.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		l.Terminal = true
		l.Width, l.Height, _ = term.GetSize(int(f.Fd()))
	}
	return l
}

// Line prints a line above the block.
func (l *Live) Line(text string) {
	if l.Transcript != nil {
		fmt.Fprintln(l.Transcript, text)
	}
	if l.Terminal {
		l.erase()
		fmt.Fprintln(l.Out, text)
		l.draw()
		return
	}
	fmt.Fprintln(l.Out, text)
}

// Show replaces the block. Outside a terminal, and in the transcript, it is
// printed only when key differs from the last block's.
func (l *Live) Show(block []string, key string) {
	if l.Terminal && strings.Join(block, "\n") != strings.Join(l.block, "\n") {
		l.erase()
		l.block = block
		l.draw()
	}
	l.block = block
	if key == l.key {
		return
	}
	l.key = key
	for _, line := range block {
		if l.Transcript != nil {
			fmt.Fprintln(l.Transcript, line)
		}
		if !l.Terminal {
			fmt.Fprintln(l.Out, line)
		}
	}
}

// Settle ends the block: it stays on the screen as ordinary lines, and the
// next block is printed whatever its key.
func (l *Live) Settle() { l.block, l.key, l.drawn = nil, "", 0 }

// Clear ends the block and removes it from a terminal.
func (l *Live) Clear() {
	if l.Terminal {
		l.erase()
	}
	l.Settle()
}

// draw writes the block, fitted to the terminal.
func (l *Live) draw() {
	lines := l.block
	if l.Height > 1 && len(lines) >= l.Height {
		more := len(lines) - (l.Height - 2)
		lines = append(lines[:l.Height-2:l.Height-2], fmt.Sprintf("... %d more lines", more))
	}
	for _, line := range lines {
		fmt.Fprintln(l.Out, cut(line, l.Width))
	}
	l.drawn = len(lines)
}

// erase removes the block drawn last: up one line per line, clear below.
func (l *Live) erase() {
	if l.drawn > 0 {
		fmt.Fprintf(l.Out, "\x1b[%dA\x1b[J", l.drawn)
	}
	l.drawn = 0
}

// cut keeps the first width characters of line; all of it for width 0.
func cut(line string, width int) string {
	if width <= 0 || len(line) <= width {
		return line
	}
	if r := []rune(line); len(r) > width {
		return string(r[:width])
	}
	return line
}
