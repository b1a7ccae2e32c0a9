package shifter_test

import (
	"encoding/json"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"sluice.dev/sluice/pkg/canary"
)

// flaggerModule ships Flagger's CRDs, for the test of both installed at once.
const flaggerModule = "github.com/fluxcd/flagger@v1.36.1"

// TestBesideFlagger: with Flagger's Canary CRD installed beside sluice's,
// plain `kubectl get canary` means Flagger's (kubectl orders the groups
// by name, and flagger.app comes first), while the short name scn, the
// full name canaries.sluice.dev and kubectl sluice mean sluice's.
func TestBesideFlagger(t *testing.T) {
	ns, _ := initializedQuiet(t, patient)
	out, err := exec.CommandContext(t.Context(), "go", "mod", "download", "-json", flaggerModule).Output()
	if err != nil {
		t.Fatalf("go mod download %s: %v", flaggerModule, err)
	}
	var module struct{ Dir string }
	if err := json.Unmarshal(out, &module); err != nil {
		t.Fatal(err)
	}
	kubectlRun(t, "apply", "--server-side", "-f", filepath.Join(module.Dir, "artifacts", "flagger", "crd.yaml"))
	kubectlRun(t, "wait", "--for=condition=Established", "--timeout=30s", "crd/canaries.flagger.app")

	// Flagger's Canary of another Deployment in the same namespace.
	kubectlApply(t, ns, `apiVersion: flagger.app/v1beta1
kind: Canary
metadata:
  name: shop
spec:
  targetRef: {apiVersion: apps/v1, kind: Deployment, name: shop}
  service: {port: 80}
  analysis: {interval: 1m, threshold: 5, maxWeight: 50, stepWeight: 10}
`)

	get := func(resource string) string {
		// A discovery cache of its own: kubectl sees both CRDs as a
		// user's kubectl does once its cache expires.
		cmd := env.Kubectl(t.Context(), "get", resource, "-n", ns, "--cache-dir", t.TempDir(),
			"-o", "jsonpath={range .items[*]}{.apiVersion} {.metadata.name}{end}")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("kubectl get %s: %v\n%s", resource, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	if got := get("canary"); got != "flagger.app/v1beta1 shop" {
		t.Errorf("kubectl get canary lists %q; want Flagger's Canary shop", got)
	}
	for _, resource := range []string{"scn", "canaries.sluice.dev"} {
		if got, want := get(resource), canary.GroupVersion.String()+" "+app; got != want {
			t.Errorf("kubectl get %s lists %q; want %q", resource, got, want)
		}
	}
	stdout, stderr, code := kubectlSluice(t, env.Kubeconfig, "get", "-n", ns)
	if code != 0 || !strings.Contains(stdout, app) || strings.Contains(stdout, "shop") {
		t.Errorf("kubectl sluice get beside Flagger: exit %d, %s%s; want sluice's Canary %s only", code, stdout, stderr, app)
	}
}
