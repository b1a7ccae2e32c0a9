package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	istiov1 "istio.io/client-go/pkg/apis/networking/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"sluice.dev/sluice/pkg/canary"
	"sluice.dev/sluice/pkg/shift"
	"sluice.dev/sluice/test/cluster"
	"sluice.dev/sluice/test/meshsim/mesh"
	"sluice.dev/sluice/test/sluice"
)

// namespace holds the suite's Deployments.
const namespace = "chaos"

// rps is the simulated requests per second through each VirtualService:
// enough for a canary at 25% to pass a step on one 2s interval's requests
// (30), and to have shown itself good (226 error-free requests since its
// analysis started) by the weight that promotes it.
const rps = 100

// runner is one run of the suite: the control plane, sluice, the mesh, the
// drivers, the faults and the ledger.
type runner struct {
	o           options
	env         *cluster.Cluster
	ns          string
	client      client.Client
	cs          kubernetes.Interface
	ledger      *ledger
	webhook     *supervisor
	shifters    []*supervisor
	shifterBins []*sluice.Shifter
	faults      []injected
	stop        atomic.Bool
}

// report is what a run found.
type report struct {
	seed       uint64
	began      time.Time
	duration   time.Duration
	faults     []injected
	ledger     *ledger
	selfExits  map[string]int
	violations []violation
}

func (r *runner) stopping() bool { return r.stop.Load() }

// pause sleeps d, or until ctx ends: the pace of a schedule, not a wait for
// a condition.
func (r *runner) pause(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// run starts everything, runs the schedule until enough rollouts and faults
// are done, lets all settle, checks, and stops everything again, also on
// failure or Ctrl-C.
func run(ctx context.Context, o options) (rep *report, err error) {
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	began := time.Now()
	if o.seed == 0 {
		o.seed = uint64(began.UnixNano())
	}
	dir, err := os.MkdirTemp("", "sluice-chaos-")
	if err != nil {
		return nil, err
	}
	var stops []func() error
	defer func() {
		for i := len(stops) - 1; i >= 0; i-- {
			err = errors.Join(err, stops[i]())
		}
		if err != nil || (rep != nil && len(rep.violations) > 0) || o.keep {
			o.progress("the logs are kept in %s", dir)
			return
		}
		err = os.RemoveAll(dir)
	}()
	o.progress("seed %d", o.seed)
	o.progress("starting the local control plane")
	env, err := cluster.Start(ctx, cluster.Options{Dir: filepath.Join(dir, "cluster"), BinDir: o.binDir, AuditPolicy: auditPolicy, Progress: sayWriter(o.progress)})
	if err != nil {
		return nil, err
	}
	stops = append(stops, env.Stop)
	r := &runner{o: o, env: env, ns: namespace}
	scheme, err := shift.NewScheme()
	if err != nil {
		return nil, err
	}
	cfg := env.AdminConfig()
	// A request that meets a paused etcd fails, rather than hang the
	// schedule.
	cfg.Timeout = 20 * time.Second
	if r.client, err = client.New(cfg, client.Options{Scheme: scheme}); err != nil {
		return nil, err
	}
	if r.cs, err = kubernetes.NewForConfig(env.AdminConfig()); err != nil {
		return nil, err
	}
	// Processes started in the background stop with bg, before the cluster.
	bg, stopBG := context.WithCancel(context.WithoutCancel(ctx))
	stops = append(stops, func() error { stopBG(); return nil })

	o.progress("starting the mesh simulator, the webhook and two shifters with leader election")
	m, err := mesh.Start(bg, env.AdminConfig(), mesh.Options{Listen: "127.0.0.1:0", MetricsListen: "127.0.0.1:0", RPS: rps})
	if err != nil {
		return nil, err
	}
	stops = append(stops, func() error { m.Stop(); return nil })
	if err := env.SetScrapeTargets("mesh", m.MetricsAddr); err != nil {
		return nil, err
	}
	hook, err := sluice.StartWebhook(env, dir)
	if err != nil {
		if hook != nil {
			hook.Stop()
		}
		return nil, err
	}
	r.webhook = supervise(bg, "webhook", hook, o.progress)
	stops = append(stops, func() error { r.webhook.stop(); return nil })
	for _, name := range []string{"shifter-a", "shifter-b"} {
		s, err := sluice.StartShifter(env, dir, name, "--leader-elect", "--leader-election-namespace=sluice-system")
		if err != nil {
			if s != nil {
				s.Stop()
			}
			return nil, err
		}
		sup := supervise(bg, name, s, o.progress)
		stops = append(stops, func() error { sup.stop(); return nil })
		r.shifters, r.shifterBins = append(r.shifters, sup), append(r.shifterBins, s)
	}

	names := make([]string, o.deployments)
	for i := range names {
		names[i] = appName(i)
	}
	r.ledger = newLedger(names)
	if err := r.watch(bg); err != nil {
		return nil, err
	}
	if err := r.client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: r.ns}}); err != nil {
		return nil, fmt.Errorf("create namespace %s: %w", r.ns, err)
	}
	drivers, err := r.create(ctx)
	if err != nil {
		return nil, err
	}

	o.progress("running the schedule until %d rollouts and %d faults are done", o.rollouts, o.minFaults)
	var wg sync.WaitGroup
	for _, d := range drivers {
		wg.Go(func() { d.run(ctx) })
	}
	wg.Go(func() { r.injectAll(ctx) })
	wg.Go(func() { r.checkLoop(ctx) })
	wg.Wait()
	if ctx.Err() != nil {
		return r.report(began), fmt.Errorf("the schedule did not finish within %s: %d rollouts, %d faults", o.timeout, r.ledger.completed(), r.faultCount())
	}

	o.progress("updates stopped, faults healed; waiting for every canary to settle")
	for _, s := range r.supervisors() {
		if err := s.waitUp(ctx); err != nil {
			return r.report(began), fmt.Errorf("%s did not come back: %w", s.name, err)
		}
	}
	r.ledger.final(ctx, r.client, r.cs, r.ns, r.env.AuditLog(), o.settle)
	return r.report(began), nil
}

