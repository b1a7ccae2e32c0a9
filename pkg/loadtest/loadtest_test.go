package loadtest

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr/funcr"
	"github.com/go-logr/logr/testr"

	"sluice.dev/sluice/pkg/canary"
	"sluice.dev/sluice/pkg/hooks"
)

// startServer serves cfg on a loopback port until the test ends.
func startServer(t *testing.T, cfg Config) string {
	t.Helper()
	if cfg.Limits == (Limits{}) {
		cfg.Limits = DefaultLimits()
	}
	if cfg.Log.GetSink() == nil {
		cfg.Log = testr.New(t)
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, l) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return "http://" + l.Addr().String()
}

// target is a server on loopback that counts the requests it is sent.
type target struct {
	*httptest.Server
	hits atomic.Int64
	mu   sync.Mutex
	last *http.Request
}

// newTarget answers the nth request (from 1) with status(n). It is closed
// when the test ends, after the cleanups registered later.
func newTarget(t *testing.T, status func(n int64) int) *target {
	tg := &target{}
	tg.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := tg.hits.Add(1)
		tg.mu.Lock()
		tg.last = r
		tg.mu.Unlock()
		w.WriteHeader(status(n))
	}))
	t.Cleanup(tg.Close)
	return tg
}

// newBlockingTarget answers 200, but holds the first request until the
// test ends or it calls the release function it returns; started is
// closed when that first request has come.
func newBlockingTarget(t *testing.T) (tg *target, started <-chan struct{}, release func()) {
	hold, came := make(chan struct{}), make(chan struct{})
	var releaseOnce, cameOnce sync.Once
	release = func() { releaseOnce.Do(func() { close(hold) }) }
	tg = &target{}
	tg.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if tg.hits.Add(1) == 1 {
			cameOnce.Do(func() { close(came) })
			select {
			case <-hold:
			case <-r.Context().Done():
			}
		}
	}))
	t.Cleanup(tg.Close)
	t.Cleanup(release)
	return tg, came, release
}

func always(code int) func(int64) int { return func(int64) int { return code } }

func payload(id string, md map[string]string) hooks.Payload {
	return hooks.Payload{
		APIVersion: hooks.APIVersion, ID: id, Type: canary.HookRollout, Webhook: "load",
		Name: "podinfo", Namespace: "test", Phase: canary.PhaseProgressing, Revision: "abc123", CanaryWeight: 20,
		Metadata: md, Time: time.Now(),
	}
}

type reply struct {
	status int
	header http.Header
	body   []byte
	answer Answer
}

// post sends body to the server, with the headers given as name, value
// pairs. It reports with t.Error, since tests call it in goroutines too.
func post(t *testing.T, url string, body []byte, headers ...string) reply {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		t.Error(err)
		return reply{}
	}
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Error(err)
		return reply{}
	}
	defer func() { _ = resp.Body.Close() }()
	r := reply{status: resp.StatusCode, header: resp.Header}
	if r.body, err = io.ReadAll(resp.Body); err != nil {
		t.Error(err)
	}
	if err := json.Unmarshal(r.body, &r.answer); err != nil {
		t.Errorf("answer %q is not JSON: %v", r.body, err)
	}
	return r
}

// call posts p with its id as the delivery.
func call(t *testing.T, url string, p hooks.Payload, headers ...string) reply {
	t.Helper()
	body, err := json.Marshal(p)
	if err != nil {
		t.Error(err)
		return reply{}
	}
	return post(t, url, body, append([]string{hooks.HeaderDelivery, p.ID}, headers...)...)
}

