package loadtest

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

func TestSplitWords(t *testing.T) {
	tests := []struct {
		line string
		want []string
		err  string
	}{
		{line: "", want: nil},
		{line: "  /bin/true  ", want: []string{"/bin/true"}},
		{line: `sh -c "exit 0"`, want: []string{"sh", "-c", "exit 0"}},
		{line: `sh -c 'echo "$HOME" \n'`, want: []string{"sh", "-c", `echo "$HOME" \n`}},
		{line: `a" b "'c d'e`, want: []string{"a b c de"}},
		{line: `say "a \"quoted\" \\ word" it\'s`, want: []string{"say", `a "quoted" \ word`, "it's"}},
		{line: `"" x`, want: []string{"", "x"}},
		{line: `sh -c 'exit 0`, err: "unterminated '"},
		{line: `sh -c "exit 0`, err: `unterminated "`},
		{line: `sh \`, err: "ends in a backslash"},
	}
	for _, tt := range tests {
		got, err := splitWords(tt.line)
		switch {
		case tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)):
			t.Errorf("splitWords(%q) = %q, %v; want an error with %q", tt.line, got, err, tt.err)
		case tt.err == "" && (err != nil || !slices.Equal(got, tt.want)):
			t.Errorf("splitWords(%q) = %q, %v; want %q", tt.line, got, err, tt.want)
		}
	}
}

func TestCommandsSet(t *testing.T) {
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Fatal(err)
	}
	var c Commands
	if err := c.Set(`smoke=sh -c "exit 0"`); err != nil {
		t.Fatal(err)
	}
	if got, want := c["smoke"], (Command{Name: "smoke", Path: sh, Args: []string{"-c", "exit 0"}}); got.Path != want.Path || !slices.Equal(got.Args, want.Args) {
		t.Errorf("smoke = %+v; want %+v", got, want)
	}
	if got, want := c.String(), `smoke="`+sh+`" "-c" "exit 0"`; got != want {
		t.Errorf("String() = %q; want %q", got, want)
	}
	for _, tt := range []struct{ value, err string }{
		{"smoke", "not NAME=PROGRAM ARG..."},
		{"=true", "not NAME=PROGRAM ARG..."},
		{"no way=true", "not NAME=PROGRAM ARG..."},
		{"smoke=true", "smoke is given twice"},
		{"empty=  ", "empty has no program"},
		{"gone=/nonexistent/program", "gone: exec: \"/nonexistent/program\""},
		{"open=sh -c 'exit", "open: unterminated '"},
	} {
		if err := c.Set(tt.value); err == nil || !strings.Contains(err.Error(), tt.err) {
			t.Errorf("Set(%q) = %v; want an error with %q", tt.value, err, tt.err)
		}
	}
	if len(c) != 1 {
		t.Errorf("commands %v; want smoke alone", c)
	}
}

func TestTail(t *testing.T) {
	tests := []struct {
		name   string
		writes []string
		want   string
	}{
		{"short", []string{"ab", "cd"}, "abcd"},
		{"exactly full", []string{"abcd", "efgh"}, "abcdefgh"},
		{"cut by small writes", []string{"abc", "def", "ghi", "jkl", "mno", "pqr"}, "...klmnopqr"},
		{"cut by one large write", []string{"ab", "0123456789"}, "...23456789"},
		{"cut at a write", []string{"aaaaaaa", "é"}, "...aaaaaaé"},
		{"cut within a character", []string{"éééééa"}, "...éééa"},
		{"cut between characters", []string{"aéééé"}, "...éééé"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := &tail{max: 8}
			for _, s := range tt.writes {
				if n, err := w.Write([]byte(s)); n != len(s) || err != nil {
					t.Fatalf("Write(%q) = %d, %v", s, n, err)
				}
				if len(w.buf) > 2*w.max {
					t.Fatalf("%d bytes held, more than twice %d", len(w.buf), w.max)
				}
			}
			if got := w.String(); got != tt.want {
				t.Errorf("String() = %q; want %q", got, tt.want)
			}
		})
	}
}
