// Command load runs N opted-in Deployments through a canary rollout at once
// on the local control plane, with healthy simulated Istio telemetry, and
// reports how the shifter kept up:
//
//	go run ./test/load --canaries 1,10,1000
//
// For each N it prints the lag of each step behind its schedule (p50, p99,
// max), the median and maximum time from the apply to Succeeded, the
// shifter's average CPU and peak RSS, the API requests the shifter made per
// rollout (counted from the API server's audit log), the events it wrote per
// rollout and of them the main ones, against those expected (counted from the
// Events in the round's namespace), and the Prometheus queries per second
// (counted from Prometheus' own metrics).
package main

import (
	"fmt"
	"io"
	"os"
	"os/signal"
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
		Use:          "load",
		Short:        "Measure the shifter with N canaries rolling out at once",
		Args:         cobra.NoArgs,
		SilenceUsage: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctrllog.SetLogger(logr.Discard())
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			o.out = cmd.OutOrStdout()
			_, err := run(ctx, o)
			return err
		},
	}
	f := cmd.Flags()
	f.IntSliceVar(&o.canaries, "canaries", []int{1, 10, 1000}, "numbers of canaries, one round each, in this order, on one control plane")
	f.DurationVar(&o.interval, "interval", 10*time.Second, "sluice.dev/interval of every canary")
	f.DurationVar(&o.timeout, "timeout", 15*time.Minute, "how long one round may take")
	f.StringVar(&o.binDir, "bin-dir", cluster.DefaultBinDir(), "folder of the control plane's binaries (make tools)")
	f.BoolVar(&o.customCheck, "custom-check", false,
		"give every canary a policy with a custom check (its request rate, one query per canary and analysis), besides the built-in ones")
	f.BoolVar(&o.webhooks, "webhooks", false,
		"give every canary a policy with webhooks: a rollout webhook that answers at once, and rollback and event webhooks whose receiver never answers")
	return cmd
}

type options struct {
	canaries []int
	interval time.Duration
	timeout  time.Duration
	binDir   string
	// customCheck gives every canary a policy with a custom check.
	customCheck bool
	// webhooks gives every canary a policy with webhooks, one receiver
	// answering at once, one never.
	webhooks bool
	// out receives each round's report as the round ends.
	out io.Writer
	// progress receives a line per phase of a round; nil: standard error.
	progress func(format string, args ...any)
}

func (o options) say(format string, args ...any) {
	if o.progress != nil {
		o.progress(format, args...)
		return
	}
	fmt.Fprintf(os.Stderr, format+"\n", args...)
}