// TestLoad: the answer counts what the target saw, and is 200 only when the
// answers met the expectation.
func TestLoad(t *testing.T) {
	tests := []struct {
		name     string
		status   func(n int64) int
		md       map[string]string
		want     int
		unwanted func(requests int) int
	}{
		{
			name: "target answers 200", status: always(200), want: http.StatusOK,
			unwanted: func(int) int { return 0 },
		},
		{
			name: "target answers 500", status: always(500), want: http.StatusInternalServerError,
			unwanted: func(n int) int { return n },
		},
		{
			name: "a class of statuses", status: always(http.StatusNoContent), md: map[string]string{"expectedStatus": "2xx"},
			want: http.StatusOK, unwanted: func(int) int { return 0 },
		},
		{
			name: "a redirect is the target's answer, not followed", status: always(http.StatusFound),
			md: map[string]string{"expectedStatus": "302"}, want: http.StatusOK, unwanted: func(int) int { return 0 },
		},
		{
			// Half at most, however many requests went out.
			name:   "every other answer fails, within the error rate allowed",
			status: func(n int64) int { return 200 + 300*int(1-n%2) }, md: map[string]string{"concurrency": "1", "maxErrorRate": "50"},
			want: http.StatusOK, unwanted: func(n int) int { return n / 2 },
		},
		{
			// More than half, however many requests went out.
			name:   "every other answer fails, over the error rate allowed",
			status: func(n int64) int { return 200 + 300*int(n%2) }, md: map[string]string{"concurrency": "1", "maxErrorRate": "50%"},
			want: http.StatusInternalServerError, unwanted: func(n int) int { return (n + 1) / 2 },
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tg := newTarget(t, tt.status)
			url := startServer(t, Config{})
			md := map[string]string{"url": tg.URL + "/ping", "rate": "50", "duration": "300ms", "concurrency": "2"}
			for k, v := range tt.md {
				md[k] = v
			}
			r := call(t, url, payload("d1", md))
			if r.status != tt.want {
				t.Fatalf("status %d, want %d: %s", r.status, tt.want, r.body)
			}
			l := r.answer.Load
			if l == nil {
				t.Fatalf("no load in the answer %s", r.body)
			}
			hits := int(tg.hits.Load())
			// A bucket of one token at 50/s for 300ms holds 1+15.
			if hits < 1 || hits > 16 || l.Requests != hits {
				t.Errorf("the target saw %d requests, the answer says %d; want as many, from 1 to 16", hits, l.Requests)
			}
			sum := 0
			for _, n := range l.ByStatus {
				sum += n
			}
			if sum != l.Requests || l.ByStatus[transportError] != 0 {
				t.Errorf("by status %v does not add up to %d answered requests", l.ByStatus, l.Requests)
			}
			if want := tt.unwanted(l.Requests); l.Unexpected != want {
				t.Errorf("unexpected %d, want %d: %s", l.Unexpected, want, r.body)
			}
			if !strings.Contains(r.answer.Message, " to GET "+tg.URL) {
				t.Errorf("message %q does not tell what was sent where", r.answer.Message)
			}
		})
	}
}

// TestLoadRequest: method, body, Host and headers come from the metadata.
func TestLoadRequest(t *testing.T) {
	tg := newTarget(t, always(http.StatusCreated))
	url := startServer(t, Config{})
	r := call(t, url, payload("d1", map[string]string{
		"url": tg.URL + "/orders?q=1", "rate": "20", "duration": "100ms", "method": "post", "body": "{}",
		"expectedStatus": "201", "host": "podinfo.test", "header.X-Canary": "always",
	}))
	if r.status != http.StatusOK {
		t.Fatalf("status %d: %s", r.status, r.body)
	}
	tg.mu.Lock()
	defer tg.mu.Unlock()
	got := tg.last
	if got.Method != http.MethodPost || got.Host != "podinfo.test" || got.Header.Get("X-Canary") != "always" ||
		got.URL.String() != "/orders?q=1" || got.ContentLength != 2 || !strings.HasPrefix(got.UserAgent(), "sluice-loadtester/") {
		t.Errorf("target saw %s %s Host %s, headers %v, %d bytes", got.Method, got.URL, got.Host, got.Header, got.ContentLength)
	}
}

// TestLoadUnreachable: requests that get no answer count against the load,
// and the answer says why.
func TestLoadUnreachable(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + l.Addr().String()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	url := startServer(t, Config{})
	r := call(t, url, payload("d1", map[string]string{"url": closed, "rate": "20", "duration": "100ms"}))
	if r.status != http.StatusInternalServerError || r.answer.Load == nil || r.answer.Load.ByStatus[transportError] == 0 ||
		!strings.Contains(r.answer.Message, "last error") {
		t.Errorf("status %d, answer %s; want 500 with errors counted and told", r.status, r.body)
	}
}

