// Package events writes a controller's Kubernetes events, core/v1 ones so that
// kubectl describe shows each step with its own message, with guarantees that
// client-go's recorder does not give under load:
//
//   - An event recorded with Event (in sluice: a new revision, an outcome, or
//     why a Deployment is left alone) is never dropped while the process runs:
//     its queue has no bound, and the writers take its events before any step.
//   - An event recorded with StepEvent waits in a queue of bounded length;
//     when that is full the oldest step is dropped, so the API server gets as
//     many steps as it can take and the newest ones.
//   - Each event is one create request, named and shaped like client-go's
//     (<object>.<hex unix nanos>, count 1, first and last timestamp when it
//     was recorded); nothing is folded, patched or rate-limited per object.
//     The names of one Recorder's events grow in the order they were
//     recorded, which orders them even where several writers finish them out
//     of order.
//   - A transient API error is retried with backoff, forbidden included (an
//     API server that has just started forbids until its authorizer has read
//     the RBAC objects); a refusal (a terminating namespace, invalid, or a
//     namespace gone) is logged and the event dropped.
//   - Stopping writes what is queued, within a deadline.
//
// sluice_events_total counts every event by kind (main, step) and result
// (written, dropped, failed); sluice_events_queued is the length of each
// queue.
package events

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	corev1client "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/tools/reference"
)

// Options configure a Recorder; the zero value of a number or duration
// takes its default.
type Options struct {
	// Component is the events' source component and reporting controller.
	Component string
	// Instance is their reporting instance, such as the pod's name.
	Instance string
	// Writers is how many events are written at once; 16 by default.
	Writers int
	// StepQueue is how many step events may wait; 4096 by default.
	StepQueue int
	// DrainTimeout bounds how long stopping writes what is queued; 5s by
	// default.
	DrainTimeout time.Duration
	// Backoff paces the retries of a transient error; by default from 250ms,
	// doubling up to 15s, 10 tries in about a minute.
	Backoff wait.Backoff
	// Registerer receives the metrics; none when nil.
	Registerer prometheus.Registerer
	// Logger receives what could not be written, and the drain's start.
	Logger logr.Logger
}

// The kinds of events, as the metrics label them.
const (
	kindMain = "main"
	kindStep = "step"
)

// Recorder queues events and writes them to the API server.
type Recorder struct {
	client corev1client.EventsGetter
	scheme *runtime.Scheme
	opts   Options
	total  *prometheus.CounterVec
	queued *prometheus.GaugeVec

	mu   sync.Mutex
	cond *sync.Cond
	main []*corev1.Event
	// steps holds at most opts.StepQueue events, the oldest first.
	steps []*corev1.Event
	// stopping: no writer waits for more events; writers counts those that
	// have not returned.
	stopping bool
	writers  int
	// lastNanos is the time of the last event recorded, in Unix
	// nanoseconds, the suffix of its name.
	lastNanos int64
}

// New returns a Recorder that writes through client events about objects of
// scheme's types. Its writers run from Start on; events recorded before wait.
func New(client corev1client.EventsGetter, scheme *runtime.Scheme, opts Options) *Recorder {
	if opts.Writers <= 0 {
		opts.Writers = 16
	}
	if opts.StepQueue <= 0 {
		opts.StepQueue = 4096
	}
	if opts.DrainTimeout <= 0 {
		opts.DrainTimeout = 5 * time.Second
	}
	if opts.Backoff.Steps <= 0 {
		opts.Backoff = wait.Backoff{Duration: 250 * time.Millisecond, Factor: 2, Jitter: 0.1, Steps: 10, Cap: 15 * time.Second}
	}
	r := &Recorder{
		client: client, scheme: scheme, opts: opts,
		total: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_events_total",
			Help: "Kubernetes events, by kind (main, step) and result (written; dropped: a step pushed out of its full queue, " +
				"or left unwritten at shutdown; failed: refused by the API server, or still failing after the retries).",
		}, []string{"kind", "result"}),
		queued: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "sluice_events_queued", Help: "Kubernetes events waiting to be written, by kind (main, step).",
		}, []string{"kind"}),
	}
	r.cond = sync.NewCond(&r.mu)
	if opts.Registerer != nil {
		opts.Registerer.MustRegister(r.total, r.queued)
	}
	return r
}

// Event records an event that must not be dropped.
func (r *Recorder) Event(obj runtime.Object, eventtype, reason, message string) {
	r.record(kindMain, obj, eventtype, reason, message)
}

// StepEvent records an event that may be dropped, the oldest first, when more
// are waiting than the API server takes.
func (r *Recorder) StepEvent(obj runtime.Object, eventtype, reason, message string) {
	r.record(kindStep, obj, eventtype, reason, message)
}

