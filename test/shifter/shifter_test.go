// Package shifter_test runs the webhook and the shifter together against the
// local control plane and a real Prometheus, driven by kubectl apply alone,
// with the canaries' telemetry simulated as Istio would export it.
package shifter_test

import (
	"context"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	istiov1 "istio.io/client-go/pkg/apis/networking/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	"sluice.dev/sluice/pkg/canary"
	"sluice.dev/sluice/pkg/routing"
	"sluice.dev/sluice/pkg/routing/gatewayapi"
	"sluice.dev/sluice/pkg/routing/istio"
	"sluice.dev/sluice/pkg/routing/routers"
	"sluice.dev/sluice/pkg/shift"
	"sluice.dev/sluice/test/cluster"
	"sluice.dev/sluice/test/meshsim/telemetry"
	"sluice.dev/sluice/test/sluice"
)

var (
	env       *cluster.Cluster
	setupOnce sync.Once
	setupErr  error
	stack     *sluice.Stack
	// The stack's parts, as the tests name them.
	workDir string
	hook    *sluice.Webhook
	shifter *sluice.Shifter
	mesh    *telemetry.Exporter
)

func TestMain(m *testing.M) {
	ctrllog.SetLogger(logr.Discard())
	code := cluster.RunTests(m, &env)
	stack.Stop()
	os.Exit(code)
}

func setup(t testing.TB) {
	t.Helper()
	setupOnce.Do(func() {
		if stack, setupErr = sluice.StartStack(env, "sluice-shifter-test-", "--zap-log-level=debug"); setupErr == nil {
			workDir, hook, shifter, mesh = stack.Dir, stack.Webhook, stack.Shifter, stack.Mesh
		}
	})
	if setupErr != nil {
		t.Fatal(setupErr)
	}
}

const app = "web"

// manifest is an opted-in Deployment with quick settings: steps 20, 40, 60,
// 80 (max-weight 70), a check every 2s over a 5s window, threshold 3.
func manifest(image string) string {
	return sluice.App{Name: app, Image: image, Replicas: 2, Container: sluice.Port8080, Annotations: sluice.QuickSettings("sluice.dev/progress-deadline: 1m")}.YAML()
}

// patient is manifest for tests that hold a canary at its first weight for
// a while: with no requests to judge it on, its checks are inconclusive
// until an evidence deadline of 10 minutes.
func patient(image string) string {
	return strings.Replace(manifest(image), "sluice.dev/progress-deadline: 1m", "sluice.dev/evidence-deadline: 10m", 1)
}

func kubectlApply(t testing.TB, ns, yaml string) {
	t.Helper()
	sluice.Apply(t, env, ns, yaml)
}

func newClient(t testing.TB) client.Client {
	t.Helper()
	return sluice.NewClient(t, env)
}

func waitPhase(t testing.TB, c client.Client, ns string, phase canary.Phase, timeout time.Duration) *canary.Canary {
	t.Helper()
	return waitStatus(t, c, ns, "Canary "+string(phase), timeout, func(st canary.CanaryStatus) bool { return st.Phase == phase })
}

// waitStatus waits until the Canary's status satisfies ok.
func waitStatus(t testing.TB, c client.Client, ns, what string, timeout time.Duration, ok func(canary.CanaryStatus) bool) *canary.Canary {
	t.Helper()
	return sluice.WaitCanary(t, c, client.ObjectKey{Namespace: ns, Name: app}, what, timeout, ok)
}

// weights records the canary weights the VirtualService goes through.
func weights(t *testing.T, ns string) func() []int32 { return weightsOf(t, ns, app, istio.Router{}) }

// weightsOf records the canary weights that route name of router rt goes
// through, as the router reads them.
func weightsOf(t *testing.T, ns, name string, rt routing.Router) func() []int32 {
	t.Helper()
	scheme, err := shift.NewScheme()
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.NewWithWatch(env.AdminConfig(), client.Options{Scheme: scheme})
	if err != nil {
		t.Fatal(err)
	}
	gvk, err := apiutil.GVKForObject(rt.New(), scheme)
	if err != nil {
		t.Fatal(err)
	}
	list := &unstructured.UnstructuredList{}
	list.SetGroupVersionKind(gvk.GroupVersion().WithKind(gvk.Kind + "List"))
	w, err := c.Watch(t.Context(), list, client.InNamespace(ns), client.MatchingFields{"metadata.name": name})
	if err != nil {
		t.Fatal(err)
	}
	target := routing.Target{Deployment: &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: app}}}
	var mu sync.Mutex
	var seen []int32
	go func() {
		for e := range w.ResultChan() {
			u, ok := e.Object.(*unstructured.Unstructured)
			if !ok || e.Type == watch.Deleted {
				continue
			}
			route := rt.New()
			if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, route); err != nil {
				continue
			}
			weight := rt.Routed(target, route).CanaryWeight
			mu.Lock()
			if len(seen) == 0 || seen[len(seen)-1] != weight {
				seen = append(seen, weight)
			}
			mu.Unlock()
		}
	}()
	t.Cleanup(w.Stop)
	return func() []int32 { mu.Lock(); defer mu.Unlock(); return slices.Clone(seen) }
}

// canaryEvents lists the messages of the events about the Canary, oldest
// first: the recorder names each event after its creation time in
// nanoseconds, in hex, which orders events of the same second.
func canaryEvents(t *testing.T, ns string) []string {
	t.Helper()
	return shifterEvents(t, ns, "Canary")
}

// shifterEvents lists the messages of the shifter's events about the object
// of kind named app, oldest first.
func shifterEvents(t *testing.T, ns, kind string) []string {
	t.Helper()
	return sluice.EventMessages(t, env, ns, kind, app)
}

// onRouter is manifest routed by router rt: Istio's by default, without
// the annotation.
func onRouter(rt routing.Router) func(image string) string {
	if rt.Name() == canary.RouterIstio {
		return manifest
	}
	return func(image string) string {
		return sluice.App{Name: app, Image: image, Replicas: 2, Container: sluice.Port8080,
			Annotations: sluice.QuickSettings("sluice.dev/progress-deadline: 1m", "sluice.dev/router: "+rt.Name())}.YAML()
	}
}

// The lesson's happy path, on each router.
func TestHappyPathByKubectlApplyOnly(t *testing.T) {
	for _, rt := range routers.All() {
		t.Run(rt.Name(), func(t *testing.T) { happyPath(t, rt) })
	}
}

