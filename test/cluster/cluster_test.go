package cluster_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	promapi "github.com/prometheus/client_golang/api"
	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/common/model"
	networkingv1 "istio.io/api/networking/v1"
	istiov1 "istio.io/client-go/pkg/apis/networking/v1"
	istioclient "istio.io/client-go/pkg/clientset/versioned"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	"sluice.dev/sluice/test/cluster"
)

var env *cluster.Cluster

func TestMain(m *testing.M) { os.Exit(cluster.RunTests(m, &env)) }

func TestDeploymentBecomesReadyAndIsGarbageCollected(t *testing.T) {
	cs := env.Clientset(t)
	ns := env.NewNamespace(t)
	labels := map[string]string{"app": "web"}
	dep := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: ns},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](3),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: "example.com/web:1"}}},
			},
		},
	}
	if _, err := cs.AppsV1().Deployments(ns).Create(t.Context(), dep, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	cluster.Eventually(t, time.Minute, "3 ready replicas", func(ctx context.Context) error {
		got, err := cs.AppsV1().Deployments(ns).Get(ctx, "web", metav1.GetOptions{})
		if err != nil {
			return err
		}
		if got.Status.ReadyReplicas != 3 {
			return fmt.Errorf("%d ready replicas", got.Status.ReadyReplicas)
		}
		return nil
	})
	pods, err := cs.CoreV1().Pods(ns).List(t.Context(), metav1.ListOptions{LabelSelector: "app=web"})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pods.Items {
		if p.Spec.NodeName == "" || p.Status.Phase != corev1.PodRunning {
			t.Errorf("pod %s: node %q, phase %s; want scheduled and Running", p.Name, p.Spec.NodeName, p.Status.Phase)
		}
	}

	if err := cs.AppsV1().Deployments(ns).Delete(t.Context(), "web", metav1.DeleteOptions{
		PropagationPolicy: ptr.To(metav1.DeletePropagationBackground),
	}); err != nil {
		t.Fatal(err)
	}
	cluster.Eventually(t, time.Minute, "ReplicaSets and Pods garbage-collected", func(ctx context.Context) error {
		rs, err := cs.AppsV1().ReplicaSets(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return err
		}
		pods, err := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return err
		}
		if len(rs.Items)+len(pods.Items) > 0 {
			return fmt.Errorf("%d ReplicaSets and %d Pods left", len(rs.Items), len(pods.Items))
		}
		return nil
	})
}

func TestServiceAccountIsBoundByRBAC(t *testing.T) {
	admin := env.Clientset(t)
	ns := env.NewNamespace(t)
	cfg, err := env.ServiceAccountConfig(ns, "writer")
	if err != nil {
		t.Fatal(err)
	}
	sa, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "c"}}
	_, err = sa.CoreV1().ConfigMaps(ns).Create(t.Context(), cm, metav1.CreateOptions{})
	if !apierrors.IsForbidden(err) {
		t.Fatalf("create without a RoleBinding: got %v, want Forbidden", err)
	}
	if !strings.Contains(err.Error(), cluster.ServiceAccountUser(ns, "writer")) {
		t.Errorf("refusal %q does not name the service account", err)
	}

	// The same identity is let in once RBAC grants the write, which proves the
	// refusal came from RBAC and not from a broken credential.
	_, err = admin.RbacV1().Roles(ns).Create(t.Context(), &rbacv1.Role{
		ObjectMeta: metav1.ObjectMeta{Name: "configmap-writer"},
		Rules:      []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"configmaps"}, Verbs: []string{"create"}}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = admin.RbacV1().RoleBindings(ns).Create(t.Context(), &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "configmap-writer"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "configmap-writer"},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: ns, Name: "writer"}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cluster.Eventually(t, 10*time.Second, "write allowed after binding", func(ctx context.Context) error {
		_, err := sa.CoreV1().ConfigMaps(ns).Create(ctx, cm, metav1.CreateOptions{})
		return err
	})
	if _, err := sa.CoreV1().Secrets(ns).Create(t.Context(), &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "s"}}, metav1.CreateOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("create Secret with a ConfigMap-only Role: got %v, want Forbidden", err)
	}
}

