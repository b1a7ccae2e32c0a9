// Command demo replays the classic Jenkins X lesson "canary with Flagger,
// Istio and Prometheus" with sluice in Flagger's place, on a local control
// plane with a simulated mesh, deploying with nothing but kubectl apply:
//
//	make demo                  # or: go run ./test/demo
//	DEMO_INTERVAL=30s make demo   # at the lesson's pace
//	DEMO_ROUTER=gateway-api make demo   # routed by an HTTPRoute, not a VirtualService
//	make demo-down             # stop a demo that kept running
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/go-logr/logr"
	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/util/wait"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"sluice.dev/sluice/pkg/canary"
	"sluice.dev/sluice/pkg/cli"
)

func main() {
	if err := newCommand().Execute(); err != nil {
		os.Exit(1)
	}
}

type options struct {
	interval time.Duration
	keep     bool
	dir      string
	// router is the demo's sluice.dev/router: canary.RouterIstio or
	// canary.RouterGatewayAPI.
	router string
	// short tells only the first release and the A/B test.
	short bool
}

func newCommand() *cobra.Command {
	var o options
	cmd := &cobra.Command{
		Use:          "demo",
		Short:        "Replay the Jenkins X canary lesson with sluice on a local control plane",
		Args:         cobra.NoArgs,
		SilenceUsage: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			// The demo narrates; the libraries' own logs would only clutter it.
			ctrllog.SetLogger(logr.Discard())
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return run(ctx, o)
		},
	}
	// The environment gives the flags' defaults, as make passes them; a bad
	// value is reported when the command runs.
	var envErrs []error
	interval, err := time.ParseDuration(envOr("DEMO_INTERVAL", "10s"))
	if err != nil {
		envErrs = append(envErrs, fmt.Errorf("DEMO_INTERVAL=%q is not a duration; want one such as 10s or 30s", os.Getenv("DEMO_INTERVAL")))
	}
	keep, err := strconv.ParseBool(envOr("DEMO_KEEP", "true"))
	if err != nil {
		envErrs = append(envErrs, fmt.Errorf("DEMO_KEEP=%q is not a boolean; want 1 or 0", os.Getenv("DEMO_KEEP")))
	}
	// The router is checked once the flags are parsed: a good --router
	// makes up for a bad $DEMO_ROUTER.
	cmd.PersistentPreRunE = func(*cobra.Command, []string) error {
		return errors.Join(append(envErrs, checkRouter(o.router))...)
	}
	f := cmd.PersistentFlags()
	f.DurationVar(&o.interval, "interval", interval, "sluice.dev/interval of the canary ($DEMO_INTERVAL)")
	f.StringVar(&o.router, "router", envOr("DEMO_ROUTER", canary.RouterIstio),
		"sluice.dev/router of the demo's Deployment: "+strings.Join(routerNames, " or ")+" ($DEMO_ROUTER)")
	f.BoolVar(&o.short, "short", false, "tell only the first release and the A/B test, the scenes that show the routing")
	f.BoolVar(&o.keep, "keep", keep, "keep everything running at the end until Ctrl-C or `make demo-down` ($DEMO_KEEP)")
	f.StringVar(&o.dir, "dir", filepath.Join(os.TempDir(), "sluice-demo"), "folder of the demo's cluster, logs and transcript; its cluster/ subfolder is replaced")
	cmd.AddCommand(&cobra.Command{
		Use:   "down",
		Short: "Stop a demo that keeps running",
		Args:  cobra.NoArgs,
		RunE:  func(cmd *cobra.Command, _ []string) error { return down(cmd.Context(), o.dir) },
	})
	return cmd
}

// routerNames are the values of --router: the routers sluice ships.
var routerNames = []string{canary.RouterIstio, canary.RouterGatewayAPI}

func checkRouter(router string) error {
	if !slices.Contains(routerNames, router) {
		return fmt.Errorf("router %q (--router or $DEMO_ROUTER) is not one of sluice's routers; want %s", router, strings.Join(routerNames, " or "))
	}
	return nil
}

func envOr(key, fallback string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return fallback
}

// run tells the story and, with o.keep, keeps everything running until ctx
// ends; it stops every process it started, also on failure and Ctrl-C.
func run(ctx context.Context, o options) (err error) {
	if err := os.MkdirAll(o.dir, 0o755); err != nil {
		return err
	}
	unlock, err := lock(o.dir)
	if err != nil {
		return err
	}
	defer unlock()
	// A control plane left by a demo that was killed would not start again.
	if err := os.RemoveAll(filepath.Join(o.dir, "cluster")); err != nil {
		return err
	}
	transcript, err := os.Create(filepath.Join(o.dir, "transcript.txt"))
	if err != nil {
		return err
	}
	defer transcript.Close()
	live := cli.NewLive(os.Stdout)
	live.Transcript = transcript
	d := &demo{o: o, screen: &screen{live}}
	defer func() {
		d.screen.say("Stopping everything the demo started")
		err = errors.Join(err, d.stop())
		d.screen.line("Transcript: %s", transcript.Name())
	}()
	if err := d.tell(ctx); err != nil {
		if ctx.Err() != nil {
			return nil // Ctrl-C
		}
		d.screen.line("The demo failed: %v; the logs are in %s", err, o.dir)
		return err
	}
	if o.keep {
		d.screen.say("Everything keeps running until Ctrl-C or `make demo-down`")
		<-ctx.Done()
	}
	return nil
}

func pidFile(dir string) string { return filepath.Join(dir, "demo.pid") }

// lock marks dir as the folder of the running demo: the pid file, locked for
// as long as the demo runs, so that a PID that outlived its demo and was
// reused by another process is never mistaken for it.
func lock(dir string) (unlock func(), err error) {
	f, err := os.OpenFile(pidFile(dir), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		pid, _ := running(dir)
		return nil, fmt.Errorf("a demo already runs in %s (pid %d); `make demo-down` stops it", dir, pid)
	}
	if err := f.Truncate(0); err != nil {
		f.Close()
		return nil, err
	}
	if _, err := f.WriteString(strconv.Itoa(os.Getpid())); err != nil {
		f.Close()
		return nil, err
	}
	return func() { f.Close() }, nil
}

// running returns the PID of the demo that holds the lock on dir.
func running(dir string) (int, bool) {
	f, err := os.Open(pidFile(dir))
	if err != nil {
		return 0, false
	}
	defer f.Close()
	if syscall.Flock(int(f.Fd()), syscall.LOCK_SH|syscall.LOCK_NB) == nil {
		return 0, false // nobody holds it
	}
	raw, err := os.ReadFile(pidFile(dir))
	if err != nil {
		return 0, false
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(raw)))
	return pid, err == nil
}

// down stops the demo running in dir, by its PID, and waits until it ended.
func down(ctx context.Context, dir string) error {
	pid, ok := running(dir)
	if !ok {
		fmt.Println("no demo runs")
		return nil
	}
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		return fmt.Errorf("stop the demo (pid %d): %w", pid, err)
	}
	err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, time.Minute, true, func(context.Context) (bool, error) {
		_, alive := running(dir)
		return !alive, nil
	})
	if err != nil {
		return fmt.Errorf("the demo (pid %d) did not stop: %w", pid, err)
	}
	fmt.Println("the demo stopped")
	return nil
}
