package webhook_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"sluice.dev/sluice/certs"
	"sluice.dev/sluice/test/cluster"
)

// TestServingCertificateIsReloaded: a new certificate written to --cert-dir
// is served without a restart, and admissions keep working through it.
func TestServingCertificateIsReloaded(t *testing.T) {
	setup(t)
	fresh, err := hook.CA.Issue(certs.Request{CommonName: "sluice-webhook-renewed", Hosts: []string{"127.0.0.1"}})
	if err != nil {
		t.Fatal(err)
	}
	// Key first, then certificate: the watcher reloads on either, and a
	// mismatched pair is skipped until both are written.
	if err := os.WriteFile(filepath.Join(hook.Dir, "tls.key"), fresh.KeyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(hook.Dir, "tls.crt"), fresh.CertPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(hook.CAPEM)
	cluster.Eventually(t, 30*time.Second, "the renewed certificate is served", func(ctx context.Context) error {
		conn, err := tls.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", hook.Port), &tls.Config{RootCAs: pool})
		if err != nil {
			return err
		}
		defer conn.Close()
		if cn := conn.ConnectionState().PeerCertificates[0].Subject.CommonName; cn != "sluice-webhook-renewed" {
			return fmt.Errorf("serving %q", cn)
		}
		return nil
	})
	ns := env.NewNamespace(t)
	divertV2(t, ns)
}
