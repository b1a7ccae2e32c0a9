// Command localcluster starts, shows and stops sluice's local control plane
// (etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kwok,
// Prometheus) in the background, for people and for the demo.
//
//	go run ./test/localcluster up      # start it; prints the kubeconfig and Prometheus URL
//	go run ./test/localcluster status  # is it running, and where
//	go run ./test/localcluster down    # stop every process it started
//
// Tests attach to it when SLUICE_CLUSTER_DIR names its folder.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"sluice.dev/sluice/test/cluster"
)

func main() {
	if err := newRootCommand().Execute(); err != nil {
		os.Exit(1)
	}
}

func newRootCommand() *cobra.Command {
	var dir string
	root := &cobra.Command{
		Use:          "localcluster",
		Short:        "Run sluice's local Kubernetes control plane in the background",
		SilenceUsage: true,
	}
	root.PersistentFlags().StringVar(&dir, "dir", filepath.Join(os.TempDir(), "sluice-localcluster"),
		"folder for the cluster's certificates, kubeconfigs, data and logs")
	root.AddCommand(
		&cobra.Command{
			Use:   "up",
			Short: "Start the control plane in the background and wait until it is ready",
			Args:  cobra.NoArgs,
			RunE:  func(cmd *cobra.Command, _ []string) error { return up(cmd.Context(), dir) },
		},
		&cobra.Command{
			Use:   "status",
			Short: "Say whether the control plane runs, and where",
			Args:  cobra.NoArgs,
			RunE:  func(*cobra.Command, []string) error { return status(dir) },
		},
		&cobra.Command{
			Use:   "down",
			Short: "Stop every process of the control plane and remove its folder (only one that up made)",
			Args:  cobra.NoArgs,
			RunE:  func(*cobra.Command, []string) error { return down(dir) },
		},
		&cobra.Command{
			Use:    "run",
			Short:  "Run the control plane in the foreground until SIGINT or SIGTERM (what up starts)",
			Args:   cobra.NoArgs,
			Hidden: true,
			RunE:   func(cmd *cobra.Command, _ []string) error { return run(cmd.Context(), dir) },
		},
	)
	return root
}

// marker is the file by which up marks a folder as its own, so that down
// removes only folders that up made, whatever --dir names.
const marker = "localcluster.marker"

// claimDir makes dir the cluster's folder: it creates it, or takes one that is
// empty or already marked, and refuses any other, whose files down would
// otherwise delete.
func claimDir(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create %s: %w", dir, err)
	}
	if made(dir) {
		return nil
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("read %s: %w", dir, err)
	}
	if len(entries) > 0 {
		return fmt.Errorf("%s holds files and no %s, so localcluster did not make it (or an older version did); "+
			"give --dir an empty or new folder, or remove this one yourself (rm -r %s) if it is an old cluster's", dir, marker, dir)
	}
	if err := os.WriteFile(filepath.Join(dir, marker), []byte("made by localcluster up; localcluster down removes this folder\n"), 0o644); err != nil {
		return fmt.Errorf("mark %s: %w", dir, err)
	}
	return nil
}

// made reports whether up made dir.
func made(dir string) bool {
	_, err := os.Stat(filepath.Join(dir, marker))
	return err == nil
}

// removeDir removes the cluster's folder if up made it and refuses any other.
func removeDir(dir string) error {
	if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if !made(dir) {
		return fmt.Errorf("not removing %s: it holds no %s, so localcluster did not make it", dir, marker)
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("remove the cluster folder: %w", err)
	}
	return nil
}

// running returns the pid of the supervisor of the cluster in dir, or 0.
func running(dir string) (int, error) {
	pid, ok, err := cluster.ReadState(dir)
	if err != nil || !ok {
		return 0, err
	}
	if !isSupervisor(pid, dir) {
		return 0, nil
	}
	return pid, nil
}

// isSupervisor checks that pid is alive and is `localcluster run` for dir, so
// that a stale state file never makes us signal an unrelated process.
func isSupervisor(pid int, dir string) bool {
	raw, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "cmdline"))
	if err != nil {
		return false
	}
	args := strings.Split(strings.TrimRight(string(raw), "\x00"), "\x00")
	hasRun, hasDir := false, false
	for _, a := range args {
		hasRun = hasRun || a == "run"
		hasDir = hasDir || a == "--dir="+dir
	}
	return hasRun && hasDir
}

func up(ctx context.Context, dir string) error {
	if pid, err := running(dir); err != nil {
		return err
	} else if pid != 0 {
		fmt.Printf("already running (pid %d)\n", pid)
		return status(dir)
	}
	if err := claimDir(dir); err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	logPath := filepath.Join(dir, "localcluster.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return err
	}
	defer logFile.Close()
	cmd := exec.Command(self, "run", "--dir="+dir)
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	// A session of its own: the supervisor outlives this command and the
	// terminal's signals.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start supervisor: %w", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	fmt.Printf("starting the local control plane (pid %d, log %s)\n", cmd.Process.Pid, logPath)

	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	ticker := time.NewTicker(200 * time.Millisecond)
	defer ticker.Stop()
	for {
		// The new supervisor's state, not one that a dead one left.
		if pid, _ := running(dir); pid == cmd.Process.Pid {
			return status(dir)
		}
		select {
		case err := <-exited:
			log, _ := os.ReadFile(logPath)
			return fmt.Errorf("control plane failed to start (%v):\n%s", err, log)
		case <-ctx.Done():
			_ = cmd.Process.Signal(syscall.SIGTERM)
			return fmt.Errorf("control plane not ready after 5 minutes; see %s", logPath)
		case <-ticker.C:
		}
	}
}

func run(ctx context.Context, dir string) error {
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	// Also here, since run can be started without up.
	if err := claimDir(dir); err != nil {
		return err
	}
	c, err := cluster.Start(ctx, cluster.Options{Dir: dir, Progress: os.Stdout})
	if err != nil {
		return err
	}
	fmt.Println("ready")
	<-ctx.Done()
	fmt.Println("stopping")
	return c.Stop()
}

func status(dir string) error {
	pid, err := running(dir)
	if err != nil {
		return err
	}
	if pid == 0 {
		return fmt.Errorf("not running (folder %s)", dir)
	}
	c, err := cluster.Attach(dir)
	if err != nil {
		return err
	}
	fmt.Printf(`running (pid %d)
  kubeconfig:     %s
  Prometheus:     %s
  kubectl:        %s
  logs:           %s
  use it:         export KUBECONFIG=%s
  tests attach:   export %s=%s
`, pid, c.Kubeconfig, c.PrometheusURL, c.Bin("kubectl"), dir, c.Kubeconfig, cluster.EnvDir, dir)
	return nil
}

func down(dir string) error {
	pid, err := running(dir)
	if err != nil {
		return err
	}
	if pid == 0 {
		fmt.Println("not running")
		return removeDir(dir)
	}
	proc, err := os.FindProcess(pid)
	if err != nil {
		return err
	}
	if err := proc.Signal(syscall.SIGTERM); err != nil {
		return fmt.Errorf("stop supervisor (pid %d): %w", pid, err)
	}
	// The supervisor stops its children in order; if it hangs, killing it
	// kills them too (they die with their parent).
	deadline := time.Now().Add(30 * time.Second)
	for isSupervisor(pid, dir) {
		if time.Now().After(deadline) {
			_ = proc.Signal(syscall.SIGKILL)
			return errors.New("supervisor did not stop within 30s; killed it")
		}
		time.Sleep(100 * time.Millisecond)
	}
	fmt.Printf("stopped (pid %d)\n", pid)
	return removeDir(dir)
}
