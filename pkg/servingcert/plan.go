// Package servingcert keeps the webhook's serving certificate and the CA the
// API server trusts it by, in one Secret, and rotates both before they expire
// without a moment in which the API server would refuse the certificate the
// webhook serves.
//
// A CA cannot be swapped in one step: the API server reads the CA bundle of
// the webhook configuration and the webhook reads its certificate from the
// Secret, and neither sees a change at the same instant as the other. So a new
// CA is first only trusted (added to the bundle), signs the serving
// certificate only once the bundle has carried it for an overlap period, and
// the old CA stays trusted for another overlap period, until every replica
// serves the new certificate.
package servingcert

import (
	"crypto/x509"
	"errors"
	"fmt"
	"slices"
	"time"

	"sluice.dev/sluice/certs"
)

// Policy says how long certificates live and how a new CA is phased in.
type Policy struct {
	// Hosts are the DNS names and IP addresses the serving certificate covers.
	Hosts []string
	// CAValidity is the lifetime of a CA; a new one is staged when a third of
	// it is left.
	CAValidity time.Duration
	// CertValidity is the lifetime of a serving certificate; it is renewed
	// when a third of it is left.
	CertValidity time.Duration
	// Overlap is how long a new CA is trusted before it signs, and how long a
	// retired one stays trusted after.
	Overlap time.Duration
}

// Validate says what is wrong with p, naming the flags that set it.
func (p Policy) Validate() error {
	var errs []error
	if len(p.Hosts) == 0 {
		errs = append(errs, errors.New("--cert-host: at least one DNS name or IP address is needed"))
	}
	if p.CertValidity <= 0 {
		errs = append(errs, fmt.Errorf("--cert-validity %s: must be positive", p.CertValidity))
	}
	// The CA must outlast a serving certificate by enough that, once a new CA
	// is staged, the overlap passes before the serving certificate is due:
	// otherwise the serving certificate would be renewed under the old CA,
	// capped at its end, and be due again at once.
	if p.CAValidity-p.CertValidity < 3*p.Overlap || p.CAValidity <= p.CertValidity {
		errs = append(errs, fmt.Errorf("--ca-validity %s, --cert-validity %s, --ca-overlap %s: the CA must outlive a serving certificate "+
			"by at least three overlaps (%s); it does by %s",
			p.CAValidity, p.CertValidity, p.Overlap, 3*p.Overlap, p.CAValidity-p.CertValidity))
	}
	if p.Overlap <= 0 {
		errs = append(errs, fmt.Errorf("--ca-overlap %s: must be positive", p.Overlap))
	}
	return errors.Join(errs...)
}

// State is what the Secret holds.
type State struct {
	// CA signs the serving certificate.
	CA *certs.CA
	// Next is a staged CA: trusted, not signing yet.
	Next *certs.CA
	// NextSince is when Next was staged.
	NextSince time.Time
	// Previous is a retired CA, trusted until every replica serves a
	// certificate of CA.
	Previous *x509.Certificate
	// PreviousSince is when Previous was retired.
	PreviousSince time.Time
	// Serving is the webhook's certificate and key.
	Serving *certs.KeyPair
	// ServingCert is Serving's parsed certificate.
	ServingCert *x509.Certificate
}

// Trust returns the CA bundle the API server must hold: every CA a replica may
// serve a certificate of, now or soon.
func (s State) Trust() []*x509.Certificate {
	var bundle []*x509.Certificate
	for _, c := range []*x509.Certificate{caCert(s.CA), caCert(s.Next), s.Previous} {
		if c != nil {
			bundle = append(bundle, c)
		}
	}
	return bundle
}

func caCert(ca *certs.CA) *x509.Certificate {
	if ca == nil {
		return nil
	}
	return ca.Cert
}

// Step is one change to the State.
type Step string

