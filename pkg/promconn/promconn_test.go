package promconn_test

import (
	"bufio"
	"context"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	"sluice.dev/sluice/certs"
	"sluice.dev/sluice/pkg/canary"
	"sluice.dev/sluice/pkg/promconn"
)

func secret(ns, name string, data map[string]string) *corev1.Secret {
	s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Data: map[string][]byte{}}
	for k, v := range data {
		s.Data[k] = []byte(v)
	}
	return s
}

func TestResolve(t *testing.T) {
	const addr = "https://mimir.example.com/prometheus"
	objects := []client.Object{
		secret("shop", "prom-token", map[string]string{"token": "s3cret\n"}),
		secret("shop", "prom-auth", map[string]string{"username": "shop", "password": " pw "}),
		secret("shop", "half-auth", map[string]string{"username": "shop"}),
		secret("shop", "empty-auth", map[string]string{"username": "shop", "password": ""}),
		secret("blog", "prom-token", map[string]string{"token": "blog-token"}),
	}
	tests := []struct {
		name    string
		ns      string
		spec    canary.PrometheusSpec
		want    promconn.Connection
		wantErr string
	}{
		{
			name: "no credentials",
			ns:   "shop",
			spec: canary.PrometheusSpec{Address: addr, CABundle: "PEM", Timeout: &metav1.Duration{Duration: time.Second}},
			want: promconn.Connection{Address: addr, CABundle: []byte("PEM"), Timeout: time.Second},
		},
		{
			name: "bearer token, trimmed",
			ns:   "shop",
			spec: canary.PrometheusSpec{Address: addr, BearerTokenSecret: &canary.SecretKeyRef{Name: "prom-token", Key: "token"}},
			want: promconn.Connection{Address: addr, BearerToken: "s3cret", CABundle: []byte{}},
		},
		{
			name: "bearer token of the policy's namespace",
			ns:   "blog",
			spec: canary.PrometheusSpec{Address: addr, BearerTokenSecret: &canary.SecretKeyRef{Name: "prom-token", Key: "token"}},
			want: promconn.Connection{Address: addr, BearerToken: "blog-token", CABundle: []byte{}},
		},
		{
			name: "basic auth",
			ns:   "shop",
			spec: canary.PrometheusSpec{Address: addr, BasicAuthSecret: &canary.SecretRef{Name: "prom-auth"}},
			want: promconn.Connection{Address: addr, Username: "shop", Password: "pw", CABundle: []byte{}},
		},
		{
			name:    "bearer token key missing",
			ns:      "shop",
			spec:    canary.PrometheusSpec{Address: addr, BearerTokenSecret: &canary.SecretKeyRef{Name: "prom-token", Key: "bearer"}},
			wantErr: `secret shop/prom-token has no key "bearer" (it has token); the bearer token is read from its key "bearer"`,
		},
		{
			name:    "bearer token key not named",
			ns:      "shop",
			spec:    canary.PrometheusSpec{Address: addr, BearerTokenSecret: &canary.SecretKeyRef{Name: "prom-token"}},
			wantErr: "bearer token secret shop/prom-token: no key; name the key that holds the token",
		},
		{
			name:    "secret in another namespace",
			ns:      "blog",
			spec:    canary.PrometheusSpec{Address: addr, BasicAuthSecret: &canary.SecretRef{Name: "prom-auth"}},
			wantErr: "secret blog/prom-auth not found; the basic auth secret must be in namespace blog",
		},
		{
			name:    "basic auth without password",
			ns:      "shop",
			spec:    canary.PrometheusSpec{Address: addr, BasicAuthSecret: &canary.SecretRef{Name: "half-auth"}},
			wantErr: `secret shop/half-auth has no key "password" (it has username); basic auth needs the keys username and password`,
		},
		{
			name:    "basic auth with an empty password",
			ns:      "shop",
			spec:    canary.PrometheusSpec{Address: addr, BasicAuthSecret: &canary.SecretRef{Name: "empty-auth"}},
			wantErr: `secret shop/empty-auth: key "password" is empty; basic auth needs the keys username and password`,
		},
		{
			name:    "basic auth secret without a name",
			ns:      "shop",
			spec:    canary.PrometheusSpec{Address: addr, BasicAuthSecret: &canary.SecretRef{}},
			wantErr: "the basic auth secret has no name",
		},
		{
			name: "both",
			ns:   "shop",
			spec: canary.PrometheusSpec{Address: addr, BasicAuthSecret: &canary.SecretRef{Name: "prom-auth"},
				BearerTokenSecret: &canary.SecretKeyRef{Name: "prom-token", Key: "token"}},
			wantErr: "prometheus: both a bearer token secret and a basic auth secret are set; give one",
		},
		{
			name: "forbidden",
			ns:   "locked",
			spec: canary.PrometheusSpec{Address: addr, BasicAuthSecret: &canary.SecretRef{Name: "prom-auth"}},
			wantErr: "sluice may not read secret locked/prom-auth: grant it with a RoleBinding in locked to the ClusterRole sluice-policy-secrets " +
				"(or list the namespace in the chart's policySecretNamespaces)",
		},
	}
	scheme := runtime.NewScheme()
	if err := corev1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	r := fake.NewClientBuilder().WithScheme(scheme).WithObjects(objects...).WithInterceptorFuncs(interceptor.Funcs{
		Get: func(ctx context.Context, c client.WithWatch, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
			if key.Namespace == "locked" {
				return apierrors.NewForbidden(corev1.Resource("secrets"), key.Name, errors.New("no"))
			}
			return c.Get(ctx, key, obj, opts...)
		},
	}).Build()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := promconn.Resolve(t.Context(), r, tt.ns, tt.spec)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("error %v; want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.Key() != tt.want.Key() {
				t.Errorf("got %+v; want %+v", got, tt.want)
			}
		})
	}
}

