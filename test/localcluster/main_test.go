package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"sluice.dev/sluice/test/cluster"
)

// TestUpStatusDown drives the command as a person would: up, use the printed
// kubeconfig with kubectl, status, down; and checks that down leaves none of
// the processes that up started.
func TestUpStatusDown(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "localcluster")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	dir := filepath.Join(t.TempDir(), "cluster")
	run := func(args ...string) (string, error) {
		out, err := exec.Command(bin, append(args, "--dir="+dir)...).CombinedOutput()
		return string(out), err
	}
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
		if alive(p) {
			t.Errorf("process %d still running after down", p)
		}
	}
	if out, err := run("status"); err == nil || !strings.Contains(out, "not running") {
		t.Errorf("status after down: %v\n%s", err, out)
	}
}

func alive(pid int) bool {
	raw, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return false
	}
	// A zombie has ended; it only waits for its parent to collect it.
	fields := strings.Fields(string(raw[strings.LastIndexByte(string(raw), ')')+1:]))
	return len(fields) > 0 && fields[0] != "Z" && syscall.Kill(pid, 0) == nil
}