func happyPath(t *testing.T, rt routing.Router) {
	manifest := onRouter(rt)
	ns, c := initialized(t, manifest, telemetry.Behaviour{Latency: 20 * time.Millisecond})
	seen := weightsOf(t, ns, app, rt)

	kubectlApply(t, ns, manifest("example.com/web:v2"))
	cr := waitPhase(t, c, ns, canary.PhaseSucceeded, 2*time.Minute)

	// The status is written before the weight: wait for the last weight.
	expectWeights(t, seen, "canary weights %v; want %v")
	dep := &appsv1.Deployment{}
	if err := c.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: app}, dep); err != nil {
		t.Fatal(err)
	}
	if img := dep.Spec.Template.Spec.Containers[0].Image; img != "example.com/web:v2" {
		t.Errorf("primary runs %s after the promotion; want v2", img)
	}
	if _, ok := dep.Annotations[canary.AnnotationCanaryTemplate]; ok {
		t.Error("the promoted Deployment still carries the canary template")
	}
	if cr.Status.CanaryWeight != 0 || cr.Status.FailedChecks != 0 {
		t.Errorf("final status %+v", cr.Status)
	}
	want := append([]string{"Initialization done! web." + ns}, rolloutEvents(ns)...)
	// The canary's telemetry series are new with the namespace: a first
	// 2s window that Prometheus' 1s scrapes have sampled once has no
	// increase to count, and the step rightly holds for want of requests.
	waited := regexp.MustCompile(`^Hold web\.` + ns + ` at canary weight \d+: request-success-rate: not enough requests to judge: 0 at this weight`)
	cluster.Eventually(t, 10*time.Second, "events in order", func(context.Context) error {
		got := slices.DeleteFunc(canaryEvents(t, ns), waited.MatchString)
		if !slices.Equal(got, want) {
			return fmt.Errorf("events:\n  %s", strings.Join(got, "\n  "))
		}
		return nil
	})
	onDeployment := []string{want[1], want[len(want)-1]}
	cluster.Eventually(t, 10*time.Second, "the main events on the Deployment", func(context.Context) error {
		if got := shifterEvents(t, ns, "Deployment"); !slices.Equal(got, onDeployment) {
			return fmt.Errorf("events on the Deployment:\n  %s", strings.Join(got, "\n  "))
		}
		return nil
	})
}

// rolloutEvents are the events on the Canary of one rollout of manifest
// with passing checks, in order; the first and the last are also on the
// Deployment.
func rolloutEvents(ns string) []string {
	return []string{
		"New revision detected! Scaling up web-canary." + ns,
		"Starting canary analysis for web." + ns,
		"Advance web." + ns + " canary weight 20",
		"Advance web." + ns + " canary weight 40",
		"Advance web." + ns + " canary weight 60",
		"Advance web." + ns + " canary weight 80",
		"Copying web-canary." + ns + " template spec to web." + ns,
		"Routing all traffic to primary",
		"Promotion completed! Scaling down web-canary." + ns,
	}
}

// The lesson's unhappy path, on each router.
func TestRollbackOnFailingSuccessRate(t *testing.T) {
	for _, rt := range routers.All() {
		t.Run(rt.Name(), func(t *testing.T) { unhappyPath(t, rt) })
	}
}

func unhappyPath(t *testing.T, rt routing.Router) {
	manifest := onRouter(rt)
	ns, c := initialized(t, manifest, telemetry.Behaviour{ErrorRate: 0.5, Latency: 20 * time.Millisecond})
	seen := weightsOf(t, ns, app, rt)
	kubectlApply(t, ns, manifest("example.com/web:v2"))
	cr := waitPhase(t, c, ns, canary.PhaseFailed, 2*time.Minute)
	if cr.Status.LastFailedRevision == "" || cr.Status.CanaryWeight != 0 {
		t.Errorf("status after rollback %+v", cr.Status)
	}
	dep := &appsv1.Deployment{}
	if err := c.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: app}, dep); err != nil {
		t.Fatal(err)
	}
	if img := dep.Spec.Template.Spec.Containers[0].Image; img != "example.com/web:v1" {
		t.Errorf("primary runs %s after the rollback; want v1", img)
	}
	if dep.Annotations[canary.AnnotationCanaryRevision] != cr.Status.LastFailedRevision {
		t.Errorf("the diverted template is gone after the rollback: annotations %v", dep.Annotations)
	}
	// The status is written before the weight: wait for the route's.
	cluster.Eventually(t, 10*time.Second, "all traffic back to the primary", func(context.Context) error {
		if got := seen(); len(got) < 3 || got[0] != 0 || got[1] != 20 || got[len(got)-1] != 0 {
			return fmt.Errorf("canary weights %v; want 0, 20, ..., 0", got)
		}
		return nil
	})
	cluster.Eventually(t, 10*time.Second, "the rollback's events", func(context.Context) error {
		events := canaryEvents(t, ns)
		// A confident verdict on the counts rolls back at once. Half the
		// requests fail; over a 2s window Prometheus' increase() of the
		// 5xx and the 2xx series may extrapolate unevenly, so the share
		// told can be anywhere well above the allowed 1%.
		rollback := regexp.MustCompile(`^Rolling back web\.` + ns + ` request-success-rate: error rate (\d\d|100)(\.\d+)?% \(\d+ of \d+\) ` +
			`since the analysis started is above the allowed 1% with confidence`)
		if !slices.ContainsFunc(events, rollback.MatchString) {
			return fmt.Errorf("no event matching %s in %v", rollback, events)
		}
		if want := "Canary failed! Scaling down web-canary." + ns; !slices.Contains(events, want) {
			return fmt.Errorf("no event %q in %v", want, events)
		}
		return nil
	})
}

// rolloutTo applies v1, waits until it is Initialized, then applies image.
// initialized starts a test in a namespace of its own: the canary workload
// answers as b, and the Deployment that yaml gives at v1 is applied, its
// Canary Initialized.
func initialized(t *testing.T, yaml func(image string) string, b telemetry.Behaviour) (string, client.Client) {
	t.Helper()
	ns, c := initializedQuiet(t, yaml)
	mesh.Set(ns, app+"-canary", b)
	return ns, c
}

// initializedQuiet is initialized with no requests to the canary workload.
func initializedQuiet(t *testing.T, yaml func(image string) string) (string, client.Client) {
	t.Helper()
	setup(t)
	ns := env.NewNamespace(t)
	c := newClient(t)
	kubectlApply(t, ns, yaml("example.com/web:v1"))
	waitPhase(t, c, ns, canary.PhaseInitialized, 30*time.Second)
	return ns, c
}

func rolloutTo(t *testing.T, c client.Client, ns, image string) {
	t.Helper()
	kubectlApply(t, ns, manifest("example.com/web:v1"))
	waitPhase(t, c, ns, canary.PhaseInitialized, 30*time.Second)
	kubectlApply(t, ns, manifest(image))
}

