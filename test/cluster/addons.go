package cluster

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apiextensionsclient "k8s.io/apiextensions-apiserver/pkg/client/clientset/clientset"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/kubernetes"
)

const kwokNodeAnnotation = "kwok.x-k8s.io/node"

func (c *Cluster) startKwok(ctx context.Context, nodes int) error {
	stages := filepath.Join(c.BinDir, "..", "kwok-stages.yaml")
	if _, err := os.Stat(stages); err != nil {
		return fmt.Errorf("kwok stages: %w; run `make tools`", err)
	}
	port, err := FreePort()
	if err != nil {
		return err
	}
	cfg, err := c.UserConfig("kwok", "system:masters")
	if err != nil {
		return err
	}
	kubeconfig, err := c.WriteKubeconfig("kwok", cfg)
	if err != nil {
		return err
	}
	err = c.start("kwok", "kwok",
		"--kubeconfig="+kubeconfig,
		"--config="+stages,
		"--manage-all-nodes=false",
		"--manage-nodes-with-annotation-selector="+kwokNodeAnnotation+"=fake",
		"--node-lease-duration-seconds=40",
		"--cidr=10.244.0.1/16",
		"--node-ip=127.0.0.1",
		"--server-address="+hostPort(port),
	)
	if err != nil {
		return err
	}
	cs, err := kubernetes.NewForConfig(c.admin)
	if err != nil {
		return err
	}
	for i := range nodes {
		if _, err := cs.CoreV1().Nodes().Create(ctx, kwokNode(fmt.Sprintf("kwok-node-%d", i)), metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("create node: %w", err)
		}
	}
	return c.waitFor(ctx, "kwok nodes", func(ctx context.Context) error {
		list, err := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
		if err != nil {
			return err
		}
		// A new node is tainted not-ready until the node lifecycle controller
		// sees kwok's Ready condition; only then are Pods scheduled on it.
		ready := 0
		for _, n := range list.Items {
			for _, cond := range n.Status.Conditions {
				if cond.Type == corev1.NodeReady && cond.Status == corev1.ConditionTrue && len(n.Spec.Taints) == 0 {
					ready++
				}
			}
		}
		if ready < nodes {
			return fmt.Errorf("%d of %d nodes ready and untainted", ready, nodes)
		}
		return nil
	})
}

// kwokNode is a fake node with room for thousands of pods, so that load tests
// are limited by the control plane and not by scheduling.
func kwokNode(name string) *corev1.Node {
	capacity := corev1.ResourceList{
		corev1.ResourceCPU:    resource.MustParse("1000"),
		corev1.ResourceMemory: resource.MustParse("4Ti"),
		corev1.ResourcePods:   resource.MustParse("5000"),
	}
	return &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{
			Name:        name,
			Annotations: map[string]string{kwokNodeAnnotation: "fake"},
			Labels: map[string]string{
				"kubernetes.io/hostname": name,
				"kubernetes.io/os":       "linux",
				"kubernetes.io/arch":     "amd64",
				"type":                   "kwok",
			},
		},
		Status: corev1.NodeStatus{Capacity: capacity, Allocatable: capacity},
	}
}

// installIstioCRDs installs the CRDs that the istio.io/api module of this
// build ships, read from the module cache, and waits until they are served.
func (c *Cluster) installIstioCRDs(ctx context.Context) error {
	dir, err := moduleDir(ctx, "istio.io/api")
	if err != nil {
		return err
	}
	raw, err := os.ReadFile(filepath.Join(dir, "kubernetes", "customresourcedefinitions.gen.yaml"))
	if err != nil {
		return fmt.Errorf("read Istio CRDs: %w", err)
	}
	crds, err := decodeCRDs(raw)
	if err != nil {
		return err
	}
	return c.InstallCRDs(ctx, crds...)
}

// installGatewayAPICRDs installs the standard channel of the Gateway API
// (with its CEL validation) that the sigs.k8s.io/gateway-api module of this
// build ships, and waits until it is served.
func (c *Cluster) installGatewayAPICRDs(ctx context.Context) error {
	dir, err := moduleDir(ctx, "sigs.k8s.io/gateway-api")
	if err != nil {
		return err
	}
	files, err := filepath.Glob(filepath.Join(dir, "config", "crd", "standard", "gateway.networking.k8s.io_*.yaml"))
	if err != nil || len(files) == 0 {
		return fmt.Errorf("no Gateway API CRDs in %s (%v)", dir, err)
	}
	var crds []*apiextensionsv1.CustomResourceDefinition
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			return fmt.Errorf("read Gateway API CRDs: %w", err)
		}
		// decodeCRDs keeps only the CRDs: the folder also holds a
		// ValidatingAdmissionPolicy for safe upgrades.
		found, err := decodeCRDs(raw)
		if err != nil {
			return fmt.Errorf("%s: %w", filepath.Base(f), err)
		}
		crds = append(crds, found...)
	}
	return c.InstallCRDs(ctx, crds...)
}

