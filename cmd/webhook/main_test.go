package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/spf13/pflag"
)

// TestHelpExplainsEveryFlag: --help lists every flag the webhook takes, each
// with a description.
func TestHelpExplainsEveryFlag(t *testing.T) {
	cmd := newCommand()
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetArgs([]string{"--help"})
	if err := cmd.Execute(); err != nil {
		t.Fatal(err)
	}
	help := out.String()
	n := 0
	cmd.Flags().VisitAll(func(f *pflag.Flag) {
		n++
		if strings.TrimSpace(f.Usage) == "" {
			t.Errorf("--%s has no description", f.Name)
		}
		if !strings.Contains(help, "--"+f.Name+" ") && !strings.Contains(help, "--"+f.Name+"\n") {
			t.Errorf("--help does not list --%s", f.Name)
		}
	})
	for _, name := range []string{"webhook-bind-address", "cert-dir", "metrics-bind-address", "shifter-identity", "default-step-weight", "zap-log-level"} {
		if cmd.Flags().Lookup(name) == nil {
			t.Errorf("no flag --%s", name)
		}
	}
	t.Logf("%d flags", n)
}
