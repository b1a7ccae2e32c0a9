package cluster

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"

	promconfig "github.com/prometheus/common/config"
	"golang.org/x/crypto/bcrypt"

	"sluice.dev/sluice/certs"
)

// SecurePrometheus is a Prometheus of its own that serves its API only over
// TLS and only to one basic-auth user, as a hosted or a team's Prometheus
// does. It scrapes what the cluster's Prometheus scrapes.
type SecurePrometheus struct {
	// URL is https://127.0.0.1:<port>.
	URL string
	// CAPEM is the CA that signed its serving certificate.
	CAPEM []byte

	proc *Process
	dir  string
}

// StartSecurePrometheus starts a SecurePrometheus for user and password, on a
// port, data and CA of its own, and waits until it answers them. Stop it when
// done; it is not one of the cluster's processes.
func (c *Cluster) StartSecurePrometheus(ctx context.Context, user, password string) (p *SecurePrometheus, err error) {
	dir, err := os.MkdirTemp(c.Dir, "secure-prometheus-")
	if err != nil {
		return nil, fmt.Errorf("secure prometheus: %w", err)
	}
	p = &SecurePrometheus{dir: dir}
	defer func() {
		if err != nil {
			err = errors.Join(fmt.Errorf("secure prometheus: %w", err), p.Stop())
		}
	}()
	ca, err := certs.NewCA("sluice-secure-prometheus-ca")
	if err != nil {
		return nil, err
	}
	serving, err := ca.Issue(certs.Request{CommonName: "prometheus", Hosts: []string{"127.0.0.1"}})
	if err != nil {
		return nil, err
	}
	certFile, keyFile, err := serving.WriteFiles(dir, "serving")
	if err != nil {
		return nil, err
	}
	// The lowest cost: the test's password guards nothing, and Prometheus
	// checks it on every request.
	hash, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
	if err != nil {
		return nil, err
	}
	// JSON is YAML, which the web config is.
	webConfig, err := json.Marshal(map[string]any{
		"tls_server_config": map[string]string{"cert_file": certFile, "key_file": keyFile},
		"basic_auth_users":  map[string]string{user: string(hash)},
	})
	if err != nil {
		return nil, err
	}
	webConfigFile := filepath.Join(dir, "web.yml")
	if err := os.WriteFile(webConfigFile, webConfig, 0o600); err != nil {
		return nil, err
	}
	port, err := FreePort()
	if err != nil {
		return nil, err
	}
	p.URL, p.CAPEM = "https://"+hostPort(port), ca.CertPEM()
	p.proc, err = StartProcess(dir, "prometheus", c.Bin("prometheus"),
		"--config.file="+c.path("prometheus", "prometheus.yml"),
		"--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+hostPort(port),
		"--web.config.file="+webConfigFile,
		"--log.level=warn",
	)
	if err != nil {
		return nil, err
	}
	client, err := p.client(user, password)
	if err != nil {
		return nil, err
	}
	return p, waitUntil(ctx, "secure prometheus", []*Process{p.proc}, func(ctx context.Context) error {
		return httpOK(ctx, client, p.URL+"/-/ready")
	})
}

// client is an HTTP client that trusts p's CA and logs in as user.
func (p *SecurePrometheus) client(user, password string) (*http.Client, error) {
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(p.CAPEM) {
		return nil, errors.New("no certificate in the CA PEM")
	}
	transport := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}}
	return &http.Client{Transport: promconfig.NewBasicAuthRoundTripper(
		promconfig.NewInlineSecret(user), promconfig.NewInlineSecret(password), transport)}, nil
}

// Stop stops the process, by its PID, and removes its folder.
func (p *SecurePrometheus) Stop() error {
	var err error
	if p.proc != nil {
		err = p.proc.Stop(stopGrace)
	}
	return errors.Join(err, os.RemoveAll(p.dir))
}
