package cluster_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"sluice.dev/sluice/test/cluster"
)

// panicChildEnv, set, makes this test binary the child of
// TestPanickingTestBinaryLeavesNothing: the folder it names is where the two
// talk through files.
const panicChildEnv = "SLUICE_TEST_PANIC_CHILD"

// TestPanicChild is not a test of its own: run by
// TestPanickingTestBinaryLeavesNothing in a child test binary, whose TestMain
// has started a control plane through RunTests, it says where that control
// plane lives, waits for the word and panics.
func TestPanicChild(t *testing.T) {
	talk := os.Getenv(panicChildEnv)
	if talk == "" {
		t.Skip("a helper that TestPanickingTestBinaryLeavesNothing runs in a child process")
	}
	// Written aside and renamed: the parent must never read half of it.
	tmp := filepath.Join(talk, "ready.tmp")
	if err := os.WriteFile(tmp, []byte(env.Dir), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(talk, "ready")); err != nil {
		t.Fatal(err)
	}
	// Bounded, so that a child whose parent died does not wait forever.
	cluster.Eventually(t, 5*time.Minute, "the parent's word to panic", func(context.Context) error {
		_, err := os.Stat(filepath.Join(talk, "panic"))
		return err
	})
	panic("on purpose: a test binary that panics must leave no process behind")
}

// TestPanickingTestBinaryLeavesNothing runs this test binary again with only
// TestPanicChild, which panics while its control plane runs: the test bed
// promises that none of the control plane's processes outlives it, and the
// folder it leaves is removed by the next start.
func TestPanickingTestBinaryLeavesNothing(t *testing.T) {
	if os.Getenv(panicChildEnv) != "" {
		t.Skip("this is the child")
	}
	talk := t.TempDir()
	child := exec.Command(os.Args[0], "-test.run=^TestPanicChild$", "-test.v", "-test.timeout=10m")
	// The child starts a control plane of its own, even when this one is
	// attached to a running cluster.
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, cluster.EnvDir+"=") {
			child.Env = append(child.Env, kv)
		}
	}
	child.Env = append(child.Env, panicChildEnv+"="+talk)
	// Should this test binary die, the child goes too.
	child.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	var out bytes.Buffer // read only after the child has exited
	child.Stdout = &out
	child.Stderr = &out
	if err := child.Start(); err != nil {
		t.Fatalf("start the child test binary: %v", err)
	}
	var waitErr error // set before done is closed
	done := make(chan struct{})
	go func() {
		waitErr = child.Wait()
		close(done)
	}()
	t.Cleanup(func() {
		select {
		case <-done:
		default:
			_ = child.Process.Kill()
			<-done
		}
	})

	var childDir string
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(4 * time.Minute)
	for childDir == "" {
		select {
		case <-done:
			t.Fatalf("the child ended before its control plane was ready (%v):\n%s", waitErr, &out)
		case <-deadline:
			t.Fatal("the child's control plane was not ready within 4 minutes")
		case <-tick.C:
		}
		raw, err := os.ReadFile(filepath.Join(talk, "ready"))
		if err == nil {
			childDir = string(raw)
		}
	}
	if _, err := os.Stat(childDir); err != nil || !strings.HasPrefix(filepath.Base(childDir), cluster.TempPrefix) {
		t.Fatalf("the child's cluster folder %q: %v; want a temporary cluster folder", childDir, err)
	}
	procs := cluster.Descendants(child.Process.Pid)
	if len(procs) < 7 {
		t.Fatalf("the child runs %d processes (%v); want etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kwok, istio-validate and prometheus", len(procs), procs)
	}

	if err := os.WriteFile(filepath.Join(talk, "panic"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	select {
	case <-done:
		var exit *exec.ExitError
		if !errors.As(waitErr, &exit) || !strings.Contains(out.String(), "panic: on purpose") {
			t.Fatalf("the child ended with %v; want a panic. Its output:\n%s", waitErr, &out)
		}
	case <-time.After(time.Minute):
		t.Fatal("the child did not panic within a minute")
	}
	cluster.Eventually(t, 30*time.Second, "no process of the child left", func(context.Context) error {
		var left []string
		for _, p := range procs {
			if cluster.Alive(p) {
				cmdline, _ := os.ReadFile(filepath.Join("/proc", strconv.Itoa(p), "cmdline"))
				left = append(left, fmt.Sprintf("%d (%s)", p, bytes.ReplaceAll(cmdline, []byte{0}, []byte{' '})))
			}
		}
		if len(left) > 0 {
			return fmt.Errorf("still running: %s", strings.Join(left, ", "))
		}
		return nil
	})

	t.Logf("none of the child's %d processes outlived it", len(procs))

	// The panic skipped Stop, so the child's folder is left (unless another
	// test package's start has already removed it); a start removes it.
	if _, err := os.Stat(childDir); err == nil {
		t.Logf("the child left %s", childDir)
	}
	cluster.RemoveStaleDirs(os.TempDir(), io.Discard)
	if _, err := os.Stat(childDir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the panicked child's folder %s after the stale folders were removed: %v; want it gone", childDir, err)
	}
	if !env.Attached() {
		if _, err := os.Stat(env.Dir); err != nil {
			t.Errorf("this live process's own cluster folder: %v; want it kept", err)
		}
	}
}

// TestOnlyStaleFoldersAreRemoved: a start removes the temporary folders whose
// owner provably no longer runs, and no other.
func TestOnlyStaleFoldersAreRemoved(t *testing.T) {
	parent := t.TempDir()
	self, err := cluster.ProcessStart(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	// No process ever has a PID at or above pid_max.
	raw, err := os.ReadFile("/proc/sys/kernel/pid_max")
	if err != nil {
		t.Fatal(err)
	}
	pidMax, err := strconv.Atoi(strings.TrimSpace(string(raw)))
	if err != nil {
		t.Fatal(err)
	}
	folders := []struct {
		name  string
		owner func(dir string) error
		stale bool
	}{
		{"live owner", func(dir string) error { return cluster.WriteOwner(dir, os.Getpid(), self) }, false},
		{"dead owner", func(dir string) error { return cluster.WriteOwner(dir, pidMax, self) }, true},
		{"reused PID", func(dir string) error { return cluster.WriteOwner(dir, os.Getpid(), self+1) }, true},
		{"owner in another PID namespace", func(dir string) error { return cluster.WriteForeignOwner(dir, pidMax) }, false},
		{"no owner file", func(string) error { return nil }, false},
		{"unreadable owner file", func(dir string) error {
			return os.WriteFile(filepath.Join(dir, "owner.json"), []byte("{"), 0o644)
		}, false},
	}
	dirs := make([]string, len(folders))
	for i, f := range folders {
		dir, err := os.MkdirTemp(parent, cluster.TempPrefix)
		if err != nil {
			t.Fatal(err)
		}
		if err := f.owner(dir); err != nil {
			t.Fatal(err)
		}
		dirs[i] = dir
	}
	other := filepath.Join(parent, "not-a-cluster")
	if err := os.Mkdir(other, 0o755); err != nil {
		t.Fatal(err)
	}
	cluster.RemoveStaleDirs(parent, io.Discard)
	for i, f := range folders {
		_, err := os.Stat(dirs[i])
		if gone := errors.Is(err, os.ErrNotExist); gone != f.stale {
			t.Errorf("folder with %s: removed=%v, want %v", f.name, gone, f.stale)
		}
	}
	if _, err := os.Stat(other); err != nil {
		t.Errorf("a folder not named like a cluster's: %v; want it kept", err)
	}
}
