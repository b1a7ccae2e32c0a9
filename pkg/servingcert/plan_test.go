package servingcert

import (
	"bytes"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
)

const day = 24 * time.Hour

var (
	policy = Policy{Hosts: []string{"sluice-webhook.sluice-system.svc", "127.0.0.1"},
		CAValidity: 90 * day, CertValidity: 30 * day, Overlap: time.Hour}
	t0 = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
)

// at applies steps to s at t, failing the test on an error.
func at(t *testing.T, s State, t1 time.Time, steps ...Step) State {
	t.Helper()
	s, err := Apply(s, steps, policy, t1)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestDecide(t *testing.T) {
	fresh := at(t, State{}, t0, Bootstrap, Renew)
	// A third of the CA's life is left 60 days in; the serving certificate
	// was renewed at day 59, so only the CA is due.
	caDue := at(t, fresh, t0.Add(59*day), Renew)
	staged := at(t, caDue, t0.Add(60*day), StageCA)
	promoted := at(t, staged, t0.Add(60*day+time.Hour), PromoteCA, Renew)
	otherHosts := policy
	otherHosts.Hosts = []string{"sluice-webhook.other.svc"}

	for _, tc := range []struct {
		name    string
		state   State
		trusted bool
		policy  Policy
		now     time.Time
		want    []Step
		recheck time.Duration
	}{
		{name: "nothing yet", state: State{}, now: t0, want: []Step{Bootstrap, Renew}},
		{name: "expired CA starts over", state: fresh, trusted: true, now: t0.Add(91 * day), want: []Step{Bootstrap, Renew}},
		{name: "fresh, waits for the serving certificate's renewal", state: fresh, trusted: true, now: t0,
			recheck: 20 * day},
		{name: "fresh, bundle not yet written: nothing to rotate", state: fresh, now: t0, recheck: 20 * day},
		{name: "serving certificate at two thirds", state: fresh, trusted: true, now: t0.Add(20 * day), want: []Step{Renew}},
		{name: "hosts changed", state: fresh, trusted: true, policy: otherHosts, now: t0, want: []Step{Renew}},
		{name: "CA at two thirds is staged, not used", state: caDue, trusted: true, now: t0.Add(60 * day), want: []Step{StageCA}},
		{name: "staged CA waits for the overlap", state: staged, trusted: true, now: t0.Add(60*day + time.Minute),
			recheck: 59 * time.Minute},
		{name: "staged CA waits until the API server holds it", state: staged, now: t0.Add(61 * day),
			recheck: 18 * day},
		{name: "staged CA signs after the overlap", state: staged, trusted: true, now: t0.Add(60*day + time.Hour),
			want: []Step{PromoteCA, Renew}},
		{name: "retired CA stays trusted for the overlap", state: promoted, trusted: true, now: t0.Add(60*day + time.Hour),
			recheck: time.Hour},
		{name: "retired CA is forgotten after the overlap", state: promoted, trusted: true, now: t0.Add(60*day + 2*time.Hour),
			want: []Step{ForgetCA}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := policy
			if tc.policy.Hosts != nil {
				p = tc.policy
			}
			got, recheck := Decide(tc.state, tc.trusted, p, tc.now)
			if !slices.Equal(got, tc.want) {
				t.Errorf("steps = %v, want %v", got, tc.want)
			}
			if recheck != tc.recheck {
				t.Errorf("recheck in %v, want %v", recheck, tc.recheck)
			}
		})
	}
}

func TestRotationKeepsTrust(t *testing.T) {
	// Every state a rotation passes through trusts the CA of the certificate
	// served before it and the one served after it: the API server, holding
	// the previous bundle, accepts the new certificate, and holding the new
	// bundle, accepts the replicas that still serve the old one.
	s := at(t, State{}, t0, Bootstrap, Renew)
	now := t0
	for range 400 {
		steps, recheck := Decide(s, true, policy, now)
		if len(steps) == 0 {
			now = now.Add(recheck)
			continue
		}
		next := at(t, s, now, steps...)
		for _, bundle := range [][]byte{Bundle(s), Bundle(next)} {
			for _, served := range []State{s, next} {
				if !trusts(bundle, served) {
					t.Fatalf("at %s after %v: a bundle does not trust a served certificate", now.Sub(t0), steps)
				}
			}
		}
		s = next
	}
	if now.Sub(t0) < 3*policy.CAValidity {
		t.Fatalf("400 rounds covered only %s; want several CA lifetimes", now.Sub(t0))
	}
}