func TestVirtualServiceRoundTrip(t *testing.T) {
	ns := env.NewNamespace(t)
	ic, err := istioclient.NewForConfig(env.AdminConfig())
	if err != nil {
		t.Fatal(err)
	}
	vs := &istiov1.VirtualService{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: ns},
		Spec: networkingv1.VirtualService{
			Hosts: []string{"web"},
			Http: []*networkingv1.HTTPRoute{{
				Route: []*networkingv1.HTTPRouteDestination{
					{Destination: &networkingv1.Destination{Host: "web-primary"}, Weight: 80},
					{Destination: &networkingv1.Destination{Host: "web-canary"}, Weight: 20},
				},
			}},
		},
	}
	if _, err := ic.NetworkingV1().VirtualServices(ns).Create(t.Context(), vs, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	got, err := ic.NetworkingV1().VirtualServices(ns).Get(t.Context(), "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	route := got.Spec.GetHttp()[0].GetRoute()
	if len(route) != 2 || route[0].GetDestination().GetHost() != "web-primary" || route[0].GetWeight() != 80 ||
		route[1].GetDestination().GetHost() != "web-canary" || route[1].GetWeight() != 20 {
		t.Errorf("read back route %v; want web-primary 80, web-canary 20", route)
	}
}

func TestPrometheusScrapesATestEndpoint(t *testing.T) {
	reg := prometheus.NewRegistry()
	gauge := prometheus.NewGauge(prometheus.GaugeOpts{Name: "sluice_testbed_answer", Help: "A value the test chooses."})
	reg.MustRegister(gauge)
	gauge.Set(42)

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: promhttp.HandlerFor(reg, promhttp.HandlerOpts{}), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })

	job := "testbed-" + fmt.Sprint(time.Now().UnixNano())
	if err := env.SetScrapeTargets(job, l.Addr().String()); err != nil {
		t.Fatal(err)
	}
	client, err := promapi.NewClient(promapi.Config{Address: env.PrometheusURL})
	if err != nil {
		t.Fatal(err)
	}
	api := promv1.NewAPI(client)
	query := fmt.Sprintf(`sluice_testbed_answer{job=%q}`, job)
	cluster.Eventually(t, time.Minute, "instant query answered", func(ctx context.Context) error {
		v, _, _, err := api.Query(ctx, query, time.Now())
		if err != nil {
			return err
		}
		vec, ok := v.(model.Vector)
		if !ok || len(vec) != 1 {
			return fmt.Errorf("query %s: got %v", query, v)
		}
		if vec[0].Value != 42 {
			return fmt.Errorf("query %s: got %v, want 42", query, vec[0].Value)
		}
		return nil
	})
}

// TestServerIsThePinnedVersion: the API server is the Kubernetes that
// test/tools/kube pins, so a version bump there really reaches the tests.
func TestServerIsThePinnedVersion(t *testing.T) {
	list := exec.CommandContext(t.Context(), "go", "list", "-m", "-f", "{{.Version}}", "k8s.io/kubernetes")
	list.Dir = "../tools/kube"
	out, err := list.Output()
	if err != nil {
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			err = fmt.Errorf("%w: %s", err, exit.Stderr)
		}
		t.Fatalf("the pinned Kubernetes version: go list -m k8s.io/kubernetes in test/tools/kube: %v", err)
	}
	pinned := strings.TrimSpace(string(out))
	info, err := env.Clientset(t).Discovery().ServerVersion()
	if err != nil {
		t.Fatal(err)
	}
	if info.GitVersion != pinned {
		t.Errorf("the API server reports %s; test/tools/kube/go.mod pins %s (stale binaries? run make tools)", info.GitVersion, pinned)
	}
}

