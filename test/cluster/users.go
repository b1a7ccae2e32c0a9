package cluster

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"sluice.dev/sluice/certs"
)

// AdminConfig returns a REST config for the cluster admin (group system:masters).
func (c *Cluster) AdminConfig() *rest.Config { return rest.CopyConfig(c.admin) }

// UserConfig returns a REST config that authenticates as user in groups with a
// client certificate, so that the API server applies RBAC to it as it would to
// any real user.
func (c *Cluster) UserConfig(user string, groups ...string) (*rest.Config, error) {
	kp, err := c.ca.Issue(certs.Request{CommonName: user, Organizations: groups, Client: true})
	if err != nil {
		return nil, fmt.Errorf("client certificate for %q: %w", user, err)
	}
	return &rest.Config{
		Host: c.apiServer,
		TLSClientConfig: rest.TLSClientConfig{
			CAData:   c.ca.CertPEM(),
			CertData: kp.CertPEM,
			KeyData:  kp.KeyPEM,
		},
		QPS:   200,
		Burst: 400,
	}, nil
}

// ServiceAccountUser is the user name the API server gives a service account.
func ServiceAccountUser(namespace, name string) string {
	return "system:serviceaccount:" + namespace + ":" + name
}

// ServiceAccountConfig returns a REST config that authenticates as the service
// account namespace/name, with the groups the API server gives service accounts.
func (c *Cluster) ServiceAccountConfig(namespace, name string) (*rest.Config, error) {
	return c.UserConfig(ServiceAccountUser(namespace, name),
		"system:serviceaccounts", "system:serviceaccounts:"+namespace)
}

// WriteKubeconfig writes cfg as a kubeconfig file in the cluster folder and
// returns its path; name is the file's base name without extension.
func (c *Cluster) WriteKubeconfig(name string, cfg *rest.Config) (string, error) {
	path := filepath.Join(c.Dir, name+".kubeconfig")
	if err := writeKubeconfig(path, cfg); err != nil {
		return "", err
	}
	return path, nil
}

// KubeconfigFor writes a kubeconfig for user in groups and returns its path.
func (c *Cluster) KubeconfigFor(user string, groups ...string) (string, error) {
	cfg, err := c.UserConfig(user, groups...)
	if err != nil {
		return "", err
	}
	return c.WriteKubeconfig(strings.NewReplacer(":", "_", "/", "_").Replace(user), cfg)
}

func writeKubeconfig(path string, cfg *rest.Config) error {
	const name = "sluice-local"
	kc := clientcmdapi.NewConfig()
	kc.Clusters[name] = &clientcmdapi.Cluster{Server: cfg.Host, CertificateAuthorityData: cfg.CAData}
	kc.AuthInfos[name] = &clientcmdapi.AuthInfo{ClientCertificateData: cfg.CertData, ClientKeyData: cfg.KeyData}
	kc.Contexts[name] = &clientcmdapi.Context{Cluster: name, AuthInfo: name, Namespace: "default"}
	kc.CurrentContext = name
	if err := clientcmd.WriteToFile(*kc, path); err != nil {
		return fmt.Errorf("write kubeconfig %s: %w", path, err)
	}
	return os.Chmod(path, 0o600)
}
