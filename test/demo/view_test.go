package main

import (
	"bytes"
	"strings"
	"testing"

	"k8s.io/utils/ptr"

	"sluice.dev/sluice/pkg/canary"
)

func TestBar(t *testing.T) {
	cases := map[int32]string{
		0:   "[....................]   0%",
		20:  "[####................]  20%",
		100: "[####################] 100%",
	}
	for weight, want := range cases {
		if got := bar(weight, 20); got != want {
			t.Errorf("bar(%d) = %q; want %q", weight, got, want)
		}
	}
}

func TestRender(t *testing.T) {
	got := render(snapshot{
		phase: canary.PhaseProgressing, weight: 40,
		shares: []share{{"hello, progressive!", 0.6}, {"hello, rolling update!", 0.4}},
		checks: []canary.CheckStatus{
			{Name: "request-success-rate", Verdict: canary.VerdictFailed, Value: ptr.To(54.2), PrimaryValue: ptr.To(99.5),
				Min: ptr.To(99.0), Unit: "%", Samples: ptr.To[int64](240)},
			{Name: "request-duration", Verdict: canary.VerdictPassed, Value: ptr.To(25.0), Max: ptr.To(500.0), Unit: "ms",
				Samples: ptr.To[int64](480)},
		},
	})
	want := []string{
		"  phase   Progressing  canary weight [########............]  40%",
		`  answers  60% "hello, progressive!"   40% "hello, rolling update!"`,
		"  checks  request-success-rate 54.20% (primary 99.50%, min 99%, 240 requests): Failed",
		"          request-duration 25ms (max 500ms, 480 requests): Passed",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("render:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestScreenOutsideATerminal: plain lines, a block only when its key
// changes, no escape codes; the transcript gets the same.
func TestScreenOutsideATerminal(t *testing.T) {
	var out, transcript bytes.Buffer
	s := &screen{out: &out, transcript: &transcript}
	s.say("step %d", 1)
	s.show([]string{"phase A"}, "a")
	s.show([]string{"phase A, new mix"}, "a")
	s.line("event")
	s.show([]string{"phase B"}, "b")
	want := "\n==> step 1\nphase A\nevent\nphase B\n"
	if out.String() != want || transcript.String() != want {
		t.Errorf("output %q, transcript %q; want %q", out.String(), transcript.String(), want)
	}
}

// TestScreenOnATerminal: the block is redrawn in place under new lines.
func TestScreenOnATerminal(t *testing.T) {
	var out, transcript bytes.Buffer
	s := &screen{out: &out, transcript: &transcript, terminal: true}
	s.show([]string{"one", "two"}, "k")
	s.line("event")
	s.show([]string{"three", "four"}, "k")
	s.clear()
	want := "one\ntwo\n\x1b[2A\x1b[Jevent\none\ntwo\n\x1b[2A\x1b[Jthree\nfour\n\x1b[2A\x1b[J"
	if out.String() != want {
		t.Errorf("terminal output %q; want %q", out.String(), want)
	}
	if transcript.String() != "one\ntwo\nevent\n" {
		t.Errorf("transcript %q", transcript.String())
	}
}
