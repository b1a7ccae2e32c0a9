// Package plugin_test runs kubectl sluice, the built binary, against the
// local control plane with the real webhook and shifter: the output of its
// read commands, the exit codes of wait from start to each outcome, and a
// pipeline's ServiceAccount that may only read canaries.
package plugin_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"sluice.dev/sluice/pkg/canary"
	"sluice.dev/sluice/test/cluster"
	"sluice.dev/sluice/test/meshsim/telemetry"
	"sluice.dev/sluice/test/sluice"
)

var (
	env       *cluster.Cluster
	setupOnce sync.Once
	setupErr  error
	stack     *sluice.Stack
	plugin    string // the kubectl-sluice binary
	mesh      *telemetry.Exporter
)

func TestMain(m *testing.M) {
	ctrllog.SetLogger(logr.Discard())
	code := cluster.RunTests(m, &env)
	stack.Stop()
	os.Exit(code)
}

// setup starts sluice and builds kubectl-sluice, once for all tests.
func setup(t testing.TB) {
	t.Helper()
	setupOnce.Do(func() {
		if stack, setupErr = sluice.StartStack(env, "sluice-plugin-test-"); setupErr != nil {
			return
		}
		mesh = stack.Mesh
		plugin, setupErr = sluice.Build(stack.Dir, "cmd/kubectl-sluice")
	})
	if setupErr != nil {
		t.Fatal(setupErr)
	}
}

const app = "web"

// manifest is an opted-in Deployment with quick settings: steps 20, 40, 60,
// 80 (max-weight 70), a check every 2s over a 5s window, threshold 3; with
// no requests to judge a canary on, it holds at 20 until an evidence
// deadline of 10 minutes.
func manifest(image string) string {
	return sluice.App{Name: app, Image: image, Replicas: 2, Container: sluice.Port8080, Annotations: sluice.QuickSettings("sluice.dev/evidence-deadline: 10m")}.YAML()
}

// initialized starts a test in a namespace of its own: the canary workload
// answers as b (no requests when b is nil), and the Deployment is applied
// at v1, its Canary Initialized.
func initialized(t *testing.T, b *telemetry.Behaviour) string {
	t.Helper()
	setup(t)
	ns := env.NewNamespace(t)
	if b != nil {
		mesh.Set(ns, app+"-canary", *b)
	}
	sluice.Apply(t, env, ns, manifest("example.com/web:v1"))
	waitCanary(t, ns, "Initialized", func(st canary.CanaryStatus) bool { return st.Phase == canary.PhaseInitialized })
	return ns
}

// waitCanary waits until the Canary's status satisfies ok.
func waitCanary(t *testing.T, ns, what string, ok func(canary.CanaryStatus) bool) *canary.Canary {
	t.Helper()
	return sluice.WaitCanary(t, sluice.NewClient(t, env), client.ObjectKey{Namespace: ns, Name: app}, what, 2*time.Minute, ok)
}

// result is what a run of kubectl sluice printed and how it ended.
type result struct {
	stdout, stderr string
	code           int
}

func (r result) String() string {
	return fmt.Sprintf("exit code %d\n--- stdout\n%s--- stderr\n%s", r.code, r.stdout, r.stderr)
}

// run runs kubectl sluice with args and the kubeconfig, until it ends or
// timeout passes.
func run(t *testing.T, kubeconfig string, timeout time.Duration, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, plugin, append([]string{"--kubeconfig", kubeconfig}, args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	r := result{stdout: stdout.String(), stderr: stderr.String()}
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit) && ctx.Err() == nil:
		r.code = exit.ExitCode()
	case err != nil:
		t.Fatalf("kubectl sluice %s: %v\n%s", strings.Join(args, " "), err, r)
	}
	return r
}

// admin runs kubectl sluice as the cluster's admin and expects exit code 0.
func admin(t *testing.T, args ...string) string {
	t.Helper()
	r := run(t, env.Kubeconfig, time.Minute, args...)
	if r.code != 0 {
		t.Fatalf("kubectl sluice %s: %s", strings.Join(args, " "), r)
	}
	return r.stdout
}

// contains fails the test for each want that text lacks.
func contains(t *testing.T, what, text string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(text, w) {
			t.Errorf("%s lacks %q:\n%s", what, w, text)
		}
	}
}

// watch starts a long-running kubectl sluice (a --watch) logging to a file
// of the test's folder; it is stopped, by its PID, when the test ends. The
// returned function waits until the log has every want.
func watch(t *testing.T, name string, args ...string) (waitFor func(timeout time.Duration, want ...string) string) {
	t.Helper()
	proc, err := cluster.StartProcess(t.TempDir(), name, plugin, append([]string{"--kubeconfig", env.Kubeconfig}, args...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = proc.Stop(10 * time.Second) })
	return func(timeout time.Duration, want ...string) string {
		t.Helper()
		var text string
		cluster.Eventually(t, timeout, "kubectl sluice "+strings.Join(args, " ")+" prints "+strings.Join(want, ", "), func(context.Context) error {
			raw, err := os.ReadFile(proc.Log())
			if err != nil {
				return err
			}
			text = string(raw)
			for _, w := range want {
				if !strings.Contains(text, w) {
					return fmt.Errorf("no %q in:\n%s", w, text)
				}
			}
			if err := proc.Exited(); err != nil {
				return fmt.Errorf("it ended: %w", err)
			}
			return nil
		})
		return text
	}
}

// binDir is the folder of kubectl-sluice, for a PATH on which kubectl
// finds the plugin.
func binDir() string { return filepath.Dir(plugin) }