func expectEvent(t *testing.T, ns string, want ...string) {
	t.Helper()
	cluster.Eventually(t, 10*time.Second, "events", func(context.Context) error {
		events := canaryEvents(t, ns)
		for _, w := range want {
			if !slices.Contains(events, w) {
				return fmt.Errorf("no event %q in:\n  %s", w, strings.Join(events, "\n  "))
			}
		}
		return nil
	})
}

func TestRollbackOnSlowRequests(t *testing.T) {
	ns, c := initialized(t, manifest, telemetry.Behaviour{Latency: 900 * time.Millisecond})
	kubectlApply(t, ns, manifest("example.com/web:v2"))
	waitPhase(t, c, ns, canary.PhaseFailed, 2*time.Minute)
	expectEventPrefix(t, ns, "Rolling back web."+ns+" request-duration: slow request rate 100% (")
}

// TestNoTrafficHoldsUntilTheEvidenceDeadline: a canary without requests is
// neither good nor bad: it holds at its weight, counts no failed check, and
// is rolled back for lack of traffic at the evidence deadline.
func TestNoTrafficHoldsUntilTheEvidenceDeadline(t *testing.T) {
	quiet := func(image string) string {
		return strings.Replace(manifest(image), "sluice.dev/progress-deadline: 1m", "sluice.dev/evidence-deadline: 8s", 1)
	}
	setup(t)
	ns := env.NewNamespace(t)
	c := newClient(t)
	kubectlApply(t, ns, quiet("example.com/web:v1"))
	waitPhase(t, c, ns, canary.PhaseInitialized, 30*time.Second)
	seen := weights(t, ns)
	kubectlApply(t, ns, quiet("example.com/web:v2"))
	cr := waitPhase(t, c, ns, canary.PhaseFailed, 2*time.Minute)
	if cr.Status.FailedChecks != 0 {
		t.Errorf("%d failed checks; want none", cr.Status.FailedChecks)
	}
	// The status is written before the weight: wait for the last weight.
	cluster.Eventually(t, 10*time.Second, "weights", func(context.Context) error {
		if got := seen(); !slices.Equal(got, []int32{0, 20, 0}) {
			return fmt.Errorf("weights %v; want [0 20 0]", got)
		}
		return nil
	})
	cond := apimeta.FindStatusCondition(cr.Status.Conditions, canary.ConditionPromoted)
	if cond == nil || cond.Reason != "NotEnoughTraffic" || !strings.HasPrefix(cond.Message, "not enough traffic to judge: 0 requests in ") {
		t.Errorf("condition %+v; want reason NotEnoughTraffic", cond)
	}
	expectEvent(t, ns, "Hold web."+ns+" at canary weight 20: request-success-rate: not enough requests to judge: 0 at this weight, 30 needed; "+
		"request-duration: not enough requests to judge: 0 at this weight, 30 needed")
}

func TestNewRevisionDuringAnalysisRestartsIt(t *testing.T) {
	setup(t)
	ns := env.NewNamespace(t)
	c := newClient(t)
	mesh.Set(ns, app+"-canary", telemetry.Behaviour{Latency: 20 * time.Millisecond})
	rolloutTo(t, c, ns, "example.com/web:v2")
	waitStatus(t, c, ns, "analysis under way", time.Minute, func(st canary.CanaryStatus) bool {
		return st.Phase == canary.PhaseProgressing && st.CanaryWeight >= 20
	})
	kubectlApply(t, ns, manifest("example.com/web:v3"))
	waitPhase(t, c, ns, canary.PhaseSucceeded, 2*time.Minute)
	expectEvent(t, ns, "New revision detected! Restarting analysis for web."+ns)
	dep := &appsv1.Deployment{}
	if err := c.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: app}, dep); err != nil {
		t.Fatal(err)
	}
	if img := dep.Spec.Template.Spec.Containers[0].Image; img != "example.com/web:v3" {
		t.Errorf("promoted %s; want v3, the newest applied", img)
	}
}

func TestApplyingThePrimaryAgainRevertsTheCanary(t *testing.T) {
	// Without requests the checks are inconclusive and hold the weight at 20
	// while the test scales and reverts.
	ns, c := initializedQuiet(t, patient)
	kubectlApply(t, ns, patient("example.com/web:v2"))
	waitStatus(t, c, ns, "canary at 20", time.Minute, func(st canary.CanaryStatus) bool { return st.CanaryWeight == 20 })
	// The canary follows the primary's replicas during the analysis.
	if out, err := env.Kubectl(t.Context(), "scale", "-n", ns, "deployment/"+app, "--replicas=3").CombinedOutput(); err != nil {
		t.Fatalf("kubectl scale: %v\n%s", err, out)
	}
	canaryReplicas := func(n int32) func(ctx context.Context) error {
		return func(ctx context.Context) error {
			can := &appsv1.Deployment{}
			if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: app + "-canary"}, can); err != nil {
				return err
			}
			if *can.Spec.Replicas != n {
				return fmt.Errorf("%d replicas", *can.Spec.Replicas)
			}
			return nil
		}
	}
	cluster.Eventually(t, 30*time.Second, "canary scaled with the primary", canaryReplicas(3))

	kubectlApply(t, ns, patient("example.com/web:v1"))
	cr := waitPhase(t, c, ns, canary.PhaseInitialized, 30*time.Second)
	if cr.Status.CanaryWeight != 0 {
		t.Errorf("weight %d after the revert", cr.Status.CanaryWeight)
	}
	expectEvent(t, ns, "Canary reverted to the primary's template! Scaling down web-canary."+ns)
	cluster.Eventually(t, 30*time.Second, "canary scaled down", canaryReplicas(0))
}

// owned lists the objects sluice made for the Deployment that still exist.
func owned(ctx context.Context, c client.Client, ns string) []string {
	var left []string
	for _, obj := range []client.Object{
		&istiov1.VirtualService{ObjectMeta: metav1.ObjectMeta{Name: app}},
		&gatewayv1.HTTPRoute{ObjectMeta: metav1.ObjectMeta{Name: app}},
		&appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: app + "-canary"}},
		&corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: app + "-primary"}},
		&corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: app + "-canary"}},
		&corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: app}},
		&canary.Canary{ObjectMeta: metav1.ObjectMeta{Name: app}},
	} {
		if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: obj.GetName()}, obj); err == nil {
			left = append(left, fmt.Sprintf("%T %s", obj, obj.GetName()))
		}
	}
	return left
}

