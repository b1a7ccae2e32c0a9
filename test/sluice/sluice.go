// Package sluice runs sluice's own binaries, the webhook and the shifter, as
// local processes against the local control plane, installed with the
// manifests that deploy/ ships: for the integration tests and the demo.
package sluice

import (
	"bytes"
	"cmp"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	k8sruntime "k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/kubernetes"

	"sluice.dev/sluice/certs"
	"sluice.dev/sluice/pkg/shift"
	"sluice.dev/sluice/test/cluster"
)

// ShifterUser is the identity of the shifter: the ServiceAccount sluice in
// sluice-system, as deploy/ names it.
const ShifterUser = "system:serviceaccount:sluice-system:sluice"

// RepoPath returns the absolute path of a file of the repository.
func RepoPath(rel string) string {
	_, here, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(here), "..", "..", filepath.FromSlash(rel))
}

// Build compiles a command of the repository, such as "cmd/webhook", into dir.
func Build(dir, command string) (string, error) { return BuildVersion(dir, command, "") }

// BuildVersion is Build stamping the binary's version (--version,
// sluice_build_info) as a release does; empty leaves Go's own. Only the link
// differs from Build, which so shares the test's compile cache.
func BuildVersion(dir, command, version string) (string, error) {
	bin := filepath.Join(dir, filepath.Base(command))
	args := []string{"build", "-o", bin}
	if version != "" {
		args = append(args, "-ldflags", "-X sluice.dev/sluice/pkg/version.Version="+version)
	}
	cmd := exec.Command("go", append(args, "./"+command)...)
	cmd.Dir = RepoPath(".")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build %s: %v\n%s", command, err, out)
	}
	return bin, nil
}

// Webhook is the webhook binary serving on loopback.
type Webhook struct {
	Dir         string
	CA          *certs.CA
	CAPEM       []byte
	Port        int
	MetricsPort int
	bin         string
	kubeconfig  string
	running
}

// running is one of sluice's binaries while it runs as a local process.
type running struct {
	proc *cluster.Process
	// stopped is the process that Stop ended, whose log a start appends to.
	stopped *cluster.Process
}

// start runs bin, logging to dir/name.log; a start after the first one runs
// the ended process again and appends to its log, which so tells the story
// of every run.
func (r *running) start(dir, name, bin string, args ...string) error {
	var err error
	if last := cmp.Or(r.proc, r.stopped); last != nil {
		r.proc, err = last.Restart()
	} else {
		r.proc, err = cluster.StartProcess(dir, name, bin, args...)
	}
	return err
}

// Pid is the process ID of the running binary; 0 when it is stopped.
func (r *running) Pid() int {
	if r.proc == nil {
		return 0
	}
	return r.proc.Pid()
}

// Log is the path of the running binary's log file.
func (r *running) Log() string { return r.proc.Log() }

// Kill ends the process with SIGKILL, as a crash would: a leading shifter
// keeps its Lease until it expires.
func (r *running) Kill() error {
	if r.proc == nil {
		return nil
	}
	return r.proc.Kill()
}

// stopped is the Done of a binary that is not running.
var stopped = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

// Done is closed when the process ends, whatever ends it.
func (r *running) Done() <-chan struct{} {
	if r.proc == nil {
		return stopped
	}
	return r.proc.Done()
}

// Stop stops the process.
func (r *running) Stop() {
	if r.proc != nil {
		_ = r.proc.Stop(10 * time.Second)
		r.proc, r.stopped = nil, r.proc
	}
}