func TestKey(t *testing.T) {
	base := promconn.Connection{Address: "https://a", Username: "u", Password: "p", CABundle: []byte("ca"), Timeout: time.Second}
	same := base
	same.CABundle = []byte("ca") // equal, not the same slice
	if same.Key() != base.Key() {
		t.Fatal("equal connections give different keys")
	}
	if d := (promconn.Connection{Address: "https://a"}); d.Key() != (promconn.Connection{Address: "https://a", Timeout: promconn.DefaultTimeout}).Key() {
		t.Error("the default timeout and no timeout give different keys")
	}
	changes := map[string]func(c *promconn.Connection){
		"address":  func(c *promconn.Connection) { c.Address = "https://b" },
		"token":    func(c *promconn.Connection) { c.BearerToken = "t" },
		"username": func(c *promconn.Connection) { c.Username = "v" },
		"password": func(c *promconn.Connection) { c.Password = "q" },
		"CA":       func(c *promconn.Connection) { c.CABundle = []byte("cb") },
		"timeout":  func(c *promconn.Connection) { c.Timeout = 2 * time.Second },
		// Fields run into each other without their lengths.
		"boundary": func(c *promconn.Connection) { c.Username, c.Password = "up", "" },
	}
	for name, change := range changes {
		c := base
		change(&c)
		if c.Key() == base.Key() {
			t.Errorf("changing the %s keeps the key", name)
		}
	}
}

