package main

import (
	"bytes"
	"testing"

	"sluice.dev/sluice/pkg/version"
)

// TestVersion: --version prints the build's version, as every sluice binary
// and kubectl sluice version do.
func TestVersion(t *testing.T) {
	cmd := newCommand()
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetArgs([]string{"--version"})
	if err := cmd.Execute(); err != nil {
		t.Fatal(err)
	}
	if want := "webhook version " + version.String() + "\n"; out.String() != want {
		t.Errorf("--version printed %q; want %q", out.String(), want)
	}
}
