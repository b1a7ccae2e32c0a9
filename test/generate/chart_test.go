package generate_test

import (
	"encoding/json"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"sluice.dev/sluice/pkg/canary"
	"sluice.dev/sluice/test/cluster"
	"sluice.dev/sluice/test/sluice"
)

// The chart's other modes render what they promise; the default mode is
// deploy/install.yaml, which the install tests run.
func TestChartVariants(t *testing.T) {
	for _, tc := range []struct {
		name      string
		set       []string
		want      []string
		wantNot   []string
		wantError string
	}{
		{name: "cert-manager", set: []string{"certificates.source=cert-manager"},
			want: []string{"kind: Certificate", "cert-manager.io/inject-ca-from: sluice-system/sluice-webhook",
				"--cert-dir=/certs", "secretName: sluice-webhook-tls"},
			wantNot: []string{"--cert-secret", "name: sluice-webhook-cert", "mutatingwebhookconfigurations"}},
		{name: "ServiceMonitor", set: []string{"metrics.serviceMonitor.enabled=true"},
			want: []string{"kind: ServiceMonitor", "port: webhook-metrics", "port: shifter-metrics"}},
		{name: "one replica, no PodDisruptionBudget", set: []string{"replicas=1"},
			want: []string{"replicas: 1"}, wantNot: []string{"kind: PodDisruptionBudget"}},
		{name: "defaults reach both binaries", set: []string{"defaults.maxWeight=30"},
			want: []string{"--default-max-weight=30"}},
		{name: "load tester", set: []string{"loadTester.enabled=true", "loadTester.signingSecret.name=lt-key", "loadTester.extraArgs={--max-rate=50}"},
			want: []string{"name: sluice-loadtester", `command: ["/sluice-loadtester"]`, "--signing-key-file=/signing/key",
				"secretName: lt-key", `"--max-rate=50"`, "app.kubernetes.io/name: sluice-loadtester"}},
		{name: "no load tester by default", want: []string{"name: sluice-webhook"}, wantNot: []string{"sluice-loadtester"}},
		{name: "a bad value is refused", set: []string{"defaults.stepWeight=0"}, wantError: "stepWeight"},
		{name: "a load tester argument that is no flag is refused", set: []string{"loadTester.extraArgs={max-rate=50}"}, wantError: "extraArgs"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := []string{"template", "sluice", sluice.RepoPath("deploy/chart"), "-n", "sluice-system", "--kube-version", "1.35.0"}
			for _, s := range tc.set {
				args = append(args, "--set", s)
			}
			out, err := exec.Command(filepath.Join(cluster.DefaultBinDir(), "helm"), args...).CombinedOutput()
			if tc.wantError != "" {
				if err == nil || !strings.Contains(string(out), tc.wantError) {
					t.Errorf("helm template: %v, %s; want an error naming %s", err, out, tc.wantError)
				}
				return
			}
			if err != nil {
				t.Fatalf("helm template: %v\n%s", err, out)
			}
			for _, w := range tc.want {
				if !strings.Contains(string(out), w) {
					t.Errorf("no %q in the rendered chart", w)
				}
			}
			for _, w := range tc.wantNot {
				if strings.Contains(string(out), w) {
					t.Errorf("%q in the rendered chart", w)
				}
			}
		})
	}
}

// TestPolicyKnowsEveryAnnotation: the policy sluice-annotations refuses the
// sluice.dev/ annotations outside its list, which must be the webhook's.
func TestPolicyKnowsEveryAnnotation(t *testing.T) {
	objs, err := sluice.Manifest("ValidatingAdmissionPolicy")
	if err != nil {
		t.Fatal(err)
	}
	for _, obj := range objs {
		if obj.GetName() != "sluice-annotations" {
			continue
		}
		variables, _, _ := unstructured.NestedSlice(obj.Object, "spec", "variables")
		for _, v := range variables {
			if v, _ := v.(map[string]any); v["name"] == "known" {
				var known []string
				if err := json.Unmarshal([]byte(v["expression"].(string)), &known); err != nil {
					t.Fatalf("the list of known annotations %q: %v", v["expression"], err)
				}
				if want := canary.KnownAnnotations(); !slices.Equal(known, want) {
					t.Errorf("the policy knows %v; the webhook %v", known, want)
				}
				return
			}
		}
	}
	t.Fatal("no policy sluice-annotations with a variable known in deploy/install.yaml")
}
