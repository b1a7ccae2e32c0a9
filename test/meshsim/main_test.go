package main

import (
	"bytes"
	"strings"
	"testing"

	"sluice.dev/sluice/internal/clitest"
)

func TestHelp(t *testing.T) {
	clitest.HelpExplainsEveryFlag(t, newCommand(), "kubeconfig", "listen", "metrics-listen", "rps", "client")
}

func TestClientFlagRepeats(t *testing.T) {
	cmd := newCommand()
	if err := cmd.ParseFlags([]string{"--client", "x-canary: insider @20%", "--client=cookie: canary=always @10%"}); err != nil {
		t.Fatal(err)
	}
	want := "X-Canary: insider @20%; Cookie: canary=always @10%"
	if got := cmd.Flags().Lookup("client").Value.String(); got != want {
		t.Errorf("--client twice: %q; want %q", got, want)
	}
}

// TestBadClientFlag: a --client that cannot be read stops the command
// before it connects to anything, saying what it wants.
func TestBadClientFlag(t *testing.T) {
	for _, bad := range []string{"x-canary: insider", "x-canary: insider @120%", "insider @20%"} {
		cmd := newCommand()
		var out bytes.Buffer
		cmd.SetOut(&out)
		cmd.SetErr(&out)
		cmd.SetArgs([]string{"--kubeconfig", "/nonexistent", "--client", bad})
		err := cmd.Execute()
		if err == nil || !strings.Contains(err.Error(), `invalid argument "`+bad+`" for "--client" flag`) ||
			!strings.Contains(err.Error(), `want "NAME: VALUE @PERCENT%"`) {
			t.Errorf("--client %q: %v; want an invalid argument that shows the form", bad, err)
		}
	}
}

func TestClientSharesOverAll(t *testing.T) {
	cmd := newCommand()
	err := cmd.ParseFlags([]string{"--client", "x-canary: insider @60%", "--client", "cookie: canary=always @50%"})
	if err == nil || !strings.Contains(err.Error(), "add up to more than 100%") {
		t.Errorf("shares of 110%%: %v; want an error", err)
	}
}
