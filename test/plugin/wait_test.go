package plugin_test

import (
	"bufio"
	"context"
	"errors"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"sluice.dev/sluice/pkg/canary"
	"sluice.dev/sluice/test/meshsim/telemetry"
	"sluice.dev/sluice/test/sluice"
)

// TestWait: kubectl sluice wait, started right after kubectl apply, until
// each of its outcomes.
func TestWait(t *testing.T) {
	t.Run("succeeded", func(t *testing.T) {
		t.Parallel()
		ns := initialized(t, &telemetry.Behaviour{Latency: 20 * time.Millisecond})
		sluice.Apply(t, env, ns, manifest("example.com/web:v2"))
		r := run(t, env.Kubeconfig, 3*time.Minute, "wait", "web", "-n", ns, "--timeout", "2m")
		cr := waitCanary(t, ns, "Succeeded", func(st canary.CanaryStatus) bool { return st.Phase == canary.PhaseSucceeded })
		if r.code != 0 {
			t.Fatalf("wait: %s", r)
		}
		contains(t, "wait", r.stdout, "waiting for revision "+cr.Status.CanaryRevision+" of "+ns+"/web",
			"revision "+cr.Status.CanaryRevision+" succeeded")
	})
	t.Run("failed", func(t *testing.T) {
		t.Parallel()
		ns := initialized(t, &telemetry.Behaviour{ErrorRate: 0.5, Latency: 20 * time.Millisecond})
		sluice.Apply(t, env, ns, manifest("example.com/web:v2"))
		r := run(t, env.Kubeconfig, 3*time.Minute, "wait", "web", "-n", ns, "--timeout", "2m")
		if r.code != 1 {
			t.Fatalf("wait: %s; want exit code 1", r)
		}
		contains(t, "wait", r.stdout, "failed: revision ", "rolled back: ", "failed check: request-success-rate")
		// Decided, either way.
		if r := run(t, env.Kubeconfig, time.Minute, "wait", "web", "-n", ns, "--for", "decided"); r.code != 0 {
			t.Errorf("wait --for decided: %s; want exit code 0", r)
		}
	})
	t.Run("timeout", func(t *testing.T) {
		t.Parallel()
		ns := initialized(t, nil)
		sluice.Apply(t, env, ns, manifest("example.com/web:v2"))
		r := run(t, env.Kubeconfig, time.Minute, "wait", "web", "-n", ns, "--timeout", "3s")
		if r.code != 2 {
			t.Fatalf("wait: %s; want exit code 2", r)
		}
		contains(t, "wait", r.stdout, "timed out after 3s: revision ")
	})
	t.Run("replaced", func(t *testing.T) {
		t.Parallel()
		ns := initialized(t, nil)
		sluice.Apply(t, env, ns, manifest("example.com/web:v2"))
		cr := waitCanary(t, ns, "canary weight 20", func(st canary.CanaryStatus) bool { return st.CanaryWeight == 20 })
		w := startWait(t, "wait", "web", "-n", ns, "--timeout", "2m")
		w.waitFor(t, "waiting for revision "+cr.Status.CanaryRevision)
		sluice.Apply(t, env, ns, manifest("example.com/web:v3"))
		r := w.end(t)
		if r.code != 3 {
			t.Fatalf("wait: %s; want exit code 3", r)
		}
		contains(t, "wait", r.stdout, "revision "+cr.Status.CanaryRevision+" was replaced by revision ")
	})
	t.Run("unable", func(t *testing.T) {
		setup(t)
		if r := run(t, env.Kubeconfig, time.Minute, "wait", "web", "--for", "ever"); r.code != 4 {
			t.Errorf("wait --for ever: %s; want exit code 4", r)
		}
		r := run(t, env.Kubeconfig, time.Minute, "wait", "nothing", "-n", "default")
		if want := "error: no Canary default/nothing, and no Deployment of that name"; r.code != 4 || !strings.Contains(r.stderr, want) {
			t.Errorf("wait for a Canary that will never be: %s; want exit code 4 and %q", r, want)
		}
	})
}

// waiting is a kubectl sluice wait that runs while the test goes on.
type waiting struct {
	cmd    *exec.Cmd
	cancel context.CancelFunc
	mu     sync.Mutex
	stdout strings.Builder
	stderr strings.Builder
	line   chan string
}

// startWait starts kubectl sluice as the admin; it is stopped, by its PID,
// when the test ends.
func startWait(t *testing.T, args ...string) *waiting {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	w := &waiting{cancel: cancel, line: make(chan string, 100)}
	w.cmd = exec.CommandContext(ctx, plugin, append([]string{"--kubeconfig", env.Kubeconfig}, args...)...)
	w.cmd.Stderr = &w.stderr
	out, err := w.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := w.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cancel)
	go func() {
		defer close(w.line)
		s := bufio.NewScanner(out)
		for s.Scan() {
			w.mu.Lock()
			w.stdout.WriteString(s.Text() + "\n")
			w.mu.Unlock()
			w.line <- s.Text()
		}
	}()
	return w
}

// waitFor waits until the command prints a line with want.
func (w *waiting) waitFor(t *testing.T, want string) {
	t.Helper()
	timeout := time.After(time.Minute)
	for {
		select {
		case line, ok := <-w.line:
			if !ok {
				t.Fatalf("wait ended before it printed %q:\n%s", want, w.result())
			}
			if strings.Contains(line, want) {
				return
			}
		case <-timeout:
			t.Fatalf("wait did not print %q in a minute:\n%s", want, w.result())
		}
	}
}

// end waits until the command ends, and returns what it printed.
func (w *waiting) end(t *testing.T) result {
	t.Helper()
	for range w.line {
		// Read to the end of its output.
	}
	err := w.cmd.Wait()
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		t.Fatalf("wait: %v", err)
	}
	r := w.result()
	r.code = w.cmd.ProcessState.ExitCode()
	return r
}

func (w *waiting) result() result {
	w.mu.Lock()
	defer w.mu.Unlock()
	return result{stdout: w.stdout.String(), stderr: w.stderr.String()}
}
