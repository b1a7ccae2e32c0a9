package hooks

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"

	"sluice.dev/sluice/pkg/canary"
	"sluice.dev/sluice/pkg/version"
)

// Call is one webhook call: the webhook, its payload and the key that signs
// it (nil: unsigned).
type Call struct {
	Spec    canary.WebhookSpec
	Payload Payload
	Key     []byte
}

// CallID names the call of webhook hook about the revision of a Deployment
// in one round: the same in every shifter, so that a call repeated after a
// restart carries the same delivery id.
func CallID(namespace, name, revision, hook, round string) string {
	sum := sha256.Sum256([]byte(strings.Join([]string{namespace, name, revision, hook, round}, "/")))
	return hex.EncodeToString(sum[:16])
}

// RunnerOptions tune a Runner; the zero value gives the defaults.
type RunnerOptions struct {
	// PerReceiver bounds the calls in flight to one receiver (scheme and
	// host of the URL); the others wait their turn. 8 when 0.
	PerReceiver int
	// Waiting bounds the calls that wait for one receiver; past it a call
	// ends at once as unreachable, so that a receiver that hangs cannot
	// pile up calls without end. 256 when 0.
	Waiting int
	// Backoff paces the retries of an attempt that got no answer, a 5xx or
	// a 429; its Steps are set from each webhook's retries. From 500ms,
	// doubling, when zero.
	Backoff wait.Backoff
	// Keep is how long an ended call's result is kept for the reconciles
	// that ask for it; 15m when 0.
	Keep time.Duration
	// Now is the clock; time.Now when nil.
	Now func() time.Time
}

// Runner makes webhook calls in the background: Ask starts a call and
// returns at once, and Wake tells the caller when it has ended. A receiver
// that hangs holds one goroutine per call and its own slots, never a
// reconcile or another receiver's slots.
type Runner struct {
	client  *http.Client
	opts    RunnerOptions
	log     logr.Logger
	metrics *Metrics
	// Wake is told the Deployment whose call has ended, so that its
	// rollout is looked at again.
	wake func(types.NamespacedName)

	mu        sync.Mutex
	calls     map[string]*entry
	receivers map[string]*receiver
}

// receiver are the calls to one receiver: slots holds those in flight,
// queued counts them and those waiting for a slot.
type receiver struct {
	slots  chan struct{}
	queued int
}

type entry struct {
	done   bool
	result canary.HookStatus
	ended  time.Time
}

