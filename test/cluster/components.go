package cluster

import (
	"context"
	"crypto/tls"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"sluice.dev/sluice/certs"
)

// controllers are the kube-controller-manager controllers the tests rely on:
// Deployments roll out through ReplicaSets to Pods, owners are garbage
// collected, Namespaces are cleaned up, Services get endpoints, PDBs have a
// status, aggregated ClusterRoles (admin, edit, view) are filled in and
// HorizontalPodAutoscalers scale their targets.
var controllers = []string{
	"deployment-controller", "replicaset-controller", "garbage-collector-controller",
	"namespace-controller", "serviceaccount-controller", "serviceaccount-token-controller",
	"root-ca-certificate-publisher-controller", "endpoints-controller", "endpointslice-controller",
	"disruption-controller", "clusterrole-aggregation-controller", "pod-garbage-collector-controller",
	"validatingadmissionpolicy-status-controller", "horizontal-pod-autoscaler-controller",
	// Lifts the not-ready taint that new nodes carry once kwok reports them Ready.
	"node-lifecycle-controller",
}

func (c *Cluster) path(parts ...string) string {
	return filepath.Join(append([]string{c.Dir}, parts...)...)
}

func (c *Cluster) writePKI(context.Context) error {
	ca, err := certs.NewCA("sluice-local-ca")
	if err != nil {
		return err
	}
	c.ca = ca
	caPair, err := ca.KeyPair()
	if err != nil {
		return err
	}
	if _, _, err := caPair.WriteFiles(c.Dir, caName); err != nil {
		return err
	}
	serving, err := ca.Issue(certs.Request{
		CommonName: "kube-apiserver",
		Hosts: []string{"127.0.0.1", "localhost", "10.96.0.1", "kubernetes", "kubernetes.default",
			"kubernetes.default.svc", "kubernetes.default.svc.cluster.local"},
	})
	if err != nil {
		return err
	}
	if _, _, err := serving.WriteFiles(c.Dir, "apiserver"); err != nil {
		return err
	}
	saKey, saPub, err := certs.NewSigningKey()
	if err != nil {
		return err
	}
	if err := os.WriteFile(c.path("service-account.pub"), saPub, 0o644); err != nil {
		return err
	}
	return os.WriteFile(c.path("service-account.key"), saKey, 0o600)
}

func (c *Cluster) startEtcd(ctx context.Context) error {
	clientPort, err := FreePort()
	if err != nil {
		return err
	}
	peerPort, err := FreePort()
	if err != nil {
		return err
	}
	clientURL := "http://" + hostPort(clientPort)
	peerURL := "http://" + hostPort(peerPort)
	err = c.start("etcd", "etcd",
		"--name=default",
		"--data-dir="+c.path("etcd"),
		"--listen-client-urls="+clientURL,
		"--advertise-client-urls="+clientURL,
		"--listen-peer-urls="+peerURL,
		"--initial-advertise-peer-urls="+peerURL,
		"--initial-cluster=default="+peerURL,
		// Test data need not survive a power cut; fsync dominates etcd's latency.
		"--unsafe-no-fsync=true",
		"--log-level=warn",
	)
	if err != nil {
		return err
	}
	c.etcd = clientURL
	return c.waitReady(ctx, "etcd", func(ctx context.Context) error {
		return httpOK(ctx, http.DefaultClient, clientURL+"/health")
	})
}

