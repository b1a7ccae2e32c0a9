package servingcert

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"

	"sluice.dev/sluice/certs"
)

// The Secret's keys. tls.crt and tls.key are the names a mounted
// kubernetes.io/tls Secret has, and ca-bundle.crt is what the webhook
// configuration holds, for people who look.
const (
	keyCA         = "ca.crt"
	keyCAKey      = "ca.key"
	keyNext       = "next-ca.crt"
	keyNextKey    = "next-ca.key"
	keyPrevious   = "previous-ca.crt"
	keyCert       = "tls.crt"
	keyKey        = "tls.key"
	keyBundle     = "ca-bundle.crt"
	annoNextSince = "sluice.dev/next-ca-since"
	annoPrevSince = "sluice.dev/previous-ca-since"
)

// Decode reads the State from a Secret. What cannot be read is left out and
// reported, so that Decide makes it anew.
func Decode(secret *corev1.Secret) (State, []error) {
	var s State
	var problems []error
	d := secret.Data
	readCA := func(certKey, keyKey string) *certs.CA {
		if len(d[certKey]) == 0 {
			return nil
		}
		ca, err := certs.ParseCA(d[certKey], d[keyKey])
		if err != nil {
			problems = append(problems, fmt.Errorf("%s, %s: %w", certKey, keyKey, err))
		}
		return ca
	}
	readTime := func(key string) time.Time {
		t, err := time.Parse(time.RFC3339Nano, secret.Annotations[key])
		if err != nil {
			problems = append(problems, fmt.Errorf("annotation %s: %w", key, err))
		}
		return t
	}
	if s.CA = readCA(keyCA, keyCAKey); s.CA == nil {
		return State{}, problems
	}
	if s.Next = readCA(keyNext, keyNextKey); s.Next != nil {
		s.NextSince = readTime(annoNextSince)
	}
	if len(d[keyPrevious]) > 0 {
		prev, err := certs.ParseCert(d[keyPrevious])
		if err != nil {
			problems = append(problems, fmt.Errorf("%s: %w", keyPrevious, err))
		} else {
			s.Previous, s.PreviousSince = prev, readTime(annoPrevSince)
		}
	}
	if len(d[keyCert]) > 0 {
		cert, err := certs.ParseCert(d[keyCert])
		if err == nil {
			// The pair as the webhook serves it: a key that is not the
			// certificate's fails every handshake, so it must be renewed.
			_, err = tls.X509KeyPair(d[keyCert], d[keyKey])
		}
		if err != nil {
			problems = append(problems, fmt.Errorf("%s, %s: %w", keyCert, keyKey, err))
		} else {
			s.Serving, s.ServingCert = &certs.KeyPair{CertPEM: d[keyCert], KeyPEM: d[keyKey]}, cert
		}
	}
	return s, problems
}

// Encode writes s into secret's data and annotations, replacing what sluice
// keeps there and leaving the rest.
func Encode(s State, secret *corev1.Secret) error {
	if secret.Data == nil {
		secret.Data = map[string][]byte{}
	}
	if secret.Annotations == nil {
		secret.Annotations = map[string]string{}
	}
	for _, k := range []string{keyCA, keyCAKey, keyNext, keyNextKey, keyPrevious, keyCert, keyKey, keyBundle} {
		delete(secret.Data, k)
	}
	delete(secret.Annotations, annoNextSince)
	delete(secret.Annotations, annoPrevSince)
	putCA := func(ca *certs.CA, certKey, keyKey string) error {
		kp, err := ca.KeyPair()
		if err != nil {
			return err
		}
		secret.Data[certKey], secret.Data[keyKey] = kp.CertPEM, kp.KeyPEM
		return nil
	}
	if s.CA != nil {
		if err := putCA(s.CA, keyCA, keyCAKey); err != nil {
			return err
		}
	}
	if s.Next != nil {
		if err := putCA(s.Next, keyNext, keyNextKey); err != nil {
			return err
		}
		secret.Annotations[annoNextSince] = s.NextSince.UTC().Format(time.RFC3339Nano)
	}
	if s.Previous != nil {
		secret.Data[keyPrevious] = pemCert(s.Previous)
		secret.Annotations[annoPrevSince] = s.PreviousSince.UTC().Format(time.RFC3339Nano)
	}
	if s.Serving != nil {
		secret.Data[keyCert], secret.Data[keyKey] = s.Serving.CertPEM, s.Serving.KeyPEM
	}
	secret.Data[keyBundle] = Bundle(s)
	return nil
}

// Bundle returns s.Trust() PEM-encoded: the webhook configuration's caBundle.
func Bundle(s State) []byte {
	var b bytes.Buffer
	for _, c := range s.Trust() {
		b.Write(pemCert(c))
	}
	return b.Bytes()
}

func pemCert(c *x509.Certificate) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
}
