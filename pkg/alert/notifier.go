package alert

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/utils/clock"

	"sluice.dev/sluice/pkg/canary"
	"sluice.dev/sluice/pkg/version"
)

// ResolvedAlert is an alert of a policy with its URL, read from its Secret
// by Resolve.
type ResolvedAlert struct {
	Spec canary.AlertSpec
	// URL is where the alert is POSTed.
	URL string
}

// The defaults of the options.
const (
	defaultConcurrency = 8
	defaultQueueSize   = 256
	defaultTimeout     = 10 * time.Second
)

// staleAfter is how long the rate limit remembers the last alert of a
// canary to a receiver: the greatest MinInterval the API allows, so that a
// forgotten alert limits nothing. The count of alerts held back is
// forgotten with it, as a note about a day-old quiet spell tells nothing.
const staleAfter = 24 * time.Hour

// sweepEvery is how often Notify forgets stale alerts, so that the canaries
// deleted since do not stay in memory.
const sweepEvery = time.Hour

// The results of sluice_alerts_total.
const (
	resultSent    = "sent"
	resultFailed  = "failed"
	resultLimited = "limited"
	resultDropped = "dropped"
)

// Option configures a Notifier.
type Option func(*Notifier)

// WithLogger logs the alerts not sent, those held back and dropped, and,
// at V(1), those sent.
func WithLogger(log logr.Logger) Option { return func(n *Notifier) { n.log = log } }

// WithClock sets the clock of the rate limit, and of the messages' times
// when unset; tests step a fake one. Nil keeps the real clock.
func WithClock(c clock.PassiveClock) Option {
	return func(n *Notifier) {
		if c != nil {
			n.clock = c
		}
	}
}

// WithTimeout bounds each send, 10s by default; a receiver that takes
// longer is counted failed. Zero or less keeps the default.
func WithTimeout(d time.Duration) Option {
	return func(n *Notifier) {
		if d > 0 {
			n.timeout = d
		}
	}
}

// WithConcurrency sets how many alerts are sent at once, 8 by default. Zero
// or less keeps the default.
func WithConcurrency(c int) Option {
	return func(n *Notifier) {
		if c > 0 {
			n.concurrency = c
		}
	}
}

// WithQueueSize sets how many alerts may wait for a sender, 256 by default;
// more are dropped. Zero or less keeps the default.
func WithQueueSize(q int) Option {
	return func(n *Notifier) {
		if q > 0 {
			n.queueSize = q
		}
	}
}

// Notifier sends alerts in the background: Notify only decides and queues,
// so that a receiver that is slow or down never holds up a reconcile. A
// bounded number of senders POST the queued alerts, each within a timeout;
// when the queue is full, an alert is dropped rather than waited for.
//
// sluice_alerts_total counts the alerts by provider and result: sent;
// failed (the receiver answered other than 2xx, or not in time); limited
// (held back by the alert's min interval); dropped (the queue was full, or
// the Notifier closed). Alerts below an alert's severity are not counted:
// they were never meant to be sent.
type Notifier struct {
	client      *http.Client
	log         logr.Logger
	clock       clock.PassiveClock
	timeout     time.Duration
	concurrency int
	queueSize   int
	userAgent   string
	total       *prometheus.CounterVec

	jobs    chan job
	workers sync.WaitGroup
	// stopped ends the sends in flight when Close runs out of time.
	stopped context.Context
	stop    context.CancelFunc

	mu     sync.Mutex
	closed bool
	limits map[limitKey]*limit
	swept  time.Time
}

// job is one alert to send.
type job struct {
	// ctx carries the values of Notify's context, without its end.
	ctx   context.Context
	alert ResolvedAlert
	msg   Message
}

// limitKey names one receiver of one canary's alerts.
type limitKey struct{ namespace, name, alert string }

// limit is what the rate limit knows of the last alert to one receiver.
type limit struct {
	last time.Time
	held int
}

// New returns a Notifier that POSTs with client (a new default client when
// nil) and counts its alerts in sluice_alerts_total, registered on reg (when
// not nil). Its senders run until Close.
func New(client *http.Client, reg prometheus.Registerer, opts ...Option) *Notifier {
	if client == nil {
		client = &http.Client{}
	}
	n := &Notifier{
		client: client, log: logr.Discard(), clock: clock.RealClock{},
		timeout: defaultTimeout, concurrency: defaultConcurrency, queueSize: defaultQueueSize,
		userAgent: "sluice/" + version.Get().Version,
		total: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_alerts_total",
			Help: "Alerts to chat channels and endpoints, by provider and result (sent; failed: the receiver answered " +
				"other than 2xx, or not in time; limited: held back by the alert's min interval; dropped: the queue was full, " +
				"or the notifier closed).",
		}, []string{"provider", "result"}),
		limits: map[limitKey]*limit{},
	}
	for _, o := range opts {
		if o != nil {
			o(n)
		}
	}
	if reg != nil {
		reg.MustRegister(n.total)
	}
	n.jobs = make(chan job, n.queueSize)
	n.stopped, n.stop = context.WithCancel(context.Background())
	for range n.concurrency {
		n.workers.Go(func() {
			for j := range n.jobs {
				n.send(j)
			}
		})
	}
	return n
}

