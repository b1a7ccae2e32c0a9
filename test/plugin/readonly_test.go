package plugin_test

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"k8s.io/utils/ptr"

	"sluice.dev/sluice/pkg/canary"
	"sluice.dev/sluice/test/cluster"
	"sluice.dev/sluice/test/meshsim/telemetry"
	"sluice.dev/sluice/test/sluice"
)

// readOnly makes a pipeline's ServiceAccount in ns whose Role may only get,
// list and watch canaries, and returns a kubeconfig with a token of it, as
// a pipeline pod has.
func readOnly(t *testing.T, ns string) string {
	t.Helper()
	cs := env.Clientset(t)
	ctx := t.Context()
	const name = "pipeline"
	if _, err := cs.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name}},
		metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := cs.RbacV1().Roles(ns).Create(ctx, &rbacv1.Role{
		ObjectMeta: metav1.ObjectMeta{Name: "canary-reader"},
		Rules:      []rbacv1.PolicyRule{{APIGroups: []string{"sluice.dev"}, Resources: []string{"canaries"}, Verbs: []string{"get", "list", "watch"}}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := cs.RbacV1().RoleBindings(ns).Create(ctx, &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "pipeline-reads-canaries"},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: "canary-reader"},
		Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Name: name, Namespace: ns}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	token, err := cs.CoreV1().ServiceAccounts(ns).CreateToken(ctx, name, &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: ptr.To[int64](3600)},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	admin := env.AdminConfig()
	kc := clientcmdapi.NewConfig()
	kc.Clusters["local"] = &clientcmdapi.Cluster{Server: admin.Host, CertificateAuthorityData: admin.CAData}
	kc.AuthInfos[name] = &clientcmdapi.AuthInfo{Token: token.Status.Token}
	kc.Contexts[name] = &clientcmdapi.Context{Cluster: "local", AuthInfo: name, Namespace: ns}
	kc.CurrentContext = name
	path := filepath.Join(t.TempDir(), "pipeline.kubeconfig")
	if err := clientcmd.WriteToFile(*kc, path); err != nil {
		t.Fatal(err)
	}
	// The API server's authorizer learns of the binding from a watch.
	cluster.Eventually(t, 30*time.Second, "the pipeline may list canaries", func(context.Context) error {
		if r := run(t, path, time.Minute, "get"); r.code != 0 {
			return fmt.Errorf("kubectl sluice get: %s", r)
		}
		return nil
	})
	return path
}

// TestReadOnlyUser: a pipeline that may only read canaries gets the table,
// the story (without what it may not read, and saying so) and the outcome
// of wait; what it lacks for more is named.
func TestReadOnlyUser(t *testing.T) {
	ns := initialized(t, &telemetry.Behaviour{Latency: 20 * time.Millisecond})
	kubeconfig := readOnly(t, ns)
	reader := func(args ...string) result { t.Helper(); return run(t, kubeconfig, 3*time.Minute, args...) }

	if r := reader("get"); r.code != 0 || !strings.Contains(r.stdout, "Initialized") {
		t.Errorf("get in the context's namespace: %s", r)
	}
	r := reader("get", "-A")
	if want := "error: kubectl sluice get needs list on canaries.sluice.dev in all namespaces: "; r.code != 1 || !strings.Contains(r.stderr, want) {
		t.Errorf("get -A: %s; want exit code 1 and %q", r, want)
	}

	sluice.Apply(t, env, ns, manifest("example.com/web:v2"))
	cr := waitCanary(t, ns, "the new revision under analysis", func(st canary.CanaryStatus) bool { return st.Phase == canary.PhaseProgressing })
	r = reader("status", "web")
	if r.code != 0 {
		t.Fatalf("status: %s", r)
	}
	contains(t, "status", r.stdout, "Canary:        revision "+cr.Status.CanaryRevision,
		"no images: kubectl sluice status needs get on deployments.apps in namespace "+ns,
		"no events: kubectl sluice status needs list on events in namespace "+ns)

	// The reader cannot see a revision the shifter has not started yet; it
	// waits for the one the Canary shows.
	r = reader("wait", "web", "--timeout", "2m")
	if r.code != 0 {
		t.Fatalf("wait: %s", r)
	}
	contains(t, "wait", r.stdout, "revision "+cr.Status.CanaryRevision+" succeeded")
	contains(t, "wait", r.stderr, "kubectl sluice wait needs get on deployments.apps in namespace "+ns)
}
