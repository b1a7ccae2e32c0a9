package cli

import (
	"bytes"
	"testing"
)

// TestLiveOutsideATerminal: plain lines, a block only when its key changes,
// no escape codes; the transcript gets the same.
func TestLiveOutsideATerminal(t *testing.T) {
	var out, transcript bytes.Buffer
	l := &Live{Out: &out, Transcript: &transcript}
	l.Line("==> step 1")
	l.Show([]string{"phase A"}, "a")
	l.Show([]string{"phase A, 3s later"}, "a")
	l.Line("event")
	l.Show([]string{"phase B"}, "b")
	want := "==> step 1\nphase A\nevent\nphase B\n"
	if out.String() != want || transcript.String() != want {
		t.Errorf("output %q, transcript %q; want %q", out.String(), transcript.String(), want)
	}
}

// TestLiveOnATerminal: the block is redrawn in place under new lines.
func TestLiveOnATerminal(t *testing.T) {
	var out, transcript bytes.Buffer
	l := &Live{Out: &out, Transcript: &transcript, Terminal: true}
	l.Show([]string{"one", "two"}, "k")
	l.Line("event")
	l.Show([]string{"three", "four"}, "k")
	l.Clear()
	want := "one\ntwo\n\x1b[2A\x1b[Jevent\none\ntwo\n\x1b[2A\x1b[Jthree\nfour\n\x1b[2A\x1b[J"
	if out.String() != want {
		t.Errorf("terminal output %q; want %q", out.String(), want)
	}
	if transcript.String() != "one\ntwo\nevent\n" {
		t.Errorf("transcript %q", transcript.String())
	}
}

// TestLiveFitsTheTerminal: lines are cut to the width and the block to the
// height, since what wraps or scrolls away cannot be redrawn.
func TestLiveFitsTheTerminal(t *testing.T) {
	var out bytes.Buffer
	l := &Live{Out: &out, Terminal: true, Width: 16, Height: 4}
	l.Show([]string{"123456789abcdefghij", "b", "c", "d", "e"}, "")
	l.Show([]string{"x"}, "")
	want := "123456789abcdefg\nb\n... 3 more lines\n\x1b[3A\x1b[Jx\n"
	if out.String() != want {
		t.Errorf("terminal output %q; want %q", out.String(), want)
	}
}
