// Package promconn turns a Prometheus connection, as a policy gives it (an
// address, credentials from Secrets, a CA bundle, a timeout), into a client of
// the Prometheus HTTP API. Anything that serves that API works: Prometheus,
// Thanos, Mimir, Cortex, VictoriaMetrics and hosted Prometheus.
package promconn

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/binary"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"time"

	promapi "github.com/prometheus/client_golang/api"
	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"
	promconfig "github.com/prometheus/common/config"
)

// DefaultTimeout bounds each request of a connection that sets no timeout.
const DefaultTimeout = 30 * time.Second

// Connection is everything needed to query one Prometheus API, with the
// secrets already read.
type Connection struct {
	// Address is the http or https base URL of the API, such as
	// https://mimir.example.com/prometheus.
	Address string
	// BearerToken, when set, is sent as "Authorization: Bearer <token>".
	BearerToken string
	// Username and Password, when Username is set, are sent as basic auth.
	Username, Password string
	// CABundle holds the PEM certificates that sign the server's; empty: the
	// system's roots.
	CABundle []byte
	// Timeout bounds each request; zero or less means DefaultTimeout.
	Timeout time.Duration
}

// API returns a client of the Prometheus API at c.Address. Its errors name
// the address and say what the server answered, as users read them in events.
func (c Connection) API() (promv1.API, error) {
	u, err := c.url()
	if err != nil {
		return nil, err
	}
	addr := u.Redacted()
	if len(c.CABundle) > 0 {
		if u.Scheme != "https" {
			return nil, fmt.Errorf("prometheus %s: a CA bundle is set, but the address is %s://, which does not use TLS; use https://", addr, u.Scheme)
		}
		if err := checkCABundle(c.CABundle); err != nil {
			return nil, fmt.Errorf("prometheus %s: %w", addr, err)
		}
	}
	if c.BearerToken != "" && c.Username != "" {
		return nil, fmt.Errorf("prometheus %s: both a bearer token and basic auth are set; give one", addr)
	}
	cfg := promconfig.DefaultHTTPClientConfig
	// A redirect would take the credentials along to whatever host it
	// names; the error says where it pointed instead.
	cfg.FollowRedirects = false
	// As the client of the global --prometheus-url does: a hosted
	// Prometheus may be reachable only through the cluster's egress proxy.
	cfg.ProxyFromEnvironment = true
	cfg.TLSConfig.CA = string(c.CABundle)
	switch {
	case c.BearerToken != "":
		cfg.Authorization = &promconfig.Authorization{Type: "Bearer", Credentials: promconfig.Secret(c.BearerToken)}
	case c.Username != "":
		cfg.BasicAuth = &promconfig.BasicAuth{Username: c.Username, Password: promconfig.Secret(c.Password)}
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("prometheus %s: %w", addr, err)
	}
	// The name labels go-conntrack's dialer metrics; one fixed name keeps
	// their number independent of how many connections policies give.
	hc, err := promconfig.NewClientFromConfig(cfg, "sluice-prometheus")
	if err != nil {
		return nil, fmt.Errorf("prometheus %s: %w", addr, err)
	}
	hc.Timeout = c.timeout()
	client, err := promapi.NewClient(promapi.Config{Address: c.Address, Client: hc})
	if err != nil {
		return nil, fmt.Errorf("prometheus %s: %w", addr, err)
	}
	return promv1.NewAPI(&explainingClient{
		Client:      client,
		address:     addr,
		credentials: c.BearerToken != "" || c.Username != "",
		caBundle:    len(c.CABundle) > 0,
		plain:       u.Scheme == "http",
		timeout:     hc.Timeout,
	}), nil
}

func (c Connection) url() (*url.URL, error) {
	if c.Address == "" {
		return nil, errors.New("prometheus: no address; give the http or https base URL of its API")
	}
	u, err := url.Parse(c.Address)
	if err != nil {
		// url's error quotes the whole address, which may hold a password.
		return nil, errors.New("prometheus: the address is not a URL; give the http or https base URL of its API")
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("prometheus %s: the address must be an http:// or https:// URL with a host", u.Redacted())
	}
	return u, nil
}

func (c Connection) timeout() time.Duration {
	if c.Timeout <= 0 {
		return DefaultTimeout
	}
	return c.Timeout
}

// checkCABundle says what is wrong with a bundle that would trust nothing,
// which crypto/x509 would otherwise skip in silence.
func checkCABundle(bundle []byte) error {
	found := 0
	for rest := bundle; ; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		found++
		if _, err := x509.ParseCertificate(block.Bytes); err != nil {
			return fmt.Errorf("certificate %d of the CA bundle: %w", found, err)
		}
	}
	if found == 0 {
		return errors.New("the CA bundle holds no certificate; it must be PEM, blocks starting with -----BEGIN CERTIFICATE-----")
	}
	return nil
}

// Key identifies the connection by all its fields, so that a caller can keep
// one client, and one batch of queries, per connection. It is a hash of the
// secrets too: compare it, do not log it.
func (c Connection) Key() string {
	h := sha256.New()
	// Each field is prefixed by its length, so that no two connections
	// write the same bytes.
	for _, f := range [][]byte{[]byte(c.Address), []byte(c.BearerToken), []byte(c.Username), []byte(c.Password), c.CABundle, []byte(strconv.FormatInt(int64(c.timeout()), 10))} {
		h.Write(binary.BigEndian.AppendUint64(nil, uint64(len(f))))
		h.Write(f)
	}
	return hex.EncodeToString(h.Sum(nil))
}
