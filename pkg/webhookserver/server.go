// Package webhookserver runs sluice's admission webhook as a process: the
// HTTPS server of pkg/mutate's handler with its certificates (from files, or
// kept by pkg/servingcert), the health endpoints and the metrics endpoint.
package webhookserver

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/sync/errgroup"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/controller-runtime/pkg/webhook"

	"sluice.dev/sluice/pkg/canary"
	"sluice.dev/sluice/pkg/mutate"
	"sluice.dev/sluice/pkg/servingcert"
)

// ServerOptions configure Serve.
type ServerOptions struct {
	// BindAddress is host:port of the HTTPS webhook server.
	BindAddress string
	// CertDir holds tls.crt and tls.key, reloaded when they change; unused
	// with Certificates.
	CertDir string
	// MetricsBindAddress is host:port of the HTTP /metrics endpoint; "0" disables it.
	MetricsBindAddress string
	// ShifterIdentities are the user names whose updates pass unchanged.
	ShifterIdentities []string
	// Defaults are the installation's defaults of the settings, the same as
	// the shifter's. Serve refuses invalid ones, the zero value among them.
	Defaults canary.Defaults
	// Certificates, when set, makes the webhook keep its own certificates in
	// a Secret instead of reading CertDir.
	Certificates *CertificateOptions
	Log          logr.Logger
}

// CertificateOptions configure certificates the webhook manages itself.
type CertificateOptions struct {
	// Config reaches the API server.
	Config *rest.Config
	// Secret holds the certificates.
	Secret types.NamespacedName
	// WebhookConfiguration is the MutatingWebhookConfiguration whose CA
	// bundle the webhook keeps.
	WebhookConfiguration string
	Policy               servingcert.Policy
}

// Serve runs the webhook server and the metrics endpoint until ctx ends.
func Serve(ctx context.Context, opts ServerOptions) error {
	if err := opts.Defaults.Validate(); err != nil {
		return fmt.Errorf("webhook: %w", err)
	}
	host, portText, err := net.SplitHostPort(opts.BindAddress)
	if err != nil {
		return fmt.Errorf("webhook bind address %q: %w", opts.BindAddress, err)
	}
	port, err := strconv.Atoi(portText)
	if err != nil {
		return fmt.Errorf("webhook bind address %q: port: %w", opts.BindAddress, err)
	}
	var rotator *servingcert.Rotator
	var mgr ctrl.Manager
	if c := opts.Certificates; c != nil {
		if mgr, err = ctrl.NewManager(c.Config, ctrl.Options{
			Cache:   servingcert.CacheOptions(c.Secret, c.WebhookConfiguration),
			Metrics: metricsserver.Options{BindAddress: "0"},
		}); err != nil {
			return fmt.Errorf("certificate manager: %w", err)
		}
		rotator = &servingcert.Rotator{Client: mgr.GetClient(), Secret: c.Secret, Webhook: c.WebhookConfiguration,
			Policy: c.Policy, Log: opts.Log.WithName("servingcert")}
		if err := rotator.SetupWithManager(mgr); err != nil {
			return fmt.Errorf("certificate rotation: %w", err)
		}
	}
	srv := webhook.NewServer(webhook.Options{
		Host:     host,
		Port:     port,
		CertDir:  opts.CertDir,
		CertName: "tls.crt",
		KeyName:  "tls.key",
		TLSOpts: []func(*tls.Config){func(c *tls.Config) {
			c.MinVersion = tls.VersionTLS12
			// HTTP/1.1 only, as Kubebuilder advises, which keeps the server
			// out of reach of HTTP/2 stream-reset floods.
			c.NextProtos = []string{"http/1.1"}
			if rotator != nil {
				c.GetCertificate = rotator.GetCertificate
			}
		}},
	})
	srv.Register(mutate.Path, mutate.NewWebhook(mutate.NewHandler(opts.ShifterIdentities, opts.Defaults, mutate.NewMetrics(ctrlmetrics.Registry), opts.Log)))
	// healthz.Handler serves "" (all checks) and "/<check>" below its path.
	srv.Register("/healthz", http.StripPrefix("/healthz", &healthz.Handler{Checks: map[string]healthz.Checker{"ping": healthz.Ping}}))
	ready := map[string]healthz.Checker{"webhook": srv.StartedChecker()}
	if rotator != nil {
		ready["certificate"] = rotator.Ready
	}
	srv.Register("/readyz", http.StripPrefix("/readyz", &healthz.Handler{Checks: ready}))

	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return srv.Start(ctx) })
	if mgr != nil {
		g.Go(func() error { return mgr.Start(ctx) })
	}
	if opts.MetricsBindAddress != "0" {
		g.Go(func() error { return serveMetrics(ctx, opts.MetricsBindAddress) })
	}
	return g.Wait()
}

func serveMetrics(ctx context.Context, addr string) error {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(ctrlmetrics.Registry, promhttp.HandlerOpts{}))
	s := &http.Server{Addr: addr, Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = s.Shutdown(shutdown)
	}()
	if err := s.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("metrics endpoint %s: %w", addr, err)
	}
	return nil
}
