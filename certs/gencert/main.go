// Command gencert makes a CA and a serving certificate for sluice's webhook,
// for local runs and for clusters without cert-manager.
//
//	go run ./certs/gencert --host 127.0.0.1 --out ./webhook-certs
//	go run ./certs/gencert --host sluice-webhook.sluice-system.svc --out ./webhook-certs
//
// It writes ca.crt (the caBundle of the MutatingWebhookConfiguration),
// ca.key, tls.crt and tls.key (the webhook's --cert-dir).
package main

import (
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"sluice.dev/sluice/certs"
	"sluice.dev/sluice/pkg/version"
)

func main() {
	if err := newCommand().Execute(); err != nil {
		os.Exit(1)
	}
}

func newCommand() *cobra.Command {
	var (
		hosts    []string
		out      string
		validity time.Duration
	)
	cmd := &cobra.Command{
		Use:          "gencert",
		Version:      version.String(),
		Short:        "Make a CA and a serving certificate for sluice's webhook",
		Args:         cobra.NoArgs,
		SilenceUsage: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if len(hosts) == 0 {
				return fmt.Errorf("--host is required: the DNS name or IP address the API server uses to reach the webhook")
			}
			return generate(out, hosts, validity)
		},
	}
	cmd.Flags().StringSliceVar(&hosts, "host", nil, "DNS name or IP address of the webhook; repeat or separate with commas")
	cmd.Flags().StringVar(&out, "out", ".", "folder to write ca.crt, ca.key, tls.crt and tls.key to")
	cmd.Flags().DurationVar(&validity, "validity", 365*24*time.Hour, "how long the serving certificate is valid")
	return cmd
}

func generate(out string, hosts []string, validity time.Duration) error {
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	ca, err := certs.NewCA("sluice-webhook-ca")
	if err != nil {
		return err
	}
	caPair, err := ca.KeyPair()
	if err != nil {
		return err
	}
	if _, _, err := caPair.WriteFiles(out, "ca"); err != nil {
		return err
	}
	serving, err := ca.Issue(certs.Request{CommonName: hosts[0], Hosts: hosts, Validity: validity})
	if err != nil {
		return err
	}
	if _, _, err := serving.WriteFiles(out, "tls"); err != nil {
		return err
	}
	fmt.Printf("wrote %[1]s/ca.crt, %[1]s/ca.key, %[1]s/tls.crt and %[1]s/tls.key for %v\n", out, hosts)
	return nil
}
