// Package cli is kubectl sluice, the kubectl plugin of sluice: each command
// in a file of its own, on cobra and the kubectl flags of cli-runtime. Its
// views of canaries (RenderTable, RenderStatus, Live) are functions of
// their own, which the demo shows too.
package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	"sluice.dev/sluice/pkg/version"
)

// Options are what every command shares: the kubectl flags, the streams
// and the clock.
type Options struct {
	// Flags are kubectl's: --kubeconfig, --context, --namespace,
	// --request-timeout, ...
	Flags *genericclioptions.ConfigFlags
	genericiooptions.IOStreams
	// Now is the clock.
	Now func() time.Time
}

// NewRootCommand returns kubectl sluice with its commands, writing to
// streams.
func NewRootCommand(streams genericiooptions.IOStreams) *cobra.Command {
	o := &Options{Flags: genericclioptions.NewConfigFlags(true), IOStreams: streams, Now: time.Now}
	root := &cobra.Command{
		Use:   "kubectl-sluice",
		Short: "See sluice's canaries live, steer them, and wait for their outcome",
		Long: `kubectl sluice shows the canaries of sluice (canaries.sluice.dev): a table of
them, the whole story of one; it pauses, resumes, promotes, aborts and retries
a rollout, and waits for its outcome.`,
		Version:       version.String(),
		Args:          cobra.NoArgs,
		SilenceUsage:  true,
		SilenceErrors: true,
		// kubectl runs the binary kubectl-sluice as `kubectl sluice`.
		Annotations: map[string]string{cobra.CommandDisplayNameAnnotation: "kubectl sluice"},
	}
	root.SetIn(streams.In)
	root.SetOut(streams.Out)
	root.SetErr(streams.ErrOut)
	o.Flags.AddFlags(root.PersistentFlags())
	o.registerFlagCompletions(root)
	root.AddCommand(
		newGetCommand(o),
		newStatusCommand(o),
		newWaitCommand(o),
		newVersionCommand(o),
	)
	root.AddCommand(newActCommands(o)...)
	return root
}

// ExitError ends kubectl sluice with Code, after printing Err if set.
type ExitError struct {
	Code int
	Err  error
}

func (e *ExitError) Error() string {
	if e.Err == nil {
		return fmt.Sprintf("exit code %d", e.Code)
	}
	return e.Err.Error()
}

func (e *ExitError) Unwrap() error { return e.Err }

// Execute runs cmd (NewRootCommand's) with the process's arguments until it
// ends or the process is interrupted, prints its error, and returns the
// process's exit code: an ExitError's code, 1 for any other error.
func Execute(cmd *cobra.Command) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := cmd.ExecuteContext(ctx)
	if err == nil {
		return 0
	}
	var exit *ExitError
	if errors.As(err, &exit) {
		if exit.Err != nil {
			fmt.Fprintln(cmd.ErrOrStderr(), "error:", exit.Err)
		}
		return exit.Code
	}
	fmt.Fprintln(cmd.ErrOrStderr(), "error:", err)
	return 1
}

func newVersionCommand(o *Options) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version of kubectl sluice",
		Long:  "Print the version of kubectl sluice: the same string the webhook and the shifter print with --version.",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, err := fmt.Fprintf(o.Out, "%s version %s\n", cmd.Root().DisplayName(), version.String())
			return err
		},
	}
}