// server is a TLS Prometheus stand-in that records the Authorization header
// and answers every query with an empty vector or, if body is set, with
// status and body.
func server(t *testing.T, status int, body string) (srv *httptest.Server, caPEM []byte, auth *string) {
	t.Helper()
	auth = new(string)
	srv = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		*auth = r.Header.Get("Authorization")
		if body != "" {
			http.Error(w, body, status)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"status":"success","data":{"resultType":"vector","result":[]}}`)
	}))
	t.Cleanup(srv.Close)
	return srv, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), auth
}

func query(t *testing.T, c promconn.Connection) error {
	t.Helper()
	api, err := c.API()
	if err != nil {
		t.Fatalf("API: %v", err)
	}
	_, _, _, err = api.Query(t.Context(), "up", time.Now())
	return err
}

func TestAPIAuthorization(t *testing.T) {
	srv, ca, auth := server(t, http.StatusOK, "")
	tests := []struct {
		name string
		conn promconn.Connection
		want string
	}{
		{"none", promconn.Connection{}, ""},
		{"bearer", promconn.Connection{BearerToken: "tok"}, "Bearer tok"},
		// base64("alice:pw")
		{"basic", promconn.Connection{Username: "alice", Password: "pw"}, "Basic YWxpY2U6cHc="},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.conn.Address, tt.conn.CABundle = srv.URL, ca
			if err := query(t, tt.conn); err != nil {
				t.Fatal(err)
			}
			if *auth != tt.want {
				t.Errorf("Authorization %q; want %q", *auth, tt.want)
			}
		})
	}
}

func TestAPICA(t *testing.T) {
	srv, ca, _ := server(t, http.StatusOK, "")
	other, err := certs.NewCA("other")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		bundle  []byte
		wantErr string // a part of the error; empty: none
	}{
		{"right CA", ca, ""},
		{"right CA among others", append(other.CertPEM(), ca...), ""},
		{"wrong CA", other.CertPEM(), srv.URL + ": tls: failed to verify certificate: x509: certificate signed by unknown authority (the CA bundle does not hold the CA that signed the server's certificate)"},
		{"system roots", nil, srv.URL + ": tls: failed to verify certificate: x509: certificate signed by unknown authority (no CA bundle is set, so only the system's CAs are trusted)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := query(t, promconn.Connection{Address: srv.URL, CABundle: tt.bundle})
			if tt.wantErr == "" && err != nil {
				t.Fatal(err)
			}
			if tt.wantErr != "" && (err == nil || err.Error() != tt.wantErr) {
				t.Fatalf("error %v; want %q", err, tt.wantErr)
			}
		})
	}
}

func TestAPIRefusesBadConnections(t *testing.T) {
	ca, err := certs.NewCA("ca")
	if err != nil {
		t.Fatal(err)
	}
	badCert := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte("not DER")})
	tests := []struct {
		name    string
		conn    promconn.Connection
		wantErr string
	}{
		{"no address", promconn.Connection{}, "prometheus: no address; give the http or https base URL of its API"},
		{"not a URL", promconn.Connection{Address: "http://u:pw@[::1"}, "prometheus: the address is not a URL; give the http or https base URL of its API"},
		{"no scheme", promconn.Connection{Address: "prometheus:9090"}, "prometheus prometheus:9090: the address must be an http:// or https:// URL with a host"},
		{"password redacted", promconn.Connection{Address: "ftp://u:pw@host"}, "prometheus ftp://u:xxxxx@host: the address must be an http:// or https:// URL with a host"},
		{"CA over http", promconn.Connection{Address: "http://127.0.0.1:9090", CABundle: ca.CertPEM()},
			"prometheus http://127.0.0.1:9090: a CA bundle is set, but the address is http://, which does not use TLS; use https://"},
		{"bundle without certificates", promconn.Connection{Address: "https://prom", CABundle: []byte("MIIB...")},
			"prometheus https://prom: the CA bundle holds no certificate; it must be PEM, blocks starting with -----BEGIN CERTIFICATE-----"},
		{"bundle with a broken certificate", promconn.Connection{Address: "https://prom", CABundle: append(ca.CertPEM(), badCert...)},
			"prometheus https://prom: certificate 2 of the CA bundle: x509: malformed certificate"},
		{"token and basic auth", promconn.Connection{Address: "https://prom", BearerToken: "t", Username: "u", Password: "p"},
			"prometheus https://prom: both a bearer token and basic auth are set; give one"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := tt.conn.API(); err == nil || err.Error() != tt.wantErr {
				t.Fatalf("error %v; want %q", err, tt.wantErr)
			}
		})
	}
}

func TestAPIExplainsAnswers(t *testing.T) {
	tests := []struct {
		name   string
		status int
		body   string
		conn   promconn.Connection
		want   string // after the address
	}{
		{"refused credentials", http.StatusUnauthorized, "Unauthorized", promconn.Connection{Username: "u", Password: "p"},
			": answered 401 Unauthorized (the credentials were refused)"},
		{"no credentials", http.StatusUnauthorized, "Unauthorized", promconn.Connection{},
			": answered 401 Unauthorized (it wants credentials, and none are set)"},
		{"forbidden", http.StatusForbidden, "tenant shop may not read", promconn.Connection{BearerToken: "t"},
			": answered 403 Forbidden: tenant shop may not read (these credentials may not query it)"},
		{"no API", http.StatusNotFound, "404 page not found", promconn.Connection{},
			": answered 404 Not Found: 404 page not found (no Prometheus API at this address: it is the base URL that /api/v1/query follows, such as https://mimir.example.com/prometheus)"},
		{"proxy error page", http.StatusBadGateway, "<html><body>\nbad gateway", promconn.Connection{},
			": answered 502 Bad Gateway: <html><body>"},
		{"login page", http.StatusOK, "<html>\nSign in", promconn.Connection{},
			": answered 200 OK: <html> (that is not the Prometheus API: is the address its base URL?)"},
		{"long page", http.StatusServiceUnavailable, strings.Repeat("x", 300), promconn.Connection{},
			": answered 503 Service Unavailable: " + strings.Repeat("x", 200) + "…"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, ca, _ := server(t, tt.status, tt.body)
			tt.conn.Address, tt.conn.CABundle = srv.URL, ca
			if err := query(t, tt.conn); err == nil || err.Error() != srv.URL+tt.want {
				t.Fatalf("error %v; want %q", err, srv.URL+tt.want)
			}
		})
	}
}

func TestAPIKeepsPrometheusErrors(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprint(w, `{"status":"error","errorType":"bad_data","error":"parse error"}`)
	}))
	t.Cleanup(srv.Close)
	err := query(t, promconn.Connection{Address: srv.URL})
	if err == nil || err.Error() != "bad_data: parse error" {
		t.Fatalf("error %v; want Prometheus' own", err)
	}
	var promErr *promv1.Error
	if !errors.As(err, &promErr) {
		t.Errorf("error %T; want a *promv1.Error", err)
	}
}

func TestAPITimeout(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { <-release }))
	t.Cleanup(func() { close(release); srv.Close() })
	err := query(t, promconn.Connection{Address: srv.URL, Timeout: 50 * time.Millisecond})
	want := srv.URL + ": no answer within the timeout of 50ms: "
	if err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Fatalf("error %v; want it to start with %q", err, want)
	}
}

func TestAPIHintsAtTLSForAClosedConnection(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	// As a TLS server may answer plain HTTP: by closing the connection,
	// here once the request is read, since closing with unread bytes
	// resets the connection instead.
	go func() {
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			_, _ = http.ReadRequest(bufio.NewReader(conn))
			conn.Close()
		}
	}()
	addr := "http://" + l.Addr().String()
	err = query(t, promconn.Connection{Address: addr})
	want := addr + ": EOF (if the server wants TLS, the address must start with https://)"
	if err == nil || err.Error() != want {
		t.Fatalf("error %v; want %q", err, want)
	}
}
