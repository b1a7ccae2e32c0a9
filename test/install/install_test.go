// Package install_test installs sluice the way users do, with kubectl and
// with helm, into the local control plane, whose pods kwok simulates; then
// runs the real webhook and shifter as local processes with the arguments of
// the installed Deployment's containers, authenticated as its ServiceAccount.
package install_test

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"sluice.dev/sluice/internal/release"
	"sluice.dev/sluice/pkg/canary"
	"sluice.dev/sluice/test/cluster"
	"sluice.dev/sluice/test/meshsim/telemetry"
	"sluice.dev/sluice/test/sluice"
)

const system = "sluice-system"

var (
	env *cluster.Cluster
	// The processes that outlive one test; TestMain stops what is left.
	mu    sync.Mutex
	procs []*cluster.Process
)

func TestMain(m *testing.M) {
	ctrllog.SetLogger(logr.Discard())
	code := cluster.RunTests(m, &env)
	mu.Lock()
	for _, p := range procs {
		_ = p.Stop(10 * time.Second)
	}
	mu.Unlock()
	if work.mesh != nil {
		work.mesh.Stop()
	}
	if work.dir != "" {
		_ = os.RemoveAll(work.dir)
	}
	os.Exit(code)
}

// run runs kubectl or helm as the admin, failing the test on an error.
func run(t testing.TB, tool string, args ...string) string {
	t.Helper()
	cmd := env.Kubectl(t.Context(), args...)
	if tool == "helm" {
		cmd = env.HelmCommand(t.Context(), args...)
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", tool, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// The first test: it installs and removes sluice with kubectl, and leaves
// the cluster as it found it for the helm install of the others.
func TestKubectlApplyInstallsAndDeletes(t *testing.T) {
	manifest := sluice.RepoPath("deploy/install.yaml")
	run(t, "kubectl", "apply", "-f", manifest)
	expectInstalled(t)
	run(t, "kubectl", "delete", "-f", manifest, "--wait")
	cluster.Eventually(t, 2*time.Minute, "sluice-system gone", func(ctx context.Context) error {
		_, err := env.Clientset(t).CoreV1().Namespaces().Get(ctx, system, metav1.GetOptions{})
		if err == nil {
			return fmt.Errorf("sluice-system still exists")
		}
		return client.IgnoreNotFound(err)
	})
}

// expectInstalled waits until the Deployment sluice has its two replicas
// ready, on two nodes, and checks the objects around it.
func expectInstalled(t *testing.T) {
	t.Helper()
	cs := env.Clientset(t)
	d := &appsv1.Deployment{}
	cluster.Eventually(t, time.Minute, "Deployment sluice ready", func(ctx context.Context) error {
		var err error
		if d, err = cs.AppsV1().Deployments(system).Get(ctx, "sluice", metav1.GetOptions{}); err != nil {
			return err
		}
		if d.Status.ReadyReplicas != 2 {
			return fmt.Errorf("%d of 2 replicas ready", d.Status.ReadyReplicas)
		}
		return nil
	})
	expectHardened(t, d.Spec.Template.Spec)
	ref, err := release.ChartImage(sluice.RepoPath("."))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range d.Spec.Template.Spec.Containers {
		if c.Image != ref.String() {
			t.Errorf("container %s runs %s; want the chart's version-tagged image %s", c.Name, c.Image, ref)
		}
	}
	pdb, err := cs.PolicyV1().PodDisruptionBudgets(system).Get(t.Context(), "sluice", metav1.GetOptions{})
	if err != nil || pdb.Spec.MinAvailable.IntValue() != 1 {
		t.Errorf("PodDisruptionBudget sluice: %v, %+v", err, pdb)
	}
	for _, svc := range []string{"sluice-webhook", "sluice-webhook-metrics", "sluice-shifter-metrics"} {
		if _, err := cs.CoreV1().Services(system).Get(t.Context(), svc, metav1.GetOptions{}); err != nil {
			t.Errorf("Service %s: %v", svc, err)
		}
	}
	if _, err := cs.AdmissionregistrationV1().MutatingWebhookConfigurations().Get(t.Context(), "sluice", metav1.GetOptions{}); err != nil {
		t.Errorf("MutatingWebhookConfiguration sluice: %v", err)
	}
	for _, policy := range []string{"sluice-webhook-guard", "sluice-annotations"} {
		if _, err := cs.AdmissionregistrationV1().ValidatingAdmissionPolicies().Get(t.Context(), policy, metav1.GetOptions{}); err != nil {
			t.Errorf("ValidatingAdmissionPolicy %s: %v", policy, err)
		}
	}
}

// expectHardened checks the pod's security settings, which kwok does not
// enforce.
func expectHardened(t *testing.T, pod corev1.PodSpec) {
	t.Helper()
	sc := pod.SecurityContext
	if ptr.Deref(pod.AutomountServiceAccountToken, true) || sc == nil || !ptr.Deref(sc.RunAsNonRoot, false) ||
		sc.SeccompProfile == nil || sc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("pod: token automounted or not non-root with seccomp RuntimeDefault: %+v", sc)
	}
	if a := pod.Affinity; a == nil || a.PodAntiAffinity == nil {
		t.Error("pod: no anti-affinity")
	}
	for _, c := range pod.Containers {
		csc := c.SecurityContext
		if csc == nil || !ptr.Deref(csc.ReadOnlyRootFilesystem, false) || ptr.Deref(csc.AllowPrivilegeEscalation, true) ||
			csc.Capabilities == nil || len(csc.Capabilities.Drop) != 1 || csc.Capabilities.Drop[0] != "ALL" {
			t.Errorf("container %s: security context %+v", c.Name, csc)
		}
		if c.Resources.Requests.Cpu().IsZero() || c.Resources.Limits.Memory().IsZero() {
			t.Errorf("container %s: resources %+v", c.Name, c.Resources)
		}
		if c.LivenessProbe == nil || c.ReadinessProbe == nil {
			t.Errorf("container %s: no liveness or readiness probe", c.Name)
		}
	}
}

// work is sluice as the helm install runs it, once for the package.
var work struct {
	once        sync.Once
	err         error
	dir         string
	webhookBin  string
	shifterBin  string
	kubeconfig  string
	webhookPort int
	mesh        *telemetry.Exporter
}

// installed installs the chart with helm, points its webhook configuration at
// a loopback port, and starts a webhook and two shifters there.
func installed(t *testing.T) {
	t.Helper()
	work.once.Do(func() { work.err = install(t) })
	if work.err != nil {
		t.Fatal(work.err)
	}
}

func install(t *testing.T) error {
	var err error
	if work.dir, err = os.MkdirTemp("", "sluice-install-test-"); err != nil {
		return err
	}
	// The binaries are the release's that the chart's image tag names.
	ref, err := release.ChartImage(sluice.RepoPath("."))
	if err != nil {
		return err
	}
	if work.webhookBin, err = sluice.BuildVersion(work.dir, "cmd/webhook", ref.TagStr()); err != nil {
		return err
	}
	if work.shifterBin, err = sluice.BuildVersion(work.dir, "cmd/shifter", ref.TagStr()); err != nil {
		return err
	}
	if out, err := env.HelmCommand(context.Background(), "install", "sluice", sluice.RepoPath("deploy/chart"),
		"-n", system, "--create-namespace", "--wait",
		"--set", "loadTester.enabled=true", "--set", "loadTester.signingSecret.name=loadtester-key").CombinedOutput(); err != nil {
		return fmt.Errorf("helm install: %v\n%s", err, out)
	}
	if work.kubeconfig, err = env.KubeconfigFor(sluice.ShifterUser, "system:serviceaccounts", "system:serviceaccounts:"+system); err != nil {
		return err
	}
	if work.webhookPort, err = cluster.FreePort(); err != nil {
		return err
	}
	// The API server reaches the local webhook process, not the Service of
	// the simulated pods; the CA bundle stays the webhook's to write.
	patch := fmt.Sprintf(`[{"op":"remove","path":"/webhooks/0/clientConfig/service"},
		{"op":"add","path":"/webhooks/0/clientConfig/url","value":"https://127.0.0.1:%d/mutate-apps-v1-deployment"}]`, work.webhookPort)
	if out, err := env.Kubectl(context.Background(), "patch", "mutatingwebhookconfiguration", "sluice",
		"--type=json", "-p", patch).CombinedOutput(); err != nil {
		return fmt.Errorf("point the webhook at loopback: %v\n%s", err, out)
	}
	if work.mesh, err = telemetry.StartExporter(100*time.Millisecond, 20); err != nil {
		return err
	}
	if err := env.SetScrapeTargets("mesh", work.mesh.Addr); err != nil {
		return err
	}
	return nil
}

// container returns the args of a container of the installed Deployment.
func container(t *testing.T, name string) []string {
	return containerOf(t, "sluice", name)
}

// containerOf returns the args of a container of an installed Deployment.
func containerOf(t *testing.T, deployment, name string) []string {
	t.Helper()
	d, err := env.Clientset(t).AppsV1().Deployments(system).Get(t.Context(), deployment, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range d.Spec.Template.Spec.Containers {
		if c.Name == name {
			return c.Args
		}
	}
	t.Fatalf("the Deployment %s has no container %s", deployment, name)
	return nil
}

// local rewrites a container's args for a local process that calls the API
// server as the chart's ServiceAccount: the flags in set take the given
// values, and extra flags are appended.
func local(args []string, set map[string]string, extra ...string) []string {
	return append(append(rewrite(args, set), "--kubeconfig="+work.kubeconfig), extra...)
}

// rewrite gives the flags in set the given values.
func rewrite(args []string, set map[string]string) []string {
	var out []string
	for _, a := range args {
		flag, _, _ := strings.Cut(a, "=")
		if v, ok := set[flag]; ok {
			a = flag + "=" + v
		}
		out = append(out, a)
	}
	return out
}

// process is a local run of one of the containers.
type process struct {
	*cluster.Process
	metricsPort int
}

func start(t *testing.T, name, bin string, args []string, ready string) *process {
	t.Helper()
	p, err := cluster.StartProcess(work.dir, name, bin, args...)
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	procs = append(procs, p)
	mu.Unlock()
	t.Cleanup(func() { _ = p.Stop(10 * time.Second) })
	// Like the kubelet's probe, which does not check the certificate.
	insecure := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} //nolint:gosec
	if err := sluice.WaitReady(p, insecure, ready); err != nil {
		t.Fatal(err)
	}
	return &process{Process: p}
}

// startWebhook runs the webhook container's args on the loopback port the
// webhook configuration points at, with extra flags.
func startWebhook(t *testing.T, name string, extra ...string) *process {
	t.Helper()
	metrics := freePort(t)
	args := local(container(t, "webhook"), map[string]string{
		"--webhook-bind-address": fmt.Sprintf("127.0.0.1:%d", work.webhookPort),
		"--metrics-bind-address": fmt.Sprintf("127.0.0.1:%d", metrics),
	}, append([]string{"--cert-host=127.0.0.1"}, extra...)...)
	p := start(t, name, work.webhookBin, args, fmt.Sprintf("https://127.0.0.1:%d/readyz", work.webhookPort))
	p.metricsPort = metrics
	return p
}

// startShifter runs the shifter container's args.
func startShifter(t *testing.T, name string) *process {
	t.Helper()
	metrics, probes := freePort(t), freePort(t)
	args := local(container(t, "shifter"), map[string]string{
		"--metrics-bind-address":      fmt.Sprintf("127.0.0.1:%d", metrics),
		"--health-probe-bind-address": fmt.Sprintf("127.0.0.1:%d", probes),
		"--prometheus-url":            env.PrometheusURL,
	})
	p := start(t, name, work.shifterBin, args, fmt.Sprintf("http://127.0.0.1:%d/readyz", probes))
	p.metricsPort = metrics
	return p
}

func freePort(t *testing.T) int {
	t.Helper()
	p, err := cluster.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// asSluice is a client acting as sluice's ServiceAccount.
func asSluice(t *testing.T) kubernetes.Interface {
	t.Helper()
	cfg, err := env.UserConfig(sluice.ShifterUser, "system:serviceaccounts", "system:serviceaccounts:"+system)
	if err != nil {
		t.Fatal(err)
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

const app = "web"

// manifest is an opted-in Deployment with quick settings.
func manifest(image string, threshold int) string {
	return sluice.App{Name: app, Image: image, Replicas: 1, Container: sluice.Port8080, Annotations: []string{
		`sluice.dev/step-weight: "20"`, `sluice.dev/max-weight: "60"`, "sluice.dev/interval: 2s",
		"sluice.dev/analysis-window: 5s", fmt.Sprintf(`sluice.dev/threshold: "%d"`, threshold),
	}}.YAML()
}

func waitStatus(t *testing.T, c client.Client, ns, what string, timeout time.Duration, ok func(canary.CanaryStatus) bool) {
	t.Helper()
	sluice.WaitCanary(t, c, client.ObjectKey{Namespace: ns, Name: app}, what, timeout, ok)
}

func phase(p canary.Phase) func(canary.CanaryStatus) bool {
	return func(st canary.CanaryStatus) bool { return st.Phase == p }
}

// started applies v1, waits for the Canary to be Initialized, and applies v2:
// a canary of v2 that answers as b.
func started(t *testing.T, c client.Client, threshold int, b telemetry.Behaviour) string {
	t.Helper()
	ns := env.NewNamespace(t)
	work.mesh.Set(ns, app+"-canary", b)
	sluice.Apply(t, env, ns, manifest("example.com/web:v1", threshold))
	waitStatus(t, c, ns, "Initialized", 30*time.Second, phase(canary.PhaseInitialized))
	sluice.Apply(t, env, ns, manifest("example.com/web:v2", threshold))
	return ns
}

func deployment(t *testing.T, c client.Client, ns, name string) *appsv1.Deployment {
	t.Helper()
	d := &appsv1.Deployment{}
	if err := c.Get(t.Context(), types.NamespacedName{Namespace: ns, Name: name}, d); err != nil {
		t.Fatal(err)
	}
	return d
}

func image(d *appsv1.Deployment) string { return d.Spec.Template.Spec.Containers[0].Image }

// divertedImage is the image of the template diverted to the annotation.
func divertedImage(t *testing.T, d *appsv1.Deployment) string {
	t.Helper()
	var tmpl corev1.PodTemplateSpec
	if err := json.Unmarshal([]byte(d.Annotations[canary.AnnotationCanaryTemplate]), &tmpl); err != nil {
		t.Fatalf("annotation %s: %v", canary.AnnotationCanaryTemplate, err)
	}
	return tmpl.Spec.Containers[0].Image
}

func eventMessages(t *testing.T, ns string) []string {
	t.Helper()
	return sluice.EventMessages(t, env, ns, "Canary", app)
}
