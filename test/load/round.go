package main

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/rest"
	toolscache "k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"sluice.dev/sluice/pkg/canary"
	"sluice.dev/sluice/test/cluster"
	"sluice.dev/sluice/test/meshsim/telemetry"
	"sluice.dev/sluice/test/sluice"
)

const (
	// Every canary workload gets requestsPerTick requests each loadTick:
	// enough for the analysis to judge at every step of a 2s interval (30
	// requests) and to promote after the analysis at max-weight (226
	// error-free requests since it started), so that the rounds measure
	// the shifter, not a wait for evidence.
	loadTick        = time.Second
	requestsPerTick = 50
	// parallel is how many creates or updates the command sends at once.
	parallel = 32
	// stepWeight is the canaries' sluice.dev/step-weight.
	stepWeight = 20
)

var healthy = telemetry.Behaviour{Latency: 20 * time.Millisecond}

func newClient(env *cluster.Cluster, scheme *runtime.Scheme) (client.Client, error) {
	cfg := env.AdminConfig()
	cfg.QPS, cfg.Burst = 1000, 2000
	return client.New(cfg, client.Options{Scheme: scheme})
}

// round rolls n Deployments from v1 to v2 at once and measures it.
func (b *bench) round(ctx context.Context, n int) (report, error) {
	ctx, cancel := context.WithTimeout(ctx, b.o.timeout)
	defer cancel()
	b.rounds++
	ns := fmt.Sprintf("load-%d-%d", b.rounds, n)
	if err := b.client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
		return report{}, err
	}
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("app-%04d", i)
		b.mesh.Set(ns, names[i]+"-canary", healthy)
	}
	// The canaries of this round get no traffic in the next: it would cost
	// the next round's figures.
	defer b.mesh.Clear()
	tl, err := watchCanaries(ctx, b.env.AdminConfig(), b.client.Scheme(), ns)
	if err != nil {
		return report{}, err
	}
	policy := ""
	if b.o.customCheck || b.o.webhooks {
		policy = loadPolicy
		if err := b.createPolicy(ctx, ns); err != nil {
			return report{}, err
		}
	}
	calls := b.webhookCalls()
	b.o.say("  creating %d opted-in Deployments running v1", n)
	err = forEach(ctx, names, func(ctx context.Context, name string) error {
		return b.client.Create(ctx, deployment(ns, name, "example.com/app:v1", b.o.interval, policy))
	})
	if err != nil {
		return report{}, err
	}
	if err := tl.waitFor(ctx, "Initialized", n, func(c *canaryTimes) bool { return c.initialized }); err != nil {
		return report{}, err
	}

	before, err := b.sample(0)
	if err != nil {
		return report{}, err
	}
	b.o.say("  applying v2 to all %d", n)
	err = forEach(ctx, names, func(ctx context.Context, name string) error {
		return retry.RetryOnConflict(retry.DefaultRetry, func() error {
			dep := &appsv1.Deployment{}
			if err := b.client.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, dep); err != nil {
				return err
			}
			dep.Spec.Template.Spec.Containers[0].Image = "example.com/app:v2"
			if err := b.client.Update(ctx, dep); err != nil {
				return err
			}
			tl.applied(name, time.Now())
			return nil
		})
	})
	if err != nil {
		return report{}, err
	}
	b.o.say("  waiting for all %d to succeed", n)
	if err := tl.waitFor(ctx, "Succeeded", n, func(c *canaryTimes) bool { return !c.succeeded.IsZero() }); err != nil {
		return report{}, err
	}
	if err := b.waitScaledDown(ctx, ns, n); err != nil {
		return report{}, err
	}
	after, err := b.sample(before.auditOffset)
	if err != nil {
		return report{}, err
	}
	r := tl.report(n, b.o.interval, before, after)
	r.webhookCalls = b.webhookCalls().since(calls)
	if r.events, err = countEvents(ctx, b.client, ns); err != nil {
		return report{}, err
	}
	return r, nil
}

// loadPolicy is the policy of --custom-check and --webhooks.
const loadPolicy = "load"

