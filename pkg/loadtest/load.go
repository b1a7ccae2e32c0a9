package loadtest

import (
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"sluice.dev/sluice/pkg/hooks"
	"sluice.dev/sluice/pkg/version"
)

// maxDrain bounds how much of an answer's body is read, to reuse the
// connection without holding a large one in memory.
const maxDrain = 1 << 20

// transportError is the key of ByStatus for requests that got no answer.
const transportError = "error"

// load sends requests to a URL at a steady rate for a while.
type load struct {
	url          *url.URL
	method, body string
	host         string
	header       http.Header
	rate         float64
	duration     time.Duration
	// timeout bounds each request.
	timeout      time.Duration
	concurrency  int
	expect       expectation
	maxErrorRate float64
	client       *http.Client
}

// LoadResult is what a load did.
type LoadResult struct {
	// Method and URL are the requests', the URL without a password.
	Method string `json:"method"`
	URL    string `json:"url"`
	// Rate is the rate asked for, in requests per second.
	Rate float64 `json:"rate"`
	// Duration is how long the load took, the last answers included.
	Duration string `json:"duration"`
	// Requests counts the requests sent.
	Requests int `json:"requests"`
	// ByStatus counts the answers by status code; "error" counts the
	// requests that got none.
	ByStatus map[string]int `json:"byStatus"`
	// ExpectedStatus is a good answer's status: a code, or a class such
	// as 2xx.
	ExpectedStatus string `json:"expectedStatus"`
	// Unexpected counts the requests whose answer was not expected, or
	// that got none.
	Unexpected int `json:"unexpected"`
	// ErrorRate is Unexpected in percent of Requests; MaxErrorRate, the
	// most that was tolerated.
	ErrorRate    float64 `json:"errorRatePercent"`
	MaxErrorRate float64 `json:"maxErrorRatePercent"`
	// P50 and P99 are latencies of the answers in milliseconds, body
	// included.
	P50 float64 `json:"p50Millis"`
	P99 float64 `json:"p99Millis"`
	// LastError is why the last request without an answer got none.
	LastError string `json:"lastError,omitempty"`
}

func (l *load) limit() time.Duration { return l.duration + l.timeout }

func (l *load) describe() []any {
	return []any{"kind", "load", "method", l.method, "url", l.url.Redacted(), "rate", l.rate,
		"duration", l.duration.String(), "concurrency", l.concurrency, "expectedStatus", l.expect.String()}
}

// do paces the requests with a token bucket of one, so that they are spread
// evenly rather than sent in bursts. The duration bounds when requests
// start, not when they end: a request in flight is waited for, so that every
// request the target saw is counted with its answer.
func (l *load) do(ctx context.Context, _ *hooks.Payload) (bool, Answer) {
	began := time.Now()
	pace, cancel := context.WithTimeout(ctx, l.duration)
	defer cancel()
	limiter := rate.NewLimiter(rate.Limit(l.rate), 1)
	t := &tally{byStatus: map[string]int{}}
	var wg sync.WaitGroup
	for range l.concurrency {
		wg.Go(func() {
			for limiter.Wait(pace) == nil {
				l.send(ctx, t)
			}
		})
	}
	wg.Wait()
	return l.judge(t, time.Since(began))
}

// tally counts the answers of a load's requests.
type tally struct {
	mu         sync.Mutex
	byStatus   map[string]int
	unexpected int
	latencies  []time.Duration
	lastError  error
}

func (l *load) send(ctx context.Context, t *tally) {
	ctx, cancel := context.WithTimeout(ctx, l.timeout)
	defer cancel()
	var body io.Reader
	if l.body != "" {
		body = strings.NewReader(l.body)
	}
	req, err := http.NewRequestWithContext(ctx, l.method, l.url.String(), body)
	if err != nil {
		t.failed(fmt.Errorf("make the request: %w", err))
		return
	}
	req.Header = l.header.Clone()
	if req.Header.Get("User-Agent") == "" {
		req.Header.Set("User-Agent", "sluice-loadtester/"+version.Get().Version)
	}
	req.Host = l.host
	start := time.Now()
	resp, err := l.client.Do(req)
	if err != nil {
		t.failed(err)
		return
	}
	_, err = io.Copy(io.Discard, io.LimitReader(resp.Body, maxDrain))
	_ = resp.Body.Close()
	if err != nil {
		t.failed(fmt.Errorf("read the answer of %s: %w", l.url.Redacted(), err))
		return
	}
	t.answered(resp.StatusCode, time.Since(start), l.expect.matches(resp.StatusCode))
}

func (t *tally) failed(err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.byStatus[transportError]++
	t.unexpected++
	t.lastError = err
}

func (t *tally) answered(code int, latency time.Duration, expected bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.byStatus[strconv.Itoa(code)]++
	if !expected {
		t.unexpected++
	}
	t.latencies = append(t.latencies, latency)
}

// judge tells whether the load met its expectation; a load that sent
// nothing did not, since the canary got none of the traffic it was for.
func (l *load) judge(t *tally, took time.Duration) (bool, Answer) {
	requests := 0
	for _, n := range t.byStatus {
		requests += n
	}
	r := &LoadResult{
		Method: l.method, URL: l.url.Redacted(), Rate: l.rate, Duration: took.Round(time.Millisecond).String(),
		Requests: requests, ByStatus: t.byStatus, ExpectedStatus: l.expect.String(),
		Unexpected: t.unexpected, MaxErrorRate: l.maxErrorRate,
	}
	if t.lastError != nil {
		r.LastError = t.lastError.Error()
	}
	if requests == 0 {
		return false, Answer{Message: fmt.Sprintf("the load sent no request to %s %s in %s", l.method, r.URL, r.Duration), Load: r}
	}
	rate := 100 * float64(t.unexpected) / float64(requests)
	r.ErrorRate = round(rate)
	slices.Sort(t.latencies)
	r.P50, r.P99 = millis(quantile(t.latencies, 0.5)), millis(quantile(t.latencies, 0.99))
	// On the exact rate: one bad answer in a million is not 0%.
	ok := rate <= l.maxErrorRate
	verdict, cmp := "met", "<="
	if !ok {
		verdict, cmp = "missed", ">"
	}
	msg := fmt.Sprintf("the load %s its expectation: %s to %s %s in %s, %d not %s (%.3g%% %s %v%% allowed), p50 %vms, p99 %vms",
		verdict, requestsText(requests), l.method, r.URL, r.Duration, t.unexpected, r.ExpectedStatus, rate, cmp, l.maxErrorRate, r.P50, r.P99)
	if r.LastError != "" {
		msg += "; last error: " + r.LastError
	}
	return ok, Answer{Message: msg, Load: r}
}

func requestsText(n int) string {
	if n == 1 {
		return "1 request"
	}
	return strconv.Itoa(n) + " requests"
}

// quantile is the nearest-rank quantile q of sorted, 0 when it is empty
// (every request failed).
func quantile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[max(0, int(math.Ceil(q*float64(len(sorted))))-1)]
}

func millis(d time.Duration) float64 { return round(float64(d) / float64(time.Millisecond)) }

// round keeps two decimals, which is all a summary needs.
func round(x float64) float64 { return math.Round(x*100) / 100 }
