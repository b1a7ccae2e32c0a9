package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"sluice.dev/sluice/internal/clitest"
	"sluice.dev/sluice/pkg/loadtest"
)

// TestVersion: --version prints the build's version, as every sluice binary
// and kubectl sluice version do.
func TestVersion(t *testing.T) { clitest.Version(t, newCommand()) }

// TestCommandFlag: each --command adds NAME=PROGRAM ARG..., split as a
// shell would without running one, and a wrong one stops the parse.
func TestCommandFlag(t *testing.T) {
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Fatal(err)
	}
	truePath, err := exec.LookPath("true")
	if err != nil {
		t.Fatal(err)
	}
	cmd := newCommand()
	if err := cmd.ParseFlags([]string{"--command", `smoke=sh -c "exit 0"`, "--command", "ok=" + truePath}); err != nil {
		t.Fatal(err)
	}
	cmds := *cmd.Flags().Lookup("command").Value.(*loadtest.Commands)
	if c := cmds["smoke"]; c.Path != sh || !slices.Equal(c.Args, []string{"-c", "exit 0"}) {
		t.Errorf("smoke = %+v; want %s with -c, exit 0", c, sh)
	}
	if c := cmds["ok"]; c.Path != truePath || len(c.Args) != 0 {
		t.Errorf("ok = %+v; want %s alone", c, truePath)
	}
	for _, bad := range []string{"smoke", "x=/nonexistent/program", `x=sh -c "exit`} {
		if err := newCommand().ParseFlags([]string{"--command", bad}); err == nil {
			t.Errorf("--command %s was taken", bad)
		}
	}
}

// TestRun: the command serves until its context ends, and refuses a
// signing key file it cannot use before it listens.
func TestRun(t *testing.T) {
	empty := filepath.Join(t.TempDir(), "key")
	if err := os.WriteFile(empty, []byte(" \n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		args []string
		err  string
	}{
		{args: nil},
		{args: []string{"--signing-key-file", filepath.Join(t.TempDir(), "missing")}, err: "signing key: open"},
		{args: []string{"--signing-key-file", empty}, err: "is empty"},
		{args: []string{"--max-runs", "0"}, err: "the max runs 0 is less than 1"},
	} {
		cmd := newCommand()
		cmd.SetArgs(append([]string{"--listen", "127.0.0.1:0"}, tt.args...))
		cmd.SetErr(&bytes.Buffer{})
		// Ended already: Serve starts and stops at once.
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		err := cmd.ExecuteContext(ctx)
		if tt.err == "" && err != nil || tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)) {
			t.Errorf("%v: %v; want an error with %q", tt.args, err, tt.err)
		}
	}
}

// TestHelpExplainsEveryFlag: --help lists every flag, each with a
// description.
func TestHelpExplainsEveryFlag(t *testing.T) { clitest.HelpExplainsEveryFlag(t, newCommand()) }