// createPolicy creates the CanaryPolicy of --custom-check and --webhooks in
// ns, and waits until the webhook admits Deployments that name it.
func (b *bench) createPolicy(ctx context.Context, ns string) error {
	p := &canary.CanaryPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: loadPolicy}}
	if b.o.customCheck {
		p.Spec.Checks = []canary.CheckSpec{{
			Name: "request-rate", Unit: "/s", Min: ptr.To(1.0),
			Query: `sum(rate(istio_requests_total{reporter="destination",destination_workload_namespace="{{.Namespace}}",` +
				`destination_workload="{{.Workload}}"}[{{.Window}}]))`,
		}}
	}
	if b.o.webhooks {
		never := func(typ canary.HookType) canary.WebhookSpec {
			return canary.WebhookSpec{Name: string(typ), Type: typ, URL: b.hanging.URL + "/" + string(typ),
				Timeout: &metav1.Duration{Duration: 2 * time.Second}, Retries: ptr.To[int32](0)}
		}
		p.Spec.Webhooks = []canary.WebhookSpec{
			{Name: "rollout", Type: canary.HookRollout, URL: b.answering.URL + "/rollout"},
			never(canary.HookRollback), never(canary.HookEvent),
		}
	}
	if err := b.client.Create(ctx, p); err != nil {
		return fmt.Errorf("create the policy of --custom-check or --webhooks: %w", err)
	}
	probe := deployment(ns, "probe", "example.com/app:v1", b.o.interval, loadPolicy)
	return wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		return b.client.Create(ctx, probe, client.DryRunAll) == nil, nil
	})
}

// deployment is an opted-in Deployment of one replica with the classic
// lesson's settings (step 20, max 70, threshold 5), running by policy if
// not "".
func deployment(ns, name, image string, interval time.Duration, policy string) *appsv1.Deployment {
	labels := map[string]string{"app": name}
	annotations := map[string]string{
		canary.AnnotationEnabled:    canary.EnabledValue,
		canary.AnnotationStepWeight: strconv.Itoa(stepWeight),
		canary.AnnotationMaxWeight:  "70",
		canary.AnnotationThreshold:  "5",
		canary.AnnotationInterval:   interval.String(),
	}
	if policy != "" {
		annotations[canary.AnnotationPolicy] = policy
	}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Annotations: annotations},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](1),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{
					Name: "app", Image: image, Ports: []corev1.ContainerPort{{ContainerPort: 8080}},
				}}},
			},
		},
	}
}

// forEach runs do for every name, parallel at a time, and returns the first
// error.
func forEach(ctx context.Context, names []string, do func(context.Context, string) error) error {
	work := make(chan string)
	errs := make(chan error, parallel)
	var wg sync.WaitGroup
	for range min(parallel, len(names)) {
		wg.Go(func() {
			for name := range work {
				if err := do(ctx, name); err != nil {
					errs <- fmt.Errorf("%s: %w", name, err)
					return
				}
			}
		})
	}
	var err error
feed:
	for _, name := range names {
		select {
		case work <- name:
		case err = <-errs:
			break feed
		}
	}
	close(work)
	wg.Wait()
	close(errs)
	if err == nil {
		err = <-errs
	}
	return err
}

// waitScaledDown waits until the shifter has scaled every canary of the
// round down, its last write of a rollout.
func (b *bench) waitScaledDown(ctx context.Context, ns string, n int) error {
	return wait.PollUntilContextCancel(ctx, 200*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		list := &appsv1.DeploymentList{}
		if err := b.client.List(ctx, list, client.InNamespace(ns)); err != nil {
			return false, err
		}
		down := 0
		for _, d := range list.Items {
			if strings.HasSuffix(d.Name, "-canary") && ptr.Deref(d.Spec.Replicas, 1) == 0 {
				down++
			}
		}
		return down == n, nil
	})
}

// canaryTimes is what the command saw of one Canary's status.
type canaryTimes struct {
	initialized bool
	weight      int32
	applied     time.Time
	steps       []stepSeen // each non-zero weight, when first seen
	promoting   time.Time
	succeeded   time.Time
	// failedChecks is the Canary's count as last seen. Each rise is a halt,
	// which costs a status write and an event per failing check: haltRequests
	// adds them up.
	failedChecks, halts, haltRequests int32
	// lastStep is the Canary's lastStepTime as last seen. An analysis that
	// neither moved the weight nor failed held it (too few requests to
	// judge, or blind), at the cost of a status write and an event.
	lastStep            time.Time
	holds, holdRequests int32
}

type stepSeen struct {
	at     time.Time
	weight int32
}

