package alert

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr/funcr"
	"github.com/prometheus/client_golang/prometheus/testutil"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"sluice.dev/sluice/pkg/canary"
)

// secretPath is the path of the receivers' URLs: the secret part of a chat
// webhook's URL, which no log line may show.
const secretPath = "/services/T0001/B0001/s3cr3t"

// request is one request a receiver got.
type request struct {
	path        string
	contentType string
	body        map[string]any
}

// receiver is a chat webhook on loopback: it records each request and
// answers with answer.
type receiver struct {
	*httptest.Server
	mu       sync.Mutex
	requests []request
}

func newReceiver(t *testing.T, answer http.HandlerFunc) *receiver {
	t.Helper()
	r := &receiver{}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		raw, err := io.ReadAll(req.Body)
		if err != nil {
			t.Errorf("read the body: %v", err)
		}
		var body map[string]any
		if err := json.Unmarshal(raw, &body); err != nil {
			t.Errorf("the body is not a JSON object: %v\n%s", err, raw)
		}
		r.mu.Lock()
		r.requests = append(r.requests, request{req.URL.Path, req.Header.Get("Content-Type"), body})
		r.mu.Unlock()
		answer(w, req)
	}))
	t.Cleanup(r.Close)
	return r
}

// ok answers 204, as Discord does.
func ok(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) }

func (r *receiver) got() []request {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]request(nil), r.requests...)
}

// alertTo is an alert named name that sends to path of r at least severity
// least, with the given min interval (the default when nil).
func alertTo(r *receiver, name string, p canary.AlertProvider, least canary.Severity, interval *time.Duration) ResolvedAlert {
	spec := canary.AlertSpec{Name: name, Provider: p, Severity: least, AddressSecret: canary.SecretKeyRef{Name: "hooks", Key: name}}
	if interval != nil {
		spec.MinInterval = &metav1.Duration{Duration: *interval}
	}
	return ResolvedAlert{Spec: spec, URL: r.URL + secretPath + "/" + name}
}

// logs collects a Notifier's log lines.
type logs struct {
	mu    sync.Mutex
	lines []string
}

func (l *logs) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines, "\n")
}

// newNotifier returns a Notifier that logs to t and to the returned logs,
// closed when the test ends.
func newNotifier(t *testing.T, opts ...Option) (*Notifier, *logs) {
	t.Helper()
	l := &logs{}
	log := funcr.New(func(prefix, args string) {
		l.mu.Lock()
		l.lines = append(l.lines, args)
		l.mu.Unlock()
		t.Log(prefix, args)
	}, funcr.Options{Verbosity: 1})
	n := New(nil, nil, append([]Option{WithLogger(log)}, opts...)...)
	// Not t.Context(): it ends before the cleanups run.
	t.Cleanup(func() { n.Close(context.Background()) })
	return n, l
}

// count is the value of sluice_alerts_total{provider, result}.
func count(n *Notifier, p canary.AlertProvider, result string) int {
	return int(testutil.ToFloat64(n.total.WithLabelValues(string(p), result)))
}

// at reads the value at path in v, decoded JSON: a string steps into an
// object, an int into an array. It fails the test when the path is missing
// or the value is not a T.
func at[T any](t *testing.T, v any, path ...any) T {
	t.Helper()
	for i, step := range path {
		switch s := step.(type) {
		case string:
			o, isObject := v.(map[string]any)
			if !isObject {
				t.Fatalf("%v: %T is not an object", path[:i+1], v)
			}
			var found bool
			if v, found = o[s]; !found {
				t.Fatalf("%v: no key %q in %v", path[:i+1], s, o)
			}
		case int:
			a, isArray := v.([]any)
			if !isArray || s >= len(a) {
				t.Fatalf("%v: %v has no element %d", path[:i+1], v, s)
			}
			v = a[s]
		}
	}
	got, isT := v.(T)
	if !isT {
		t.Fatalf("%v: %#v is a %T, want a %T", path, v, v, got)
	}
	return got
}
