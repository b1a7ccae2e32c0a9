package main

import (
	"bytes"
	"strings"
	"testing"
)

func execute(t *testing.T, args ...string) (string, error) {
	t.Helper()
	cmd := command()
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SetArgs(args)
	err := cmd.Execute()
	return out.String(), err
}

// The Makefile runs the command from the repository's root.
const root = "../.."

func TestVersionPrintsTheStamp(t *testing.T) {
	t.Chdir(root)
	out, err := execute(t, "--version", "v9.8.7", "version")
	if err != nil || out != "v9.8.7\n" {
		t.Errorf("version: %q, %v; want v9.8.7", out, err)
	}
}

func TestDistRefusesAVersionThatIsNotTheChart(t *testing.T) {
	t.Chdir(root)
	for _, v := range []string{"v9.8.7", "1a2b3c4"} {
		out, err := execute(t, "--version", v, "dist", "--out", t.TempDir())
		if err == nil || !strings.Contains(err.Error(), "the chart's appVersion") || !strings.Contains(err.Error(), "make version-set") {
			t.Errorf("dist at %s: %v, %q; want a refusal that names the chart's appVersion and make version-set", v, err, out)
		}
	}
}
