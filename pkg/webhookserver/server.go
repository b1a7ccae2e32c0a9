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
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/sync/errgroup"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/controller-runtime/pkg/webhook"

	"sluice.dev/sluice/pkg/buildinfo"
	"sluice.dev/sluice/pkg/canary"
	"sluice.dev/sluice/pkg/intent"
	"sluice.dev/sluice/pkg/mutate"
	"sluice.dev/sluice/pkg/policy"
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
	// Config reaches the API server, whose CanaryPolicies and
	// ClusterCanaryPolicies the webhook caches.
	Config *rest.Config
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
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		return err
	}
	if err := canary.AddToScheme(scheme); err != nil {
		return err
	}
	cacheOpts := cache.Options{}
	if c := opts.Certificates; c != nil {
		cacheOpts = servingcert.CacheOptions(c.Secret, c.WebhookConfiguration)
	}
	mgr, err := ctrl.NewManager(opts.Config, ctrl.Options{Scheme: scheme, Cache: cacheOpts, Metrics: metricsserver.Options{BindAddress: "0"}})
	if err != nil {
		return fmt.Errorf("webhook manager: %w", err)
	}
	if err := buildinfo.Register(ctrlmetrics.Registry); err != nil {
		return fmt.Errorf("webhook metrics: %w", err)
	}
	policies := &policyCache{cache: mgr.GetCache(), log: opts.Log}
	if err := mgr.Add(policies); err != nil {
		return err
	}
	var rotator *servingcert.Rotator
	if c := opts.Certificates; c != nil {
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
	srv.Register(mutate.Path, mutate.NewWebhook(mutate.NewHandler(opts.ShifterIdentities, opts.Defaults,
		mutate.PolicyReaders{Cache: mgr.GetCache(), Live: mgr.GetAPIReader()}, mutate.NewMetrics(ctrlmetrics.Registry), opts.Log)))
	srv.Register(policy.Path, &webhook.Admission{Handler: policy.Admission{}, RecoverPanic: ptr.To(true)})
	srv.Register(intent.Path, &webhook.Admission{Handler: intent.Stamp{}, RecoverPanic: ptr.To(true)})
	// healthz.Handler serves "" (all checks) and "/<check>" below its path.
	srv.Register("/healthz", http.StripPrefix("/healthz", &healthz.Handler{Checks: map[string]healthz.Checker{"ping": healthz.Ping}}))
	ready := map[string]healthz.Checker{"webhook": srv.StartedChecker(), "policies": policies.ready}
	if rotator != nil {
		ready["certificate"] = rotator.Ready
	}
	srv.Register("/readyz", http.StripPrefix("/readyz", &healthz.Handler{Checks: ready}))

	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return srv.Start(ctx) })
	g.Go(func() error { return mgr.Start(ctx) })
	if opts.MetricsBindAddress != "0" {
		g.Go(func() error { return serveMetrics(ctx, opts.MetricsBindAddress) })
	}
	return g.Wait()
}

// policyCache starts the informers of the policies with the manager, so
// that the first admission finds them cached, and is ready once they are.
type policyCache struct {
	cache  cache.Cache
	log    logr.Logger
	synced atomic.Bool
}

func (p *policyCache) Start(ctx context.Context) error {
	for _, obj := range []client.Object{&canary.CanaryPolicy{}, &canary.ClusterCanaryPolicy{}} {
		// Their CRDs may come a moment after the webhook: it stays unready
		// until they do.
		err := wait.PollUntilContextCancel(ctx, time.Second, true, func(ctx context.Context) (bool, error) {
			_, err := p.cache.GetInformer(ctx, obj)
			if err != nil {
				p.log.Info("cannot watch the policies yet", "kind", fmt.Sprintf("%T", obj), "error", err.Error())
			}
			return err == nil, nil
		})
		if err != nil {
			return fmt.Errorf("watch %T: %w", obj, err)
		}
	}
	if !p.cache.WaitForCacheSync(ctx) {
		return ctx.Err()
	}
	p.synced.Store(true)
	return nil
}

func (p *policyCache) ready(*http.Request) error {
	if !p.synced.Load() {
		return errors.New("the policies are not cached yet")
	}
	return nil
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
