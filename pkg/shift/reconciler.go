package shift

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/source"

	"sluice.dev/sluice/pkg/alert"
	"sluice.dev/sluice/pkg/analysis"
	"sluice.dev/sluice/pkg/canary"
	"sluice.dev/sluice/pkg/hooks"
	"sluice.dev/sluice/pkg/policy"
	"sluice.dev/sluice/pkg/promconn"
	"sluice.dev/sluice/pkg/routing"
	"sluice.dev/sluice/pkg/routing/routers"
)

// Checker measures one canary for its analysis, and asks its custom
// checks' queries.
type Checker interface {
	Measure(ctx context.Context, t analysis.Target, queries ...string) analysis.Measurement
}

// EventRecorder records the reconciler's events, as pkg/events does.
type EventRecorder interface {
	// Event records an event that must reach the API server: a main event,
	// or why sluice leaves a Deployment alone.
	Event(obj runtime.Object, eventtype, reason, message string)
	// StepEvent records a step of a rollout, which may be dropped when the
	// API server falls behind.
	StepEvent(obj runtime.Object, eventtype, reason, message string)
}

// Reconciler applies Step to opted-in Deployments: it observes, decides, and
// writes what the decision says. Its only state is the resourceVersions of
// its own recent writes, so that it does not act on a cache that has not
// caught up with them, and what a status write in doubt tells; the
// rollout's state lives in the cluster.
type Reconciler struct {
	Client client.Client
	// APIReader reads from the API server, bypassing the cache.
	APIReader client.Reader
	Events    EventRecorder
	// Checker measures canaries in the installation's Prometheus.
	Checker Checker
	// Prometheus measures canaries in the Prometheus their policy names;
	// nil measures every canary with Checker.
	Prometheus *analysis.Pool
	// PolicySecrets is the namespace of the Secrets that ClusterCanaryPolicies
	// name: the one sluice runs in.
	PolicySecrets string
	Metrics       *Metrics
	// Defaults are the installation's defaults of the settings, the same as
	// the webhook's. The zero value is invalid, and SetupWithManager refuses
	// it: a built-in fallback would hide a shifter that missed the
	// operator's defaults.
	Defaults canary.Defaults
	// Now is the clock; time.Now when nil.
	Now func() time.Time
	// Hooks calls the policies' webhooks; nil calls none, and answers each
	// call as unreachable.
	Hooks *hooks.Runner
	// Alerts sends the policies' alerts; nil sends none.
	Alerts *alert.Notifier

	// wakeups carries the Deployments whose webhook calls have ended.
	wakeups chan event.GenericEvent

	writes      writes
	unconfirmed unconfirmed
}

// SetupWithManager registers the reconciler: it watches opted-in
// Deployments and the objects it creates for them.
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager, workers int) error {
	if err := r.Defaults.Validate(); err != nil {
		return fmt.Errorf("shifter: %w", err)
	}
	if err := mgr.GetFieldIndexer().IndexField(context.Background(), &autoscalingv2.HorizontalPodAutoscaler{}, autoscalerTarget,
		indexAutoscalerTarget); err != nil {
		return fmt.Errorf("shifter: index autoscalers by target: %w", err)
	}
	r.wakeups = make(chan event.GenericEvent, wakeupBuffer)
	optedIn := predicate.Funcs{
		CreateFunc:  func(e event.CreateEvent) bool { return canary.Enabled(e.Object.GetAnnotations()) },
		DeleteFunc:  func(event.DeleteEvent) bool { return false },
		GenericFunc: func(e event.GenericEvent) bool { return canary.Enabled(e.Object.GetAnnotations()) },
		// Also the update that opts out: sluice must clean up after it.
		UpdateFunc: func(e event.UpdateEvent) bool {
			return canary.Enabled(e.ObjectNew.GetAnnotations()) || canary.Enabled(e.ObjectOld.GetAnnotations())
		},
	}
	b := ctrl.NewControllerManagedBy(mgr).
		Named("canary").
		For(&appsv1.Deployment{}, builder.WithPredicates(optedIn)).
		Owns(&appsv1.Deployment{}).
		Owns(&canary.Canary{})
	for _, rt := range routers.All() {
		// A router whose API the cluster does not serve has nothing to
		// watch; watching it would keep the manager from starting.
		if _, err := apiutil.IsObjectNamespaced(rt.New(), mgr.GetScheme(), mgr.GetRESTMapper()); meta.IsNoMatchError(err) {
			mgr.GetLogger().Info("not watching routes: the cluster does not serve their API", "router", rt.Name(), "kind", rt.Kind())
			continue
		}
		b = b.Owns(rt.New())
	}
	return b.
		Watches(&autoscalingv2.HorizontalPodAutoscaler{}, handler.EnqueueRequestsFromMapFunc(r.autoscaledDeployments)).
		Watches(&canary.CanaryPolicy{}, handler.EnqueueRequestsFromMapFunc(r.policyUsers)).
		Watches(&canary.ClusterCanaryPolicy{}, handler.EnqueueRequestsFromMapFunc(r.policyUsers)).
		WatchesRawSource(source.Channel(r.wakeups, &handler.EnqueueRequestForObject{})).
		WithOptions(controller.Options{MaxConcurrentReconciles: workers}).
		Complete(r)
}

