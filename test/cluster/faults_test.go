package cluster_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"sluice.dev/sluice/test/cluster"
)

// TestProcessFaults pauses, resumes, kills and restarts a child: the faults
// that the chaos suite injects into the control plane and sluice.
func TestProcessFaults(t *testing.T) {
	dir := t.TempDir()
	p, err := cluster.StartProcess(dir, "sleeper", "/bin/sh", "-c", "echo started; exec sleep 60")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Stop(time.Second) })
	state := func(want string) {
		t.Helper()
		cluster.Eventually(t, 5*time.Second, "state "+want, func(context.Context) error {
			got, err := cluster.ProcessState(p.Pid())
			if err == nil && got != want {
				return fmt.Errorf("state %s", got)
			}
			return err
		})
	}
	if err := p.Pause(); err != nil {
		t.Fatal(err)
	}
	state("T")
	if err := p.Resume(); err != nil {
		t.Fatal(err)
	}
	state("S")
	if _, err := p.Restart(); err == nil {
		t.Error("Restart of a running process: no error")
	}
	if err := p.Kill(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.Done():
	default:
		t.Fatal("Done not closed after Kill")
	}
	if p.Exited() == nil {
		t.Error("Exited: nil after Kill")
	}
	again, err := p.Restart()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = again.Stop(time.Second) })
	if again.Pid() == p.Pid() || again.Log() != p.Log() {
		t.Errorf("restarted as pid %d logging to %s; want a new pid and the log %s", again.Pid(), again.Log(), p.Log())
	}
	cluster.Eventually(t, 5*time.Second, "two starts in the log", func(context.Context) error {
		raw, err := os.ReadFile(again.Log())
		if n := strings.Count(string(raw), "started\n"); err == nil && n != 2 {
			return fmt.Errorf("%d starts logged: %q", n, raw)
		}
		return err
	})
}

// TestRestartAPIServer restarts kube-apiserver: it comes back on the same
// port with the same data, and the admin's clients work again.
func TestRestartAPIServer(t *testing.T) {
	if env.Attached() {
		t.Skip("the cluster is attached (" + cluster.EnvDir + "): its processes belong to another process, which alone can restart them")
	}
	cs := env.Clientset(t)
	ns := env.NewNamespace(t)
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "before-restart"}}
	if _, err := cs.CoreV1().ConfigMaps(ns).Create(t.Context(), cm, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	pid := apiServerPid(t)
	port := flagValue(t, pid, "--secure-port")
	if err := env.Restart(t.Context(), "kube-apiserver"); err != nil {
		t.Fatal(err)
	}
	if cluster.Alive(pid) {
		t.Errorf("the old kube-apiserver (pid %d) still runs", pid)
	}
	restarted := apiServerPid(t)
	if got := flagValue(t, restarted, "--secure-port"); restarted == pid || got != port {
		t.Errorf("kube-apiserver restarted as pid %d on port %s; want a new process on port %s", restarted, got, port)
	}
	if _, err := cs.CoreV1().ConfigMaps(ns).Get(t.Context(), cm.Name, metav1.GetOptions{}); err != nil {
		t.Errorf("after the restart: %v", err)
	}
	if err := env.Restart(t.Context(), "no-such-component"); err == nil {
		t.Error("Restart of an unknown component: no error")
	}
}

func apiServerPid(t *testing.T) int {
	t.Helper()
	for _, p := range env.Processes() {
		if p.Name() == "kube-apiserver" {
			return p.Pid()
		}
	}
	t.Fatal("no kube-apiserver among the cluster's processes")
	return 0
}