// timeline records, as the watch delivers them, when each Canary of a round
// changed its weight and phase.
type timeline struct {
	mu     sync.Mutex
	canary map[string]*canaryTimes
}

// watchCanaries follows the Canaries of ns through an informer, which lists
// and watches again whenever the API server ends a watch, as it does with
// watchers that fall behind under load.
func watchCanaries(ctx context.Context, cfg *rest.Config, scheme *runtime.Scheme, ns string) (*timeline, error) {
	c, err := cache.New(cfg, cache.Options{Scheme: scheme, DefaultNamespaces: map[string]cache.Config{ns: {}}})
	if err != nil {
		return nil, err
	}
	inf, err := c.GetInformer(ctx, &canary.Canary{})
	if err != nil {
		return nil, fmt.Errorf("watch Canaries in %s: %w", ns, err)
	}
	tl := &timeline{canary: map[string]*canaryTimes{}}
	observe := func(obj any) {
		if cr, ok := obj.(*canary.Canary); ok {
			tl.observe(cr, time.Now())
		}
	}
	_, err = inf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc:    observe,
		UpdateFunc: func(_, obj any) { observe(obj) },
	})
	if err != nil {
		return nil, err
	}
	go func() { _ = c.Start(ctx) }()
	if !c.WaitForCacheSync(ctx) {
		return nil, fmt.Errorf("watch Canaries in %s: %w", ns, ctx.Err())
	}
	return tl, nil
}

func (tl *timeline) get(name string) *canaryTimes {
	c, ok := tl.canary[name]
	if !ok {
		c = &canaryTimes{}
		tl.canary[name] = c
	}
	return c
}

func (tl *timeline) observe(cr *canary.Canary, at time.Time) {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	c := tl.get(cr.Name)
	st := cr.Status
	c.initialized = c.initialized || st.Phase != ""
	step := st.LastStepTime.Time
	if c.weight > 0 && st.CanaryWeight == c.weight && st.FailedChecks == c.failedChecks && !step.Equal(c.lastStep) &&
		st.Phase == canary.PhaseProgressing {
		c.holds++
		c.holdRequests += 2
	}
	c.lastStep = step
	if st.CanaryWeight != c.weight && st.CanaryWeight > 0 {
		c.steps = append(c.steps, stepSeen{at, st.CanaryWeight})
	}
	c.weight = st.CanaryWeight
	if rise := st.FailedChecks - c.failedChecks; rise > 0 {
		failing := int32(0)
		for _, check := range st.Checks {
			if check.Verdict == canary.VerdictFailed {
				failing++
			}
		}
		c.halts += rise
		c.haltRequests += rise * (1 + failing)
	}
	c.failedChecks = st.FailedChecks
	if st.Phase == canary.PhasePromoting && c.promoting.IsZero() && !c.applied.IsZero() {
		c.promoting = at
	}
	if st.Phase == canary.PhaseSucceeded && c.succeeded.IsZero() && !c.applied.IsZero() {
		c.succeeded = at
	}
}

func (tl *timeline) applied(name string, at time.Time) {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	tl.get(name).applied = at
}

// waitFor polls until n Canaries satisfy ok.
func (tl *timeline) waitFor(ctx context.Context, what string, n int, ok func(*canaryTimes) bool) error {
	count := func() int {
		tl.mu.Lock()
		defer tl.mu.Unlock()
		done := 0
		for _, c := range tl.canary {
			if ok(c) {
				done++
			}
		}
		return done
	}
	err := wait.PollUntilContextCancel(ctx, 100*time.Millisecond, true, func(context.Context) (bool, error) {
		return count() == n, nil
	})
	if err != nil {
		return fmt.Errorf("%d of %d Canaries %s: %w", count(), n, what, err)
	}
	return nil
}

// hookCalls counts the calls the receivers of --webhooks took, by path.
type hookCalls map[string]int

// webhookCalls counts the calls taken so far; none without --webhooks.
func (b *bench) webhookCalls() hookCalls {
	calls := hookCalls{}
	for _, r := range []*sluice.Receiver{b.answering, b.hanging} {
		if r == nil {
			continue
		}
		for _, c := range r.All() {
			calls[c.Path]++
		}
	}
	return calls
}

// since are the calls taken after before.
func (c hookCalls) since(before hookCalls) hookCalls {
	out := hookCalls{}
	for path, n := range c {
		if d := n - before[path]; d > 0 {
			out[path] = d
		}
	}
	return out
}