func (r *runner) supervisors() []*supervisor { return append([]*supervisor{r.webhook}, r.shifters...) }

func (r *runner) report(began time.Time) *report {
	rep := &report{seed: r.o.seed, began: began, duration: time.Since(began), ledger: r.ledger, selfExits: map[string]int{}}
	for _, s := range r.supervisors() {
		s.mu.Lock()
		rep.selfExits[s.name] = s.selfExits
		s.mu.Unlock()
	}
	r.ledger.mu.Lock()
	defer r.ledger.mu.Unlock()
	rep.faults, rep.violations = r.faults, r.ledger.violations
	return rep
}

// create creates the opted-in Deployments, each with its first template,
// and waits until sluice has initialized them all.
func (r *runner) create(ctx context.Context) ([]*driver, error) {
	var drivers []*driver
	for i := range r.o.deployments {
		name := appName(i)
		d := &driver{r: r, app: r.ledger.apps[name], lines: newLines(r.o.seed, i), replicas: 1, bad: map[string]bool{}}
		first := line{app: i, act: applyGood, path: kubectlApply}
		u := d.send(ctx, first, fmt.Sprintf("%d.0", i), want{template: fmt.Sprintf("%d.0", i)})
		if u.result != plain && u.result != cleared {
			return nil, fmt.Errorf("create %s: %s %s", name, u.result, u.err)
		}
		u.result = plain
		drivers = append(drivers, d)
	}
	err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, 2*time.Minute, true, func(context.Context) (bool, error) {
		r.ledger.mu.Lock()
		defer r.ledger.mu.Unlock()
		for _, a := range r.ledger.apps {
			if s := a.lastStatus(); s == nil || s.st.Phase != canary.PhaseInitialized {
				return false, nil
			}
		}
		return true, nil
	})
	if err != nil {
		return nil, fmt.Errorf("wait for every Canary to be Initialized: %w", err)
	}
	return drivers, nil
}