func TestOptOutAndDeletionRemoveEverything(t *testing.T) {
	setup(t)
	c := newClient(t)
	optOut := func(t *testing.T, ns string) {
		if out, err := env.Kubectl(t.Context(), "annotate", "-n", ns, "deployment/"+app, "sluice.dev/canary-").CombinedOutput(); err != nil {
			t.Fatalf("kubectl annotate: %v\n%s", err, out)
		}
	}
	for _, tc := range []struct {
		name   string
		router routing.Router
		act    func(t *testing.T, ns string)
	}{
		{"opt-out", istio.Router{}, optOut},
		{"deletion", istio.Router{}, func(t *testing.T, ns string) {
			if out, err := env.Kubectl(t.Context(), "delete", "-n", ns, "deployment/"+app).CombinedOutput(); err != nil {
				t.Fatalf("kubectl delete: %v\n%s", err, out)
			}
		}},
		{"opt-out of gateway-api", gatewayapi.Router{}, optOut},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// Without requests the canary holds at 20.
			ns := env.NewNamespace(t)
			manifest := onRouter(tc.router)
			kubectlApply(t, ns, manifest("example.com/web:v1"))
			waitPhase(t, c, ns, canary.PhaseInitialized, 30*time.Second)
			kubectlApply(t, ns, manifest("example.com/web:v2"))
			cluster.Eventually(t, time.Minute, "everything created", func(ctx context.Context) error {
				if left := owned(ctx, c, ns); len(left) != 6 {
					return fmt.Errorf("only %v", left)
				}
				return nil
			})
			tc.act(t, ns)
			cluster.Eventually(t, time.Minute, "everything removed", func(ctx context.Context) error {
				if left := owned(ctx, c, ns); len(left) > 0 {
					return fmt.Errorf("left: %v", left)
				}
				return nil
			})
		})
	}
}

// TestAdoptedVirtualServiceKeepsEveryOtherField: with
// sluice.dev/virtualservice, sluice changes only the weights of the routes to
// <name>-primary and <name>-canary, and leaves the rest byte for byte.
func TestAdoptedVirtualServiceKeepsEveryOtherField(t *testing.T) {
	setup(t)
	ns := env.NewNamespace(t)
	c := newClient(t)
	mesh.Set(ns, app+"-canary", telemetry.Behaviour{Latency: 20 * time.Millisecond})
	kubectlApply(t, ns, `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: shop-routes
  labels:
    team: shop
spec:
  hosts: [web.example.com]
  gateways: [istio-system/public]
  http:
    - match:
        - uri:
            prefix: /admin
      route:
        - destination:
            host: admin
      timeout: 3s
    - route:
        - destination:
            host: web-primary
            port:
              number: 8080
          weight: 100
        - destination:
            host: web-canary.`+ns+`.svc.cluster.local
            port:
              number: 8080
          weight: 0
      retries:
        attempts: 3
        perTryTimeout: 1.5s
      fault:
        delay:
          percentage:
            value: 0.1
          fixedDelay: 5s
`)
	spec := func() string {
		out, err := env.Kubectl(t.Context(), "get", "virtualservice", "shop-routes", "-n", ns, "-o", "jsonpath={.metadata.labels}{.metadata.ownerReferences}{.spec}").Output()
		if err != nil {
			t.Fatal(err)
		}
		return string(out)
	}
	before := spec()
	seen := weightsOf(t, ns, "shop-routes", istio.Router{})
	adopting := strings.Replace(manifest("example.com/web:v1"), "    sluice.dev/canary: enabled", "    sluice.dev/canary: enabled\n    sluice.dev/virtualservice: shop-routes", 1)
	kubectlApply(t, ns, adopting)
	waitPhase(t, c, ns, canary.PhaseInitialized, 30*time.Second)
	kubectlApply(t, ns, strings.Replace(adopting, "example.com/web:v1", "example.com/web:v2", 1))
	waitPhase(t, c, ns, canary.PhaseSucceeded, 2*time.Minute)

	// The status is written before the weight: wait for the last weight.
	expectWeights(t, seen, "canary weights %v; want %v")
	if after := spec(); after != before {
		t.Errorf("the adopted VirtualService changed beyond its weights:\nbefore %s\nafter  %s", before, after)
	}
	if err := c.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: app}, &istiov1.VirtualService{}); err == nil {
		t.Error("sluice created a VirtualService of its own beside the adopted one")
	}
}

// TestAdoptedHTTPRouteKeepsEveryOtherField: with sluice.dev/httproute,
// sluice changes only the weights of the backendRefs to <name>-primary and
// <name>-canary, and leaves the rest byte for byte.
func TestAdoptedHTTPRouteKeepsEveryOtherField(t *testing.T) {
	setup(t)
	ns := env.NewNamespace(t)
	c := newClient(t)
	mesh.Set(ns, app+"-canary", telemetry.Behaviour{Latency: 20 * time.Millisecond})
	kubectlApply(t, ns, `apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata:
  name: shop-routes
  labels:
    team: shop
spec:
  parentRefs:
    - name: public
      namespace: edge
      sectionName: https
  hostnames: [web.example.com]
  rules:
    - matches:
        - path: {type: PathPrefix, value: /admin}
      backendRefs:
        - name: admin
          port: 8080
      timeouts:
        request: 3s
    - backendRefs:
        - name: web-primary
          port: 8080
          weight: 100
        - name: web-canary
          port: 8080
      filters:
        - type: RequestHeaderModifier
          requestHeaderModifier:
            add:
              - {name: x-shop, value: "1"}
`)
	spec := func() string {
		out, err := env.Kubectl(t.Context(), "get", "httproute", "shop-routes", "-n", ns, "-o", "jsonpath={.metadata.labels}{.metadata.ownerReferences}{.spec}").Output()
		if err != nil {
			t.Fatal(err)
		}
		return string(out)
	}
	// The canary's backendRef has no weight: the API's default, 1, which
	// sluice sets to 0 before the rollout starts.
	before := strings.Replace(spec(), `"name":"web-canary","port":8080,"weight":1}`, `"name":"web-canary","port":8080,"weight":0}`, 1)
	seen := weightsOf(t, ns, "shop-routes", gatewayapi.Router{})
	adopting := strings.Replace(onRouter(gatewayapi.Router{})("example.com/web:v1"), "    sluice.dev/canary: enabled",
		"    sluice.dev/canary: enabled\n    sluice.dev/httproute: shop-routes", 1)
	kubectlApply(t, ns, adopting)
	waitPhase(t, c, ns, canary.PhaseInitialized, 30*time.Second)
	kubectlApply(t, ns, strings.Replace(adopting, "example.com/web:v1", "example.com/web:v2", 1))
	waitPhase(t, c, ns, canary.PhaseSucceeded, 2*time.Minute)

	// The status is written before the weight: wait for the last weight.
	cluster.Eventually(t, 10*time.Second, "weights", func(context.Context) error {
		if got, want := seen(), []int32{1, 0, 20, 40, 60, 80, 0}; !slices.Equal(got, want) {
			return fmt.Errorf("canary weights %v; want %v", got, want)
		}
		return nil
	})
	if after := spec(); after != before {
		t.Errorf("the adopted HTTPRoute changed beyond its weights:\nbefore %s\nafter  %s", before, after)
	}
	if err := c.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: app}, &gatewayv1.HTTPRoute{}); err == nil {
		t.Error("sluice created an HTTPRoute of its own beside the adopted one")
	}
}

