// Package loadtest is the receiver of sluice's lifecycle webhooks that makes
// traffic and runs acceptance tests: a team points a pre-rollout or rollout
// webhook at it, so that a quiet service gets enough requests to be judged,
// and so that acceptance tests run before any user sees the canary.
//
// The webhook's metadata says what to do. A load has url and, optionally:
//
//	rate            requests per second, 10; at most Limits.MaxRate
//	duration        how long requests start, 10s; at most Limits.MaxDuration
//	concurrency     requests in flight at most, 4; at most Limits.MaxConcurrency
//	method          GET, HEAD, POST, PUT, PATCH, DELETE or OPTIONS; GET
//	body            the body of each request; none
//	expectedStatus  a good answer's status, such as 200 (the default) or 2xx
//	maxErrorRate    percent of requests without a good answer tolerated, 0
//	host            the Host header
//	header.NAME     the header NAME
//	requestTimeout  bounds each request, 5s; at most Limits.MaxDuration
//
// A command has cmd, the name of one of Config.Commands, and optionally
// timeout, 1m, at most Limits.MaxDuration. It runs without a shell, with
// SLUICE_NAME, SLUICE_NAMESPACE, SLUICE_REVISION, SLUICE_PHASE,
// SLUICE_CANARY_WEIGHT and SLUICE_HOOK in its environment.
//
// The answer comes when the work is done, 200 when it met its expectation
// and 500 when not, with a JSON Answer. So the webhook's timeout must be
// longer than the work: above the load's duration plus its requestTimeout,
// or above the command's timeout (sluice allows up to 10m). Sluice retries
// a 5xx, and repeats a call after a restart, with the same Sluice-Delivery:
// the repeat gets the first call's answer, for 10 minutes, and the work is
// not done twice.
//
// Everything is bounded, because whoever may call the receiver may make it
// send traffic: the rate, the duration and the concurrency of a load, the
// runs at once, the body of a call, the programs that may run. A signing key
// makes it answer only calls that sluice signed.
package loadtest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/go-logr/logr"

	"sluice.dev/sluice/pkg/hooks"
)

// The defaults of the Limits.
const (
	DefaultMaxRate        = 1000
	DefaultMaxDuration    = 5 * time.Minute
	DefaultMaxConcurrency = 64
	DefaultMaxRuns        = 4
)

const (
	// maxBody bounds a call's body: a payload is a few KiB at most, with
	// the checks of the last analysis.
	maxBody = 1 << 20
	// signatureTolerance is how far from now a call's signature may have
	// been made: room for clocks that differ, too little to replay a
	// recorded call later.
	signatureTolerance = 5 * time.Minute
	// deliveryTTL is how long the answer of a finished run is kept for a
	// repeat of its delivery: longer than sluice retries one call, and than
	// a shifter takes to restart and call again.
	deliveryTTL = 10 * time.Minute
	// maxDeliveries bounds the answers kept, whatever the rate of calls.
	maxDeliveries = 1000
	// shutdownTimeout bounds the wait for answers in flight when Serve stops;
	// the runs have been cancelled by then, so they answer at once.
	shutdownTimeout = 10 * time.Second
)

// Limits bound what a call may ask for. A call over one is refused with 400,
// never cut down to size: the team would otherwise judge a canary on less
// traffic than it thinks.
type Limits struct {
	// MaxRate is the most requests per second of one load.
	MaxRate float64
	// MaxDuration bounds a load's duration and request timeout and a
	// command's timeout.
	MaxDuration time.Duration
	// MaxConcurrency is the most requests of one load in flight at once.
	MaxConcurrency int
	// MaxRuns is the most loads and commands running at once; a call
	// beyond it is answered 429.
	MaxRuns int
}

// DefaultLimits are the Limits when the command's flags are not given.
func DefaultLimits() Limits {
	return Limits{MaxRate: DefaultMaxRate, MaxDuration: DefaultMaxDuration, MaxConcurrency: DefaultMaxConcurrency, MaxRuns: DefaultMaxRuns}
}

func (l Limits) validate() error {
	switch {
	case !(l.MaxRate > 0) || math.IsInf(l.MaxRate, 1):
		return fmt.Errorf("the max rate %v is not a positive number", l.MaxRate)
	case l.MaxDuration <= 0:
		return fmt.Errorf("the max duration %s is not positive", l.MaxDuration)
	case l.MaxConcurrency < 1:
		return fmt.Errorf("the max concurrency %d is less than 1", l.MaxConcurrency)
	case l.MaxRuns < 1:
		return fmt.Errorf("the max runs %d is less than 1", l.MaxRuns)
	}
	return nil
}

// Config configures a Server.
type Config struct {
	// SigningKey, when set, is the key of the webhook's signingSecret: calls
	// without a valid Sluice-Signature are refused with 401. Without it,
	// anyone who reaches the server can make it send traffic.
	SigningKey []byte
	// Limits bound what a call may ask for.
	Limits Limits
	// Commands are the programs a call may run, by name.
	Commands Commands
	// Log is told of every call, with its delivery, webhook and canary.
	Log logr.Logger
}

