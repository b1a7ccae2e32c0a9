// Command shifter runs sluice's canaries: for every opted-in Deployment with a
// diverted template it runs the canary, moves Istio traffic to it step by step
// while Prometheus says it is healthy, and promotes or rolls it back.
package main

import (
	"context"
	"flag"
	"fmt"
	"net/http"
	"os"
	"time"

	promapi "github.com/prometheus/client_golang/api"
	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/spf13/cobra"
	appsv1 "k8s.io/api/apps/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	corev1client "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"sluice.dev/sluice/internal/kubeflag"
	"sluice.dev/sluice/pkg/alert"
	"sluice.dev/sluice/pkg/analysis"
	"sluice.dev/sluice/pkg/buildinfo"
	"sluice.dev/sluice/pkg/canary"
	"sluice.dev/sluice/pkg/events"
	"sluice.dev/sluice/pkg/hooks"
	"sluice.dev/sluice/pkg/shift"
	"sluice.dev/sluice/pkg/version"
)

func main() {
	if err := newCommand().Execute(); err != nil {
		os.Exit(1)
	}
}

type options struct {
	kubeconfig, prometheusURL, metricsAddr, probeAddr, leaderNamespace, policySecrets string
	// self is --deployment, the shifter's own Deployment.
	self           kubeflag.NamespacedName
	leaderElect    bool
	workers, burst int
	hookSlots      int
	qps            float32
	batchDelay     time.Duration
	defaults       canary.Defaults
}