// TestBadCall: what cannot be done is refused at once with 400, naming the
// field and what is allowed, and sends nothing.
func TestBadCall(t *testing.T) {
	tg := newTarget(t, always(200))
	var cmds Commands
	for _, c := range []string{"smoke=true", "e2e=true --all"} {
		if err := cmds.Set(c); err != nil {
			t.Fatal(err)
		}
	}
	url := startServer(t, Config{Commands: cmds})
	load := func(md ...string) map[string]string {
		m := map[string]string{"url": tg.URL}
		for i := 0; i+1 < len(md); i += 2 {
			m[md[i]] = md[i+1]
		}
		return m
	}
	tests := []struct {
		name string
		md   map[string]string
		edit func(*hooks.Payload)
		want []string
	}{
		{"no metadata", nil, nil, []string{"must have url", "or cmd", "e2e, smoke"}},
		{"missing url", map[string]string{"rate": "5"}, nil, []string{"url is required", "has rate"}},
		{"rate over the max", load("rate", "5000"), nil, []string{"rate 5000", "over 1000", "--max-rate"}},
		{"rate not a number", load("rate", "fast"), nil, []string{`rate "fast"`, "positive number", "at most 1000"}},
		{"ftp url", map[string]string{"url": "ftp://example.com/x"}, nil, []string{`url "ftp://example.com/x"`, "http or https"}},
		{"url without host", map[string]string{"url": "http:///x"}, nil, []string{"url", "no host"}},
		{"bad duration", load("duration", "soon"), nil, []string{`duration "soon"`, "Go duration such as 30s", "at most 5m0s"}},
		{"duration over the max", load("duration", "1h"), nil, []string{"duration 1h0m0s", "over 5m0s", "--max-duration"}},
		{"concurrency zero", load("concurrency", "0"), nil, []string{`concurrency "0"`, "from 1 to 64"}},
		{"concurrency over the max", load("concurrency", "65"), nil, []string{"concurrency 65", "--max-concurrency"}},
		{"bad method", load("method", "BREW"), nil, []string{`method "BREW"`, "GET, HEAD, POST"}},
		{"bad expected status", load("expectedStatus", "ok"), nil, []string{`expectedStatus "ok"`, "100 to 599", "1xx to 5xx"}},
		{"bad error rate", load("maxErrorRate", "101"), nil, []string{`maxErrorRate "101"`, "0 to 100"}},
		{"host as a header", load("header.Host", "x"), nil, []string{"header.Host", "metadata host"}},
		{"bad header", load("header.X Y", "z"), nil, []string{"header.X Y", "not a valid header"}},
		{"typo", load("durration", "1m"), nil, []string{"durration is unknown", "duration"}},
		{"both url and cmd", load("cmd", "smoke"), nil, []string{"both url and cmd"}},
		{"command not on the list", map[string]string{"cmd": "rm"}, nil, []string{`cmd "rm"`, "allowed: e2e, smoke"}},
		{"command timeout over the max", map[string]string{"cmd": "smoke", "timeout": "6m"}, nil, []string{"timeout 6m0s", "--max-duration"}},
		{"another apiVersion", load(), func(p *hooks.Payload) { p.APIVersion = "sluice.dev/hooks/v2" }, []string{"apiVersion", hooks.APIVersion}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := payload(tt.name, tt.md)
			if tt.edit != nil {
				tt.edit(&p)
			}
			r := call(t, url, p)
			if r.status != http.StatusBadRequest {
				t.Fatalf("status %d, want 400: %s", r.status, r.body)
			}
			for _, w := range tt.want {
				if !strings.Contains(r.answer.Message, w) {
					t.Errorf("message %q does not say %q", r.answer.Message, w)
				}
			}
		})
	}
	if n := tg.hits.Load(); n != 0 {
		t.Errorf("the target got %d requests", n)
	}
	if r := post(t, url, []byte("{not json")); r.status != http.StatusBadRequest || !strings.Contains(r.answer.Message, "not a sluice webhook payload") {
		t.Errorf("a body that is not JSON: %d %s", r.status, r.body)
	}
}

