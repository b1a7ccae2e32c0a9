// Command sluice-loadtester receives sluice's pre-rollout and rollout
// webhooks: it sends a canary the traffic it needs to be judged, or runs
// acceptance tests against it, and answers when done. The work is in
// pkg/loadtest.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"sluice.dev/sluice/pkg/loadtest"
	"sluice.dev/sluice/pkg/version"
)

func main() {
	if err := newCommand().Execute(); err != nil {
		os.Exit(1)
	}
}

func newCommand() *cobra.Command {
	cfg := loadtest.Config{Limits: loadtest.DefaultLimits()}
	zapOpts := zap.Options{}
	var listen, keyFile string
	cmd := &cobra.Command{
		Use:     "sluice-loadtester",
		Version: version.String(),
		Short:   "a receiver of sluice's webhooks that sends a canary traffic or runs acceptance tests",
		Long: `sluice-loadtester answers sluice's lifecycle webhooks (POST / or /hooks) with
work that the webhook's metadata asks for, answering 200 when it met its
expectation and 500 when not:

  load     url (http or https), rate (requests per second, 10), duration (10s),
           concurrency (4), method (GET), body, expectedStatus (200, or a
           class such as 2xx), maxErrorRate (percent, 0), host, header.NAME,
           requestTimeout (5s)
  command  cmd (a NAME given with --command), timeout (1m)

A command runs without a shell, with SLUICE_NAME, SLUICE_NAMESPACE,
SLUICE_REVISION, SLUICE_PHASE, SLUICE_CANARY_WEIGHT and SLUICE_HOOK set.

The answer comes when the work is done, so set the webhook's timeout above
the load's duration plus its requestTimeout, or above the command's timeout.
A repeat of a call (the same Sluice-Delivery) gets the first one's answer for
10 minutes, without doing the work again. Calls over a limit are refused with
400; beyond --max-runs, with 429.`,
		Args:         cobra.NoArgs,
		SilenceUsage: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg.Log = zap.New(zap.UseFlagOptions(&zapOpts)).WithName("loadtester")
			if keyFile != "" {
				key, err := os.ReadFile(keyFile)
				if err != nil {
					return fmt.Errorf("signing key: %w", err)
				}
				// Used as it is, a trailing newline included: sluice signs
				// with the bytes of the Secret that is mounted here.
				if len(bytes.TrimSpace(key)) == 0 {
					return fmt.Errorf("signing key file %s is empty", keyFile)
				}
				cfg.SigningKey = key
			}
			s, err := loadtest.New(cfg)
			if err != nil {
				return err
			}
			l, err := net.Listen("tcp", listen)
			if err != nil {
				return fmt.Errorf("listen on %s: %w", listen, err)
			}
			cfg.Log.Info("Serving", "address", l.Addr().String(), "signed", cfg.SigningKey != nil,
				"commands", cfg.Commands.String(), "version", version.String())
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return s.Serve(ctx, l)
		},
	}
	f := cmd.Flags()
	f.StringVar(&listen, "listen", ":8080", "host:port of the HTTP server: POST / and /hooks take webhook calls, GET /healthz answers probes")
	f.StringVar(&keyFile, "signing-key-file", "",
		"file with the key of the webhooks' signingSecret: calls without a valid Sluice-Signature are refused with 401; empty: calls need no signature")
	f.Float64Var(&cfg.Limits.MaxRate, "max-rate", loadtest.DefaultMaxRate, "most requests per second a load may ask for")
	f.DurationVar(&cfg.Limits.MaxDuration, "max-duration", loadtest.DefaultMaxDuration,
		"longest duration and requestTimeout a load, and timeout a command, may ask for")
	f.IntVar(&cfg.Limits.MaxConcurrency, "max-concurrency", loadtest.DefaultMaxConcurrency, "most requests in flight a load may ask for")
	f.IntVar(&cfg.Limits.MaxRuns, "max-runs", loadtest.DefaultMaxRuns, "loads and commands running at once; more calls are answered 429 with Retry-After")
	f.Var(&cfg.Commands, "command",
		`a command that calls may run by NAME, as NAME=PROGRAM ARG... (quotes keep spaces in an argument; no shell runs), such as 'smoke=/tests/smoke.sh --fast'; repeat for several`)
	goFlags := flag.NewFlagSet("zap", flag.ContinueOnError)
	zapOpts.BindFlags(goFlags)
	f.AddGoFlagSet(goFlags)
	return cmd
}