func (r *Recorder) record(kind string, obj runtime.Object, eventtype, reason, message string) {
	ref, err := reference.GetReference(r.scheme, obj)
	if err != nil {
		r.opts.Logger.Error(err, "Event not recorded: no reference to its object", "reason", reason, "message", message)
		r.total.WithLabelValues(kind, "failed").Inc()
		return
	}
	ns := ref.Namespace
	if ns == "" {
		ns = metav1.NamespaceDefault
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.stopping && r.writers == 0 {
		r.opts.Logger.Error(nil, "Event recorded after the recorder stopped; it is not written", "reason", reason, "message", message)
		r.total.WithLabelValues(kind, "dropped").Inc()
		return
	}
	// Strictly increasing, so that names are unique and sort in the order
	// the events were recorded.
	nanos := max(time.Now().UnixNano(), r.lastNanos+1)
	r.lastNanos = nanos
	at := metav1.NewTime(time.Unix(0, nanos))
	e := &corev1.Event{
		ObjectMeta:     metav1.ObjectMeta{Name: fmt.Sprintf("%v.%x", ref.Name, nanos), Namespace: ns},
		InvolvedObject: *ref, Reason: reason, Message: message, Type: eventtype,
		FirstTimestamp: at, LastTimestamp: at, Count: 1,
		Source:              corev1.EventSource{Component: r.opts.Component},
		ReportingController: r.opts.Component, ReportingInstance: r.opts.Instance,
	}
	if kind == kindMain {
		r.main = append(r.main, e)
	} else {
		if len(r.steps) == r.opts.StepQueue {
			r.steps[0] = nil
			r.steps = r.steps[1:]
			r.total.WithLabelValues(kindStep, "dropped").Inc()
		}
		r.steps = append(r.steps, e)
	}
	r.setQueued()
	r.cond.Signal()
}

// setQueued updates the queue gauges; r.mu is held.
func (r *Recorder) setQueued() {
	r.queued.WithLabelValues(kindMain).Set(float64(len(r.main)))
	r.queued.WithLabelValues(kindStep).Set(float64(len(r.steps)))
}

// next waits for the next event to write, a main one before any step, and
// returns false once the recorder is stopping and nothing is left.
func (r *Recorder) next() (*corev1.Event, string, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for len(r.main) == 0 && len(r.steps) == 0 {
		if r.stopping {
			r.writers--
			return nil, "", false
		}
		r.cond.Wait()
	}
	defer r.setQueued()
	if len(r.main) > 0 {
		e := r.main[0]
		r.main[0] = nil
		r.main = r.main[1:]
		return e, kindMain, true
	}
	e := r.steps[0]
	r.steps[0] = nil
	r.steps = r.steps[1:]
	return e, kindStep, true
}

// Start starts the writers; it must be called once. The returned stop ends
// them: they write what is queued and what is recorded meanwhile for at
// most Options.DrainTimeout, and the rest is dropped. stop returns when the
// writers have.
func (r *Recorder) Start() (stop func()) {
	// Not the caller's context: the writes must go on while the process
	// stops, until the drain's deadline.
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	r.mu.Lock()
	r.writers = r.opts.Writers
	r.mu.Unlock()
	for range r.opts.Writers {
		wg.Go(func() {
			for {
				e, kind, ok := r.next()
				if !ok {
					return
				}
				r.write(ctx, e, kind)
			}
		})
	}
	return func() {
		defer cancel()
		r.mu.Lock()
		r.stopping = true
		r.opts.Logger.Info("Writing the queued events before stopping", "main", len(r.main), "steps", len(r.steps))
		r.cond.Broadcast()
		r.mu.Unlock()
		done := make(chan struct{})
		go func() { wg.Wait(); close(done) }()
		select {
		case <-done:
			return
		case <-time.After(r.opts.DrainTimeout):
		}
		cancel()
		r.mu.Lock()
		main, steps := len(r.main), len(r.steps)
		r.total.WithLabelValues(kindMain, "dropped").Add(float64(main))
		r.total.WithLabelValues(kindStep, "dropped").Add(float64(steps))
		r.main, r.steps = nil, nil
		r.setQueued()
		r.mu.Unlock()
		<-done
		r.opts.Logger.Error(nil, "Events left unwritten at shutdown", "timeout", r.opts.DrainTimeout, "main", main, "steps", steps)
	}
}

// write creates e, retrying transient errors, and counts the result.
func (r *Recorder) write(ctx context.Context, e *corev1.Event, kind string) {
	var last error
	err := wait.ExponentialBackoffWithContext(ctx, r.opts.Backoff, func(ctx context.Context) (bool, error) {
		_, err := r.client.Events(e.Namespace).Create(ctx, e, metav1.CreateOptions{})
		switch {
		case err == nil, apierrors.IsAlreadyExists(err):
			// AlreadyExists: an earlier try that timed out got through.
			return true, nil
		case apierrors.HasStatusCause(err, corev1.NamespaceTerminatingCause), apierrors.IsInvalid(err),
			apierrors.IsBadRequest(err), apierrors.IsNotFound(err):
			return false, err
		}
		// Forbidden is retried too: an API server that has just started
		// refuses requests until its authorizer has read the RBAC objects.
		last = err
		return false, nil
	})
	result := "written"
	switch {
	case err == nil:
	case ctx.Err() != nil:
		result = "dropped"
	default:
		result = "failed"
		if wait.Interrupted(err) {
			// The retries ran out.
			err = fmt.Errorf("%d tries: %w", r.opts.Backoff.Steps, last)
		}
	}
	if err != nil {
		r.opts.Logger.Error(err, "Event not written", "kind", kind, "namespace", e.Namespace, "object", e.InvolvedObject.Name,
			"reason", e.Reason, "message", e.Message)
	}
	r.total.WithLabelValues(kind, result).Inc()
}