// NewRunner returns a Runner that calls with client and tells wake when a
// call has ended.
func NewRunner(client *http.Client, wake func(types.NamespacedName), metrics *Metrics, log logr.Logger, opts RunnerOptions) *Runner {
	if opts.PerReceiver == 0 {
		opts.PerReceiver = 8
	}
	if opts.Backoff.Duration == 0 {
		opts.Backoff = wait.Backoff{Duration: 500 * time.Millisecond, Factor: 2, Jitter: 0.1, Cap: 30 * time.Second}
	}
	if opts.Waiting == 0 {
		opts.Waiting = 256
	}
	if opts.Keep == 0 {
		opts.Keep = 15 * time.Minute
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Runner{client: client, opts: opts, log: log, metrics: metrics, wake: wake,
		calls: map[string]*entry{}, receivers: map[string]*receiver{}}
}

// Ask returns the result of the call with id and true once it has ended.
// Until then it returns false, having started the call the first time it
// was asked: prepare makes it then, and an error of prepare (a signing
// Secret that is missing) ends the call at once as unreachable.
func (r *Runner) Ask(owner types.NamespacedName, id string, prepare func() (Call, error)) (canary.HookStatus, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.forget()
	if e, ok := r.calls[id]; ok {
		return e.result, e.done
	}
	c, err := prepare()
	if err != nil {
		e := &entry{done: true, ended: r.opts.Now(), result: canary.HookStatus{Name: c.Spec.Name, Type: c.Spec.Type,
			Revision: c.Payload.Revision, Result: canary.HookUnreachable, Message: err.Error(), Time: metav1.NewTime(r.opts.Now())}}
		r.calls[id] = e
		r.metrics.observe(c.Spec.Type, e.result.Result, 0)
		return e.result, true
	}
	r.calls[id] = &entry{}
	go r.run(owner, id, c)
	return canary.HookStatus{}, false
}

// Send delivers c in the background and forgets it: for the event webhook,
// whose answer changes nothing.
func (r *Runner) Send(c Call) {
	go func() {
		res := r.deliver(c)
		if res.Result != canary.HookSucceeded {
			r.log.Info("an event webhook failed", "webhook", c.Spec.Name, "namespace", c.Payload.Namespace,
				"name", c.Payload.Name, "result", res.Result, "message", res.Message)
		}
	}()
}

func (r *Runner) run(owner types.NamespacedName, id string, c Call) {
	res := r.deliver(c)
	r.mu.Lock()
	r.calls[id] = &entry{done: true, result: res, ended: r.opts.Now()}
	r.mu.Unlock()
	if r.wake != nil {
		r.wake(owner)
	}
}

// forget drops the results kept longer than Keep; r.mu is held.
func (r *Runner) forget() {
	cutoff := r.opts.Now().Add(-r.opts.Keep)
	for id, e := range r.calls {
		if e.done && e.ended.Before(cutoff) {
			delete(r.calls, id)
		}
	}
}

// queue counts a call to the receiver at rawURL, and returns its receiver,
// or an error if too many calls are queued for it already. done ends it.
func (r *Runner) queue(rawURL string) (*receiver, error) {
	key := rawURL
	if u, err := url.Parse(rawURL); err == nil {
		key = u.Scheme + "://" + u.Host
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	rc, ok := r.receivers[key]
	if !ok {
		rc = &receiver{slots: make(chan struct{}, r.opts.PerReceiver)}
		r.receivers[key] = rc
	}
	if rc.queued >= r.opts.PerReceiver+r.opts.Waiting {
		return nil, fmt.Errorf("not called: %d calls to %s are in flight or waiting already; it answers too slowly", rc.queued, key)
	}
	rc.queued++
	return rc, nil
}

func (r *Runner) done(rc *receiver) {
	r.mu.Lock()
	defer r.mu.Unlock()
	rc.queued--
}

// deliver makes the attempts of c, retrying what may pass next time, and
// says how the call ended.
func (r *Runner) deliver(c Call) canary.HookStatus {
	start := r.opts.Now()
	body, err := json.Marshal(c.Payload)
	res := canary.HookStatus{Name: c.Spec.Name, Type: c.Spec.Type, Revision: c.Payload.Revision}
	var rc *receiver
	if err != nil {
		err = fmt.Errorf("encode the payload: %w", err)
	} else {
		rc, err = r.queue(c.Spec.URL)
	}
	if err != nil {
		res.Result, res.Message = canary.HookUnreachable, err.Error()
	} else {
		defer r.done(rc)
		backoff := r.opts.Backoff
		backoff.Steps = int(ptrOr(c.Spec.Retries, canary.DefaultHookRetries)) + 1
		attempts := 0
		_ = wait.ExponentialBackoff(backoff, func() (bool, error) {
			attempts++
			rc.slots <- struct{}{}
			res.Result, res.Message = r.attempt(c, body)
			<-rc.slots
			// What may pass next time is tried again: no answer, a 5xx, a 429.
			again := res.Result == canary.HookUnreachable || strings.HasPrefix(res.Message, "5") || strings.HasPrefix(res.Message, "429")
			return !again, nil
		})
		if attempts > 1 {
			res.Message = fmt.Sprintf("%s (after %d attempts)", res.Message, attempts)
		}
	}
	res.Time = metav1.NewTime(r.opts.Now())
	r.metrics.observe(c.Spec.Type, res.Result, r.opts.Now().Sub(start))
	return res
}

// attempt POSTs body once, and returns the result and a message: the status
// and the start of the answer, or the transport's error.
func (r *Runner) attempt(c Call, body []byte) (canary.HookResult, string) {
	timeout := canary.DefaultHookTimeout
	if c.Spec.Timeout != nil {
		timeout = c.Spec.Timeout.Duration
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.Spec.URL, bytes.NewReader(body))
	if err != nil {
		return canary.HookUnreachable, fmt.Sprintf("webhook %s: %v", c.Spec.Name, err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "sluice/"+version.Get().Version)
	req.Header.Set(HeaderDelivery, c.Payload.ID)
	req.Header.Set(HeaderType, string(c.Spec.Type))
	if c.Key != nil {
		req.Header.Set(HeaderSignature, Sign(c.Key, body, r.opts.Now()))
	}
	resp, err := r.client.Do(req)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return canary.HookUnreachable, fmt.Sprintf("no answer within %s", timeout)
		}
		return canary.HookUnreachable, err.Error()
	}
	defer resp.Body.Close()
	msg := resp.Status
	if a := answerText(resp.Body); a != "" {
		msg += ": " + a
	}
	if resp.StatusCode/100 == 2 {
		return canary.HookSucceeded, msg
	}
	return canary.HookFailed, msg
}

// maxAnswer bounds what is read of an answer.
const maxAnswer = 64 << 10

// answerText is what the status shows of an answer: the "message" of a JSON
// object, as sluice-loadtester answers, else the start of the body, on one
// line.
func answerText(body io.Reader) string {
	raw, _ := io.ReadAll(io.LimitReader(body, maxAnswer))
	var answer struct {
		Message string `json:"message"`
	}
	if json.Unmarshal(raw, &answer) == nil && answer.Message != "" {
		raw = []byte(answer.Message)
	}
	text := strings.Join(strings.Fields(string(raw)), " ")
	if len(text) > 512 {
		text = text[:512] + "…"
	}
	return text
}

func ptrOr(p *int32, def int32) int32 {
	if p == nil {
		return def
	}
	return *p
}
