// Package webhook_test runs sluice's webhook binary against the real API
// server of the local control plane, registered with the configuration that
// deploy/ ships, and drives it with the real kubectl, helm and client-go.
package webhook_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/apimachinery/pkg/util/yaml"

	"sluice.dev/sluice/certs"
	"sluice.dev/sluice/test/cluster"
)

const shifterUser = "system:serviceaccount:sluice-system:sluice"

var (
	env *cluster.Cluster
	// hook is the webhook process shared by the tests; one test stops and
	// restarts it.
	hook      *webhookServer
	setupOnce sync.Once
	setupErr  error
)

func TestMain(m *testing.M) {
	code := cluster.RunTests(m, &env)
	if hook != nil {
		hook.stop()
		_ = os.RemoveAll(hook.dir)
	}
	os.Exit(code)
}

// webhookServer is the webhook binary running on loopback.
type webhookServer struct {
	dir         string
	bin         string
	ca          *certs.CA
	caPEM       []byte
	port        int
	metricsPort int
	proc        *cluster.Process
}

// setup builds and starts the webhook and registers it with the API server,
// once for all tests.
func setup(t testing.TB) {
	t.Helper()
	setupOnce.Do(func() { setupErr = startShared() })
	if setupErr != nil {
		t.Fatal(setupErr)
	}
}

func startShared() error {
	dir, err := os.MkdirTemp("", "sluice-webhook-test-")
	if err != nil {
		return err
	}
	w := &webhookServer{dir: dir, bin: filepath.Join(dir, "webhook")}
	hook = w // TestMain stops it and removes its folder, also after a failed start
	if out, err := exec.Command("go", "build", "-o", w.bin, "sluice.dev/sluice/cmd/webhook").CombinedOutput(); err != nil {
		return fmt.Errorf("build webhook: %v\n%s", err, out)
	}
	ca, err := certs.NewCA("sluice-test-webhook-ca")
	if err != nil {
		return err
	}
	serving, err := ca.Issue(certs.Request{CommonName: "sluice-webhook", Hosts: []string{"127.0.0.1"}})
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "tls.crt"), serving.CertPEM, 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "tls.key"), serving.KeyPEM, 0o600); err != nil {
		return err
	}
	w.ca, w.caPEM = ca, ca.CertPEM()
	if w.port, err = cluster.FreePort(); err != nil {
		return err
	}
	if w.metricsPort, err = cluster.FreePort(); err != nil {
		return err
	}
	if err := w.start(); err != nil {
		return err
	}
	if err := w.register(); err != nil {
		return err
	}
	out, err := env.Kubectl(context.Background(), "apply", "-f", repoPath("deploy/webhook/validatingadmissionpolicy.yaml")).CombinedOutput()
	if err != nil {
		return fmt.Errorf("install the ValidatingAdmissionPolicy: %v\n%s", err, out)
	}
	return nil
}

func (w *webhookServer) start() error {
	var err error
	w.proc, err = cluster.StartProcess(w.dir, "webhook", w.bin,
		fmt.Sprintf("--webhook-bind-address=127.0.0.1:%d", w.port),
		fmt.Sprintf("--metrics-bind-address=127.0.0.1:%d", w.metricsPort),
		"--cert-dir="+w.dir,
		"--shifter-identity="+shifterUser,
		"--zap-log-level=debug",
	)
	if err != nil {
		return err
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(w.caPEM)
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	var last error
	err = wait.PollUntilContextTimeout(context.Background(), 50*time.Millisecond, 30*time.Second, true,
		func(ctx context.Context) (bool, error) {
			if err := w.proc.Exited(); err != nil {
				return false, err
			}
			resp, err := client.Get(fmt.Sprintf("https://127.0.0.1:%d/readyz", w.port))
			if err != nil {
				last = err
				return false, nil
			}
			resp.Body.Close()
			return resp.StatusCode == http.StatusOK, nil
		})
	if err != nil {
		return fmt.Errorf("webhook not ready: %w (last: %v)", err, last)
	}
	return nil
}

func (w *webhookServer) stop() {
	if w.proc != nil {
		_ = w.proc.Stop(10 * time.Second)
		w.proc = nil
	}
}

// register installs the MutatingWebhookConfiguration from deploy/ with its
// clientConfig pointed at this process, every rule kept as shipped.
func (w *webhookServer) register() error {
	raw, err := os.ReadFile(repoPath("deploy/webhook/mutatingwebhookconfiguration.yaml"))
	if err != nil {
		return err
	}
	cfg := &admissionregistrationv1.MutatingWebhookConfiguration{}
	if err := yaml.NewYAMLOrJSONDecoder(bytes.NewReader(raw), 4096).Decode(cfg); err != nil {
		return fmt.Errorf("decode the MutatingWebhookConfiguration: %w", err)
	}
	url := fmt.Sprintf("https://127.0.0.1:%d/mutate-apps-v1-deployment", w.port)
	for i := range cfg.Webhooks {
		cfg.Webhooks[i].ClientConfig = admissionregistrationv1.WebhookClientConfig{URL: &url, CABundle: w.caPEM}
	}
	cs, err := kubernetesClient()
	if err != nil {
		return err
	}
	api := cs.AdmissionregistrationV1().MutatingWebhookConfigurations()
	ctx := context.Background()
	if _, err := api.Create(ctx, cfg, metav1.CreateOptions{}); apierrors.IsAlreadyExists(err) {
		current, err := api.Get(ctx, cfg.Name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		cfg.ResourceVersion = current.ResourceVersion
		_, err = api.Update(ctx, cfg, metav1.UpdateOptions{})
		return err
	} else if err != nil {
		return err
	}
	return nil
}

// admissions returns sluice_webhook_admissions_total by "operation/result".
func (w *webhookServer) admissions(t *testing.T) map[string]float64 {
	t.Helper()
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", w.metricsPort))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	counts := map[string]float64{}
	family, ok := families["sluice_webhook_admissions_total"]
	if !ok {
		t.Fatal("the webhook exports no sluice_webhook_admissions_total")
	}
	for _, m := range family.GetMetric() {
		labels := map[string]string{}
		for _, l := range m.GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		counts[labels["operation"]+"/"+labels["result"]] = m.GetCounter().GetValue()
	}
	return counts
}

func repoPath(rel string) string {
	return filepath.Join("..", "..", filepath.FromSlash(rel))
}

// kubectl runs kubectl as the cluster admin and returns its stdout; stderr
// (kubectl's warnings) is returned separately. It fails the test on error.
func kubectl(t *testing.T, stdin string, args ...string) (stdout, stderr string) {
	t.Helper()
	stdout, stderr, err := tryKubectl(t, stdin, args...)
	if err != nil {
		t.Fatalf("kubectl %s: %v\n%s%s", strings.Join(args, " "), err, stdout, stderr)
	}
	return stdout, stderr
}

func tryKubectl(t *testing.T, stdin string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	cmd := env.Kubectl(t.Context(), args...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err = cmd.Run()
	return out.String(), errOut.String(), err
}
