package hooks

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/utils/ptr"

	"sluice.dev/sluice/pkg/canary"
)

var owner = types.NamespacedName{Namespace: "shop", Name: "web"}

// newRunner returns a runner with quick retries, whose wake-ups go to the
// channel returned.
func newRunner(t *testing.T, perReceiver int) (*Runner, chan types.NamespacedName, *Metrics) {
	t.Helper()
	woken := make(chan types.NamespacedName, 100)
	m := NewMetrics(prometheus.NewRegistry())
	r := NewRunner(&http.Client{}, func(n types.NamespacedName) { woken <- n }, m, logr.Discard(),
		RunnerOptions{PerReceiver: perReceiver, Backoff: wait.Backoff{Duration: time.Millisecond, Factor: 2}})
	return r, woken, m
}

func call(url, name string, typ canary.HookType) Call {
	return Call{Spec: canary.WebhookSpec{Name: name, Type: typ, URL: url, Timeout: &metav1.Duration{Duration: 300 * time.Millisecond}},
		Payload: Payload{APIVersion: APIVersion, ID: CallID("shop", "web", "r2", name, "1"), Type: typ, Webhook: name,
			Name: "web", Namespace: "shop", Revision: "r2", CanaryWeight: 20}}
}

// await asks for id until its result is in, within a deadline.
func await(t *testing.T, r *Runner, id string) canary.HookStatus {
	t.Helper()
	var res canary.HookStatus
	err := wait.PollUntilContextTimeout(t.Context(), 5*time.Millisecond, 10*time.Second, true, func(context.Context) (bool, error) {
		var done bool
		res, done = r.Ask(owner, id, func() (Call, error) { return Call{}, errors.New("asked to start again") })
		return done, nil
	})
	if err != nil {
		t.Fatalf("call %s did not end: %v", id, err)
	}
	return res
}

func TestCallSignedAndRetried(t *testing.T) {
	key := []byte("k3y")
	var attempts atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		if err := Verify(key, body, req.Header.Get(HeaderSignature), time.Now(), time.Minute); err != nil {
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		var p Payload
		if err := json.Unmarshal(body, &p); err != nil || p.ID != req.Header.Get(HeaderDelivery) || req.Header.Get(HeaderType) != "rollout" {
			http.Error(w, "bad payload or headers", http.StatusBadRequest)
			return
		}
		if attempts.Add(1) < 3 {
			http.Error(w, "warming up", http.StatusServiceUnavailable)
			return
		}
		_, _ = io.WriteString(w, "load test passed")
	}))
	defer srv.Close()
	r, woken, m := newRunner(t, 8)
	c := call(srv.URL, "load", canary.HookRollout)
	c.Key = key
	if _, done := r.Ask(owner, c.Payload.ID, func() (Call, error) { return c, nil }); done {
		t.Fatal("a call ended before it started")
	}
	res := await(t, r, c.Payload.ID)
	if res.Result != canary.HookSucceeded || res.Message != "200 OK: load test passed (after 3 attempts)" {
		t.Errorf("result %s %q; want Succeeded after 3 attempts", res.Result, res.Message)
	}
	if got := <-woken; got != owner {
		t.Errorf("woke %s; want %s", got, owner)
	}
	if n := testutil.ToFloat64(m.calls.WithLabelValues("rollout", "Succeeded")); n != 1 {
		t.Errorf("sluice_hook_calls_total{rollout,Succeeded} = %v; want 1", n)
	}
}

func TestCallResults(t *testing.T) {
	answer := func(code int) http.HandlerFunc {
		return func(w http.ResponseWriter, _ *http.Request) { http.Error(w, "no", code) }
	}
	tests := []struct {
		name    string
		handler http.HandlerFunc
		retries int32
		result  canary.HookResult
		message string
	}{
		{"a 4xx is an answer, never retried", answer(http.StatusForbidden), 2, canary.HookFailed, "403 Forbidden: no"},
		{"a 5xx is retried", answer(http.StatusInternalServerError), 1, canary.HookFailed, "500 Internal Server Error: no (after 2 attempts)"},
		{"no retries", answer(http.StatusBadGateway), 0, canary.HookFailed, "502 Bad Gateway: no"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(tt.handler)
			defer srv.Close()
			r, _, _ := newRunner(t, 8)
			c := call(srv.URL, "gate", canary.HookConfirmPromotion)
			c.Spec.Retries = ptr.To(tt.retries)
			r.Ask(owner, c.Payload.ID, func() (Call, error) { return c, nil })
			if res := await(t, r, c.Payload.ID); res.Result != tt.result || res.Message != tt.message {
				t.Errorf("result %s %q; want %s %q", res.Result, res.Message, tt.result, tt.message)
			}
		})
	}
}