// Server answers sluice's webhook calls. Its runs outlive the call that
// started them, so that a repeat of the call after a timeout waits for the
// same run instead of starting another.
type Server struct {
	cfg    Config
	mux    *http.ServeMux
	client *http.Client

	// ctx ends the runs when the server stops.
	ctx    context.Context
	cancel context.CancelFunc
	runs   sync.WaitGroup

	mu sync.Mutex
	// running are the runs not yet done; their count is bounded by MaxRuns.
	running    map[*run]struct{}
	deliveries *deliveries
}

// New returns a Server; Close (or the end of Serve) stops its runs.
func New(cfg Config) (*Server, error) {
	if err := cfg.Limits.validate(); err != nil {
		return nil, fmt.Errorf("load tester limits: %w", err)
	}
	// Enough idle connections for a load's concurrency, so that a steady
	// load does not open a connection per request.
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.MaxIdleConnsPerHost = cfg.Limits.MaxConcurrency
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{
		cfg: cfg,
		mux: http.NewServeMux(),
		// A load is judged on the target's own answers: following a
		// redirect would count another server's.
		client: &http.Client{Transport: transport, CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		}},
		ctx:        ctx,
		cancel:     cancel,
		running:    map[*run]struct{}{},
		deliveries: newDeliveries(deliveryTTL, maxDeliveries),
	}
	s.mux.HandleFunc("POST /{$}", s.handleHook)
	s.mux.HandleFunc("POST /hooks", s.handleHook)
	s.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = io.WriteString(w, "ok\n")
	})
	return s, nil
}

// ServeHTTP serves POST / and POST /hooks, which take a hooks.Payload, and
// GET /healthz for the kubelet's probes.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// Serve answers on l until ctx ends, then cancels the runs, waits for their
// answers to be written and for the runs to end.
func (s *Server) Serve(ctx context.Context, l net.Listener) error {
	srv := &http.Server{
		Handler:           s,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		// No WriteTimeout: an answer is written when its run ends, which
		// the Limits bound.
		IdleTimeout: 2 * time.Minute,
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(l) }()
	select {
	case err := <-done:
		s.Close()
		return fmt.Errorf("serve on %s: %w", l.Addr(), err)
	case <-ctx.Done():
	}
	s.cfg.Log.Info("Stopping: cancelling the runs")
	s.Close()
	shutdownCtx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	err := srv.Shutdown(shutdownCtx)
	if serveErr := <-done; !errors.Is(serveErr, http.ErrServerClosed) {
		err = errors.Join(err, serveErr)
	}
	if err != nil {
		return fmt.Errorf("shut down the server on %s: %w", l.Addr(), err)
	}
	return nil
}

// Close cancels the runs and waits for them to end. Calls still waiting
// for a run are answered 503.
func (s *Server) Close() {
	// Under mu, so that admit either adds its run before the wait or sees
	// the server stopped.
	s.mu.Lock()
	s.cancel()
	s.mu.Unlock()
	s.runs.Wait()
	s.client.CloseIdleConnections()
}

// Answer is the JSON body of every answer: a line that says what happened,
// which sluice shows in the Canary's webhook status, and the details.
type Answer struct {
	// Message says in a line what happened, or why the call was refused.
	Message string `json:"message"`
	// Load is what a load did, when the call asked for one.
	Load *LoadResult `json:"load,omitempty"`
	// Command is what a command did, when the call asked for one.
	Command *CommandResult `json:"command,omitempty"`
}

// job is what a call's metadata asks for.
type job interface {
	// limit is the longest the job may take, for Retry-After.
	limit() time.Duration
	// do runs the job: ctx ends when the server stops.
	do(ctx context.Context, p *hooks.Payload) (ok bool, a Answer)
	// describe is the job's parameters, for the log.
	describe() []any
}

// run is one job being done, or done: its answer is kept for the repeats
// of its delivery.
type run struct {
	delivery string
	// ends is when the run will have ended at the latest.
	ends time.Time
	// done is closed when status and body are set.
	done       chan struct{}
	status     int
	body       []byte
	finishedAt time.Time
}