// trusts says whether one of bundle's CAs signed served's certificate.
func trusts(bundle []byte, served State) bool {
	for _, ca := range (State{CA: served.CA, Next: served.Next, Previous: served.Previous}).Trust() {
		if bytes.Contains(bundle, pemCert(ca)) && served.ServingCert.CheckSignatureFrom(ca) == nil {
			return true
		}
	}
	return false
}

func TestSecretRoundTrip(t *testing.T) {
	s := at(t, State{}, t0, Bootstrap, Renew)
	s = at(t, s, t0.Add(60*day), StageCA)
	s = at(t, s, t0.Add(60*day+time.Hour), PromoteCA, Renew)
	s = at(t, s, t0.Add(60*day+2*time.Hour), StageCA)
	secret := &corev1.Secret{Data: map[string][]byte{"other": []byte("kept")}}
	if err := Encode(s, secret); err != nil {
		t.Fatal(err)
	}
	got, problems := Decode(secret)
	if len(problems) > 0 {
		t.Fatal(problems)
	}
	if !bytes.Equal(Bundle(got), Bundle(s)) || !bytes.Equal(got.Serving.CertPEM, s.Serving.CertPEM) ||
		!got.NextSince.Equal(s.NextSince) || !got.PreviousSince.Equal(s.PreviousSince) {
		t.Errorf("decoded state differs from the encoded one")
	}
	if n := bytes.Count(secret.Data[keyBundle], []byte("BEGIN CERTIFICATE")); n != 3 {
		t.Errorf("ca-bundle.crt holds %d CAs, want 3 (current, staged, retired)", n)
	}
	if string(secret.Data["other"]) != "kept" {
		t.Error("a key sluice does not own was dropped")
	}
}

// TestDecodeReportsWhatItCannotRead: a part of the Secret that cannot serve
// (unreadable, or a key that is not its certificate's) is reported by the
// keys that hold it and left out, so that Decide makes it anew.
func TestDecodeReportsWhatItCannotRead(t *testing.T) {
	other := at(t, State{}, t0, Bootstrap, Renew)
	otherKey := func(key string) []byte {
		secret := &corev1.Secret{}
		if err := Encode(other, secret); err != nil {
			t.Fatal(err)
		}
		return secret.Data[key]
	}
	for _, tc := range []struct {
		name       string
		key        string
		value      []byte
		wantCA     bool
		wantSteps  []Step
		wantInName string
	}{
		{"unreadable CA key", keyCAKey, []byte("garbage"), false, []Step{Bootstrap, Renew}, keyCAKey},
		{"CA key of another CA", keyCAKey, otherKey(keyCAKey), false, []Step{Bootstrap, Renew}, keyCAKey},
		{"serving key of another certificate", keyKey, otherKey(keyKey), true, []Step{Renew}, keyKey},
		{"unreadable serving key", keyKey, []byte("garbage"), true, []Step{Renew}, keyKey},
	} {
		t.Run(tc.name, func(t *testing.T) {
			secret := &corev1.Secret{}
			if err := Encode(at(t, State{}, t0, Bootstrap, Renew), secret); err != nil {
				t.Fatal(err)
			}
			secret.Data[tc.key] = tc.value
			got, problems := Decode(secret)
			if (got.CA != nil) != tc.wantCA || got.Serving != nil || len(problems) != 1 || !strings.Contains(problems[0].Error(), tc.wantInName) {
				t.Errorf("Decode = CA %t, serving %t, problems %v; want CA %t, no serving pair, one problem naming %s",
					got.CA != nil, got.Serving != nil, problems, tc.wantCA, tc.wantInName)
			}
			if steps, _ := Decide(got, true, policy, t0); !slices.Equal(steps, tc.wantSteps) {
				t.Errorf("steps = %v, want %v", steps, tc.wantSteps)
			}
		})
	}
}

func TestPolicyValidate(t *testing.T) {
	if err := policy.Validate(); err != nil {
		t.Errorf("valid policy refused: %v", err)
	}
	bad := Policy{CAValidity: 30 * day, CertValidity: 30 * day, Overlap: 0}
	err := bad.Validate()
	for _, want := range []string{"--cert-host", "--ca-validity", "--ca-overlap"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate() = %v, want it to name %s", err, want)
		}
	}
}
