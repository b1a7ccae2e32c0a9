// Package clitest checks what every sluice command has in common.
package clitest

import (
	"bytes"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"sluice.dev/sluice/pkg/version"
)

// Version checks that cmd --version prints the build's version, as every
// sluice binary and kubectl sluice version do.
func Version(t *testing.T, cmd *cobra.Command) {
	t.Helper()
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetArgs([]string{"--version"})
	if err := cmd.Execute(); err != nil {
		t.Fatal(err)
	}
	if want := cmd.Name() + " version " + version.String() + "\n"; out.String() != want {
		t.Errorf("--version printed %q; want %q", out.String(), want)
	}
}

// HelpExplainsEveryFlag checks that cmd --help lists every flag of cmd,
// each with a description, and that the flags named are among them.
func HelpExplainsEveryFlag(t *testing.T, cmd *cobra.Command, named ...string) {
	t.Helper()
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetArgs([]string{"--help"})
	if err := cmd.Execute(); err != nil {
		t.Fatal(err)
	}
	help := out.String()
	cmd.Flags().VisitAll(func(f *pflag.Flag) {
		if strings.TrimSpace(f.Usage) == "" {
			t.Errorf("--%s has no description", f.Name)
		}
		if !strings.Contains(help, "--"+f.Name+" ") && !strings.Contains(help, "--"+f.Name+"\n") {
			t.Errorf("--help does not list --%s", f.Name)
		}
	})
	for _, name := range named {
		if cmd.Flags().Lookup(name) == nil {
			t.Errorf("no flag --%s", name)
		}
	}
}
