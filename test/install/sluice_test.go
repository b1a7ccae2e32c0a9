package install_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tidwall/gjson"
	istiov1 "istio.io/client-go/pkg/apis/networking/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"sluice.dev/sluice/certs"
	"sluice.dev/sluice/internal/release"
	"sluice.dev/sluice/pkg/canary"
	"sluice.dev/sluice/test/cluster"
	"sluice.dev/sluice/test/meshsim/telemetry"
	"sluice.dev/sluice/test/sluice"
)

func TestHelmInstall(t *testing.T) {
	installed(t)
	expectInstalled(t)
}

// TestLoadTesterRunsFromTheChart: with loadTester.enabled, the chart runs
// sluice-loadtester from the version-tagged image, hardened, and the binary
// takes its container's args: it serves, and refuses an unsigned call.
func TestLoadTesterRunsFromTheChart(t *testing.T) {
	installed(t)
	cs := env.Clientset(t)
	var d *appsv1.Deployment
	cluster.Eventually(t, time.Minute, "Deployment sluice-loadtester ready", func(ctx context.Context) error {
		var err error
		if d, err = cs.AppsV1().Deployments(system).Get(ctx, "sluice-loadtester", metav1.GetOptions{}); err != nil {
			return err
		}
		if d.Status.ReadyReplicas != 1 {
			return fmt.Errorf("%d of 1 replicas ready", d.Status.ReadyReplicas)
		}
		return nil
	})
	if _, err := cs.CoreV1().Services(system).Get(t.Context(), "sluice-loadtester", metav1.GetOptions{}); err != nil {
		t.Errorf("Service sluice-loadtester: %v", err)
	}
	ref, err := release.ChartImage(sluice.RepoPath("."))
	if err != nil {
		t.Fatal(err)
	}
	pod := d.Spec.Template.Spec
	c := pod.Containers[0]
	if c.Image != ref.String() || !slices.Equal(c.Command, []string{"/sluice-loadtester"}) {
		t.Errorf("the load tester runs %q of %s; want /sluice-loadtester of %s", c.Command, c.Image, ref)
	}
	if ptr.Deref(pod.AutomountServiceAccountToken, true) || !ptr.Deref(pod.SecurityContext.RunAsNonRoot, false) ||
		!ptr.Deref(c.SecurityContext.ReadOnlyRootFilesystem, false) || ptr.Deref(c.SecurityContext.AllowPrivilegeEscalation, true) {
		t.Errorf("the load tester's pod is not hardened: %+v, %+v", pod.SecurityContext, c.SecurityContext)
	}
	if len(pod.Volumes) != 1 || pod.Volumes[0].Secret == nil || pod.Volumes[0].Secret.SecretName != "loadtester-key" {
		t.Errorf("the load tester's volumes %+v; want the Secret loadtester-key", pod.Volumes)
	}

	bin, err := sluice.BuildVersion(work.dir, "cmd/sluice-loadtester", ref.TagStr())
	if err != nil {
		t.Fatal(err)
	}
	key := filepath.Join(t.TempDir(), "key")
	if err := os.WriteFile(key, []byte("a signing key\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	port := freePort(t)
	args := rewrite(containerOf(t, "sluice-loadtester", "loadtester"), map[string]string{
		"--listen":           fmt.Sprintf("127.0.0.1:%d", port),
		"--signing-key-file": key,
	})
	if !slices.Contains(args, "--signing-key-file="+key) {
		t.Fatalf("the load tester's args %q name no signing key", args)
	}
	url := fmt.Sprintf("http://127.0.0.1:%d/", port)
	start(t, "loadtester", bin, args, url+"healthz")
	resp, err := http.Post(url, "application/json", strings.NewReader(`{"name":"web","namespace":"shop"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("an unsigned call: %s; want 401", resp.Status)
	}
}

// Sluice's identity may do what the binaries need, and is refused the rest.
func TestLeastPrivilege(t *testing.T) {
	installed(t)
	cs := asSluice(t)
	ctx := t.Context()
	if _, err := cs.CoreV1().Secrets(system).Get(ctx, "sluice-webhook-cert", metav1.GetOptions{}); err != nil {
		t.Errorf("reading its own certificate Secret: %v", err)
	}
	refused := map[string]error{}
	_, refused["get a Secret in default"] = cs.CoreV1().Secrets("default").Get(ctx, "any", metav1.GetOptions{})
	_, refused["list Secrets in every namespace"] = cs.CoreV1().Secrets("").List(ctx, metav1.ListOptions{})
	_, refused["get another Secret in sluice-system"] = cs.CoreV1().Secrets(system).Get(ctx, "other", metav1.GetOptions{})
	_, refused["list Secrets in sluice-system"] = cs.CoreV1().Secrets(system).List(ctx, metav1.ListOptions{})
	refused["delete a Namespace"] = cs.CoreV1().Namespaces().Delete(ctx, "default", metav1.DeleteOptions{})
	_, refused["create a Namespace"] = cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "x"}}, metav1.CreateOptions{})
	_, refused["list Pods"] = cs.CoreV1().Pods("").List(ctx, metav1.ListOptions{})
	_, refused["list ConfigMaps"] = cs.CoreV1().ConfigMaps("").List(ctx, metav1.ListOptions{})
	refused["delete another MutatingWebhookConfiguration"] = cs.AdmissionregistrationV1().MutatingWebhookConfigurations().Delete(ctx, "other", metav1.DeleteOptions{})
	refused["delete its own MutatingWebhookConfiguration"] = cs.AdmissionregistrationV1().MutatingWebhookConfigurations().Delete(ctx, "sluice", metav1.DeleteOptions{})
	_, refused["list ValidatingAdmissionPolicies"] = cs.AdmissionregistrationV1().ValidatingAdmissionPolicies().List(ctx, metav1.ListOptions{})
	_, refused["list ClusterRoles"] = cs.RbacV1().ClusterRoles().List(ctx, metav1.ListOptions{})
	_, refused["list Nodes"] = cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	for what, err := range refused {
		if !apierrors.IsForbidden(err) {
			t.Errorf("%s: %v; want Forbidden", what, err)
		}
	}
}

// A canary that succeeds while each container restarts in the middle of it,
// and one that fails; both with two shifters of which one acts.
func TestCanariesThroughRestarts(t *testing.T) {
	installed(t)
	c := sluice.NewClient(t, env)
	webhook := startWebhook(t, "webhook")
	shifterA := startShifter(t, "shifter-a")
	shifterB := startShifter(t, "shifter-b")

	good := started(t, c, 3, telemetry.Behaviour{Latency: 20 * time.Millisecond})
	bad := started(t, c, 3, telemetry.Behaviour{ErrorRate: 0.5, Latency: 20 * time.Millisecond})
	waitStatus(t, c, good, "first step", time.Minute, func(st canary.CanaryStatus) bool { return st.CanaryWeight >= 20 })

	// The webhook container restarts: an update during its absence is
	// refused by the guard policy, not lost; after it, updates are diverted.
	if err := webhook.Stop(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	webhook = startWebhook(t, "webhook-again")
	for _, s := range []*process{shifterA, shifterB} {
		if err := s.Stop(10 * time.Second); err != nil {
			t.Fatal(err)
		}
	}
	shifterA = startShifter(t, "shifter-a-again")
	shifterB = startShifter(t, "shifter-b-again")

	waitStatus(t, c, good, "Succeeded", 2*time.Minute, phase(canary.PhaseSucceeded))
	waitStatus(t, c, bad, "Failed", 2*time.Minute, phase(canary.PhaseFailed))
	if d := deployment(t, c, good, app); image(d) != "example.com/web:v2" {
		t.Errorf("the good canary's primary runs %s; want v2", image(d))
	}
	if d := deployment(t, c, bad, app); image(d) != "example.com/web:v1" || divertedImage(t, d) != "example.com/web:v2" {
		t.Errorf("after the rollback the primary runs %s with %s diverted; want v1 with v2 kept", image(d), divertedImage(t, d))
	}
	cluster.Eventually(t, 10*time.Second, "one promotion, one rollback", func(context.Context) error {
		promoted := sluice.Count(eventMessages(t, good), "Promotion completed! Scaling down web-canary."+good)
		failed := sluice.Count(eventMessages(t, bad), "Canary failed! Scaling down web-canary."+bad)
		if promoted != 1 || failed != 1 {
			return fmt.Errorf("%d promotions, %d rollbacks", promoted, failed)
		}
		return nil
	})

	t.Run("the processes report the image's version", func(t *testing.T) {
		ref, err := release.ChartImage(sluice.RepoPath("."))
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range []*process{webhook, shifterA, shifterB} {
			families, err := sluice.Metrics(p.metricsPort)
			if err != nil {
				t.Fatal(err)
			}
			var versions []string
			for _, m := range families["sluice_build_info"].GetMetric() {
				for _, l := range m.GetLabel() {
					if l.GetName() == "version" {
						versions = append(versions, l.GetValue())
					}
				}
			}
			if len(versions) != 1 || versions[0] != ref.TagStr() {
				t.Errorf("%s: sluice_build_info versions %q; want %s, the tag of the chart's image", p.Name(), versions, ref.TagStr())
			}
		}
	})

	t.Run("dashboard names only exported metrics", func(t *testing.T) {
		exported := map[string]bool{}
		for _, p := range []*process{webhook, shifterA, shifterB} {
			families, err := sluice.Metrics(p.metricsPort)
			if err != nil {
				t.Fatal(err)
			}
			for name := range families {
				exported[name] = true
			}
		}
		raw, err := os.ReadFile(sluice.RepoPath("deploy/grafana/sluice.json"))
		if err != nil {
			t.Fatal(err)
		}
		names := regexp.MustCompile(`sluice_[a-z_]+`)
		queries := 0
		for _, expr := range gjson.GetBytes(raw, "panels.#.targets.#.expr").Array() {
			for _, q := range expr.Array() {
				queries++
				found := names.FindAllString(q.String(), -1)
				if len(found) == 0 {
					t.Errorf("query %q names no sluice metric", q.String())
				}
				for _, n := range found {
					base := strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(n, "_bucket"), "_sum"), "_count")
					if !exported[base] {
						t.Errorf("query %q: sluice exports no metric %s", q.String(), n)
					}
				}
			}
		}
		if queries < 10 {
			t.Errorf("the dashboard has %d queries; want at least 10", queries)
		}
	})
}

// A certificate Secret whose tls.key is not the key of its tls.crt (a hand
// edit, a bad restore) is renewed: the webhook becomes ready, serves a
// matching pair, and admits updates again.
func TestMismatchedServingKeyIsRenewed(t *testing.T) {
	installed(t)
	cs := env.Clientset(t)
	secrets := cs.CoreV1().Secrets(system)
	// A webhook fills the Secret if no earlier test did.
	if err := startWebhook(t, "webhook-fill").Stop(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	secret, err := secrets.Get(t.Context(), "sluice-webhook-cert", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	stranger, err := certs.NewCA("stranger")
	if err != nil {
		t.Fatal(err)
	}
	strangerPair, err := stranger.Issue(certs.Request{CommonName: "stranger", Hosts: []string{"127.0.0.1"}})
	if err != nil {
		t.Fatal(err)
	}
	secret.Data["tls.key"] = strangerPair.KeyPEM
	if _, err := secrets.Update(t.Context(), secret, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}

	// start fails the test unless /readyz answers 200 within 30s.
	startWebhook(t, "webhook-mismatched-key")
	renewed, err := secrets.Get(t.Context(), "sluice-webhook-cert", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tls.X509KeyPair(renewed.Data["tls.crt"], renewed.Data["tls.key"]); err != nil {
		t.Errorf("after renewal tls.crt and tls.key: %v", err)
	}
	ns := env.NewNamespace(t)
	sluice.Apply(t, env, ns, manifest("example.com/web:v1", 3))
	sluice.Apply(t, env, ns, manifest("example.com/web:v2", 3))
	if d := deployment(t, sluice.NewClient(t, env), ns, app); divertedImage(t, d) != "example.com/web:v2" {
		t.Errorf("the update after renewal was not diverted: primary %s", image(d))
	}
}

// fast makes certificates that live seconds.
var fast = []string{"--ca-validity=45s", "--cert-validity=15s", "--ca-overlap=3s"}

// Certificates that live seconds: the CA is replaced and the serving
// certificate renewed several times while updates go through the webhook,
// served by one replica while a second rotates the same Secret.
func TestRotationDropsNoAdmission(t *testing.T) {
	installed(t)
	c := sluice.NewClient(t, env)
	cs := env.Clientset(t)
	// Start over, so that the CA is one of the short-lived kind.
	secret, err := cs.CoreV1().Secrets(system).Get(t.Context(), "sluice-webhook-cert", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	secret.Data = nil
	if _, err := cs.CoreV1().Secrets(system).Update(t.Context(), secret, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	startWebhook(t, "webhook-rotating", fast...)
	second, err := cluster.StartProcess(work.dir, "webhook-second", work.webhookBin, local(container(t, "webhook"), map[string]string{
		"--webhook-bind-address": fmt.Sprintf("127.0.0.1:%d", freePort(t)),
		"--metrics-bind-address": "0",
	}, append([]string{"--cert-host=127.0.0.1"}, fast...)...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = second.Stop(10 * time.Second) })

	ns := env.NewNamespace(t)
	sluice.Apply(t, env, ns, manifest("example.com/web:v1", 3))
	cas, servings := map[string]bool{}, map[string]bool{}
	retired := false
	updates := 0
	deadline := time.Now().Add(2 * time.Minute)
	for len(cas) < 2 || len(servings) < 4 || !retired {
		if time.Now().After(deadline) {
			t.Fatalf("after 2 minutes: %d CAs, %d serving certificates, a CA retired: %v", len(cas), len(servings), retired)
		}
		// Each update changes the template, which only the webhook can
		// admit: without it the guard policy refuses the update.
		updates++
		img := fmt.Sprintf("example.com/web:v%d", updates+1)
		sluice.Apply(t, env, ns, manifest(img, 3))
		if d := deployment(t, c, ns, app); image(d) != "example.com/web:v1" || divertedImage(t, d) != img {
			t.Fatalf("update %d: primary %s, diverted %s; want v1 and %s", updates, image(d), divertedImage(t, d), img)
		}
		s, err := cs.CoreV1().Secrets(system).Get(t.Context(), "sluice-webhook-cert", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		cas[string(s.Data["ca.crt"])] = true
		servings[string(s.Data["tls.crt"])] = true
		retired = retired || len(s.Data["previous-ca.crt"]) > 0
	}
	if err := second.Exited(); err != nil {
		t.Error(err)
	}
	t.Logf("%d updates admitted through %d CAs and %d serving certificates", updates, len(cas), len(servings))
}

// Scaled to zero and uninstalled mid-canary, sluice leaves the primary
// running, the diverted template in its annotation, and all traffic on the
// primary. This test removes the install: it runs last.
func TestUninstallMidCanaryLosesNothing(t *testing.T) {
	installed(t)
	c := sluice.NewClient(t, env)
	// The Secret may hold the rotation test's certificates, which live
	// seconds: this webhook keeps rotating them.
	startWebhook(t, "webhook-last", fast...)
	shifter := startShifter(t, "shifter-last")
	// Failing checks with a high threshold hold the canary at its first step.
	ns := started(t, c, 1000, telemetry.Behaviour{ErrorRate: 0.5})
	waitStatus(t, c, ns, "held at 20", time.Minute, func(st canary.CanaryStatus) bool { return st.CanaryWeight == 20 })

	// What the README says to do: scale to zero, then uninstall. The
	// kubelet would stop the container; here the test does.
	run(t, "kubectl", "-n", system, "scale", "deployment", "sluice", "--replicas=0")
	if err := shifter.Stop(30 * time.Second); err != nil {
		t.Fatal(err)
	}
	run(t, "helm", "uninstall", "sluice", "-n", system, "--wait")

	d := deployment(t, c, ns, app)
	if image(d) != "example.com/web:v1" || divertedImage(t, d) != "example.com/web:v2" {
		t.Errorf("after the uninstall the primary runs %s with %s diverted; want v1 with v2 kept", image(d), divertedImage(t, d))
	}
	vs := &istiov1.VirtualService{}
	if err := c.Get(t.Context(), types.NamespacedName{Namespace: ns, Name: app}, vs); err != nil {
		t.Fatal(err)
	}
	weights := map[string]int32{}
	for _, r := range vs.Spec.GetHttp()[0].GetRoute() {
		weights[r.GetDestination().GetHost()] = r.GetWeight()
	}
	if weights[app+"-primary"] != 100 || weights[app+"-canary"] != 0 {
		t.Errorf("routes after the uninstall: %v; want all on the primary", weights)
	}
	if run := deployment(t, c, ns, app+"-canary"); ptr.Deref(run.Spec.Replicas, 1) != 0 {
		t.Errorf("the canary Deployment keeps %d replicas", *run.Spec.Replicas)
	}
	for _, gone := range []client.Object{
		&metav1.PartialObjectMetadata{TypeMeta: metav1.TypeMeta{APIVersion: "admissionregistration.k8s.io/v1", Kind: "MutatingWebhookConfiguration"}, ObjectMeta: metav1.ObjectMeta{Name: "sluice"}},
		&metav1.PartialObjectMetadata{TypeMeta: metav1.TypeMeta{APIVersion: "admissionregistration.k8s.io/v1", Kind: "ValidatingAdmissionPolicy"}, ObjectMeta: metav1.ObjectMeta{Name: "sluice-webhook-guard"}},
		&metav1.PartialObjectMetadata{TypeMeta: metav1.TypeMeta{APIVersion: "admissionregistration.k8s.io/v1", Kind: "ValidatingAdmissionPolicy"}, ObjectMeta: metav1.ObjectMeta{Name: "sluice-annotations"}},
	} {
		if err := c.Get(t.Context(), client.ObjectKeyFromObject(gone), gone); !apierrors.IsNotFound(err) {
			t.Errorf("%s %s after the uninstall: %v", gone.GetObjectKind().GroupVersionKind().Kind, gone.GetName(), err)
		}
	}
	// Without sluice, an apply is a plain rolling update again, once the
	// API server has seen the guard policy go.
	cluster.Eventually(t, 30*time.Second, "a plain rolling update", func(ctx context.Context) error {
		cmd := env.Kubectl(ctx, "apply", "-n", ns, "-f", "-")
		cmd.Stdin = strings.NewReader(manifest("example.com/web:v3", 1000))
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("%v: %s", err, out)
		}
		if d := deployment(t, c, ns, app); image(d) != "example.com/web:v3" {
			return fmt.Errorf("the primary runs %s", image(d))
		}
		return nil
	})
	if !slices.Contains(eventMessages(t, ns), "Starting canary analysis for web."+ns) {
		t.Error("the canary never started")
	}
}