// The steps, in the order Plan applies them.
const (
	// Bootstrap makes the first CA: there is none, or it cannot be read.
	Bootstrap Step = "Bootstrap"
	// StageCA makes the next CA and trusts it.
	StageCA Step = "StageCA"
	// PromoteCA makes the staged CA the signing one and retires the current.
	PromoteCA Step = "PromoteCA"
	// ForgetCA stops trusting the retired CA.
	ForgetCA Step = "ForgetCA"
	// Renew issues a new serving certificate.
	Renew Step = "Renew"
)

// Decide returns the steps due at now, given whether the API server's webhook
// configuration holds s.Trust(); when none is due, also how long after now the
// next one falls due if nothing else changes. It is pure: Apply makes the keys.
func Decide(s State, trusted bool, p Policy, now time.Time) (steps []Step, recheck time.Duration) {
	if s.CA == nil || !now.Before(s.CA.Cert.NotAfter) {
		return []Step{Bootstrap, Renew}, 0
	}
	var later []time.Time
	due := func(at time.Time) bool {
		if !now.Before(at) {
			return true
		}
		later = append(later, at)
		return false
	}
	signer := s.CA
	switch {
	case s.Next == nil:
		if due(s.CA.Cert.NotAfter.Add(-p.CAValidity / 3)) {
			steps = append(steps, StageCA)
		}
	case trusted && due(s.NextSince.Add(p.Overlap)):
		// Only a bundle the API server already holds counts: the overlap
		// is waited for after the bundle is written.
		steps = append(steps, PromoteCA)
		signer = s.Next
	}
	if s.Previous != nil && (due(s.PreviousSince.Add(p.Overlap)) || !now.Before(s.Previous.NotAfter)) {
		steps = append(steps, ForgetCA)
	}
	if signer != s.CA || !servingValid(s, p.Hosts) || due(s.ServingCert.NotAfter.Add(-p.CertValidity/3)) {
		steps = append(steps, Renew)
	}
	if len(steps) == 0 && len(later) > 0 {
		recheck = slices.MinFunc(later, time.Time.Compare).Sub(now)
	}
	return steps, recheck
}

// servingValid says whether the serving certificate chains to the CA and
// covers exactly the hosts.
func servingValid(s State, hosts []string) bool {
	if s.ServingCert == nil || s.ServingCert.CheckSignatureFrom(s.CA.Cert) != nil {
		return false
	}
	covered := append([]string{}, s.ServingCert.DNSNames...)
	for _, ip := range s.ServingCert.IPAddresses {
		covered = append(covered, ip.String())
	}
	want := append([]string{}, hosts...)
	slices.Sort(covered)
	slices.Sort(want)
	return slices.Equal(covered, want)
}

// Apply returns s after steps, at now.
func Apply(s State, steps []Step, p Policy, now time.Time) (State, error) {
	var err error
	for _, step := range steps {
		switch step {
		case Bootstrap:
			s = State{}
			if s.CA, err = newCA(p, now); err != nil {
				return s, err
			}
		case StageCA:
			if s.Next, err = newCA(p, now); err != nil {
				return s, err
			}
			s.NextSince = now
		case PromoteCA:
			s.Previous, s.PreviousSince = s.CA.Cert, now
			s.CA, s.Next, s.NextSince = s.Next, nil, time.Time{}
		case ForgetCA:
			s.Previous, s.PreviousSince = nil, time.Time{}
		case Renew:
			kp, err := s.CA.Issue(certs.Request{CommonName: p.Hosts[0], Hosts: p.Hosts, Validity: p.CertValidity, Now: now})
			if err != nil {
				return s, fmt.Errorf("renew the serving certificate: %w", err)
			}
			if s.ServingCert, err = certs.ParseCert(kp.CertPEM); err != nil {
				return s, err
			}
			s.Serving = &kp
		}
	}
	return s, nil
}

func newCA(p Policy, now time.Time) (*certs.CA, error) {
	ca, err := certs.NewCAAt("sluice-webhook-ca-"+now.UTC().Format("20060102T150405Z"), now, p.CAValidity)
	if err != nil {
		return nil, fmt.Errorf("new CA: %w", err)
	}
	return ca, nil
}
