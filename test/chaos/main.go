// Command chaos runs many opted-in Deployments through random updates on a
// schedule drawn from a seed, while it injects faults into the control plane
// and sluice, and checks sluice's invariants all along and once all is
// quiet:
//
//	go run ./test/chaos --seed 42 --deployments 30 --rollouts 200 --min-faults 50
//
// It prints the seed, every fault with the time to the first progress of any
// canary after it, the updates and rollouts by outcome, and each violation
// with the schedule lines that led to it; the same seed draws the same
// schedule again.
package main

import (
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/go-logr/logr"
	"github.com/spf13/cobra"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"sluice.dev/sluice/test/cluster"
)

func main() {
	if err := newCommand().Execute(); err != nil {
		os.Exit(1)
	}
}

func newCommand() *cobra.Command {
	o := options{}
	cmd := &cobra.Command{
		Use:          "chaos",
		Short:        "Random updates of many canaries while faults are injected; checks sluice's invariants",
		Args:         cobra.NoArgs,
		SilenceUsage: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctrllog.SetLogger(logr.Discard())
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			o.progress = func(format string, args ...any) { fmt.Fprintf(cmd.ErrOrStderr(), format+"\n", args...) }
			rep, err := run(ctx, o)
			if rep != nil {
				rep.print(cmd.OutOrStdout(), o)
			}
			if err == nil && len(rep.violations) > 0 {
				err = fmt.Errorf("%d violations", len(rep.violations))
			}
			return err
		},
	}
	f := cmd.Flags()
	f.Uint64Var(&o.seed, "seed", 0, "seed of the schedule of updates and faults; 0: from the time (the seed is always printed)")
	f.IntVar(&o.deployments, "deployments", 30, "opted-in Deployments")
	f.IntVar(&o.rollouts, "rollouts", 200, "stop the updates once this many rollouts have been promoted or failed (and min-faults injected)")
	f.IntVar(&o.minFaults, "min-faults", 50, "inject faults until at least this many (and the rollouts) are done")
	f.DurationVar(&o.interval, "interval", 2*time.Second, "sluice.dev/interval of every canary")
	f.DurationVar(&o.settle, "settle", 3*time.Minute, "how long every canary may take to settle once the updates stop")
	f.DurationVar(&o.timeout, "timeout", 40*time.Minute, "how long the whole run may take")
	f.StringVar(&o.binDir, "bin-dir", cluster.DefaultBinDir(), "folder of the control plane's binaries (make tools)")
	f.BoolVar(&o.keep, "keep", false, "keep the logs of the control plane and sluice also when the run finds no violation")
	return cmd
}

type options struct {
	seed                             uint64
	deployments, rollouts, minFaults int
	interval, settle, timeout        time.Duration
	binDir                           string
	keep                             bool
	// progress receives a line per event of the run.
	progress func(format string, args ...any)
}

// sayWriter passes the control plane's start-up lines to a progress func.
type sayWriter func(string, ...any)

func (w sayWriter) Write(b []byte) (int, error) {
	w("%s", strings.TrimSuffix(string(b), "\n"))
	return len(b), nil
}

// command is the command line that runs the same schedule again.
func (o options) command() string {
	return fmt.Sprintf("go run ./test/chaos --seed %d --deployments %d --rollouts %d --min-faults %d --interval %s",
		o.seed, o.deployments, o.rollouts, o.minFaults, o.interval)
}
