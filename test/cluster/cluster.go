// Package cluster runs a real Kubernetes control plane on loopback for sluice's
// tests and demo: etcd, kube-apiserver with RBAC, kube-controller-manager,
// kube-scheduler, kwok with fake nodes (so Pods run and become Ready), Istio's
// CRDs with Istio's own validating webhook (istio-validate), the Gateway API's
// CRDs, and a Prometheus server whose scrape targets tests can add.
//
// The binaries come from test/tools/install.sh. Every child gets SIGKILL when
// the process that started it dies, so even a panicking test leaves nothing
// running.
package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"k8s.io/client-go/rest"

	"sluice.dev/sluice/certs"
)

// Options configure Start.
type Options struct {
	// Dir holds certificates, kubeconfigs, data and logs. Empty: a new
	// temporary folder, removed by Stop.
	Dir string
	// BinDir holds the binaries; empty: DefaultBinDir().
	BinDir string
	// Nodes is the number of kwok nodes; default 3.
	Nodes int
	// Progress receives one line per started component; nil: discarded.
	Progress io.Writer
	// AuditPolicy, when set, is an audit policy (YAML) for the API server,
	// which then writes its audit log as JSON lines to Cluster.AuditLog().
	AuditPolicy string
}

// Cluster is a running local control plane.
type Cluster struct {
	// Dir is the folder of certificates, kubeconfigs, data and logs.
	Dir string
	// Kubeconfig is the path of a kubeconfig for the cluster admin.
	Kubeconfig string
	// PrometheusURL is the base URL of the Prometheus server.
	PrometheusURL string
	// BinDir holds kubectl, helm and the control-plane binaries.
	BinDir string

	stopMu     sync.Mutex
	ca         *certs.CA
	admin      *rest.Config
	procs      []*Process // in start order
	removeDir  bool
	attached   bool
	progress   io.Writer
	audit      string
	apiServer  string
	etcd       string
	targetsDir string
	// ready holds the readiness check of each process by name, for Restart.
	ready map[string]func(context.Context) error
}

// state is what a running cluster records in its folder so that another
// process (a test run, `localcluster status|down`) can attach to it.
type state struct {
	PID           int    `json:"pid"`
	APIServer     string `json:"apiServer"`
	Kubeconfig    string `json:"kubeconfig"`
	PrometheusURL string `json:"prometheusURL"`
	BinDir        string `json:"binDir"`
}

const (
	stateFile = "state.json"
	// ownerFile names the process that made a temporary cluster folder, so
	// that a later Start can tell a folder left by a crash from a live one.
	ownerFile = "owner.json"
	// tempPrefix starts the name of every temporary cluster folder.
	tempPrefix = "sluice-cluster-"
	caName     = "ca"
	adminUser  = "sluice-admin"
	// stopGrace is how long a component may take to shut down on SIGTERM.
	stopGrace = 10 * time.Second
	// startTimeout bounds the wait for each component to become ready.
	startTimeout = 90 * time.Second
)

// DefaultBinDir is where test/tools/install.sh puts the binaries.
func DefaultBinDir() string {
	if d := os.Getenv("SLUICE_TOOLS"); d != "" {
		return filepath.Join(d, "bin")
	}
	cache := os.Getenv("XDG_CACHE_HOME")
	if cache == "" {
		home, _ := os.UserHomeDir()
		cache = filepath.Join(home, ".cache")
	}
	return filepath.Join(cache, "sluice", "tools", "bin")
}

