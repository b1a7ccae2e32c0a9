package main

import (
	"crypto/tls"
	"crypto/x509"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestGencert runs the command and checks what it wrote: a serving pair that
// the CA it wrote beside it vouches for, for every host given.
func TestGencert(t *testing.T) {
	out := filepath.Join(t.TempDir(), "webhook-certs")
	cmd := newCommand()
	cmd.SetArgs([]string{"--host", "sluice-webhook.sluice-system.svc,127.0.0.1", "--out", out, "--validity", "48h"})
	if err := cmd.Execute(); err != nil {
		t.Fatal(err)
	}
	pair, err := tls.LoadX509KeyPair(filepath.Join(out, "tls.crt"), filepath.Join(out, "tls.key"))
	if err != nil {
		t.Fatalf("tls.crt and tls.key: %v", err)
	}
	if _, err := tls.LoadX509KeyPair(filepath.Join(out, "ca.crt"), filepath.Join(out, "ca.key")); err != nil {
		t.Fatalf("ca.crt and ca.key: %v", err)
	}
	caPEM, err := os.ReadFile(filepath.Join(out, "ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(caPEM) {
		t.Fatal("ca.crt holds no certificate")
	}
	leaf, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	for _, host := range []string{"sluice-webhook.sluice-system.svc", "127.0.0.1"} {
		if _, err := leaf.Verify(x509.VerifyOptions{DNSName: host, Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
			t.Errorf("the serving certificate for %s: %v", host, err)
		}
	}
	if life := time.Until(leaf.NotAfter); life > 48*time.Hour || life < 47*time.Hour {
		t.Errorf("the serving certificate is valid for %s more; want about 48h", life)
	}
	info, err := os.Stat(filepath.Join(out, "tls.key"))
	if err != nil {
		t.Fatal(err)
	}
	if perm := info.Mode().Perm(); perm&0o077 != 0 {
		t.Errorf("tls.key has mode %v; want it readable by its owner alone", perm)
	}
}

// TestGencertWantsAHost: without --host the command says what it needs.
func TestGencertWantsAHost(t *testing.T) {
	cmd := newCommand()
	cmd.SetArgs([]string{"--out", t.TempDir()})
	cmd.SetErr(new(strings.Builder))
	if err := cmd.Execute(); err == nil || !strings.Contains(err.Error(), "--host is required") {
		t.Errorf("error %v; want --host is required", err)
	}
}