// StartWebhook builds the webhook into dir, gives it a serving certificate,
// starts it and registers it with the API server through the
// MutatingWebhookConfiguration and ValidatingAdmissionPolicy of deploy/.
func StartWebhook(env *cluster.Cluster, dir string) (*Webhook, error) {
	w := &Webhook{Dir: dir}
	var err error
	if w.bin, err = Build(dir, "cmd/webhook"); err != nil {
		return nil, err
	}
	if w.CA, err = certs.NewCA("sluice-local-webhook-ca"); err != nil {
		return nil, err
	}
	w.CAPEM = w.CA.CertPEM()
	serving, err := w.CA.Issue(certs.Request{CommonName: "sluice-webhook", Hosts: []string{"127.0.0.1"}})
	if err != nil {
		return nil, err
	}
	if _, _, err := serving.WriteFiles(dir, "tls"); err != nil {
		return nil, err
	}
	if w.Port, err = cluster.FreePort(); err != nil {
		return nil, err
	}
	if w.MetricsPort, err = cluster.FreePort(); err != nil {
		return nil, err
	}
	// The webhook caches the policies, as sluice's ServiceAccount.
	if err := Install(env, append([]string{"CustomResourceDefinition"}, RBACKinds...)...); err != nil {
		return nil, err
	}
	if w.kubeconfig, err = env.KubeconfigFor(ShifterUser, "system:serviceaccounts", "system:serviceaccounts:sluice-system"); err != nil {
		return nil, err
	}
	if err := w.Start(); err != nil {
		return w, err
	}
	if err := w.register(env); err != nil {
		return w, err
	}
	return w, Install(env, "ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding")
}

// Start starts the webhook process (again) and waits until it is ready.
func (w *Webhook) Start() error {
	err := w.start(w.Dir, "webhook", w.bin,
		fmt.Sprintf("--webhook-bind-address=127.0.0.1:%d", w.Port),
		fmt.Sprintf("--metrics-bind-address=127.0.0.1:%d", w.MetricsPort),
		"--cert-dir="+w.Dir,
		"--kubeconfig="+w.kubeconfig,
		"--shifter-identity="+ShifterUser,
		"--zap-log-level=debug",
	)
	if err != nil {
		return err
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(w.CAPEM)
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}
	return WaitReady(w.proc, client, fmt.Sprintf("https://127.0.0.1:%d/readyz", w.Port))
}

// Outage stops the webhook until the returned function starts it again, or
// the test ends.
func (w *Webhook) Outage(t testing.TB) (restart func()) {
	w.Stop()
	down := true
	start := func() error {
		if !down {
			return nil
		}
		down = false
		return w.Start()
	}
	t.Cleanup(func() {
		if err := start(); err != nil {
			t.Errorf("restart the webhook: %v", err)
		}
	})
	return func() {
		t.Helper()
		if err := start(); err != nil {
			t.Fatalf("restart the webhook: %v", err)
		}
	}
}

// register installs the MutatingWebhookConfiguration of deploy/install.yaml
// with its clientConfig pointed at this process, every rule kept as shipped.
func (w *Webhook) register(env *cluster.Cluster) error {
	objs, err := Manifest("MutatingWebhookConfiguration")
	if err != nil {
		return err
	}
	cfg := &admissionregistrationv1.MutatingWebhookConfiguration{}
	if err := k8sruntime.DefaultUnstructuredConverter.FromUnstructured(objs[0].Object, cfg); err != nil {
		return fmt.Errorf("decode the MutatingWebhookConfiguration: %w", err)
	}
	for i := range cfg.Webhooks {
		url := fmt.Sprintf("https://127.0.0.1:%d%s", w.Port, *cfg.Webhooks[i].ClientConfig.Service.Path)
		cfg.Webhooks[i].ClientConfig = admissionregistrationv1.WebhookClientConfig{URL: &url, CABundle: w.CAPEM}
	}
	cs, err := kubernetes.NewForConfig(env.AdminConfig())
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

// RBACKinds are the kinds of sluice's identity and its rights.
var RBACKinds = []string{"Namespace", "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"}

// Manifest returns the objects of deploy/install.yaml of the given kinds, in
// the order the file has them.
func Manifest(kinds ...string) ([]*unstructured.Unstructured, error) {
	raw, err := os.ReadFile(RepoPath("deploy/install.yaml"))
	if err != nil {
		return nil, err
	}
	var objs []*unstructured.Unstructured
	dec := yaml.NewYAMLOrJSONDecoder(bytes.NewReader(raw), 4096)
	for {
		obj := &unstructured.Unstructured{}
		if err := dec.Decode(&obj.Object); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return nil, fmt.Errorf("decode deploy/install.yaml: %w", err)
		}
		if obj.Object != nil && slices.Contains(kinds, obj.GetKind()) {
			objs = append(objs, obj)
		}
	}
	if len(objs) == 0 {
		return nil, fmt.Errorf("deploy/install.yaml has no %s", strings.Join(kinds, ", "))
	}
	return objs, nil
}