// TestSignature: with a key, only calls signed with it, lately, are done.
func TestSignature(t *testing.T) {
	key := []byte("s3cret")
	var cmds Commands
	if err := cmds.Set("ok=true"); err != nil {
		t.Fatal(err)
	}
	url := startServer(t, Config{SigningKey: key, Commands: cmds})
	tests := []struct {
		name string
		sign func(body []byte) string
		want int
		says string
	}{
		{"signed", func(b []byte) string { return hooks.Sign(key, b, time.Now()) }, http.StatusOK, "passed"},
		{"not signed", func([]byte) string { return "" }, http.StatusUnauthorized, "no Sluice-Signature header"},
		{"another key", func(b []byte) string { return hooks.Sign([]byte("other"), b, time.Now()) }, http.StatusUnauthorized, "does not match"},
		{"another body", func([]byte) string { return hooks.Sign(key, []byte("{}"), time.Now()) }, http.StatusUnauthorized, "does not match"},
		{"replayed late", func(b []byte) string { return hooks.Sign(key, b, time.Now().Add(-6*time.Minute)) }, http.StatusUnauthorized, "more than 5m0s"},
		{"garbled", func([]byte) string { return "sha256=abc" }, http.StatusUnauthorized, "not t=UNIX,v1=HEX"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body, err := json.Marshal(payload(tt.name, map[string]string{"cmd": "ok"}))
			if err != nil {
				t.Fatal(err)
			}
			headers := []string{hooks.HeaderDelivery, tt.name}
			if sig := tt.sign(body); sig != "" {
				headers = append(headers, hooks.HeaderSignature, sig)
			}
			r := post(t, url, body, headers...)
			if r.status != tt.want || !strings.Contains(r.answer.Message, tt.says) {
				t.Errorf("status %d, message %q; want %d saying %q", r.status, r.answer.Message, tt.want, tt.says)
			}
		})
	}
}

// TestCommand: an allowed command runs with the call in its environment;
// its exit status is the answer's.
func TestCommand(t *testing.T) {
	var cmds Commands
	for _, c := range []string{
		"ok=true",
		"fail=false",
		`env=sh -c 'echo "$SLUICE_NAME $SLUICE_NAMESPACE $SLUICE_REVISION $SLUICE_PHASE $SLUICE_CANARY_WEIGHT $SLUICE_HOOK"'`,
		`boom=sh -c "echo starting; echo \"it broke\" >&2; exit 3"`,
		`chatty=sh -c 'seq 1 5000; exit 1'`,
		`hang=sh -c 'sleep 60 & wait'`,
	} {
		if err := cmds.Set(c); err != nil {
			t.Fatal(err)
		}
	}
	url := startServer(t, Config{Commands: cmds})
	tests := []struct {
		cmd, timeout string
		want         int
		exit         int
		says, output string
		// cut is whether the start of the output was cut.
		cut bool
	}{
		{cmd: "ok", want: http.StatusOK, says: "command ok passed in"},
		{cmd: "fail", want: http.StatusInternalServerError, exit: 1, says: "command fail failed (exit status 1)"},
		{cmd: "env", want: http.StatusOK, says: "passed", output: "podinfo test abc123 Progressing 20 rollout\n"},
		{cmd: "boom", want: http.StatusInternalServerError, exit: 3, says: "(exit status 3) after", output: "starting\nit broke\n"},
		{cmd: "chatty", want: http.StatusInternalServerError, exit: 1, says: ": 5000", output: "4999\n5000\n", cut: true},
		{cmd: "hang", timeout: "300ms", want: http.StatusInternalServerError, exit: -1, says: "did not end within its timeout of 300ms"},
	}
	for _, tt := range tests {
		t.Run(tt.cmd, func(t *testing.T) {
			md := map[string]string{"cmd": tt.cmd}
			if tt.timeout != "" {
				md["timeout"] = tt.timeout
			}
			r := call(t, url, payload(tt.cmd, md))
			c := r.answer.Command
			if r.status != tt.want || c == nil || c.ExitCode != tt.exit || !strings.Contains(r.answer.Message, tt.says) {
				t.Fatalf("status %d, answer %s; want %d, exit code %d, saying %q", r.status, r.body, tt.want, tt.exit, tt.says)
			}
			if !strings.HasSuffix(c.Output, tt.output) || strings.HasPrefix(c.Output, "...") != tt.cut {
				t.Errorf("output %q, want it to end in %q, its start cut: %v", c.Output, tt.output, tt.cut)
			}
			// The timeout kills the whole process group: the child that
			// holds the output open too, or Run would wait for waitDelay.
			if took, err := time.ParseDuration(c.Duration); err != nil || took >= waitDelay {
				t.Errorf("took %s, want less than %s", c.Duration, waitDelay)
			}
			if len(c.Output) > maxOutput+len("...") {
				t.Errorf("output of %d bytes kept, more than %d", len(c.Output), maxOutput)
			}
		})
	}
}

