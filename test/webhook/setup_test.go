// Package webhook_test runs sluice's webhook binary against the real API
// server of the local control plane, registered with the configuration that
// deploy/ ships, and drives it with the real kubectl, helm and client-go.
package webhook_test

import (
	"bytes"
	"os"
	"strings"
	"sync"
	"testing"

	"sluice.dev/sluice/test/cluster"
	"sluice.dev/sluice/test/sluice"
)

const shifterUser = sluice.ShifterUser

var (
	env *cluster.Cluster
	// hook is the webhook process shared by the tests; one test stops and
	// restarts it.
	hook      *sluice.Webhook
	hookDir   string
	setupOnce sync.Once
	setupErr  error
)

func TestMain(m *testing.M) {
	code := cluster.RunTests(m, &env)
	if hook != nil {
		hook.Stop()
	}
	if hookDir != "" {
		_ = os.RemoveAll(hookDir)
	}
	os.Exit(code)
}

// setup starts the webhook and registers it with the API server, once for
// all tests.
func setup(t testing.TB) {
	t.Helper()
	setupOnce.Do(func() {
		if hookDir, setupErr = os.MkdirTemp("", "sluice-webhook-test-"); setupErr != nil {
			return
		}
		hook, setupErr = sluice.StartWebhook(env, hookDir)
	})
	if setupErr != nil {
		t.Fatal(setupErr)
	}
}

// admissions returns sluice_webhook_admissions_total by "operation/result".
func admissions(t *testing.T) map[string]float64 {
	t.Helper()
	families, err := sluice.Metrics(hook.MetricsPort)
	if err != nil {
		t.Fatal(err)
	}
	family, ok := families["sluice_webhook_admissions_total"]
	if !ok {
		t.Fatal("the webhook exports no sluice_webhook_admissions_total")
	}
	counts := map[string]float64{}
	for _, m := range family.GetMetric() {
		labels := map[string]string{}
		for _, l := range m.GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		counts[labels["operation"]+"/"+labels["result"]] = m.GetCounter().GetValue()
	}
	return counts
}

// kubectl runs kubectl as the cluster admin and returns its stdout; stderr
// (kubectl's warnings) is returned separately. It fails the test on error.
func kubectl(t *testing.T, stdin string, args ...string) (stdout, stderr string) {
	t.Helper()
	stdout, stderr, err := tryKubectl(t, stdin, args...)
	if err != nil {
		t.Fatalf("kubectl %s: %v\n%s%s", strings.Join(args, " "), err, stdout, stderr)
	}
	return stdout, stderr
}

func tryKubectl(t *testing.T, stdin string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	cmd := env.Kubectl(t.Context(), args...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err = cmd.Run()
	return out.String(), errOut.String(), err
}
