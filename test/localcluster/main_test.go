package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"sluice.dev/sluice/test/cluster"
)

// bin is the localcluster command, built once for every test.
var bin string

func TestMain(m *testing.M) {
	os.Exit(func() int {
		dir, err := os.MkdirTemp("", "localcluster-test-")
		if err != nil {
			fmt.Fprintln(os.Stderr, "build localcluster:", err)
			return 1
		}
		defer os.RemoveAll(dir)
		bin = filepath.Join(dir, "localcluster")
		if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "build localcluster: %v\n%s", err, out)
			return 1
		}
		return m.Run()
	}())
}

// localcluster runs the command on the cluster folder dir.
func localcluster(dir string, args ...string) (string, error) {
	out, err := exec.Command(bin, append(args, "--dir="+dir)...).CombinedOutput()
	return string(out), err
}

// TestUpStatusDown drives the command as a person would: up, use the printed
// kubeconfig with kubectl, status, down; and checks that down leaves none of
// the processes that up started. On the way, a test package's way in (Attach,
// then Stop) must leave the cluster running for the next one.
func TestUpStatusDown(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "cluster")
	run := func(args ...string) (string, error) { return localcluster(dir, args...) }
	t.Cleanup(func() { _, _ = run("down") })

	out, err := run("up")
	if err != nil {
		t.Fatalf("up: %v\n%s", err, out)
	}
	kubeconfig := filepath.Join(dir, "admin.kubeconfig")
	for _, want := range []string{"running (pid ", "kubeconfig:     " + kubeconfig, "Prometheus:     http://127.0.0.1:"} {
		if !strings.Contains(out, want) {
			t.Errorf("up printed %q; want it to contain %q", out, want)
		}
	}
	pid, ok, err := cluster.ReadState(dir)
	if err != nil || !ok {
		t.Fatalf("state after up: ok=%v err=%v", ok, err)
	}
	children := cluster.Descendants(pid)
	if len(children) < 6 {
		t.Errorf("supervisor %d runs %d processes; want etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kwok and prometheus", pid, len(children))
	}

	c, err := cluster.Attach(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !c.Attached() {
		t.Error("Attached() is false on a cluster from Attach")
	}
	// What RunTests does when a test package ends.
	if err := c.Stop(); err != nil {
		t.Errorf("Stop of an attached cluster: %v", err)
	}
	if _, ok, err := cluster.ReadState(dir); err != nil || !ok {
		t.Errorf("state after Stop of an attached cluster: ok=%v err=%v; want state.json still there", ok, err)
	}
	for _, p := range append(children, pid) {
		if !cluster.Alive(p) {
			t.Errorf("process %d ended after Stop of an attached cluster", p)
		}
	}
	nodes, err := c.Kubectl(t.Context(), "get", "nodes", "-o", "name").CombinedOutput()
	if err != nil || strings.Count(string(nodes), "node/") != 3 {
		t.Errorf("kubectl get nodes: %v\n%s", err, nodes)
	}
	if out, err := run("up"); err != nil || !strings.Contains(out, "already running") {
		t.Errorf("second up: %v\n%s", err, out)
	}
	if out, err := run("status"); err != nil || !strings.Contains(out, "running (pid "+strconv.Itoa(pid)) {
		t.Errorf("status: %v\n%s", err, out)
	}

	if out, err := run("down"); err != nil {
		t.Fatalf("down: %v\n%s", err, out)
	}
	for _, p := range append(children, pid) {
		if cluster.Alive(p) {
			t.Errorf("process %d still running after down", p)
		}
	}
	if out, err := run("status"); err == nil || !strings.Contains(out, "not running") {
		t.Errorf("status after down: %v\n%s", err, out)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("cluster folder after down: %v; want it removed", err)
	}
}

// TestDownRemovesOnlyItsOwnFolder: --dir may name any folder, so neither up
// nor down may take one that up did not make; down still clears one that a
// dead supervisor left.
func TestDownRemovesOnlyItsOwnFolder(t *testing.T) {
	foreign := t.TempDir()
	notes := filepath.Join(foreign, "notes.txt")
	if err := os.WriteFile(notes, []byte("not the cluster's"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, cmd := range []string{"down", "up"} {
		out, err := localcluster(foreign, cmd)
		if err == nil || !strings.Contains(out, foreign) {
			t.Errorf("%s --dir=%s: %v\n%s; want a refusal that names the folder", cmd, foreign, err, out)
		}
		if _, err := os.Stat(notes); err != nil {
			t.Fatalf("after %s --dir=%s: %v; want the unrelated file left alone", cmd, foreign, err)
		}
	}
	if _, ok, _ := cluster.ReadState(foreign); ok {
		t.Errorf("up refused %s but wrote a state file in it", foreign)
	}

	// A folder whose supervisor died: marked, with a state file naming a
	// process that is not a supervisor.
	left := t.TempDir()
	state := fmt.Sprintf(`{"pid": %d}`, os.Getpid())
	if err := os.WriteFile(filepath.Join(left, "state.json"), []byte(state), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(left, marker), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := localcluster(left, "down"); err != nil || !strings.Contains(out, "not running") {
		t.Errorf("down on a folder left by a dead supervisor: %v\n%s", err, out)
	}
	if _, err := os.Stat(left); !os.IsNotExist(err) {
		t.Errorf("folder left by a dead supervisor, after down: %v; want it removed", err)
	}
}
