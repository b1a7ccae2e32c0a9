package certs

import (
	"crypto/tls"
	"crypto/x509"
	"path/filepath"
	"testing"
)

// TestServingCertificateVerifies: a certificate issued for an IP and a name
// verifies against the CA for both, as a TLS client checks it, and the CA
// survives a round trip through its files.
func TestServingCertificateVerifies(t *testing.T) {
	ca, err := NewCA("test-ca")
	if err != nil {
		t.Fatal(err)
	}
	pair, err := ca.KeyPair()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	caCert, caKey, err := pair.WriteFiles(dir, "ca")
	if err != nil {
		t.Fatal(err)
	}
	loaded, err := LoadCA(caCert, caKey)
	if err != nil {
		t.Fatal(err)
	}
	serving, err := loaded.Issue(Request{CommonName: "webhook", Hosts: []string{"127.0.0.1", "webhook.sluice-system.svc"}})
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile, err := serving.WriteFiles(dir, "tls")
	if err != nil {
		t.Fatal(err)
	}
	kp, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(kp.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(ca.CertPEM())
	for _, host := range []string{"127.0.0.1", "webhook.sluice-system.svc"} {
		if _, err := leaf.Verify(x509.VerifyOptions{DNSName: host, Roots: roots}); err != nil {
			t.Errorf("verify for %s: %v", host, err)
		}
	}
	if _, err := leaf.Verify(x509.VerifyOptions{DNSName: "other.example.com", Roots: roots}); err == nil {
		t.Error("the certificate verifies for a host it was not issued for")
	}
	if _, err := LoadCA(filepath.Join(dir, "tls.crt"), filepath.Join(dir, "missing.key")); err == nil {
		t.Error("LoadCA accepted a missing key file")
	}
}
