package main

import (
	"testing"

	"sluice.dev/sluice/internal/clitest"
)

// TestHelpExplainsEveryFlag: --help lists every flag the webhook takes, each
// with a description.
func TestHelpExplainsEveryFlag(t *testing.T) {
	clitest.HelpExplainsEveryFlag(t, newCommand(), "webhook-bind-address", "cert-dir", "metrics-bind-address", "shifter-identity",
		"default-step-weight", "zap-log-level")
}
