// Command meshsim simulates Istio's data plane on loopback, for sluice's
// demo: it routes HTTP requests by the live rules of the cluster's
// VirtualServices and Gateway API HTTPRoutes (header and cookie matches,
// weights, mirrors, response headers), answers as each destination's pod
// template says (env MESSAGE, ERROR_RATE, LATENCY_MS), and exports Istio's
// standard telemetry. It is a simulator: no Envoy and no pod serves
// anything.
//
//	go run ./test/meshsim --kubeconfig admin.kubeconfig --rps 20 --client 'x-canary: insider @20%'
//	curl -H 'Host: staging.jx-progressive.example.com' http://127.0.0.1:8000/
package main

import (
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/go-logr/logr"
	"github.com/spf13/cobra"
	"k8s.io/client-go/tools/clientcmd"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"sluice.dev/sluice/test/meshsim/mesh"
)

func main() {
	if err := newCommand().Execute(); err != nil {
		os.Exit(1)
	}
}

func newCommand() *cobra.Command {
	var kubeconfig string
	var o mesh.Options
	cmd := &cobra.Command{
		Use:          "meshsim",
		Short:        "A simulated Istio data plane: weighted routing, answers from pod templates, Istio telemetry",
		Args:         cobra.NoArgs,
		SilenceUsage: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctrllog.SetLogger(logr.Discard())
			cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
			if err != nil {
				return fmt.Errorf("kubeconfig: %w", err)
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			s, err := mesh.Start(ctx, cfg, o)
			if err != nil {
				return err
			}
			defer s.Stop()
			fmt.Fprintf(cmd.OutOrStdout(), "routing http://%s/ by Host header; telemetry on http://%s/metrics\n", s.Addr, s.MetricsAddr)
			<-ctx.Done()
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&kubeconfig, "kubeconfig", os.Getenv("KUBECONFIG"), "kubeconfig of the cluster")
	f.StringVar(&o.Listen, "listen", "127.0.0.1:8000", "host:port of the mesh's HTTP entry")
	f.StringVar(&o.MetricsListen, "metrics-listen", "127.0.0.1:9464", "host:port of the telemetry's /metrics")
	f.IntVar(&o.RPS, "rps", 0, "background requests per second through every VirtualService and HTTPRoute; 0 for none")
	f.Var(&clients{&o.Clients}, "client", `a share of the background requests that carry a header, as "NAME: VALUE @PERCENT%" (e.g. 'x-canary: insider @20%' or 'cookie: canary=always @10%'); repeatable`)
	return cmd
}

// clients is the repeatable --client flag.
type clients struct{ list *[]mesh.Client }

func (c *clients) Set(s string) error {
	client, err := mesh.ParseClient(s)
	if err != nil {
		return err
	}
	list := append(*c.list, client)
	if err := mesh.ValidateClients(list); err != nil {
		return err
	}
	*c.list = list
	return nil
}

func (c *clients) String() string {
	if c.list == nil {
		return ""
	}
	var out []string
	for _, client := range *c.list {
		out = append(out, client.String())
	}
	return strings.Join(out, "; ")
}

func (c *clients) Type() string { return "client" }