// wakeupBuffer bounds the ended webhook calls waiting to wake their
// reconcile; past it a wake-up is dropped, and the decision's requeue
// looks again.
const wakeupBuffer = 1024

// Wake looks at the rollout of Deployment key again: one of its webhook
// calls has ended. It never blocks.
func (r *Reconciler) Wake(key types.NamespacedName) {
	dep := &appsv1.Deployment{}
	dep.Namespace, dep.Name = key.Namespace, key.Name
	select {
	case r.wakeups <- event.GenericEvent{Object: dep}:
	default:
	}
}

// Reconcile implements reconcile.Reconciler.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	result, err := r.reconcile(ctx, req)
	if errors.Is(err, errBehind) {
		// The requeue only covers a watch event that got lost.
		return ctrl.Result{RequeueAfter: 5 * time.Second}, nil
	}
	return result, err
}

func (r *Reconciler) reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	dep := &appsv1.Deployment{}
	if found, err := r.read(ctx, req.NamespacedName, dep); err != nil || !found {
		// Not found: deleted, and its owner references take everything
		// sluice made with it.
		return ctrl.Result{}, err
	}
	if !canary.Enabled(dep.Annotations) || dep.DeletionTimestamp != nil {
		return ctrl.Result{}, r.release(ctx, dep)
	}
	cr := &canary.Canary{}
	found, err := r.read(ctx, req.NamespacedName, cr)
	if err != nil {
		return ctrl.Result{}, err
	}
	if !found {
		cr = nil
	}
	runsBy, err := r.policy(ctx, dep, cr)
	var problems []string
	if policy.IsNotFound(err) {
		problems = append(problems, err.Error())
	} else if err != nil {
		return ctrl.Result{}, err
	}
	settings, sources, invalid := routers.ParseWithPolicy(r.Defaults, runsBy, dep.Annotations)
	if problems = append(problems, invalid...); len(problems) > 0 {
		// The webhook refuses such settings; they can only predate it, or
		// the policy they name was deleted since.
		r.Events.Event(dep, corev1.EventTypeWarning, "InvalidSettings",
			fmt.Sprintf("sluice ignores this Deployment until its settings are fixed: %v", problems))
		return ctrl.Result{}, nil
	}
	if cr, err = r.ensureCanary(ctx, dep, cr, settings); err != nil {
		return ctrl.Result{}, err
	}
	if err := r.confirm(ctx, dep, cr); err != nil {
		return ctrl.Result{}, err
	}
	rte, err := r.ensureRouting(ctx, dep, cr, settings)
	if err != nil || rte == nil {
		return ctrl.Result{}, err
	}
	obs, seen, err := r.observe(ctx, dep, cr, settings)
	if err != nil {
		return ctrl.Result{}, err
	}
	obs.Policy, obs.SettingSources = runsBy, sources
	obs.Routed = rte.router.Routed(rte.target, rte.obj)
	d := r.step(ctx, dep, runsBy, &obs)
	if d.RunChecks {
		m := r.measure(ctx, dep, runsBy, settings, d.Window, analysis.Queries(Checks(obs)))
		obs.Measurement = &m
		d = r.step(ctx, dep, runsBy, &obs)
	}
	return r.apply(ctx, dep, cr, rte, seen, d)
}

// measure measures the canary of dep over window, in the Prometheus its
// policy names, or the installation's. A connection that cannot be made
// (a Secret missing) leaves the analysis blind, with the reason.
func (r *Reconciler) measure(ctx context.Context, dep *appsv1.Deployment, p *canary.PolicySnapshot, s canary.Settings,
	window time.Duration, queries []string) analysis.Measurement {
	t := analysis.Target{Namespace: dep.Namespace, Canary: routing.CanaryName(dep.Name), Primary: dep.Name, Window: window}
	if s.Prometheus == nil || p == nil || r.Prometheus == nil {
		return r.Checker.Measure(ctx, t, queries...)
	}
	conn, err := promconn.Resolve(ctx, r.APIReader, r.secretsNamespace(dep, p), *s.Prometheus)
	var checker *analysis.Batcher
	if err == nil {
		checker, err = r.Prometheus.For(conn)
	}
	if err != nil {
		return analysis.Measurement{Err: fmt.Errorf("the Prometheus of %s: %w", canary.PolicyRef{Kind: p.Kind, Name: p.Name}, err)}
	}
	return checker.Measure(ctx, t, queries...)
}