func (c *Cluster) startAPIServer(ctx context.Context) error {
	port, err := FreePort()
	if err != nil {
		return err
	}
	c.apiServer = "https://" + hostPort(port)
	var audit []string
	if c.audit != "" {
		if err := os.WriteFile(c.path("audit-policy.yaml"), []byte(c.audit), 0o644); err != nil {
			return err
		}
		audit = []string{"--audit-policy-file=" + c.path("audit-policy.yaml"), "--audit-log-path=" + c.AuditLog(),
			"--audit-log-format=json", "--audit-log-maxsize=0"}
	}
	err = c.start("kube-apiserver", "kube-apiserver", append([]string{
		"--etcd-servers=" + c.etcd,
		"--bind-address=127.0.0.1",
		"--advertise-address=127.0.0.1",
		// Nothing outside this machine reaches the API server: no endpoints for
		// the kubernetes Service (which may not point at loopback anyway).
		"--endpoint-reconciler-type=none",
		"--secure-port=" + strconv.Itoa(port),
		"--tls-cert-file=" + c.path("apiserver.crt"),
		"--tls-private-key-file=" + c.path("apiserver.key"),
		"--client-ca-file=" + c.path(caName+".crt"),
		"--authorization-mode=RBAC",
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file=" + c.path("service-account.pub"),
		"--service-account-signing-key-file=" + c.path("service-account.key"),
		// Room for the Services of the load tests' thousands of canaries.
		"--service-cluster-ip-range=10.96.0.0/16",
		"--allow-privileged=true",
		"--profiling=false",
		// Load tests run thousands of objects through one API server.
		"--max-requests-inflight=2000",
		"--max-mutating-requests-inflight=1000",
	}, audit...)...)
	if err != nil {
		return err
	}
	if c.admin, err = c.UserConfig(adminUser, "system:masters"); err != nil {
		return err
	}
	c.Kubeconfig = c.path("admin.kubeconfig")
	if err := writeKubeconfig(c.Kubeconfig, c.admin); err != nil {
		return err
	}
	return c.waitReady(ctx, "kube-apiserver", func(ctx context.Context) error { return readyz(ctx, c.admin) })
}

func readyz(ctx context.Context, cfg *rest.Config) error {
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	_, err = cs.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx)
	return err
}

// startComponent runs a control-plane component that authenticates as user
// with its own kubeconfig and serves /healthz on a loopback port.
func (c *Cluster) startComponent(ctx context.Context, name, user string, groups []string, args ...string) error {
	cfg, err := c.UserConfig(user, groups...)
	if err != nil {
		return err
	}
	kubeconfig, err := c.WriteKubeconfig(name, cfg)
	if err != nil {
		return err
	}
	port, err := FreePort()
	if err != nil {
		return err
	}
	args = append([]string{
		"--kubeconfig=" + kubeconfig,
		"--authentication-kubeconfig=" + kubeconfig,
		"--authorization-kubeconfig=" + kubeconfig,
		"--bind-address=127.0.0.1",
		"--secure-port=" + strconv.Itoa(port),
		"--cert-dir=" + c.path(name+"-certs"),
		"--leader-elect=false",
	}, args...)
	if err := c.start(name, name, args...); err != nil {
		return err
	}
	// The component serves /healthz with a certificate it made for itself;
	// nothing but its liveness is read over this connection.
	insecure := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	return c.waitReady(ctx, name, func(ctx context.Context) error {
		return httpOK(ctx, insecure, "https://"+hostPort(port)+"/healthz")
	})
}

func (c *Cluster) startControllerManager(ctx context.Context) error {
	return c.startComponent(ctx, "kube-controller-manager", "system:kube-controller-manager", []string{"system:masters"},
		"--controllers="+strings.Join(controllers, ","),
		"--service-account-private-key-file="+c.path("service-account.key"),
		"--root-ca-file="+c.path(caName+".crt"),
		"--use-service-account-credentials=false",
		"--kube-api-qps=500",
		"--kube-api-burst=1000",
		"--concurrent-deployment-syncs=20",
		"--concurrent-replicaset-syncs=20",
		"--concurrent-gc-syncs=50",
		// An HPA acts within a second of a metric's change instead of 15. The
		// 5-minute default downscale stabilization stays, as in a real
		// cluster: a test that wants a quick scale-down says so in the HPA's
		// spec.behavior, which is also what sluice must carry over.
		"--horizontal-pod-autoscaler-sync-period=1s",
	)
}

func (c *Cluster) startScheduler(ctx context.Context) error {
	return c.startComponent(ctx, "kube-scheduler", "system:kube-scheduler", nil,
		// Flags, not a config file, and so deprecated; but the default 50 QPS
		// would make binding the load tests' pods the slowest part.
		"--kube-api-qps=500", "--kube-api-burst=1000")
}

func (c *Cluster) start(name, bin string, args ...string) error {
	p, err := StartProcess(c.Dir, name, c.Bin(bin), args...)
	if err != nil {
		return err
	}
	c.procs = append(c.procs, p)
	return nil
}

func httpOK(ctx context.Context, client *http.Client, url string) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return nil
}
