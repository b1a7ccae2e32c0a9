package main

import (
	"testing"

	"sluice.dev/sluice/internal/clitest"
)

// TestVersion: --version prints the build's version, as every sluice binary
// and kubectl sluice version do.
func TestVersion(t *testing.T) { clitest.Version(t, newCommand()) }