// TestNamespaceLifecycle: the service-account controller gives a new
// namespace its default ServiceAccount, and the namespace controller empties
// a deleted namespace so that it goes away.
func TestNamespaceLifecycle(t *testing.T) {
	cs := env.Clientset(t)
	ns := env.NewNamespace(t)
	cluster.Eventually(t, time.Minute, "ServiceAccount default in "+ns, func(ctx context.Context) error {
		_, err := cs.CoreV1().ServiceAccounts(ns).Get(ctx, "default", metav1.GetOptions{})
		return err
	})
	// Content the namespace controller must delete before the namespace goes.
	if _, err := cs.CoreV1().ConfigMaps(ns).Create(t.Context(), &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "c"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := cs.CoreV1().Namespaces().Delete(t.Context(), ns, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	cluster.Eventually(t, 2*time.Minute, "namespace "+ns+" gone", func(ctx context.Context) error {
		got, err := cs.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		if err != nil {
			return err
		}
		return fmt.Errorf("still there, phase %s, conditions %v", got.Status.Phase, got.Status.Conditions)
	})
}

// TestIstioDestinationRuleAndGatewayRoundTrip: the Istio CRDs beside
// VirtualService are served too, and keep what is written.
func TestIstioDestinationRuleAndGatewayRoundTrip(t *testing.T) {
	ns := env.NewNamespace(t)
	ic, err := istioclient.NewForConfig(env.AdminConfig())
	if err != nil {
		t.Fatal(err)
	}
	dr := &istiov1.DestinationRule{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: ns},
		Spec: networkingv1.DestinationRule{
			Host:    "web",
			Subsets: []*networkingv1.Subset{{Name: "canary", Labels: map[string]string{"app": "web-canary"}}},
		},
	}
	if _, err := ic.NetworkingV1().DestinationRules(ns).Create(t.Context(), dr, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	gotDR, err := ic.NetworkingV1().DestinationRules(ns).Get(t.Context(), "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if subsets := gotDR.Spec.GetSubsets(); gotDR.Spec.GetHost() != "web" || len(subsets) != 1 ||
		subsets[0].GetName() != "canary" || subsets[0].GetLabels()["app"] != "web-canary" {
		t.Errorf("read back DestinationRule host %q, subsets %v; want web, canary with app=web-canary", gotDR.Spec.GetHost(), subsets)
	}

	gw := &istiov1.Gateway{
		ObjectMeta: metav1.ObjectMeta{Name: "public", Namespace: ns},
		Spec: networkingv1.Gateway{
			Selector: map[string]string{"istio": "ingressgateway"},
			Servers: []*networkingv1.Server{{
				Port:  &networkingv1.Port{Number: 80, Name: "http", Protocol: "HTTP"},
				Hosts: []string{"*.example.com"},
			}},
		},
	}
	if _, err := ic.NetworkingV1().Gateways(ns).Create(t.Context(), gw, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	gotGW, err := ic.NetworkingV1().Gateways(ns).Get(t.Context(), "public", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if servers := gotGW.Spec.GetServers(); len(servers) != 1 || servers[0].GetPort().GetNumber() != 80 ||
		len(servers[0].GetHosts()) != 1 || servers[0].GetHosts()[0] != "*.example.com" ||
		gotGW.Spec.GetSelector()["istio"] != "ingressgateway" {
		t.Errorf("read back Gateway selector %v, servers %v; want istio=ingressgateway, port 80 for *.example.com", gotGW.Spec.GetSelector(), servers)
	}
}

// The Gateway API's standard channel is served with its CEL validation: an
// HTTPRoute that sluice could write is kept as written, and one that breaks
// a CEL rule is refused.
func TestHTTPRouteRoundTrip(t *testing.T) {
	ns := env.NewNamespace(t)
	scheme := runtime.NewScheme()
	if err := gatewayv1.Install(scheme); err != nil {
		t.Fatal(err)
	}
	c, err := client.New(env.AdminConfig(), client.Options{Scheme: scheme})
	if err != nil {
		t.Fatal(err)
	}
	backend := func(name string, weight int32) gatewayv1.HTTPBackendRef {
		return gatewayv1.HTTPBackendRef{BackendRef: gatewayv1.BackendRef{
			BackendObjectReference: gatewayv1.BackendObjectReference{Name: gatewayv1.ObjectName(name), Port: ptr.To[gatewayv1.PortNumber](80)},
			Weight:                 ptr.To(weight),
		}}
	}
	route := &gatewayv1.HTTPRoute{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: ns},
		Spec: gatewayv1.HTTPRouteSpec{
			CommonRouteSpec: gatewayv1.CommonRouteSpec{ParentRefs: []gatewayv1.ParentReference{{
				Group: ptr.To[gatewayv1.Group](""), Kind: ptr.To[gatewayv1.Kind]("Service"), Name: "web",
			}}},
			Rules: []gatewayv1.HTTPRouteRule{{BackendRefs: []gatewayv1.HTTPBackendRef{backend("web-primary", 80), backend("web-canary", 20)}}},
		},
	}
	if err := c.Create(t.Context(), route); err != nil {
		t.Fatal(err)
	}
	got := &gatewayv1.HTTPRoute{}
	if err := c.Get(t.Context(), client.ObjectKeyFromObject(route), got); err != nil {
		t.Fatal(err)
	}
	refs := got.Spec.Rules[0].BackendRefs
	if len(refs) != 2 || refs[0].Name != "web-primary" || *refs[0].Weight != 80 || refs[1].Name != "web-canary" || *refs[1].Weight != 20 {
		t.Errorf("read back backendRefs %+v; want web-primary 80, web-canary 20", refs)
	}

	bad := route.DeepCopy()
	bad.ResourceVersion, bad.Name = "", "both-percent-and-fraction"
	bad.Spec.Rules[0].Filters = []gatewayv1.HTTPRouteFilter{{
		Type: gatewayv1.HTTPRouteFilterRequestMirror,
		RequestMirror: &gatewayv1.HTTPRequestMirrorFilter{
			BackendRef: gatewayv1.BackendObjectReference{Name: "web-canary", Port: ptr.To[gatewayv1.PortNumber](80)},
			Percent:    ptr.To[int32](50),
			Fraction:   &gatewayv1.Fraction{Numerator: 1, Denominator: ptr.To[int32](2)},
		},
	}}
	if err := c.Create(t.Context(), bad); !apierrors.IsInvalid(err) {
		t.Errorf("create an HTTPRoute mirroring by both percent and fraction: got %v, want Invalid (the CRD's CEL rule)", err)
	}
}

// TestIstioRefusesABadVirtualService: the API server asks Istio's own
// validation about every VirtualService, as in a cluster with Istio. Each bad
// one here passes the CRD's schema (the API server checks that before it
// calls validating webhooks) and is refused with Istio's message.
func TestIstioRefusesABadVirtualService(t *testing.T) {
	ns := env.NewNamespace(t)
	ic, err := istioclient.NewForConfig(env.AdminConfig())
	if err != nil {
		t.Fatal(err)
	}
	vss := ic.NetworkingV1().VirtualServices(ns)
	route := func(primary, canary int32) *networkingv1.HTTPRoute {
		return &networkingv1.HTTPRoute{Route: []*networkingv1.HTTPRouteDestination{
			{Destination: &networkingv1.Destination{Host: "web-primary"}, Weight: primary},
			{Destination: &networkingv1.Destination{Host: "web-canary"}, Weight: canary},
		}}
	}
	virtualService := func(name string, http ...*networkingv1.HTTPRoute) *istiov1.VirtualService {
		return &istiov1.VirtualService{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
			Spec:       networkingv1.VirtualService{Hosts: []string{"web"}, Http: http},
		}
	}

	// What sluice writes, from the first step to promotion.
	good := virtualService("web", route(80, 20))
	if _, err := vss.Create(t.Context(), good, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create a VirtualService at 80/20: %v", err)
	}
	for _, weights := range [][2]int32{{100, 0}, {0, 100}, {3, 1}} {
		got, err := vss.Get(t.Context(), "web", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		got.Spec.Http = []*networkingv1.HTTPRoute{route(weights[0], weights[1])}
		if _, err := vss.Update(t.Context(), got, metav1.UpdateOptions{}); err != nil {
			t.Errorf("update to %d/%d: %v", weights[0], weights[1], err)
		}
	}

	mirror := route(100, 0)
	mirror.Mirror = &networkingv1.Destination{Host: "web-canary"}
	mirror.MirrorPercentage = &networkingv1.Percent{Value: 150}
	badRegex := &networkingv1.HTTPRoute{
		Match: []*networkingv1.HTTPMatchRequest{{Headers: map[string]*networkingv1.StringMatch{
			"x-canary": {MatchType: &networkingv1.StringMatch_Regex{Regex: "(yes"}},
		}}},
		Route: []*networkingv1.HTTPRouteDestination{{Destination: &networkingv1.Destination{Host: "web-canary"}}},
	}
	for _, tc := range []struct {
		vs   *istiov1.VirtualService
		want string
	}{
		{virtualService("all-weights-zero", route(0, 0)), "configuration is invalid: total destination weight = 0"},
		{virtualService("negative-weight", route(110, -10)), "configuration is invalid: weight -10 < 0"},
		{virtualService("mirror-over-100", mirror), "configuration is invalid: mirror_percentage must have a max value of 100"},
		{virtualService("bad-header-regex", badRegex, route(100, 0)), "error parsing regexp: missing closing )"},
	} {
		_, err := vss.Create(t.Context(), tc.vs, metav1.CreateOptions{})
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "denied the request") {
			t.Errorf("create %s: got %v; want the webhook to deny it with %q", tc.vs.Name, err, tc.want)
		} else {
			t.Logf("create %s: %v", tc.vs.Name, err)
		}
	}

	// An update is asked about too.
	got, err := vss.Get(t.Context(), "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	got.Spec.Http = []*networkingv1.HTTPRoute{route(0, 0)}
	if _, err := vss.Update(t.Context(), got, metav1.UpdateOptions{}); err == nil || !strings.Contains(err.Error(), "total destination weight = 0") {
		t.Errorf("update to 0/0: got %v; want Istio's refusal", err)
	}

	// DestinationRules go through the same webhook. The CRD takes any
	// subset name; Istio wants a DNS label.
	dr := &istiov1.DestinationRule{
		ObjectMeta: metav1.ObjectMeta{Name: "bad-subset-name", Namespace: ns},
		Spec: networkingv1.DestinationRule{
			Host:    "web",
			Subsets: []*networkingv1.Subset{{Name: "Canary_1", Labels: map[string]string{"app": "web-canary"}}},
		},
	}
	if _, err := ic.NetworkingV1().DestinationRules(ns).Create(t.Context(), dr, metav1.CreateOptions{}); err == nil ||
		!strings.Contains(err.Error(), "configuration is invalid: subset name is invalid: Canary_1") {
		t.Errorf("create a DestinationRule with subset name Canary_1: got %v; want Istio's refusal", err)
	}
}

// TestIstioValidateFiles: the helper that runs Istio's validation over YAML
// files (the golden VirtualServices) tells good from bad, naming each
// refused object and Istio's reason.
func TestIstioValidateFiles(t *testing.T) {
	out, err := cluster.IstioValidateOutput(t.Context(), "../tools/istio/testdata/good.yaml")
	if err != nil {
		t.Fatalf("good.yaml: %v", err)
	}
	if !strings.Contains(out, "VirtualService shop/web: ok") {
		t.Errorf("good.yaml: output lacks shop/web: ok:\n%s", out)
	}
	err = cluster.IstioValidate(t.Context(), "../tools/istio/testdata/good.yaml", "../tools/istio/testdata/bad.yaml")
	if err == nil {
		t.Fatal("good.yaml and bad.yaml: no error")
	}
	for _, want := range []string{
		"bad.yaml: VirtualService shop/all-weights-zero: invalid: configuration is invalid: total destination weight = 0",
		"bad.yaml: VirtualService shop/negative-weight: invalid: configuration is invalid: weight -10 < 0",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
	if strings.Contains(err.Error(), "shop/web:") {
		t.Errorf("error names a good VirtualService:\n%v", err)
	}
	if err := cluster.IstioValidate(t.Context(), "no-such-file.yaml"); err == nil {
		t.Error("a missing file: no error")
	}
}

// TestStartNeedsIstioValidate: without istio-validate the control plane does
// not start, and says how to build it.
func TestStartNeedsIstioValidate(t *testing.T) {
	bin := t.TempDir()
	for _, name := range []string{"etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok", "prometheus", "kubectl"} {
		if err := os.Symlink(env.Bin(name), filepath.Join(bin, name)); err != nil {
			t.Fatal(err)
		}
	}
	c, err := cluster.Start(t.Context(), cluster.Options{BinDir: bin, Dir: t.TempDir()})
	if err == nil {
		_ = c.Stop()
		t.Fatal("started without istio-validate")
	}
	if !strings.Contains(err.Error(), "istio-validate") || !strings.Contains(err.Error(), "make tools") {
		t.Errorf("got %v; want it to name istio-validate and make tools", err)
	}
}

// Istio's own validation accepts every VirtualService that the Istio
// router's golden files hold: each way sluice writes one (its own, with the
// A/B, sticky and mirror rules, and an adopted one after its weights moved).
func TestIstioAcceptsTheVirtualServicesSluiceWrites(t *testing.T) {
	files, err := filepath.Glob("../../pkg/routing/istio/testdata/*/*.golden.yaml")
	if err != nil || len(files) < 10 {
		t.Fatalf("golden VirtualServices %v (%v); want the Istio router's", files, err)
	}
	out, err := cluster.IstioValidateOutput(t.Context(), files...)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if ok := strings.Count(out, "VirtualService shop/"); ok != len(files) || strings.Count(out, ": ok") != len(files) {
		t.Errorf("istio-validate judged %d VirtualServices ok of %d files:\n%s", ok, len(files), out)
	}
}