// Install applies the objects of deploy/install.yaml of the given kinds, as
// the cluster's admin.
func Install(env *cluster.Cluster, kinds ...string) error {
	objs, err := Manifest(kinds...)
	if err != nil {
		return err
	}
	var stream bytes.Buffer
	for _, o := range objs {
		raw, err := json.Marshal(o)
		if err != nil {
			return err
		}
		stream.Write(raw)
		stream.WriteByte('\n')
	}
	cmd := env.Kubectl(context.Background(), "apply", "-f", "-")
	cmd.Stdin = &stream
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("install %s from deploy/install.yaml: %v\n%s", strings.Join(kinds, ", "), err, out)
	}
	return nil
}

// Metrics scrapes a /metrics endpoint on a loopback port.
func Metrics(port int) (map[string]*dto.MetricFamily, error) {
	return Scrape(fmt.Sprintf("http://127.0.0.1:%d/metrics", port))
}

// Scrape reads the metrics that url serves in Prometheus' text format.
func Scrape(url string) (map[string]*dto.MetricFamily, error) {
	resp, err := http.Get(url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	return parser.TextToMetricFamilies(resp.Body)
}

// WaitReady polls url until it answers 200, the process exits, or 30s pass.
func WaitReady(proc *cluster.Process, client *http.Client, url string) error {
	var last error
	err := wait.PollUntilContextTimeout(context.Background(), 50*time.Millisecond, 30*time.Second, true,
		func(context.Context) (bool, error) {
			if err := proc.Exited(); err != nil {
				return false, err
			}
			resp, err := client.Get(url)
			if err != nil {
				last = err
				return false, nil
			}
			resp.Body.Close()
			last = fmt.Errorf("GET %s: %s", url, resp.Status)
			return resp.StatusCode == http.StatusOK, nil
		})
	if err != nil {
		return fmt.Errorf("%s not ready: %w (last: %v)", filepath.Base(proc.Log()), err, last)
	}
	return nil
}

// Shifter is the shifter binary running as the shifter's ServiceAccount.
type Shifter struct {
	Dir         string
	MetricsPort int
	ProbePort   int
	args        []string
	bin         string
	name        string
	running
}

// StartShifter builds the shifter into dir, installs the Canary CRD and the
// RBAC of deploy/install.yaml, and starts it as the shifter's identity, with
// extra flags appended.
func StartShifter(env *cluster.Cluster, dir, name string, extra ...string) (*Shifter, error) {
	s := &Shifter{Dir: dir, name: name}
	var err error
	if s.bin, err = Build(dir, "cmd/shifter"); err != nil {
		return nil, err
	}
	if err := Install(env, append([]string{"CustomResourceDefinition"}, RBACKinds...)...); err != nil {
		return nil, err
	}
	kubeconfig, err := env.KubeconfigFor(ShifterUser, "system:serviceaccounts", "system:serviceaccounts:sluice-system")
	if err != nil {
		return nil, err
	}
	if s.MetricsPort, err = cluster.FreePort(); err != nil {
		return nil, err
	}
	if s.ProbePort, err = cluster.FreePort(); err != nil {
		return nil, err
	}
	s.args = append([]string{
		"--kubeconfig=" + kubeconfig,
		"--prometheus-url=" + env.PrometheusURL,
		fmt.Sprintf("--metrics-bind-address=127.0.0.1:%d", s.MetricsPort),
		fmt.Sprintf("--health-probe-bind-address=127.0.0.1:%d", s.ProbePort),
	}, extra...)
	return s, s.Start()
}

// Start starts the shifter process (again) and waits until it is ready.
func (s *Shifter) Start() error {
	if err := s.start(s.Dir, s.name, s.bin, s.args...); err != nil {
		return err
	}
	return WaitReady(s.proc, http.DefaultClient, fmt.Sprintf("http://127.0.0.1:%d/readyz", s.ProbePort))
}

// Events lists the shifter's events about the object of kind named name in
// ns, oldest first: the recorder names each event after its creation time in
// nanoseconds, in hex, which orders events of the same second.
func Events(ctx context.Context, cs kubernetes.Interface, ns, kind, name string) ([]corev1.Event, error) {
	list, err := cs.CoreV1().Events(ns).List(ctx, metav1.ListOptions{
		FieldSelector: "involvedObject.kind=" + kind + ",involvedObject.name=" + name + ",source=" + shift.EventSource,
	})
	if err != nil {
		return nil, err
	}
	created := func(e corev1.Event) uint64 {
		n, _ := strconv.ParseUint(e.Name[strings.LastIndexByte(e.Name, '.')+1:], 16, 64)
		return n
	}
	slices.SortFunc(list.Items, func(a, b corev1.Event) int { return cmp.Compare(created(a), created(b)) })
	return list.Items, nil
}

// LoadTester is sluice-loadtester serving on loopback.
type LoadTester struct {
	// URL is where webhooks reach it.
	URL string
	running
}

// StartLoadTester builds sluice-loadtester into dir and starts it on a free
// loopback port with args, and waits until it is ready.
func StartLoadTester(dir string, args ...string) (*LoadTester, error) {
	bin, err := Build(dir, "cmd/sluice-loadtester")
	if err != nil {
		return nil, err
	}
	port, err := cluster.FreePort()
	if err != nil {
		return nil, err
	}
	lt := &LoadTester{URL: fmt.Sprintf("http://127.0.0.1:%d/", port)}
	if err := lt.start(dir, "loadtester", bin, append([]string{fmt.Sprintf("--listen=127.0.0.1:%d", port)}, args...)...); err != nil {
		return nil, err
	}
	if err := WaitReady(lt.proc, http.DefaultClient, lt.URL+"healthz"); err != nil {
		lt.Stop()
		return nil, err
	}
	return lt, nil
}

// CheckBuildInfo checks that the binary bin, serving its metrics on port,
// exports sluice_build_info = 1 with the version and the Go toolchain that
// its --version tells.
func CheckBuildInfo(bin string, port int) error {
	out, err := exec.Command(bin, "--version").Output()
	if err != nil {
		return fmt.Errorf("%s --version: %w", filepath.Base(bin), err)
	}
	families, err := Metrics(port)
	if err != nil {
		return err
	}
	metrics := families["sluice_build_info"].GetMetric()
	if len(metrics) != 1 || metrics[0].GetGauge().GetValue() != 1 {
		return fmt.Errorf("%s exports sluice_build_info %v; want one series of value 1", filepath.Base(bin), metrics)
	}
	for _, l := range metrics[0].GetLabel() {
		if l.GetName() != "revision" && (l.GetValue() == "" || !strings.Contains(string(out), l.GetValue())) {
			return fmt.Errorf("sluice_build_info{%s=%q}, which %s --version (%q) does not tell", l.GetName(), l.GetValue(), filepath.Base(bin), out)
		}
	}
	return nil
}

// CheckBuildInfo checks the webhook's sluice_build_info against its
// --version.
func (w *Webhook) CheckBuildInfo() error { return CheckBuildInfo(w.bin, w.MetricsPort) }

// CheckBuildInfo checks the shifter's sluice_build_info against its
// --version.
func (s *Shifter) CheckBuildInfo() error { return CheckBuildInfo(s.bin, s.MetricsPort) }