// Notify queues m for each of alerts that wants its severity, and returns
// at once. An alert within its min interval of the last one sent about the
// same canary is held back, unless m is an error; the next one sent says
// how many were. A message without a time gets the present. ctx's values go along with the sends, but not its end: the
// sends outlive the reconcile that asked for them.
func (n *Notifier) Notify(ctx context.Context, alerts []ResolvedAlert, m Message) {
	n.mu.Lock()
	defer n.mu.Unlock()
	now := n.clock.Now()
	n.sweep(now)
	if m.Time.IsZero() {
		m.Time = now
	}
	for _, a := range alerts {
		if !Wants(a.Spec.Severity, m.Severity) {
			continue
		}
		provider := string(a.Spec.Provider)
		log := n.log.WithValues("alert", a.Spec.Name, "provider", provider, "namespace", m.Namespace, "name", m.Name, "reason", m.Reason)
		key := limitKey{m.Namespace, m.Name, a.Spec.Name}
		l := n.limits[key]
		if l != nil && m.severity() != canary.SeverityError && now.Sub(l.last) < minInterval(a.Spec) {
			l.held++
			n.total.WithLabelValues(provider, resultLimited).Inc()
			log.V(1).Info("Alert held back by its min interval", "heldBack", l.held)
			continue
		}
		msg := m
		if l != nil {
			msg.heldBack = l.held
		}
		if why := n.enqueue(job{ctx: context.WithoutCancel(ctx), alert: a, msg: msg}); why != "" {
			n.total.WithLabelValues(provider, resultDropped).Inc()
			log.Error(nil, "Alert dropped", "why", why)
			continue
		}
		n.limits[key] = &limit{last: now}
	}
}

// enqueue queues j without waiting, and says why it could not; n.mu is
// held, so that Close cannot close the queue meanwhile.
func (n *Notifier) enqueue(j job) (why string) {
	if n.closed {
		return "the notifier is closed"
	}
	select {
	case n.jobs <- j:
		return ""
	default:
		return fmt.Sprintf("the queue is full (queue size %d, concurrency %d)", n.queueSize, n.concurrency)
	}
}

// sweep forgets the alerts sent longer than staleAfter ago, at most once
// per sweepEvery; n.mu is held.
func (n *Notifier) sweep(now time.Time) {
	if now.Sub(n.swept) < sweepEvery {
		return
	}
	n.swept = now
	for k, l := range n.limits {
		if now.Sub(l.last) >= staleAfter {
			delete(n.limits, k)
		}
	}
}

// minInterval is the least time between two alerts of one canary to a.
func minInterval(a canary.AlertSpec) time.Duration {
	if a.MinInterval == nil {
		return canary.DefaultAlertMinInterval
	}
	return a.MinInterval.Duration
}

// Close stops taking alerts and sends those queued. It returns once they
// are sent or, when ctx ends first, once the sends in flight are cancelled
// (counted failed) and the rest dropped. Alerts notified after Close are
// dropped.
func (n *Notifier) Close(ctx context.Context) {
	n.mu.Lock()
	if !n.closed {
		n.closed = true
		close(n.jobs)
	}
	n.mu.Unlock()
	done := make(chan struct{})
	go func() {
		n.workers.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
		n.log.Info("Cancelling the alerts not sent yet", "reason", context.Cause(ctx).Error())
		n.stop()
		<-done
	}
	n.stop()
}

// send POSTs one alert and counts the result.
func (n *Notifier) send(j job) {
	provider := string(j.alert.Spec.Provider)
	log := n.log.WithValues("alert", j.alert.Spec.Name, "provider", provider, "namespace", j.msg.Namespace, "name", j.msg.Name,
		"reason", j.msg.Reason)
	if n.stopped.Err() != nil {
		n.total.WithLabelValues(provider, resultDropped).Inc()
		log.Error(nil, "Alert dropped", "why", "the notifier closed before sending it")
		return
	}
	if err := n.post(j); err != nil {
		n.total.WithLabelValues(provider, resultFailed).Inc()
		log.Error(fmt.Errorf("alert %s: %w", j.alert.Spec.Name, err), "Alert not sent")
		return
	}
	n.total.WithLabelValues(provider, resultSent).Inc()
	log.V(1).Info("Alert sent")
}

// post sends j's body and reads the answer. Its errors name the receiver's
// host, never its URL: the path of a chat webhook is its secret.
func (n *Notifier) post(j job) error {
	b, err := body(j.alert.Spec.Provider, j.msg)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(j.ctx, n.timeout)
	defer cancel()
	defer context.AfterFunc(n.stopped, cancel)()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, j.alert.URL, bytes.NewReader(b))
	if err != nil {
		return errors.New("the URL does not parse")
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", n.userAgent)
	resp, err := n.client.Do(req)
	if err != nil {
		// Unwrapped from its url.Error, which quotes the URL.
		if ue := (*url.Error)(nil); errors.As(err, &ue) {
			err = ue.Err
		}
		if errors.Is(err, context.DeadlineExceeded) {
			return fmt.Errorf("%s: no answer within %s", req.URL.Host, n.timeout)
		}
		return fmt.Errorf("%s: %w", req.URL.Host, err)
	}
	defer func() { _ = resp.Body.Close() }()
	// Read, so that the connection is kept, and bounded: a receiver's
	// error page says what it has to say first. A failed read changes
	// nothing, since the status tells the result and the body only why.
	answer, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("%s answered %s: %s", req.URL.Host, resp.Status, truncate(strings.TrimSpace(string(answer)), 200))
	}
	return nil
}