// done reports whether the run has enough rollouts and faults; the updates
// and the faults go on until it has both.
func (r *runner) done() bool {
	return r.ledger.completed() >= r.o.rollouts && r.faultCount() >= r.o.minFaults
}

func (r *runner) faultCount() int {
	r.ledger.mu.Lock()
	defer r.ledger.mu.Unlock()
	n := 0
	for _, f := range r.faults {
		if f.err == nil {
			n++
		}
	}
	return n
}

// injectAll injects the faults of the schedule, one after the other, until
// the run is done; then it stops the updates.
func (r *runner) injectAll(ctx context.Context) {
	defer r.stop.Store(true)
	g := newFaults(r.o.seed)
	for ctx.Err() == nil && !r.done() {
		f := g.next()
		r.pause(ctx, f.gap)
		in := r.inject(ctx, f)
		r.ledger.mu.Lock()
		r.faults = append(r.faults, in)
		if f.kind == killShifter && in.err == nil {
			r.ledger.kills = append(r.ledger.kills, in.start)
		}
		r.ledger.mu.Unlock()
		if in.err != nil {
			r.o.progress("%s: %v", f, in.err)
		} else {
			r.o.progress("%s: healed in %s; %d rollouts so far", f, in.end.Sub(in.start).Round(100*time.Millisecond), r.ledger.completed())
		}
	}
}

// checkLoop checks the changes of the primaries every second while the
// schedule runs: the continuous, best-effort checks.
func (r *runner) checkLoop(ctx context.Context) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for !r.stopping() {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if err := r.ledger.readAudit(r.env.AuditLog()); err != nil {
			r.o.progress("%v", err)
		}
		r.ledger.checkPrimaries(10 * time.Second)
	}
}

// watch follows the suite's Deployments, Canaries and VirtualServices with
// informers, which list and watch again after an API server restart.
func (r *runner) watch(ctx context.Context) error {
	c, err := cache.New(r.env.AdminConfig(), cache.Options{Scheme: r.client.Scheme(), DefaultNamespaces: map[string]cache.Config{namespace: {}}})
	if err != nil {
		return err
	}
	handlers := map[client.Object]toolscache.ResourceEventHandlerFuncs{
		&appsv1.Deployment{}: {
			AddFunc:    func(obj any) { r.ledger.sawDeployment(obj.(*appsv1.Deployment)) },
			UpdateFunc: func(_, obj any) { r.ledger.sawDeployment(obj.(*appsv1.Deployment)) },
		},
		&canary.Canary{}: {
			AddFunc:    func(obj any) { r.ledger.sawCanary(obj.(*canary.Canary), false) },
			UpdateFunc: func(_, obj any) { r.ledger.sawCanary(obj.(*canary.Canary), false) },
			DeleteFunc: func(obj any) {
				if tomb, ok := obj.(toolscache.DeletedFinalStateUnknown); ok {
					obj = tomb.Obj
				}
				if cr, ok := obj.(*canary.Canary); ok {
					r.ledger.sawCanary(cr, true)
				}
			},
		},
		&istiov1.VirtualService{}: {
			AddFunc:    func(obj any) { r.ledger.checkWeights(obj.(*istiov1.VirtualService)) },
			UpdateFunc: func(_, obj any) { r.ledger.checkWeights(obj.(*istiov1.VirtualService)) },
		},
	}
	for obj, h := range handlers {
		inf, err := c.GetInformer(ctx, obj)
		if err != nil {
			return fmt.Errorf("watch %T: %w", obj, err)
		}
		if _, err := inf.AddEventHandler(h); err != nil {
			return err
		}
	}
	go func() { _ = c.Start(ctx) }()
	if !c.WaitForCacheSync(ctx) {
		return fmt.Errorf("watch: not synced: %w", ctx.Err())
	}
	return nil
}
