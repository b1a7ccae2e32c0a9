// Command webhook is sluice's mutating admission webhook: it diverts the new
// pod template of opted-in Deployments to a canary annotation.
package main

import (
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/client-go/tools/clientcmd"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"sluice.dev/sluice/internal/kubeflag"
	"sluice.dev/sluice/pkg/mutate"
	"sluice.dev/sluice/pkg/version"
	"sluice.dev/sluice/pkg/webhookserver"
)

func main() {
	if err := newCommand().Execute(); err != nil {
		os.Exit(1)
	}
}

func newCommand() *cobra.Command {
	opts := webhookserver.ServerOptions{}
	zapOpts := zap.Options{}
	var kubeconfig string
	secret := kubeflag.NamespacedName{Example: "sluice-system/sluice-webhook-cert"}
	certs := webhookserver.CertificateOptions{}
	cmd := &cobra.Command{
		Use:     "webhook",
		Version: version.String(),
		Short:   "sluice's mutating admission webhook for Deployments",
		Long: `webhook serves sluice's mutating admission webhook over HTTPS at ` + mutate.Path + `.
For Deployments annotated sluice.dev/canary: "enabled" it keeps the running pod
template and diverts a new one to the sluice.dev/canary-template annotation,
from which the shifter runs it as a canary. It refuses settings that are
not valid, with the Deployment's policy (sluice.dev/policy), and references to
policies that do not exist. Admission has no side effects: it writes nothing to
the API server. Only with --cert-secret does the webhook write, to keep its own
certificates and the CA bundle of its configuration.`,
		Args:         cobra.NoArgs,
		SilenceUsage: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			opts.Log = zap.New(zap.UseFlagOptions(&zapOpts)).WithName("webhook")
			ctrl.SetLogger(opts.Log)
			cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
			if err != nil {
				return fmt.Errorf("kubeconfig: %w", err)
			}
			opts.Config = cfg
			if secret.Name != "" {
				certs.Secret = secret.NamespacedName
				if err := certs.Policy.Validate(); err != nil {
					return err
				}
				opts.Certificates = &certs
			}
			return webhookserver.Serve(ctrl.SetupSignalHandler(), opts)
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.BindAddress, "webhook-bind-address", ":9443", "host:port of the HTTPS webhook server")
	f.StringVar(&opts.CertDir, "cert-dir", "/tmp/k8s-webhook-server/serving-certs",
		"folder with the serving certificate tls.crt and key tls.key, reloaded when they change; unused with --cert-secret")
	f.Var(&secret, "cert-secret",
		"a Secret in which the webhook keeps its own CA and serving certificate, rotating them and the CA bundle of --webhook-configuration")
	f.StringVar(&kubeconfig, "kubeconfig", "", "kubeconfig file, to read the policies and, with --cert-secret, keep the certificates; empty: the in-cluster service account")
	f.StringVar(&certs.WebhookConfiguration, "webhook-configuration", "sluice", "MutatingWebhookConfiguration whose CA bundle --cert-secret keeps")
	f.StringArrayVar(&certs.Policy.Hosts, "cert-host", nil, "DNS name or IP address the self-managed serving certificate covers; repeat for several")
	f.DurationVar(&certs.Policy.CAValidity, "ca-validity", 5*365*24*time.Hour, "lifetime of a self-managed CA; a new one is phased in when a third is left")
	f.DurationVar(&certs.Policy.CertValidity, "cert-validity", 365*24*time.Hour, "lifetime of a self-managed serving certificate; renewed when a third is left")
	f.DurationVar(&certs.Policy.Overlap, "ca-overlap", 10*time.Minute,
		"how long a new CA is trusted before it signs, and a retired one after: longer than the API server and every replica take to see a change")
	f.StringVar(&opts.MetricsBindAddress, "metrics-bind-address", ":8080", `host:port of the Prometheus /metrics endpoint; "0" disables it`)
	f.StringArrayVar(&opts.ShifterIdentities, "shifter-identity", []string{"system:serviceaccount:sluice-system:sluice"},
		"user name of the shifter, whose updates (promotions) pass unchanged; repeat for several")
	opts.Defaults.AddFlags(f)
	goFlags := flag.NewFlagSet("zap", flag.ContinueOnError)
	zapOpts.BindFlags(goFlags)
	f.AddGoFlagSet(goFlags)
	return cmd
}
