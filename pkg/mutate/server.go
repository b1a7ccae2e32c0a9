package mutate

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
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
	"sigs.k8s.io/controller-runtime/pkg/webhook"

	"sluice.dev/sluice/pkg/canary"
)

// ServerOptions configure Serve.
type ServerOptions struct {
	// BindAddress is host:port of the HTTPS webhook server.
	BindAddress string
	// CertDir holds tls.crt and tls.key; they are reloaded when they change.
	CertDir string
	// MetricsBindAddress is host:port of the HTTP /metrics endpoint; "0" disables it.
	MetricsBindAddress string
	// ShifterIdentities are the user names whose updates pass unchanged.
	ShifterIdentities []string
	// Defaults are the installation's defaults of the settings, the same as
	// the shifter's. Serve refuses invalid ones, the zero value among them.
	Defaults canary.Defaults
	Log      logr.Logger
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
		}},
	})
	handler := NewHandler(opts.ShifterIdentities, opts.Defaults, NewMetrics(ctrlmetrics.Registry), opts.Log)
	srv.Register(Path, &webhook.Admission{Handler: handler, RecoverPanic: ptr.To(true)})
	// healthz.Handler serves "" (all checks) and "/<check>" below its path.
	srv.Register("/healthz", http.StripPrefix("/healthz", &healthz.Handler{Checks: map[string]healthz.Checker{"ping": healthz.Ping}}))
	srv.Register("/readyz", http.StripPrefix("/readyz", &healthz.Handler{Checks: map[string]healthz.Checker{"webhook": srv.StartedChecker()}}))

	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return srv.Start(ctx) })
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
