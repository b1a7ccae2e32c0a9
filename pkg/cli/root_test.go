package cli

import (
	"bytes"
	"strings"
	"testing"

	"k8s.io/cli-runtime/pkg/genericiooptions"

	"sluice.dev/sluice/pkg/version"
)

// runRoot runs kubectl sluice with args as main does and returns its exit code
// and output.
func runRoot(args ...string) (code int, stdout, stderr string) {
	var out, errOut bytes.Buffer
	root := NewRootCommand(genericiooptions.IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut})
	root.SetArgs(args)
	return Execute(root), out.String(), errOut.String()
}

func TestRootCommand(t *testing.T) {
	cases := []struct {
		name       string
		args       []string
		code       int
		out, error string
	}{
		{"version", []string{"version"}, 0, "kubectl sluice version " + version.String() + "\n", ""},
		{"--version prints the same", []string{"--version"}, 0, "kubectl sluice version " + version.String() + "\n", ""},
		{"an unknown output format", []string{"get", "-o", "name"}, 1, "", "error: --output \"name\": want wide, json or yaml\n"},
		{"a name across namespaces", []string{"get", "web", "-A"}, 1, "",
			"error: a canary is named within its namespace: give -n NAMESPACE rather than -A with the name web\n"},
		{"wait without a name", []string{"wait"}, ExitUnable, "", "error: accepts 1 arg(s), received 0\n"},
		{"wait with a wrong flag", []string{"wait", "web", "--timeout", "soon"}, ExitUnable, "", `error: invalid argument "soon" for "--timeout" flag`},
		{"wait for an unknown outcome", []string{"wait", "web", "--for", "ever"}, ExitUnable, "", `error: --for "ever": want succeeded or decided`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := runRoot(tc.args...)
			if code != tc.code || out != tc.out || !strings.HasPrefix(errOut, tc.error) || (tc.error == "" && errOut != "") {
				t.Errorf("kubectl sluice %s: exit code %d, stdout %q, stderr %q; want %d, %q, %q", strings.Join(tc.args, " "),
					code, out, errOut, tc.code, tc.out, tc.error)
			}
		})
	}
}

// TestHelpNamesThePlugin: kubectl runs the binary kubectl-sluice as
// kubectl sluice, and so its help names it.
func TestHelpNamesThePlugin(t *testing.T) {
	code, out, _ := runRoot("get", "--help")
	if code != 0 || !strings.Contains(out, "kubectl sluice get [NAME]") || !strings.Contains(out, "--all-namespaces") || !strings.Contains(out, "--kubeconfig") {
		t.Errorf("get --help (exit code %d):\n%s", code, out)
	}
}