func newCommand() *cobra.Command {
	o := options{self: kubeflag.NamespacedName{Example: "sluice-system/sluice"}}
	zapOpts := zap.Options{}
	cmd := &cobra.Command{
		Use:          "shifter",
		Version:      version.String(),
		Short:        "sluice's canary controller: traffic shifting, analysis, promotion and rollback",
		Args:         cobra.NoArgs,
		SilenceUsage: true,
		RunE: func(*cobra.Command, []string) error {
			ctrl.SetLogger(zap.New(zap.UseFlagOptions(&zapOpts)).WithName("shifter"))
			return run(o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.kubeconfig, "kubeconfig", "", "kubeconfig file; empty: the in-cluster service account")
	f.StringVar(&o.prometheusURL, "prometheus-url", "http://prometheus.istio-system:9090", "base URL of the Prometheus that scrapes Istio's telemetry")
	f.StringVar(&o.metricsAddr, "metrics-bind-address", ":8080", `host:port of the Prometheus /metrics endpoint; "0" disables it`)
	f.StringVar(&o.probeAddr, "health-probe-bind-address", ":8081", "host:port of /healthz and /readyz")
	f.BoolVar(&o.leaderElect, "leader-elect", false, "elect a leader with a Lease, so that of several replicas only one acts")
	f.StringVar(&o.leaderNamespace, "leader-election-namespace", "sluice-system", "namespace of the leader election Lease")
	f.StringVar(&o.policySecrets, "cluster-policy-secret-namespace", "sluice-system",
		"namespace of the Secrets that ClusterCanaryPolicies name: Prometheus credentials, webhook signing keys, alert addresses")
	f.Var(&o.self, "deployment",
		"the shifter's own Deployment: when it is scaled to zero or deleted, the stopping shifter routes all traffic to the primaries and scales the canaries down")
	f.IntVar(&o.workers, "workers", 100, "canaries reconciled at once")
	// A rollout costs about 25 requests; the API server's priority and
	// fairness protects it, so the client's own limit is set for a thousand
	// canaries rolling out together.
	f.IntVar(&o.hookSlots, "webhook-calls-per-receiver", 8,
		"lifecycle webhook calls in flight to one receiver (scheme and host); more wait their turn, so a receiver that hangs holds up no other")
	f.Float32Var(&o.qps, "kube-api-qps", 500, "requests per second to the API server, on average")
	f.IntVar(&o.burst, "kube-api-burst", 1000, "requests to the API server in a burst")
	f.DurationVar(&o.batchDelay, "analysis-batch-delay", 250*time.Millisecond,
		"how long the first due check waits for others, so that they share one Prometheus query per metric")
	o.defaults.AddFlags(f)
	goFlags := flag.NewFlagSet("zap", flag.ContinueOnError)
	zapOpts.BindFlags(goFlags)
	f.AddGoFlagSet(goFlags)
	return cmd
}

// run runs the shifter.
func run(o options) error {
	cfg, err := clientcmd.BuildConfigFromFlags("", o.kubeconfig)
	if err != nil {
		return fmt.Errorf("kubeconfig: %w", err)
	}
	cfg.QPS, cfg.Burst = o.qps, o.burst
	scheme, err := shift.NewScheme()
	if err != nil {
		return err
	}
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme: scheme,
		// Managed fields are a good part of a Deployment's size; the shifter
		// keeps only who owns the pod template, for its promotions.
		Cache:                   cache.Options{DefaultTransform: shift.TransformManagedFields},
		Metrics:                 metricsserver.Options{BindAddress: o.metricsAddr},
		HealthProbeBindAddress:  o.probeAddr,
		LeaderElection:          o.leaderElect,
		LeaderElectionID:        "sluice-shifter",
		LeaderElectionNamespace: o.leaderNamespace,
		// The process ends when the manager does, so the lease can go at
		// once: a standby takes over without waiting for it to expire.
		LeaderElectionReleaseOnCancel: true,
	})
	if err != nil {
		return fmt.Errorf("manager: %w", err)
	}
	prom, err := promapi.NewClient(promapi.Config{Address: o.prometheusURL})
	if err != nil {
		return fmt.Errorf("prometheus client for %s: %w", o.prometheusURL, err)
	}
	if err := buildinfo.Register(ctrlmetrics.Registry); err != nil {
		return fmt.Errorf("shifter metrics: %w", err)
	}
	observe := analysis.QueryMetrics(ctrlmetrics.Registry)
	batcher := func(api promv1.API) *analysis.Batcher {
		return analysis.NewBatcher(analysis.New(api, observe), o.batchDelay, 30*time.Second)
	}
	eventsClient, err := corev1client.NewForConfig(cfg)
	if err != nil {
		return fmt.Errorf("events client: %w", err)
	}
	// Without it, events have no reporting instance, which the API server
	// allows.
	host, _ := os.Hostname()
	recorder := events.New(eventsClient, scheme, events.Options{
		Component: shift.EventSource, Instance: host, Registerer: ctrlmetrics.Registry, Logger: ctrl.Log.WithName("events"),
	})
	// Not a runnable of the manager: it stops those that need no leader
	// election before the reconcilers, and the others with them, and the
	// recorder must take every event the reconcilers record. So it stops
	// when the manager has returned, and writes what is left within 5s:
	// with drainIfRemoved's 20s, inside the pod's grace period of 30s.
	stopEvents := recorder.Start()
	defer stopEvents()
	r := &shift.Reconciler{
		Client:        mgr.GetClient(),
		APIReader:     mgr.GetAPIReader(),
		Events:        recorder,
		Checker:       batcher(promv1.NewAPI(prom)),
		Prometheus:    analysis.NewPool(batcher),
		PolicySecrets: o.policySecrets,
		Metrics:       shift.NewMetrics(ctrlmetrics.Registry),
		Defaults:      o.defaults,
	}
	r.Hooks = hooks.NewRunner(&http.Client{}, r.Wake, hooks.NewMetrics(ctrlmetrics.Registry), ctrl.Log.WithName("hooks"),
		hooks.RunnerOptions{PerReceiver: o.hookSlots})
	r.Alerts = alert.New(&http.Client{}, ctrlmetrics.Registry, alert.WithLogger(ctrl.Log.WithName("alerts")))
	defer func() {
		// The alerts queued by the last decisions go out, within the pod's
		// grace period.
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		r.Alerts.Close(ctx)
	}()
	if err := r.SetupWithManager(mgr, o.workers); err != nil {
		return err
	}
	if err := mgr.AddHealthzCheck("ping", healthz.Ping); err != nil {
		return err
	}
	if err := mgr.AddReadyzCheck("ping", healthz.Ping); err != nil {
		return err
	}
	if err := mgr.Start(ctrl.SetupSignalHandler()); err != nil {
		return err
	}
	return drainIfRemoved(cfg, scheme, o.self.NamespacedName)
}

// drainIfRemoved drains every canary when the shifter stops because its own
// Deployment was scaled to zero or deleted: then nothing runs the canaries
// any more, and users must not be served a version nothing watches. A
// restart or a rolling update leaves them as they are.
func drainIfRemoved(cfg *rest.Config, scheme *runtime.Scheme, self types.NamespacedName) error {
	if self.Name == "" {
		return nil
	}
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		return err
	}
	// Within the pod's grace period.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	log := ctrl.Log.WithName("drain")
	own := &appsv1.Deployment{}
	err = c.Get(ctx, self, own)
	switch {
	case apierrors.IsNotFound(err), err == nil && (own.DeletionTimestamp != nil || ptr.Deref(own.Spec.Replicas, 1) == 0):
		log.Info("sluice is scaled to zero or removed: routing all traffic to the primaries", "deployment", self.String())
		if err := shift.Drain(ctx, c); err != nil {
			return err
		}
		log.Info("Drained")
		return nil
	case err != nil:
		return fmt.Errorf("read the shifter's Deployment %s: %w", self, err)
	}
	return nil
}