// Start brings up the whole control plane and waits until each part is ready.
// On error, everything already started is stopped again.
func Start(ctx context.Context, opts Options) (c *Cluster, err error) {
	c = &Cluster{Dir: opts.Dir, BinDir: opts.BinDir, progress: opts.Progress, audit: opts.AuditPolicy}
	if c.BinDir == "" {
		c.BinDir = DefaultBinDir()
	}
	if c.progress == nil {
		c.progress = io.Discard
	}
	if err := c.checkBinaries(); err != nil {
		return nil, err
	}
	if c.Dir == "" {
		removeStaleDirs(os.TempDir(), c.progress)
		if c.Dir, err = os.MkdirTemp("", tempPrefix); err != nil {
			return nil, fmt.Errorf("create cluster folder: %w", err)
		}
		c.removeDir = true
		if err := writeOwner(c.Dir); err != nil {
			return nil, errors.Join(err, os.RemoveAll(c.Dir))
		}
	} else if err := os.MkdirAll(c.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("create cluster folder: %w", err)
	}
	defer func() {
		if err != nil {
			if stopErr := c.Stop(); stopErr != nil {
				err = errors.Join(err, stopErr)
			}
		}
	}()

	nodes := opts.Nodes
	if nodes == 0 {
		nodes = 3
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	steps := []struct {
		name string
		run  func(context.Context) error
	}{
		{"certificates", c.writePKI},
		{"etcd", c.startEtcd},
		{"kube-apiserver", c.startAPIServer},
		{"kube-controller-manager", c.startControllerManager},
		{"kube-scheduler", c.startScheduler},
		{fmt.Sprintf("kwok with %d nodes", nodes), func(ctx context.Context) error { return c.startKwok(ctx, nodes) }},
		{"Istio CRDs", c.installIstioCRDs},
		{"Gateway API CRDs", c.installGatewayAPICRDs},
		{"Istio validation webhook", c.startIstioValidation},
		{"prometheus", c.startPrometheus},
	}
	for _, s := range steps {
		began := time.Now()
		if err := s.run(ctx); err != nil {
			return c, fmt.Errorf("start %s: %w", s.name, err)
		}
		fmt.Fprintf(c.progress, "    %-28s ready in %.1fs\n", s.name, time.Since(began).Seconds())
	}
	return c, c.writeState()
}

// Attach connects to a cluster that another process started in dir. Stop on
// the result does nothing: the cluster, its folder and its state file belong
// to its starter.
func Attach(dir string) (*Cluster, error) {
	st, ok, err := readState(dir)
	if err == nil && !ok {
		err = fmt.Errorf("no %s: no cluster runs there", stateFile)
	}
	if err != nil {
		return nil, fmt.Errorf("attach to cluster in %s: %w", dir, err)
	}
	ca, err := certs.LoadCA(filepath.Join(dir, caName+".crt"), filepath.Join(dir, caName+".key"))
	if err != nil {
		return nil, fmt.Errorf("attach to cluster in %s: %w", dir, err)
	}
	c := &Cluster{
		Dir: dir, Kubeconfig: st.Kubeconfig, PrometheusURL: st.PrometheusURL, BinDir: st.BinDir,
		ca: ca, apiServer: st.APIServer, progress: io.Discard, attached: true,
		targetsDir: filepath.Join(dir, "prometheus", "targets"),
	}
	if c.admin, err = c.UserConfig(adminUser, "system:masters"); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.waitFor(ctx, "kube-apiserver", func(ctx context.Context) error { return readyz(ctx, c.admin) }); err != nil {
		return nil, fmt.Errorf("attach to cluster in %s (started by pid %d): %w", dir, st.PID, err)
	}
	return c, nil
}

// Stop stops every component in reverse order and, for a cluster in a
// temporary folder, removes the folder. It is safe to call more than once. On
// an attached cluster it does nothing, so that the starter and other test
// packages can go on using it.
func (c *Cluster) Stop() error {
	if c.attached {
		return nil
	}
	c.stopMu.Lock()
	defer c.stopMu.Unlock()
	var errs []error
	for i := len(c.procs) - 1; i >= 0; i-- {
		errs = append(errs, c.procs[i].Stop(stopGrace))
	}
	c.procs = nil
	if c.removeDir {
		errs = append(errs, os.RemoveAll(c.Dir))
		c.removeDir = false
	} else if c.Dir != "" {
		if err := os.Remove(filepath.Join(c.Dir, stateFile)); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Processes are the control plane's processes that this Cluster started, in
// start order.
func (c *Cluster) Processes() []*Process { return slices.Clone(c.procs) }

// AuditLog is the path of the API server's audit log, which exists only if
// Options.AuditPolicy was set.
func (c *Cluster) AuditLog() string { return c.path("audit.log") }

// Owned reports whether this process started the cluster (and Stop stops it).
func (c *Cluster) Owned() bool { return len(c.procs) > 0 }

// Attached reports whether the cluster came from Attach: another process runs
// it, so this one can neither stop nor restart its components.
func (c *Cluster) Attached() bool { return c.attached }

// Bin returns the path of a tool binary, such as "kubectl" or "helm".
func (c *Cluster) Bin(name string) string { return filepath.Join(c.BinDir, name) }

// Kubectl returns a kubectl command as the cluster admin.
func (c *Cluster) Kubectl(ctx context.Context, args ...string) *exec.Cmd {
	return c.KubectlAs(ctx, c.Kubeconfig, args...)
}

// KubectlAs returns a kubectl command using the given kubeconfig.
func (c *Cluster) KubectlAs(ctx context.Context, kubeconfig string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, c.Bin("kubectl"), append([]string{"--kubeconfig", kubeconfig}, args...)...)
	cmd.Env = append(os.Environ(), "KUBECONFIG="+kubeconfig)
	return cmd
}

func (c *Cluster) checkBinaries() error {
	var missing []string
	for _, b := range []string{"etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok", "prometheus", "kubectl", istioValidate} {
		if _, err := os.Stat(c.Bin(b)); err != nil {
			missing = append(missing, b)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("binaries missing from %s: %s; build them with `make tools` (test/tools/install.sh)",
			c.BinDir, strings.Join(missing, ", "))
	}
	return nil
}

func (c *Cluster) writeState() error {
	raw, err := json.MarshalIndent(state{
		PID: os.Getpid(), APIServer: c.apiServer, Kubeconfig: c.Kubeconfig,
		PrometheusURL: c.PrometheusURL, BinDir: c.BinDir,
	}, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(c.Dir, stateFile), raw, 0o644)
}

// ReadState returns the pid of the process that runs the cluster in dir, and
// whether a state file is there at all.
func ReadState(dir string) (pid int, ok bool, err error) {
	st, ok, err := readState(dir)
	return st.PID, ok, err
}

func readState(dir string) (state, bool, error) {
	path := filepath.Join(dir, stateFile)
	raw, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return state{}, false, nil
	}
	if err != nil {
		return state{}, false, err
	}
	var st state
	if err := json.Unmarshal(raw, &st); err != nil {
		return state{}, false, fmt.Errorf("%s: %w", path, err)
	}
	return st, true, nil
}

// waitReady waits until the process name is ready by check, and keeps check
// for Restart.
func (c *Cluster) waitReady(ctx context.Context, name string, check func(context.Context) error) error {
	if c.ready == nil {
		c.ready = map[string]func(context.Context) error{}
	}
	c.ready[name] = check
	return c.waitFor(ctx, name, check)
}

// Restart stops the control-plane process name (SIGTERM) and starts it
// again with the same arguments, so on the same ports and data, appending to
// its log, and waits until it is ready: a restart of one component, as an
// upgrade or a crash loop makes one. Only a cluster this process started can.
func (c *Cluster) Restart(ctx context.Context, name string) error {
	i := slices.IndexFunc(c.procs, func(p *Process) bool { return p.name == name })
	if i < 0 || c.ready[name] == nil {
		return fmt.Errorf("restart %s: not a process this cluster started", name)
	}
	if err := c.procs[i].Stop(stopGrace); err != nil {
		return fmt.Errorf("restart %s: %w", name, err)
	}
	p, err := c.procs[i].Restart()
	if err != nil {
		return err
	}
	c.procs[i] = p
	return c.waitFor(ctx, name, c.ready[name])
}

// waitFor polls check every 100ms until it succeeds, a component exits, or
// ctx ends; the last error of check explains a timeout.
func (c *Cluster) waitFor(ctx context.Context, what string, check func(context.Context) error) error {
	return waitUntil(ctx, what, c.procs, check)
}

// waitUntil polls check every 100ms until it succeeds, one of procs exits, or
// ctx ends; the last error of check explains a timeout.
func waitUntil(ctx context.Context, what string, procs []*Process, check func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	ticker := time.NewTicker(100 * time.Millisecond)
	defer ticker.Stop()
	for {
		last := check(ctx)
		if last == nil {
			return nil
		}
		for _, p := range procs {
			if err := p.Exited(); err != nil {
				return err
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: not ready after %s: %w", what, startTimeout, last)
		case <-ticker.C:
		}
	}
}

// HelmCommand returns a helm command as the cluster admin, with helm's cache,
// config and data kept in the cluster folder.
func (c *Cluster) HelmCommand(ctx context.Context, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, c.Bin("helm"), append(args, "--kubeconfig", c.Kubeconfig)...)
	helmHome := filepath.Join(c.Dir, "helm")
	cmd.Env = append(os.Environ(),
		"HELM_CACHE_HOME="+filepath.Join(helmHome, "cache"),
		"HELM_CONFIG_HOME="+filepath.Join(helmHome, "config"),
		"HELM_DATA_HOME="+filepath.Join(helmHome, "data"),
	)
	return cmd
}