// TestShifterRestartResumes stops the shifter in the middle of the analysis,
// right after a step's status is written, and starts it again: the rollout
// continues at the weight it had, with no step taken twice or untold.
func TestShifterRestartResumes(t *testing.T) {
	ns, c := initialized(t, manifest, telemetry.Behaviour{Latency: 20 * time.Millisecond})
	seen := weights(t, ns)
	kubectlApply(t, ns, manifest("example.com/web:v2"))
	waitStatus(t, c, ns, "weight 40", time.Minute, func(st canary.CanaryStatus) bool { return st.CanaryWeight >= 40 })
	shifter.Stop()
	if err := shifter.Start(); err != nil {
		t.Fatal(err)
	}
	waitPhase(t, c, ns, canary.PhaseSucceeded, 2*time.Minute)
	// The status is written before the weight: wait for the last weight.
	expectWeights(t, seen, "canary weights across the restart %v; want %v")
	cluster.Eventually(t, 10*time.Second, "each step once", func(context.Context) error {
		events := canaryEvents(t, ns)
		for _, w := range []string{"20", "40", "60", "80"} {
			if n := sluice.Count(events, "Advance web."+ns+" canary weight "+w); n != 1 {
				return fmt.Errorf("%d events for weight %s in %v", n, w, events)
			}
		}
		return nil
	})
}

// TestShifterRestartWhilePromotingAndFinalising restarts the shifter while
// the promoted primary rolls out (held by pausing it), and again after the
// Succeeded status is written but before the weight and the scale down are
// (held by an admission policy that refuses VirtualService writes): each time
// the new shifter finishes the job without repeating a step.
func TestShifterRestartWhilePromotingAndFinalising(t *testing.T) {
	ns, c := initialized(t, manifest, telemetry.Behaviour{Latency: 20 * time.Millisecond})
	seen := weights(t, ns)
	kubectlRun(t, "rollout", "pause", "-n", ns, "deployment/"+app)
	kubectlApply(t, ns, manifest("example.com/web:v2"))
	waitPhase(t, c, ns, canary.PhasePromoting, time.Minute)
	shifter.Stop()
	if err := shifter.Start(); err != nil {
		t.Fatal(err)
	}
	cluster.Eventually(t, 30*time.Second, "the new shifter sees the promotion", func(context.Context) error {
		return reportsPhase(shifter.MetricsPort, ns, canary.PhasePromoting)
	})
	waitStatus(t, c, ns, "Promoting at weight 80", time.Second, func(st canary.CanaryStatus) bool {
		return st.Phase == canary.PhasePromoting && st.CanaryWeight == 80
	})

	freezeRoutes(t, ns)
	kubectlRun(t, "rollout", "resume", "-n", ns, "deployment/"+app)
	waitPhase(t, c, ns, canary.PhaseSucceeded, time.Minute)
	if got := seen(); got[len(got)-1] != 80 {
		t.Fatalf("weights %v: the frozen VirtualService changed", got)
	}
	shifter.Stop()
	unfreezeRoutes(t, ns)
	if err := shifter.Start(); err != nil {
		t.Fatal(err)
	}

	expectWeights(t, seen, "canary weights across the restarts %v; want %v")
	cluster.Eventually(t, 30*time.Second, "the canary scaled down", func(ctx context.Context) error {
		can := &appsv1.Deployment{}
		if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: app + "-canary"}, can); err != nil {
			return err
		}
		if n := ptr.Deref(can.Spec.Replicas, 1); n != 0 {
			return fmt.Errorf("%d replicas", n)
		}
		return nil
	})
	events := canaryEvents(t, ns)
	for _, e := range []string{"Advance web." + ns + " canary weight 80", "Copying web-canary." + ns + " template spec to web." + ns,
		"Routing all traffic to primary", "Promotion completed! Scaling down web-canary." + ns} {
		if n := sluice.Count(events, e); n != 1 {
			t.Errorf("%d events %q; want 1 in:\n  %s", n, e, strings.Join(events, "\n  "))
		}
	}
}

// TestNewRevisionDuringPromotion applies v3 right after v2 was promoted,
// while the primary's rollout of v2 is held by pausing it: the story says v2
// was promoted, and v3 starts a canary of its own, which ends promoted too.
func TestNewRevisionDuringPromotion(t *testing.T) {
	ns, c := initialized(t, manifest, telemetry.Behaviour{Latency: 20 * time.Millisecond})
	kubectlRun(t, "rollout", "pause", "-n", ns, "deployment/"+app)
	kubectlApply(t, ns, manifest("example.com/web:v2"))
	waitPhase(t, c, ns, canary.PhasePromoting, time.Minute)

	kubectlApply(t, ns, manifest("example.com/web:v3"))
	promoted := "Promotion completed! Scaling down web-canary." + ns
	expectEvent(t, ns, promoted, "New revision detected! Scaling up web-canary."+ns)
	kubectlRun(t, "rollout", "resume", "-n", ns, "deployment/"+app)
	cluster.Eventually(t, 2*time.Minute, "v3 promoted", func(ctx context.Context) error {
		cr := &canary.Canary{}
		if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: app}, cr); err != nil {
			return err
		}
		if n := sluice.Count(canaryEvents(t, ns), promoted); cr.Status.Phase != canary.PhaseSucceeded || n != 2 {
			return fmt.Errorf("phase %s, %d promotions completed", cr.Status.Phase, n)
		}
		return nil
	})
	dep := &appsv1.Deployment{}
	if err := c.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: app}, dep); err != nil {
		t.Fatal(err)
	}
	if img := dep.Spec.Template.Spec.Containers[0].Image; img != "example.com/web:v3" {
		t.Errorf("the primary runs %s; want v3 promoted", img)
	}
}

