package analysis_test

import (
	"context"
	"regexp"
	"strings"
	"testing"
	"time"

	"sluice.dev/sluice/pkg/analysis"
	"sluice.dev/sluice/pkg/canary"
	"sluice.dev/sluice/pkg/promconn"
)

// TestConnectionToSecurePrometheus queries a real Prometheus that serves only
// TLS and basic auth (its --web.config.file) through promconn, and checks the
// errors users read in events when a connection is wrong.
func TestConnectionToSecurePrometheus(t *testing.T) {
	const user, password = "team-shop", "correct horse"
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	prom, err := env.StartSecurePrometheus(ctx, user, password)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := prom.Stop(); err != nil {
			t.Errorf("stop secure prometheus: %v", err)
		}
	})
	plain := "http://" + strings.TrimPrefix(prom.URL, "https://")
	right := promconn.Connection{Address: prom.URL, Username: user, Password: password, CABundle: prom.CAPEM, Timeout: 10 * time.Second}

	t.Run("right password and CA", func(t *testing.T) {
		api, err := right.API()
		if err != nil {
			t.Fatal(err)
		}
		v, _, _, err := api.Query(t.Context(), "up", time.Now())
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("up: %s %v", v.Type(), v)
	})

	failures := []struct {
		name string
		conn func(c *promconn.Connection)
		want *regexp.Regexp // the whole event text
	}{
		{"wrong password", func(c *promconn.Connection) { c.Password = "wrong" },
			exactly("Prometheus query failed: " + prom.URL + ": answered 401 Unauthorized (the credentials were refused)")},
		{"no credentials", func(c *promconn.Connection) { c.Username, c.Password = "", "" },
			exactly("Prometheus query failed: " + prom.URL + ": answered 401 Unauthorized (it wants credentials, and none are set)")},
		{"system roots", func(c *promconn.Connection) { c.CABundle = nil },
			exactly("Prometheus query failed: " + prom.URL + ": tls: failed to verify certificate: x509: certificate signed by unknown authority (no CA bundle is set, so only the system's CAs are trusted)")},
		// Prometheus answers 400 and closes the connection before reading
		// the request, so the client sees either the answer or a reset.
		{"http address without CA", func(c *promconn.Connection) { c.Address, c.CABundle = plain, nil },
			regexp.MustCompile("^" + regexp.QuoteMeta("Prometheus query failed: "+plain+": ") +
				"(" + regexp.QuoteMeta("answered 400 Bad Request: Client sent an HTTP request to an HTTPS server.") +
				"|read tcp [0-9.:]+->[0-9.:]+: read: connection reset by peer " +
				regexp.QuoteMeta("(if the server wants TLS, the address must start with https://)") + ")$")},
	}
	for _, tt := range failures {
		t.Run(tt.name, func(t *testing.T) {
			c := right
			tt.conn(&c)
			api, err := c.API()
			if err != nil {
				t.Fatal(err)
			}
			// The analysis, as the shifter runs it, words the events; the
			// canary is blind, not bad.
			tg := analysis.Target{Namespace: "shop", Canary: "web-canary", Primary: "web", Window: time.Minute}
			m := analysis.New(api, nil).Run(t.Context(), time.Now(), []analysis.Target{tg})[tg]
			if m.Err == nil || !tt.want.MatchString(m.Err.Error()) {
				t.Fatalf("%v; want it to match %s", m.Err, tt.want)
			}
			for _, check := range analysis.Builtin(canary.BuiltinDefaults().Settings()) {
				if st := check.Judge(m, canary.Evidence{}, false); st.Verdict != canary.VerdictBlind {
					t.Errorf("%s; want Blind", st)
				}
			}
			t.Logf("event text: %v", m.Err)
		})
	}

	t.Run("right CA and http address", func(t *testing.T) {
		c := right
		c.Address = plain
		_, err := c.API()
		want := "prometheus " + plain + ": a CA bundle is set, but the address is http://, which does not use TLS; use https://"
		if err == nil || err.Error() != want {
			t.Fatalf("error %v; want %q", err, want)
		}
		t.Logf("connection error: %v", err)
	})
}

func exactly(s string) *regexp.Regexp { return regexp.MustCompile("^" + regexp.QuoteMeta(s) + "$") }