func TestPrepareErrorEndsTheCall(t *testing.T) {
	r, _, _ := newRunner(t, 8)
	c := call("http://127.0.0.1:9", "smoke", canary.HookPreRollout)
	res, done := r.Ask(owner, c.Payload.ID, func() (Call, error) { return c, errors.New(`secret shop/hooks has no key "key"`) })
	if !done || res.Result != canary.HookUnreachable || !strings.Contains(res.Message, "has no key") {
		t.Errorf("done %t, result %s %q; want unreachable at once, with the reason", done, res.Result, res.Message)
	}
}

// TestHangingReceiverHoldsUpNoOther: calls to a receiver that never
// answers wait for its slots and time out; a call to another receiver ends
// meanwhile.
func TestHangingReceiverHoldsUpNoOther(t *testing.T) {
	hanging := hangingServer(t)
	good := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {}))
	defer good.Close()

	r, _, _ := newRunner(t, 1)
	var ids []string
	for i := range 3 {
		c := call(hanging.URL, "hang", canary.HookConfirmTrafficIncrease)
		c.Spec.Retries = ptr.To[int32](0)
		c.Payload.ID = CallID("shop", "web", "r2", "hang", string(rune('a'+i)))
		ids = append(ids, c.Payload.ID)
		r.Ask(owner, c.Payload.ID, func() (Call, error) { return c, nil })
	}
	c := call(good.URL, "ok", canary.HookRollout)
	r.Ask(owner, c.Payload.ID, func() (Call, error) { return c, nil })
	if res := await(t, r, c.Payload.ID); res.Result != canary.HookSucceeded {
		t.Fatalf("the good receiver's call: %s %q", res.Result, res.Message)
	}
	if _, done := r.Ask(owner, ids[2], nil); done {
		t.Error("the third call to the hanging receiver ended before the first two could time out")
	}
	for _, id := range ids {
		if res := await(t, r, id); res.Result != canary.HookUnreachable || res.Message != "no answer within 300ms" {
			t.Errorf("hanging call: %s %q; want unreachable, no answer within 300ms", res.Result, res.Message)
		}
	}
}

// TestCallsWaitingAreBounded: past the calls a receiver may have in flight
// and waiting, a call ends at once, saying why.
func TestCallsWaitingAreBounded(t *testing.T) {
	hanging := hangingServer(t)
	r, _, _ := newRunner(t, 1)
	r.opts.Waiting = 1
	ask := func(round string) (canary.HookStatus, bool) {
		c := call(hanging.URL, "hang", canary.HookConfirmPromotion)
		c.Spec.Timeout = &metav1.Duration{Duration: time.Minute}
		c.Payload.ID = CallID("shop", "web", "r2", "hang", round)
		return r.Ask(owner, c.Payload.ID, func() (Call, error) { return c, nil })
	}
	ask("a")
	ask("b")
	err := wait.PollUntilContextTimeout(t.Context(), 5*time.Millisecond, 10*time.Second, true, func(context.Context) (bool, error) {
		r.mu.Lock()
		defer r.mu.Unlock()
		rc := r.receivers[hanging.URL]
		return rc != nil && rc.queued == 2, nil
	})
	if err != nil {
		t.Fatalf("the first two calls were not queued: %v", err)
	}
	ask("c")
	last := await(t, r, CallID("shop", "web", "r2", "hang", "c"))
	if last.Result != canary.HookUnreachable || !strings.Contains(last.Message, "in flight or waiting already") {
		t.Errorf("third call: %s %q; want unreachable at once, too many queued", last.Result, last.Message)
	}
}

func TestAnswerText(t *testing.T) {
	tests := []struct{ body, want string }{
		{`{"message": "100 requests, all 200", "load": {"requests": 100}}`, "100 requests, all 200"},
		{"plain\ntext  answer", "plain text answer"},
		{`{"other": 1}`, `{"other": 1}`},
		{strings.Repeat("x", 600), strings.Repeat("x", 512) + "…"},
	}
	for _, tt := range tests {
		if got := answerText(strings.NewReader(tt.body)); got != tt.want {
			t.Errorf("answerText(%.40q) = %.60q; want %.60q", tt.body, got, tt.want)
		}
	}
}

// hangingServer never answers, until the test ends.
func hangingServer(t *testing.T) *httptest.Server {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		select {
		case <-release:
		case <-req.Context().Done():
		}
	}))
	t.Cleanup(func() {
		close(release)
		srv.Close()
	})
	return srv
}