// reportsPhase says whether the shifter serving metrics on port exports
// phase for the Canary in ns.
func reportsPhase(port int, ns string, phase canary.Phase) error {
	phases, err := sluice.Phases(port)
	if err != nil {
		return err
	}
	if phases[ns] == phase {
		return nil
	}
	return fmt.Errorf("no sluice_canary_phase{namespace=%q,phase=%q} 1", ns, phase)
}

// freezeRoutes makes the API server refuse every write of a VirtualService
// in ns, and waits until it does.
func freezeRoutes(t *testing.T, ns string) {
	t.Helper()
	policy := fmt.Sprintf(`apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata:
  name: freeze-routes-%[1]s
spec:
  failurePolicy: Fail
  matchConstraints:
    resourceRules:
      - apiGroups: [networking.istio.io]
        apiVersions: ["*"]
        operations: [UPDATE]
        resources: [virtualservices]
  validations:
    - expression: "false"
      message: routes frozen by the test
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata:
  name: freeze-routes-%[1]s
spec:
  policyName: freeze-routes-%[1]s
  validationActions: [Deny]
  matchResources:
    namespaceSelector:
      matchLabels:
        kubernetes.io/metadata.name: %[1]s
`, ns)
	kubectlApply(t, ns, policy)
	t.Cleanup(func() { unfreezeRoutes(t, ns) })
	cluster.Eventually(t, 30*time.Second, "VirtualService writes refused", func(ctx context.Context) error {
		out, err := env.Kubectl(ctx, "label", "--dry-run=server", "-n", ns, "virtualservice", app, "probe=1").CombinedOutput()
		if err == nil || !strings.Contains(string(out), "routes frozen by the test") {
			return fmt.Errorf("a write went through: %s", out)
		}
		return nil
	})
}

// unfreezeRoutes lifts freezeRoutes; it also runs as a cleanup, when the
// test's context is already cancelled.
func unfreezeRoutes(t *testing.T, ns string) {
	t.Helper()
	out, err := env.Kubectl(context.Background(), "delete", "--ignore-not-found",
		"validatingadmissionpolicybinding,validatingadmissionpolicy", "freeze-routes-"+ns).CombinedOutput()
	if err != nil {
		t.Errorf("lift the freeze of the routes in %s: %v\n%s", ns, err, out)
	}
}