// InstallCRDs creates the CRDs (or leaves existing ones) and waits until each
// is established.
func (c *Cluster) InstallCRDs(ctx context.Context, crds ...*apiextensionsv1.CustomResourceDefinition) error {
	cs, err := apiextensionsclient.NewForConfig(c.admin)
	if err != nil {
		return err
	}
	for _, crd := range crds {
		if _, err := cs.ApiextensionsV1().CustomResourceDefinitions().Create(ctx, crd, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("create CRD %s: %w", crd.Name, err)
		}
	}
	for _, crd := range crds {
		err := c.waitFor(ctx, "CRD "+crd.Name, func(ctx context.Context) error {
			got, err := cs.ApiextensionsV1().CustomResourceDefinitions().Get(ctx, crd.Name, metav1.GetOptions{})
			if err != nil {
				return err
			}
			for _, cond := range got.Status.Conditions {
				if cond.Type == apiextensionsv1.Established && cond.Status == apiextensionsv1.ConditionTrue {
					return nil
				}
			}
			return errors.New("not established")
		})
		if err != nil {
			return err
		}
	}
	return nil
}

func decodeCRDs(raw []byte) ([]*apiextensionsv1.CustomResourceDefinition, error) {
	var crds []*apiextensionsv1.CustomResourceDefinition
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(raw), 4096)
	for {
		crd := &apiextensionsv1.CustomResourceDefinition{}
		if err := dec.Decode(crd); errors.Is(err, io.EOF) {
			return crds, nil
		} else if err != nil {
			return nil, fmt.Errorf("decode CRD %d: %w", len(crds)+1, err)
		}
		if crd.Kind == "CustomResourceDefinition" {
			crds = append(crds, crd)
		}
	}
}

// moduleDir returns the folder of a module of this build in the module cache,
// downloading it if needed.
func moduleDir(ctx context.Context, module string) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "mod", "download", "-json", module).Output()
	if err != nil {
		var exitErr *exec.ExitError
		if errors.As(err, &exitErr) {
			err = fmt.Errorf("%w: %s", err, exitErr.Stderr)
		}
		return "", fmt.Errorf("go mod download %s: %w", module, err)
	}
	var info struct{ Dir string }
	if err := json.Unmarshal(out, &info); err != nil || info.Dir == "" {
		return "", fmt.Errorf("go mod download %s: no folder in %q", module, out)
	}
	return info.Dir, nil
}

func (c *Cluster) startPrometheus(ctx context.Context) error {
	port, err := FreePort()
	if err != nil {
		return err
	}
	c.targetsDir = c.path("prometheus", "targets")
	if err := os.MkdirAll(c.targetsDir, 0o755); err != nil {
		return err
	}
	// One scrape job reads every file in targets/; SetScrapeTargets writes
	// them. A short interval lets tests and the demo see new data within
	// seconds.
	config := fmt.Sprintf(`global:
  scrape_interval: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: targets
    file_sd_configs:
      - files: [%q]
        refresh_interval: 1s
`, filepath.Join(c.targetsDir, "*.json"))
	configPath := c.path("prometheus", "prometheus.yml")
	if err := os.WriteFile(configPath, []byte(config), 0o644); err != nil {
		return err
	}
	c.PrometheusURL = "http://" + hostPort(port)
	return c.StartPrometheus(ctx)
}

// StartPrometheus starts Prometheus (again, after StopPrometheus) on its
// address and data, and waits until it is ready.
func (c *Cluster) StartPrometheus(ctx context.Context) error {
	err := c.start("prometheus", "prometheus",
		"--config.file="+c.path("prometheus", "prometheus.yml"),
		"--storage.tsdb.path="+c.path("prometheus", "data"),
		"--web.listen-address="+strings.TrimPrefix(c.PrometheusURL, "http://"),
		"--log.level=warn",
	)
	if err != nil {
		return err
	}
	return c.waitReady(ctx, "prometheus", func(ctx context.Context) error {
		return httpOK(ctx, http.DefaultClient, c.PrometheusURL+"/-/ready")
	})
}

// StopPrometheus stops Prometheus, as an outage would; only a cluster this
// process started can.
func (c *Cluster) StopPrometheus() error {
	for i, p := range c.procs {
		if p.name == "prometheus" {
			c.procs = append(c.procs[:i], c.procs[i+1:]...)
			return p.Stop(stopGrace)
		}
	}
	return errors.New("stop prometheus: not started by this process")
}

// SetScrapeTargets makes Prometheus scrape targets (host:port, path /metrics)
// under the job label job, replacing the job's earlier targets.
func (c *Cluster) SetScrapeTargets(job string, targets ...string) error {
	raw, err := json.Marshal([]map[string]any{{"targets": targets, "labels": map[string]string{"job": job}}})
	if err != nil {
		return err
	}
	// Prometheus watches the folder: write aside and rename, so that it never
	// reads half a file.
	path := filepath.Join(c.targetsDir, job+".json")
	tmp := path + ".tmp-" + strconv.Itoa(os.Getpid())
	if err := os.WriteFile(tmp, raw, 0o644); err != nil {
		return fmt.Errorf("scrape targets of %s: %w", job, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("scrape targets of %s: %w", job, err)
	}
	return nil
}