// TestMaxRuns: beyond --max-runs, a call is answered 429 with Retry-After.
func TestMaxRuns(t *testing.T) {
	tg, started, release := newBlockingTarget(t)
	limits := DefaultLimits()
	limits.MaxRuns = 1
	url := startServer(t, Config{Limits: limits})
	md := map[string]string{"url": tg.URL, "rate": "10", "duration": "300ms", "concurrency": "1"}
	first := make(chan reply, 1)
	go func() { first <- call(t, url, payload("first", md)) }()
	<-started
	r := call(t, url, payload("second", md))
	if r.status != http.StatusTooManyRequests || r.header.Get("Retry-After") == "" || !strings.Contains(r.answer.Message, "--max-runs") {
		t.Errorf("second run: status %d, Retry-After %q, %s; want 429 with Retry-After", r.status, r.header.Get("Retry-After"), r.body)
	}
	release()
	if r := <-first; r.status != http.StatusOK {
		t.Errorf("first run: status %d: %s", r.status, r.body)
	}
	if r := call(t, url, payload("third", md)); r.status != http.StatusOK {
		t.Errorf("a run after the first ended: status %d: %s", r.status, r.body)
	}
}

// TestRepeatedDelivery: a repeat of a delivery gets the answer of its run,
// whether it is still going or done, and the target sees no second load.
func TestRepeatedDelivery(t *testing.T) {
	tg, started, release := newBlockingTarget(t)
	joined := make(chan struct{})
	var once sync.Once
	log := funcr.New(func(prefix, args string) {
		if strings.Contains(args, "A repeated delivery") && strings.Contains(args, `"running"=true`) {
			once.Do(func() { close(joined) })
		}
		t.Log(prefix, args)
	}, funcr.Options{})
	limits := DefaultLimits()
	limits.MaxRuns = 1
	url := startServer(t, Config{Limits: limits, Log: log})
	p := payload("d1", map[string]string{"url": tg.URL, "rate": "10", "duration": "300ms", "concurrency": "1"})

	answers := make(chan reply, 2)
	go func() { answers <- call(t, url, p) }()
	<-started
	go func() { answers <- call(t, url, p) }()
	<-joined
	release()
	a, b := <-answers, <-answers
	hits := tg.hits.Load()
	if a.status != http.StatusOK || !bytes.Equal(a.body, b.body) || a.answer.Load == nil || a.answer.Load.Requests != int(hits) {
		t.Fatalf("answers %d %s and %d %s; want the same 200 counting the target's %d requests", a.status, a.body, b.status, b.body, hits)
	}
	c := call(t, url, p)
	if c.status != a.status || !bytes.Equal(c.body, a.body) {
		t.Errorf("a repeat after the run: %d %s; want the run's answer", c.status, c.body)
	}
	if n := tg.hits.Load(); n != hits {
		t.Errorf("the target saw %d requests after the repeat, %d before", n, hits)
	}
}

// TestStop: stopping the server cuts its runs short, and answers 503 so
// that sluice tries again.
func TestStop(t *testing.T) {
	tg, started, _ := newBlockingTarget(t)
	s, err := New(Config{Limits: DefaultLimits(), Log: testr.New(t)})
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, l) }()
	answer := make(chan reply, 1)
	go func() {
		answer <- call(t, "http://"+l.Addr().String(), payload("d1", map[string]string{"url": tg.URL, "duration": "1m", "concurrency": "1"}))
	}()
	<-started
	cancel()
	if r := <-answer; r.status != http.StatusServiceUnavailable || !strings.Contains(r.answer.Message, "stopped before the run ended") {
		t.Errorf("status %d, %s; want 503", r.status, r.body)
	}
	if err := <-done; err != nil {
		t.Errorf("Serve: %v", err)
	}
}

// TestEndpoints: the probe, the methods and the size of a call.
func TestEndpoints(t *testing.T) {
	url := startServer(t, Config{})
	for _, tt := range []struct {
		method, path string
		body         io.Reader
		want         int
	}{
		{http.MethodGet, "/healthz", nil, http.StatusOK},
		{http.MethodGet, "/", nil, http.StatusMethodNotAllowed},
		{http.MethodPost, "/elsewhere", nil, http.StatusNotFound},
		{http.MethodPost, "/hooks", strings.NewReader("{}"), http.StatusBadRequest},
		{http.MethodPost, "/", bytes.NewReader(make([]byte, maxBody+1)), http.StatusRequestEntityTooLarge},
	} {
		req, err := http.NewRequest(tt.method, url+tt.path, tt.body)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		if resp.StatusCode != tt.want {
			t.Errorf("%s %s: %d, want %d", tt.method, tt.path, resp.StatusCode, tt.want)
		}
	}
}