func (s *Server) handleHook(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			s.refuse(w, r, http.StatusRequestEntityTooLarge, fmt.Sprintf("the body is over %d bytes", maxBody))
			return
		}
		s.refuse(w, r, http.StatusBadRequest, fmt.Sprintf("read the body: %v", err))
		return
	}
	if s.cfg.SigningKey != nil {
		sig := r.Header.Get(hooks.HeaderSignature)
		if sig == "" {
			s.refuse(w, r, http.StatusUnauthorized, "this load tester answers only signed calls, and this one has no "+hooks.HeaderSignature+
				" header: set the webhook's signingSecret to a Secret with the key of the load tester's --signing-key-file")
			return
		}
		if err := hooks.Verify(s.cfg.SigningKey, body, sig, time.Now(), signatureTolerance); err != nil {
			s.refuse(w, r, http.StatusUnauthorized, "the call's signature is not valid: "+err.Error())
			return
		}
	}
	var p hooks.Payload
	if err := json.Unmarshal(body, &p); err != nil {
		s.refuse(w, r, http.StatusBadRequest, fmt.Sprintf("the body is not a sluice webhook payload: %v", err))
		return
	}
	if p.APIVersion != hooks.APIVersion {
		s.refuse(w, r, http.StatusBadRequest, fmt.Sprintf("apiVersion %q is not %q, the one this load tester reads", p.APIVersion, hooks.APIVersion))
		return
	}
	delivery := r.Header.Get(hooks.HeaderDelivery)
	if delivery == "" {
		delivery = p.ID
	}
	log := s.cfg.Log.WithValues("delivery", delivery, "hook", p.Type, "webhook", p.Webhook,
		"namespace", p.Namespace, "name", p.Name, "revision", p.Revision)

	j, err := s.parse(p.Metadata)
	if err != nil {
		s.refuse(w, r, http.StatusBadRequest, err.Error())
		return
	}
	rn, joined, err := s.admit(delivery, j.limit())
	if busy, ok := errors.AsType[*busyError](err); ok {
		w.Header().Set("Retry-After", strconv.Itoa(busy.retryAfter))
		s.refuse(w, r, http.StatusTooManyRequests, err.Error())
		return
	}
	if err != nil {
		s.refuse(w, r, http.StatusServiceUnavailable, err.Error())
		return
	}
	if joined {
		log.Info("A repeated delivery gets the answer of its run", "running", !closed(rn.done))
	} else {
		log.Info("Run started", j.describe()...)
		go s.do(rn, j, &p, log)
	}
	s.answerWhenDone(w, r, rn)
}

// errStopped refuses the calls that come while the server stops.
var errStopped = errors.New("the load tester is stopping")

// busyError refuses a call while MaxRuns runs are going on.
type busyError struct {
	runs int
	// retryAfter is the seconds until a run has ended at the latest.
	retryAfter int
}

func (e *busyError) Error() string {
	return fmt.Sprintf("%d runs are going on, the most this load tester runs at once (--max-runs); try again in %ds", e.runs, e.retryAfter)
}

// admit returns the run of a delivery already seen, going on or done, with
// joined set; or else starts a run if MaxRuns allows. A repeat is not
// counted against MaxRuns, since it starts nothing.
func (s *Server) admit(delivery string, limit time.Duration) (rn *run, joined bool, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	if delivery != "" {
		if seen := s.deliveries.get(delivery, now); seen != nil {
			return seen, true, nil
		}
	}
	if s.ctx.Err() != nil {
		return nil, false, errStopped
	}
	if len(s.running) >= s.cfg.Limits.MaxRuns {
		first := time.Time{}
		for rn := range s.running {
			if first.IsZero() || rn.ends.Before(first) {
				first = rn.ends
			}
		}
		return nil, false, &busyError{runs: len(s.running), retryAfter: max(1, int(math.Ceil(first.Sub(now).Seconds())))}
	}
	rn = &run{delivery: delivery, ends: now.Add(limit), done: make(chan struct{})}
	s.running[rn] = struct{}{}
	if delivery != "" {
		s.deliveries.add(rn)
	}
	// Under mu, like Close's cancel: see there.
	s.runs.Add(1)
	return rn, false, nil
}

// do runs j and keeps its answer.
func (s *Server) do(rn *run, j job, p *hooks.Payload, log logr.Logger) {
	defer s.runs.Done()
	ok, a := j.do(s.ctx, p)
	status := http.StatusOK
	switch {
	case s.ctx.Err() != nil:
		// Cut short: the answer says nothing of the canary, and sluice
		// retries a 503.
		status = http.StatusServiceUnavailable
		a.Message = "the load tester stopped before the run ended: " + a.Message
	case !ok:
		status = http.StatusInternalServerError
	}
	body, err := encode(a)
	if err != nil {
		status = http.StatusInternalServerError
		body, _ = encode(Answer{Message: err.Error()})
	}
	log.Info("Run finished", "status", status, "message", a.Message)
	s.mu.Lock()
	defer s.mu.Unlock()
	rn.status, rn.body, rn.finishedAt = status, body, time.Now()
	delete(s.running, rn)
	if rn.delivery != "" {
		s.deliveries.finished(rn)
	}
	close(rn.done)
}

func closed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// answerWhenDone writes rn's answer once it is done, unless the caller has
// gone by then.
func (s *Server) answerWhenDone(w http.ResponseWriter, r *http.Request, rn *run) {
	select {
	case <-rn.done:
	case <-r.Context().Done():
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(rn.status)
	_, _ = w.Write(rn.body)
}

// refuse answers a call that starts no run.
func (s *Server) refuse(w http.ResponseWriter, r *http.Request, status int, message string) {
	s.cfg.Log.Info("Call refused", "status", status, "reason", message,
		"delivery", r.Header.Get(hooks.HeaderDelivery), "remote", r.RemoteAddr)
	body, _ := encode(Answer{Message: message})
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// encode is a's JSON, on one line, with <, > and & as they are: the answer
// is read by people, in the Canary's status, not put in a page.
func encode(a Answer) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(a); err != nil {
		return nil, fmt.Errorf("encode the answer: %w", err)
	}
	return b.Bytes(), nil
}
