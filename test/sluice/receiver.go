package sluice

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"sluice.dev/sluice/pkg/hooks"
)

// Receiver is a lifecycle webhook receiver on loopback for tests: it checks
// each call's signature, records it, and answers with the status the test
// set for its path.
type Receiver struct {
	// URL is the receiver's base URL; a webhook points at URL + "/" + path.
	URL string
	key []byte
	srv *httptest.Server
	// hang is closed when the test ends, to let hanging calls go.
	hang chan struct{}

	mu      sync.Mutex
	calls   []Received
	answers map[string]int
	// flaky counts the calls to each path still to answer 503.
	flaky map[string]int
}

// Received is one call as the receiver took it.
type Received struct {
	Path     string
	Delivery string
	Payload  hooks.Payload
	// Body is the request's body as sent.
	Body []byte
	// SignatureErr is why the signature did not verify; nil if it did.
	SignatureErr error
	At           time.Time
}

// Hang answers a path never: the call waits until the caller gives up.
const Hang = 0

// NewReceiver starts a receiver that verifies signatures with key (none if
// nil), and
// stops it when t ends. Every path answers 200 until told otherwise.
func NewReceiver(t testing.TB, key []byte) *Receiver {
	r := StartReceiver(key)
	t.Cleanup(r.Close)
	return r
}

// StartReceiver starts a receiver, which Close stops.
func StartReceiver(key []byte) *Receiver {
	r := &Receiver{key: key, hang: make(chan struct{}), answers: map[string]int{}, flaky: map[string]int{}}
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	r.URL = r.srv.URL
	return r
}

// Close lets hanging calls go, and stops the receiver.
func (r *Receiver) Close() {
	close(r.hang)
	r.srv.Close()
}

// Answer sets the status with which path answers from now on; Hang never
// answers.
func (r *Receiver) Answer(path string, status int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.answers[path] = status
}

// Flaky makes the next n calls to path answer 503 Service Unavailable,
// which sluice tries again.
func (r *Receiver) Flaky(path string, n int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.flaky[path] = n
}

// Calls are the calls to path so far.
func (r *Receiver) Calls(path string) []Received {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []Received
	for _, c := range r.calls {
		if c.Path == path {
			out = append(out, c)
		}
	}
	return out
}

// All are every call so far, in order.
func (r *Receiver) All() []Received {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Received(nil), r.calls...)
}

func (r *Receiver) serve(w http.ResponseWriter, req *http.Request) {
	body, err := io.ReadAll(io.LimitReader(req.Body, 1<<20))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	c := Received{Path: strings.TrimPrefix(req.URL.Path, "/"), Delivery: req.Header.Get(hooks.HeaderDelivery), Body: body, At: time.Now()}
	if r.key != nil {
		c.SignatureErr = hooks.Verify(r.key, body, req.Header.Get(hooks.HeaderSignature), time.Now(), 5*time.Minute)
	}
	if err := json.Unmarshal(body, &c.Payload); err != nil {
		http.Error(w, "not a payload: "+err.Error(), http.StatusBadRequest)
		return
	}
	r.mu.Lock()
	r.calls = append(r.calls, c)
	status, set := r.answers[c.Path]
	if r.flaky[c.Path] > 0 {
		r.flaky[c.Path]--
		status, set = http.StatusServiceUnavailable, true
	}
	r.mu.Unlock()
	switch {
	case c.SignatureErr != nil:
		http.Error(w, c.SignatureErr.Error(), http.StatusUnauthorized)
	case set && status == Hang:
		select {
		case <-req.Context().Done():
		case <-r.hang:
		}
	case set:
		http.Error(w, http.StatusText(status), status)
	default:
		_, _ = io.WriteString(w, "ok")
	}
}