func kubectlRun(t testing.TB, args ...string) {
	t.Helper()
	if out, err := env.Kubectl(t.Context(), args...).CombinedOutput(); err != nil {
		t.Fatalf("kubectl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// TestLeaderElection runs two shifters with leader election: only the leader
// acts, and when it stops the other takes over.
func TestLeaderElection(t *testing.T) {
	setup(t)
	shifter.Stop()
	t.Cleanup(func() {
		if err := shifter.Start(); err != nil {
			t.Errorf("restart the shared shifter: %v", err)
		}
	})
	var elected []*sluice.Shifter
	for _, name := range []string{"shifter-a", "shifter-b"} {
		s, err := sluice.StartShifter(env, workDir, name, "--leader-elect", "--leader-election-namespace=sluice-system")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(s.Stop)
		elected = append(elected, s)
	}
	// acting reports which shifters export a weight for the canary in ns:
	// only a shifter that reconciled it does.
	acting := func(ns string, running ...int) []int {
		var who []int
		for _, i := range running {
			s := elected[i]
			families, err := sluice.Metrics(s.MetricsPort)
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range families["sluice_canary_weight"].GetMetric() {
				for _, l := range m.GetLabel() {
					if l.GetName() == "namespace" && l.GetValue() == ns {
						who = append(who, i)
					}
				}
			}
		}
		return who
	}
	c := newClient(t)
	ns := env.NewNamespace(t)
	mesh.Set(ns, app+"-canary", telemetry.Behaviour{Latency: 20 * time.Millisecond})
	rolloutTo(t, c, ns, "example.com/web:v2")
	waitPhase(t, c, ns, canary.PhaseSucceeded, 2*time.Minute)
	leader := acting(ns, 0, 1)
	if len(leader) != 1 {
		t.Fatalf("shifters %v acted on the canary; want exactly one", leader)
	}

	elected[leader[0]].Stop()
	other := env.NewNamespace(t)
	mesh.Set(other, app+"-canary", telemetry.Behaviour{Latency: 20 * time.Millisecond})
	rolloutTo(t, c, other, "example.com/web:v2")
	waitPhase(t, c, other, canary.PhaseSucceeded, 2*time.Minute)
	if got := acting(other, 1-leader[0]); len(got) != 1 {
		t.Errorf("after the leader stopped, the other shifter did not act")
	}
}

// expectWeights waits until the VirtualService has gone through 0, 20, 40,
// 60, 80 and back to 0.
func expectWeights(t *testing.T, seen func() []int32, what string) {
	t.Helper()
	want := []int32{0, 20, 40, 60, 80, 0}
	cluster.Eventually(t, 10*time.Second, "weights", func(context.Context) error {
		if got := seen(); !slices.Equal(got, want) {
			return fmt.Errorf(what, got, want)
		}
		return nil
	})
}

// TestPrometheusOutageHoldsTheCanary stops Prometheus in the middle of the
// analysis: blind, sluice holds the weight and counts no failed check, says
// so in a condition, an event and a metric; when Prometheus is back the
// canary goes on to promotion. Blind past the blind deadline, it is rolled
// back.
func TestPrometheusOutageHoldsTheCanary(t *testing.T) {
	if env.Attached() {
		t.Skip("the cluster is attached (" + cluster.EnvDir + "): its Prometheus belongs to another process, which alone can stop it")
	}
	blindFor := func(deadline string) func(string) string {
		return func(image string) string {
			return strings.Replace(manifest(image), "sluice.dev/progress-deadline: 1m", "sluice.dev/blind-deadline: "+deadline, 1)
		}
	}
	t.Run("back in time", func(t *testing.T) {
		yaml := blindFor("10m")
		ns, c := initialized(t, yaml, telemetry.Behaviour{Latency: 20 * time.Millisecond})
		seen := weights(t, ns)
		kubectlApply(t, ns, yaml("example.com/web:v2"))
		waitStatus(t, c, ns, "weight 40", time.Minute, func(st canary.CanaryStatus) bool { return st.CanaryWeight >= 40 })

		startPrometheus := stopPrometheus(t)
		cr := waitStatus(t, c, ns, "blind", time.Minute, func(st canary.CanaryStatus) bool {
			return apimeta.IsStatusConditionTrue(st.Conditions, canary.ConditionBlind)
		})
		blindAt := cr.Status.CanaryWeight
		// Three intervals blind.
		waitStatus(t, c, ns, "three blind checks", time.Minute, func(st canary.CanaryStatus) bool {
			return st.LastStepTime.After(cr.Status.LastStepTime.Add(5 * time.Second))
		})
		cr = waitStatus(t, c, ns, "still blind", time.Minute, func(st canary.CanaryStatus) bool { return true })
		if cr.Status.CanaryWeight != blindAt || cr.Status.FailedChecks != 0 || cr.Status.Phase != canary.PhaseProgressing {
			t.Errorf("blind: weight %d (was %d), failed checks %d, phase %s; want the weight held, nothing counted",
				cr.Status.CanaryWeight, blindAt, cr.Status.FailedChecks, cr.Status.Phase)
		}
		for _, check := range cr.Status.Checks {
			if check.Verdict != canary.VerdictBlind || !strings.HasPrefix(check.Message, "Prometheus query failed: ") {
				t.Errorf("check %s: %q; want Blind with the query's error", check, check.Message)
			}
		}
		cluster.Eventually(t, 10*time.Second, "sluice_canary_blind 1", func(context.Context) error {
			return reportsBlind(shifter.MetricsPort, ns, 1)
		})
		expectEventPrefix(t, ns, fmt.Sprintf("Holding web.%s at canary weight %d: the analysis cannot read the metrics (Prometheus query failed: ", ns, blindAt))

		startPrometheus()
		waitPhase(t, c, ns, canary.PhaseSucceeded, 2*time.Minute)
		expectWeights(t, seen, "canary weights across the outage %v; want %v")
		expectEventPrefix(t, ns, "The analysis of web."+ns+" reads the metrics again after ")
		cluster.Eventually(t, 10*time.Second, "sluice_canary_blind 0", func(context.Context) error {
			return reportsBlind(shifter.MetricsPort, ns, 0)
		})
	})
	t.Run("past the blind deadline", func(t *testing.T) {
		yaml := blindFor("6s")
		ns, c := initialized(t, yaml, telemetry.Behaviour{Latency: 20 * time.Millisecond})
		kubectlApply(t, ns, yaml("example.com/web:v2"))
		waitStatus(t, c, ns, "weight 20", time.Minute, func(st canary.CanaryStatus) bool { return st.CanaryWeight >= 20 })
		startPrometheus := stopPrometheus(t)
		cr := waitPhase(t, c, ns, canary.PhaseFailed, time.Minute)
		cond := apimeta.FindStatusCondition(cr.Status.Conditions, canary.ConditionPromoted)
		if cond == nil || cond.Reason != "Blind" || !strings.HasPrefix(cond.Message, "blind for ") || cr.Status.FailedChecks != 0 {
			t.Errorf("condition %+v, failed checks %d; want reason Blind, no failed checks", cond, cr.Status.FailedChecks)
		}
		startPrometheus()
	})
}

// stopPrometheus stops Prometheus; the returned function starts it again,
// and so does the end of the test if it has not.
func stopPrometheus(t *testing.T) (start func()) {
	t.Helper()
	if err := env.StopPrometheus(); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	start = func() {
		once.Do(func() {
			if err := env.StartPrometheus(context.Background()); err != nil {
				t.Error(err)
			}
		})
	}
	t.Cleanup(start)
	return start
}

// reportsBlind says whether the shifter serving metrics on port exports
// sluice_canary_blind = want for the Canary in ns.
func reportsBlind(port int, ns string, want float64) error {
	families, err := sluice.Metrics(port)
	if err != nil {
		return err
	}
	for _, m := range families["sluice_canary_blind"].GetMetric() {
		for _, l := range m.GetLabel() {
			if l.GetName() == "namespace" && l.GetValue() == ns && m.GetGauge().GetValue() == want {
				return nil
			}
		}
	}
	return fmt.Errorf("no sluice_canary_blind{namespace=%q} %g", ns, want)
}

// expectEventPrefix waits for an event on the Canary that starts with want.
func expectEventPrefix(t *testing.T, ns, want string) {
	t.Helper()
	cluster.Eventually(t, 10*time.Second, "an event "+want+"...", func(context.Context) error {
		events := canaryEvents(t, ns)
		if slices.ContainsFunc(events, func(e string) bool { return strings.HasPrefix(e, want) }) {
			return nil
		}
		return fmt.Errorf("none in:\n  %s", strings.Join(events, "\n  "))
	})
}

// TestRestartAfterTheEnd restarts the shifter after one canary succeeded and
// one failed: the new process picks both up and changes nothing, and the
// failed revision is not tried again.
func TestRestartAfterTheEnd(t *testing.T) {
	setup(t)
	c := newClient(t)
	good, bad := env.NewNamespace(t), env.NewNamespace(t)
	mesh.Set(good, app+"-canary", telemetry.Behaviour{Latency: 20 * time.Millisecond})
	mesh.Set(bad, app+"-canary", telemetry.Behaviour{ErrorRate: 0.5})
	for _, ns := range []string{good, bad} {
		kubectlApply(t, ns, manifest("example.com/web:v1"))
	}
	for _, ns := range []string{good, bad} {
		waitPhase(t, c, ns, canary.PhaseInitialized, 30*time.Second)
		kubectlApply(t, ns, manifest("example.com/web:v2"))
	}
	done := map[string]canary.Phase{good: canary.PhaseSucceeded, bad: canary.PhaseFailed}
	before := map[string]canary.CanaryStatus{}
	events := map[string][]string{}
	last := map[string]string{good: "Promotion completed! Scaling down web-canary." + good, bad: "Canary failed! Scaling down web-canary." + bad}
	for ns, phase := range done {
		before[ns] = waitPhase(t, c, ns, phase, 2*time.Minute).Status
		expectEvent(t, ns, last[ns]) // the recorder writes events in the background
		events[ns] = canaryEvents(t, ns)
	}

	shifter.Stop()
	if err := shifter.Start(); err != nil {
		t.Fatal(err)
	}
	// The new process exports a phase for a canary once it has reconciled it.
	cluster.Eventually(t, 30*time.Second, "both canaries reconciled after the restart", func(context.Context) error {
		seen, err := sluice.Phases(shifter.MetricsPort)
		if err != nil {
			return err
		}
		for ns, phase := range done {
			if seen[ns] != phase {
				return fmt.Errorf("%s: phase %q", ns, seen[ns])
			}
		}
		return nil
	})
	for ns := range done {
		cr := &canary.Canary{}
		if err := c.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: app}, cr); err != nil {
			t.Fatal(err)
		}
		if !equality.Semantic.DeepEqual(cr.Status, before[ns]) {
			t.Errorf("%s: status changed across the restart:\n%+v\n%+v", ns, before[ns], cr.Status)
		}
		if got := canaryEvents(t, ns); !slices.Equal(got, events[ns]) {
			t.Errorf("%s: events after the restart:\n  %s", ns, strings.Join(got[len(events[ns]):], "\n  "))
		}
	}
}

// TestSkipAnalysisDuringAWebhookOutage: skip-analysis set while the webhook is
// down rolls the new template out plainly and leaves the pending canary's
// annotations behind. The primary changed under the analysis, so the shifter
// ends that canary as superseded rather than promote it over the rollout the
// user asked for, and turning skip-analysis off later, with the webhook back,
// drops the leftover instead of starting it again.
func TestSkipAnalysisDuringAWebhookOutage(t *testing.T) {
	// Without requests the canary holds at 20.
	ns, c := initializedQuiet(t, patient)
	kubectlApply(t, ns, patient("example.com/web:v2"))
	waitStatus(t, c, ns, "canary at 20", time.Minute, func(st canary.CanaryStatus) bool { return st.CanaryWeight == 20 })

	restart := hook.Outage(t)
	skipping := strings.Replace(patient("example.com/web:v3"), "sluice.dev/canary: enabled",
		"sluice.dev/canary: enabled\n    sluice.dev/skip-analysis: \"true\"", 1)
	kubectlApply(t, ns, skipping)
	expectSuperseded(t, c, ns)
	dep := &appsv1.Deployment{}
	if err := c.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: app}, dep); err != nil {
		t.Fatal(err)
	}
	if img := dep.Spec.Template.Spec.Containers[0].Image; img != "example.com/web:v3" || dep.Annotations[canary.AnnotationCanaryTemplate] == "" {
		t.Fatalf("during the outage: primary %s, canary annotation %t; want v3, and the v2 canary left behind",
			img, dep.Annotations[canary.AnnotationCanaryTemplate] != "")
	}

	restart()
	kubectlApply(t, ns, patient("example.com/web:v3"))
	if err := c.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: app}, dep); err != nil {
		t.Fatal(err)
	}
	// With the annotations gone there is nothing for the shifter to start.
	if img, left := dep.Spec.Template.Spec.Containers[0].Image, dep.Annotations[canary.AnnotationCanaryTemplate]; img != "example.com/web:v3" || left != "" {
		t.Errorf("after skip-analysis is off: primary %s, canary annotation %q; want v3 and none", img, left)
	}
}

