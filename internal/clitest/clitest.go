// Package clitest checks what every sluice command has in common.
package clitest

import (
	"bytes"
	"testing"

	"github.com/spf13/cobra"

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
