// Command webhook is sluice's mutating admission webhook: it diverts the new
// pod template of opted-in Deployments to a canary annotation.
package main

import (
	"flag"
	"os"

	"github.com/spf13/cobra"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"sluice.dev/sluice/pkg/mutate"
)

func main() {
	if err := newCommand().Execute(); err != nil {
		os.Exit(1)
	}
}

func newCommand() *cobra.Command {
	opts := mutate.ServerOptions{}
	zapOpts := zap.Options{}
	cmd := &cobra.Command{
		Use:   "webhook",
		Short: "sluice's mutating admission webhook for Deployments",
		Long: `webhook serves sluice's mutating admission webhook over HTTPS at ` + mutate.Path + `.
For Deployments annotated sluice.dev/canary: "enabled" it keeps the running pod
template and diverts a new one to the sluice.dev/canary-template annotation,
from which the shifter runs it as a canary. It writes nothing to the API server.`,
		Args:         cobra.NoArgs,
		SilenceUsage: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := opts.Defaults.Validate(); err != nil {
				return err
			}
			opts.Log = zap.New(zap.UseFlagOptions(&zapOpts)).WithName("webhook")
			ctrl.SetLogger(opts.Log)
			return mutate.Serve(ctrl.SetupSignalHandler(), opts)
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.BindAddress, "webhook-bind-address", ":9443", "host:port of the HTTPS webhook server")
	f.StringVar(&opts.CertDir, "cert-dir", "/tmp/k8s-webhook-server/serving-certs",
		"folder with the serving certificate tls.crt and key tls.key; reloaded when they change")
	f.StringVar(&opts.MetricsBindAddress, "metrics-bind-address", ":8080", `host:port of the Prometheus /metrics endpoint; "0" disables it`)
	f.StringArrayVar(&opts.ShifterIdentities, "shifter-identity", []string{"system:serviceaccount:sluice-system:sluice"},
		"user name of the shifter, whose updates (promotions) pass unchanged; repeat for several")
	opts.Defaults.AddFlags(f)
	goFlags := flag.NewFlagSet("zap", flag.ContinueOnError)
	zapOpts.BindFlags(goFlags)
	f.AddGoFlagSet(goFlags)
	return cmd
}