// TestStaleCanaryAfterReinstall: a canary of v2 is under analysis when sluice
// is removed (the Canary stays); v3 is applied and rolls out plainly; sluice
// comes back. The canary of v2 passes its checks, yet must end as superseded
// and never be promoted over v3.
func TestStaleCanaryAfterReinstall(t *testing.T) {
	// Without requests the canary holds at 20 while sluice is away; healthy
	// ones would promote it after.
	ns, c := initializedQuiet(t, patient)
	kubectlApply(t, ns, patient("example.com/web:v2"))
	waitStatus(t, c, ns, "canary held at 20", time.Minute, func(st canary.CanaryStatus) bool { return st.CanaryWeight == 20 && len(st.Checks) > 0 })

	// Removed: no shifter, no webhook, no guard policy.
	shifter.Stop()
	t.Cleanup(func() {
		if shifter.Pid() == 0 {
			if err := shifter.Start(); err != nil {
				t.Errorf("restart the shifter: %v", err)
			}
		}
	})
	restart := hook.Outage(t)
	reinstall := func() error {
		return sluice.Install(env, "ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding")
	}
	if out, err := env.Kubectl(t.Context(), "delete", "validatingadmissionpolicybinding", "sluice-webhook-guard").CombinedOutput(); err != nil {
		t.Fatalf("remove the guard policy: %v\n%s", err, out)
	}
	t.Cleanup(func() {
		if err := reinstall(); err != nil {
			t.Errorf("reinstall the guard policy: %v", err)
		}
	})
	// The API server drops the binding from its policy cache a moment later.
	cluster.Eventually(t, 30*time.Second, "v3 applied without sluice", func(ctx context.Context) error {
		cmd := env.Kubectl(ctx, "apply", "-n", ns, "-f", "-")
		cmd.Stdin = strings.NewReader(patient("example.com/web:v3"))
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("%v: %s", err, out)
		}
		return nil
	})
	dep := &appsv1.Deployment{}
	if err := c.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: app}, dep); err != nil {
		t.Fatal(err)
	}
	if img := dep.Spec.Template.Spec.Containers[0].Image; img != "example.com/web:v3" {
		t.Fatalf("without sluice the primary runs %s; want v3, rolled out plainly", img)
	}

	// Installed again, with the canary's checks passing.
	mesh.Set(ns, app+"-canary", telemetry.Behaviour{Latency: 20 * time.Millisecond})
	if err := reinstall(); err != nil {
		t.Fatal(err)
	}
	restart()
	if err := shifter.Start(); err != nil {
		t.Fatal(err)
	}
	expectSuperseded(t, c, ns)
	if err := c.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: app}, dep); err != nil {
		t.Fatal(err)
	}
	if img := dep.Spec.Template.Spec.Containers[0].Image; img != "example.com/web:v3" {
		t.Errorf("after sluice came back the primary runs %s; want v3", img)
	}
	if n := sluice.Count(canaryEvents(t, ns), "Promotion completed! Scaling down web-canary."+ns); n != 0 {
		t.Errorf("%d promotions of the stale canary", n)
	}
}

// expectSuperseded waits until the Canary in ns ended as superseded, with all
// traffic on the primary and its events recorded.
func expectSuperseded(t *testing.T, c client.Client, ns string) {
	t.Helper()
	cr := waitPhase(t, c, ns, canary.PhaseFailed, time.Minute)
	if cond := apimeta.FindStatusCondition(cr.Status.Conditions, canary.ConditionPromoted); cond == nil || cond.Reason != "Superseded" {
		t.Errorf("condition Promoted %+v; want reason Superseded", cond)
	}
	cluster.Eventually(t, 10*time.Second, "the superseded events", func(context.Context) error {
		events := canaryEvents(t, ns)
		for _, prefix := range []string{"Rolling back web." + ns + " superseded: the primary changed from revision ", "Canary failed! Scaling down web-canary." + ns} {
			if !slices.ContainsFunc(events, func(e string) bool { return strings.HasPrefix(e, prefix) }) {
				return fmt.Errorf("no event %q... in:\n  %s", prefix, strings.Join(events, "\n  "))
			}
		}
		return nil
	})
}

// TestBuildInfoIsExported: the shifter exports sluice_build_info with the
// version its --version tells.
func TestBuildInfoIsExported(t *testing.T) {
	setup(t)
	if err := shifter.CheckBuildInfo(); err != nil {
		t.Error(err)
	}
}