// policy returns the policy dep runs by: during an analysis, the one the
// analysis started with (none, if it started without); otherwise, and for
// a new revision, the one dep names now.
func (r *Reconciler) policy(ctx context.Context, dep *appsv1.Deployment, cr *canary.Canary) (*canary.PolicySnapshot, error) {
	if cr != nil && analysing(cr.Status.Phase) && dep.Annotations[canary.AnnotationCanaryRevision] == cr.Status.CanaryRevision {
		return cr.Status.Policy, nil
	}
	return policy.Find(ctx, r.Client, dep.Namespace, dep.Annotations)
}

func (r *Reconciler) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

// seen is what observe read beyond the Observation, for apply to use.
type seen struct {
	// template is the diverted pod template; nil for none.
	template *corev1.PodTemplateSpec
	// canary is the canary Deployment; nil if there is none.
	canary *appsv1.Deployment
	// autoscaler scales the primary; nil if none does.
	autoscaler *autoscalingv2.HorizontalPodAutoscaler
}

// observe reads what Step needs.
func (r *Reconciler) observe(ctx context.Context, dep *appsv1.Deployment, cr *canary.Canary, s canary.Settings) (Observation, seen, error) {
	var w seen
	primary, err := templateRevision(dep.Spec.Template)
	if err != nil {
		return Observation{}, w, err
	}
	replicas := ptr.Deref(dep.Spec.Replicas, 1)
	obs := Observation{
		Now: r.now(), Namespace: dep.Namespace, Name: dep.Name, Settings: s,
		PrimaryRevision: primary,
		PrimaryReady: dep.Status.ObservedGeneration >= dep.Generation && dep.Status.UpdatedReplicas == replicas &&
			dep.Status.AvailableReplicas == replicas && dep.Status.Replicas == replicas,
	}
	if cr.Status.Phase != "" {
		obs.Status = &cr.Status
	}
	obs.Intent, obs.Generation = cr.Spec.Intent, cr.Generation
	if raw, ok := dep.Annotations[canary.AnnotationCanaryTemplate]; ok {
		w.template = &corev1.PodTemplateSpec{}
		if err := json.Unmarshal([]byte(raw), w.template); err != nil {
			// The webhook writes this annotation; a broken one is no canary.
			r.Events.Event(dep, corev1.EventTypeWarning, "InvalidTemplate",
				fmt.Sprintf("%s does not hold a pod template: %v", canary.AnnotationCanaryTemplate, err))
			return obs, seen{}, nil
		}
		obs.PendingRevision = dep.Annotations[canary.AnnotationCanaryRevision]
		if obs.PendingPrimaryRevision, err = templateRevision(*w.template); err != nil {
			return obs, w, err
		}
	}
	if w.autoscaler, err = r.primaryAutoscaler(ctx, dep); err != nil {
		return obs, w, err
	}
	can := &appsv1.Deployment{}
	found, err := r.read(ctx, types.NamespacedName{Namespace: dep.Namespace, Name: routing.CanaryName(dep.Name)}, can)
	if err != nil {
		return obs, w, err
	}
	if found {
		w.canary = can
		obs.CanaryReady = canaryReady(can, obs.PendingRevision, replicas, w.autoscaler != nil)
	}
	return obs, w, nil
}

// applyTimeout bounds the writes of one decision, which go on when the
// shifter is stopping: well inside the manager's 30s graceful shutdown.
const applyTimeout = 15 * time.Second

// apply writes what d says: the status first (so that a restart resumes from
// it), then the weights, the canary Deployment and a promotion.
func (r *Reconciler) apply(ctx context.Context, dep *appsv1.Deployment, cr *canary.Canary, rte *route,
	w seen, d Decision) (ctrl.Result, error) {
	// A stopping shifter cancels ctx: a status write cut off after the API
	// server took it would leave the step's events unrecorded, and the next
	// shifter would not record them again. The writes of a decision finish,
	// within the manager's grace period.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), applyTimeout)
	defer cancel()
	if equality.Semantic.DeepEqual(cr.Status, d.Status) {
		r.tell(ctx, dep, cr, d)
	} else if err := r.writeStatus(ctx, dep, cr, d); err != nil {
		return ctrl.Result{}, err
	}
	if err := r.setRouting(ctx, rte, d.Routing); err != nil {
		return ctrl.Result{}, err
	}
	if err := r.applyCanary(ctx, dep, w, d); err != nil {
		return ctrl.Result{}, err
	}
	if d.Promote {
		promoted, err := Promote(ctx, r.Client, r.APIReader, dep)
		if promoted != nil {
			r.wrote(promoted)
		}
		if promoted == nil && apierrors.IsConflict(err) {
			// A newer template arrived: its update brings this Deployment
			// back at once; the requeue only covers other causes.
			return ctrl.Result{RequeueAfter: time.Second}, nil
		} else if err != nil {
			return ctrl.Result{}, err
		}
	}
	return ctrl.Result{RequeueAfter: d.RequeueAfter}, nil
}
