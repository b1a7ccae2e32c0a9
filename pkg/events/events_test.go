package events

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"
	corev1client "k8s.io/client-go/kubernetes/typed/core/v1"
)

// sink is a fake API server for events: create answers each request.
type sink struct {
	create  func(ctx context.Context, e *corev1.Event) error
	mu      sync.Mutex
	tries   map[string]int
	written []*corev1.Event
}

func (s *sink) Events(string) corev1client.EventInterface { return sinkEvents{s: s} }

// sinkEvents implements Create; the recorder calls nothing else.
type sinkEvents struct {
	corev1client.EventInterface
	s *sink
}

func (e sinkEvents) Create(ctx context.Context, ev *corev1.Event, _ metav1.CreateOptions) (*corev1.Event, error) {
	e.s.mu.Lock()
	if e.s.tries == nil {
		e.s.tries = map[string]int{}
	}
	e.s.tries[ev.Message]++
	e.s.mu.Unlock()
	if e.s.create != nil {
		if err := e.s.create(ctx, ev); err != nil {
			return nil, err
		}
	}
	e.s.mu.Lock()
	defer e.s.mu.Unlock()
	e.s.written = append(e.s.written, ev)
	return ev, nil
}

func (s *sink) messages() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, e := range s.written {
		out = append(out, e.Message)
	}
	return out
}

func newRecorder(t *testing.T, s *sink, opts Options) *Recorder {
	t.Helper()
	scheme := runtime.NewScheme()
	if err := corev1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	opts.Component = "test-controller"
	opts.Registerer = prometheus.NewRegistry()
	return New(s, scheme, opts)
}

var pod = &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web", UID: "u-1"}}

func (r *Recorder) count(kind, result string) int {
	return int(testutil.ToFloat64(r.total.WithLabelValues(kind, result)))
}

func TestEventShape(t *testing.T) {
	s := &sink{}
	r := newRecorder(t, s, Options{Instance: "pod-1"})
	before := time.Now()
	r.Event(pod, corev1.EventTypeWarning, "Failed", "Canary failed!")
	r.Start()()
	if len(s.written) != 1 {
		t.Fatalf("%d events written; want 1", len(s.written))
	}
	e := s.written[0]
	name, nanos, _ := strings.Cut(e.Name, ".")
	at, err := strconv.ParseInt(nanos, 16, 64)
	if err != nil || name != "web" || at < before.UnixNano() || at > time.Now().UnixNano() {
		t.Errorf("name %q; want web.<hex unix nanos of now>", e.Name)
	}
	want := corev1.Event{
		ObjectMeta:     metav1.ObjectMeta{Name: e.Name, Namespace: "shop"},
		InvolvedObject: corev1.ObjectReference{Kind: "Pod", APIVersion: "v1", Namespace: "shop", Name: "web", UID: "u-1"},
		Reason:         "Failed", Message: "Canary failed!", Type: corev1.EventTypeWarning,
		FirstTimestamp: metav1.NewTime(time.Unix(0, at)), LastTimestamp: metav1.NewTime(time.Unix(0, at)), Count: 1,
		Source:              corev1.EventSource{Component: "test-controller"},
		ReportingController: "test-controller", ReportingInstance: "pod-1",
	}
	if !equality.Semantic.DeepEqual(*e, want) {
		t.Errorf("event\n%+v\nwant\n%+v", *e, want)
	}
	if r.count(kindMain, "written") != 1 {
		t.Errorf("sluice_events_total{kind=main,result=written} %d; want 1", r.count(kindMain, "written"))
	}
}

// TestMainNeverDroppedStepsDropOldest holds the only writer on the first
// step while more main events than the step queue holds and twice as many
// steps arrive: every main event is written, before the steps; of the steps,
// the oldest that did not fit are dropped and counted.
func TestMainNeverDroppedStepsDropOldest(t *testing.T) {
	entered, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	s := &sink{create: func(context.Context, *corev1.Event) error {
		once.Do(func() { close(entered); <-release })
		return nil
	}}
	r := newRecorder(t, s, Options{Writers: 1, StepQueue: 3})
	stop := r.Start()
	r.StepEvent(pod, corev1.EventTypeNormal, "Advanced", "s0")
	<-entered
	var want []string
	for i := range 10 {
		r.Event(pod, corev1.EventTypeNormal, "NewRevision", fmt.Sprintf("m%d", i))
		want = append(want, fmt.Sprintf("m%d", i))
	}
	for i := 1; i <= 6; i++ {
		r.StepEvent(pod, corev1.EventTypeNormal, "Advanced", fmt.Sprintf("s%d", i))
	}
	if q := testutil.ToFloat64(r.queued.WithLabelValues(kindStep)); q != 3 {
		t.Errorf("sluice_events_queued{kind=step} %g; want 3", q)
	}
	close(release)
	stop()
	want = append(append([]string{"s0"}, want...), "s4", "s5", "s6")
	if got := s.messages(); !slices.Equal(got, want) {
		t.Errorf("written %v; want %v", got, want)
	}
	for _, c := range []struct {
		kind, result string
		want         int
	}{{kindMain, "written", 10}, {kindMain, "dropped", 0}, {kindStep, "written", 4}, {kindStep, "dropped", 3}} {
		if got := r.count(c.kind, c.result); got != c.want {
			t.Errorf("sluice_events_total{kind=%s,result=%s} %d; want %d", c.kind, c.result, got, c.want)
		}
	}
}

// TestStopWritesWhatIsQueued records before the writers start and stops them
// at once: stop returns when all is written, and the names order the events
// as they were recorded, whatever order the writers finished them in.
func TestStopWritesWhatIsQueued(t *testing.T) {
	s := &sink{}
	r := newRecorder(t, s, Options{Writers: 4})
	var want []string
	for i := range 200 {
		msg := fmt.Sprintf("e%03d", i)
		if i%3 == 0 {
			r.Event(pod, corev1.EventTypeNormal, "NewRevision", msg)
		} else {
			r.StepEvent(pod, corev1.EventTypeNormal, "Advanced", msg)
		}
		want = append(want, msg)
	}
	r.Start()()
	if len(s.written) != len(want) {
		t.Fatalf("%d events written; want %d", len(s.written), len(want))
	}
	byName := slices.Clone(s.written)
	slices.SortFunc(byName, func(a, b *corev1.Event) int { return strings.Compare(a.Name, b.Name) })
	var got []string
	for _, e := range byName {
		got = append(got, e.Message)
	}
	if !slices.Equal(got, want) {
		t.Errorf("events by name %v; want the order they were recorded in", got)
	}
}

// TestStopGivesUpAtTheDeadline: with an API server that never answers, stop
// returns after the drain timeout, and what was not written is counted as
// dropped, as is an event recorded after it.
func TestStopGivesUpAtTheDeadline(t *testing.T) {
	entered := make(chan struct{}, 1)
	s := &sink{create: func(ctx context.Context, _ *corev1.Event) error {
		entered <- struct{}{}
		<-ctx.Done()
		return ctx.Err()
	}}
	r := newRecorder(t, s, Options{Writers: 1, DrainTimeout: 100 * time.Millisecond})
	stop := r.Start()
	for i := range 3 {
		r.Event(pod, corev1.EventTypeNormal, "NewRevision", fmt.Sprintf("m%d", i))
	}
	r.StepEvent(pod, corev1.EventTypeNormal, "Advanced", "s0")
	<-entered
	start := time.Now()
	stop()
	if took := time.Since(start); took < 100*time.Millisecond || took > 5*time.Second {
		t.Errorf("stop took %s; want about the drain timeout, 100ms", took)
	}
	r.Event(pod, corev1.EventTypeNormal, "Promoted", "late")
	if got := r.count(kindMain, "dropped"); got != 4 {
		t.Errorf("sluice_events_total{kind=main,result=dropped} %d; want 4: 1 being written, 2 queued, 1 late", got)
	}
	if got := r.count(kindStep, "dropped"); got != 1 {
		t.Errorf("sluice_events_total{kind=step,result=dropped} %d; want 1", got)
	}
	if q := testutil.ToFloat64(r.queued.WithLabelValues(kindMain)); q != 0 {
		t.Errorf("sluice_events_queued{kind=main} %g after stop; want 0", q)
	}
}

// TestRetries: a transient error is retried with backoff until the event is
// written or the tries run out; a refusal is not retried.
func TestRetries(t *testing.T) {
	unavailable := apierrors.NewServiceUnavailable("busy")
	s := &sink{}
	s.create = func(_ context.Context, e *corev1.Event) error {
		s.mu.Lock()
		tries := s.tries[e.Message]
		s.mu.Unlock()
		switch {
		case e.Message == "flaky" && tries < 3, e.Message == "down":
			return unavailable
		case e.Message == "authorizer starting" && tries < 2:
			return apierrors.NewForbidden(schema.GroupResource{Resource: "events"}, e.Name, fmt.Errorf("RBAC: not found"))
		case e.Message == "refused":
			terminating := apierrors.NewForbidden(schema.GroupResource{Resource: "events"}, e.Name, fmt.Errorf("namespace terminating"))
			terminating.ErrStatus.Details.Causes = []metav1.StatusCause{{Type: corev1.NamespaceTerminatingCause}}
			return terminating
		}
		return nil
	}
	r := newRecorder(t, s, Options{Backoff: wait.Backoff{Duration: time.Millisecond, Factor: 1, Steps: 5}})
	for _, msg := range []string{"flaky", "down", "authorizer starting", "refused"} {
		r.Event(pod, corev1.EventTypeNormal, "Promoted", msg)
	}
	r.Start()()
	for msg, want := range map[string]int{"flaky": 3, "down": 5, "authorizer starting": 2, "refused": 1} {
		if s.tries[msg] != want {
			t.Errorf("%q tried %d times; want %d", msg, s.tries[msg], want)
		}
	}
	if got := s.messages(); !slices.Equal(slices.Sorted(slices.Values(got)), []string{"authorizer starting", "flaky"}) {
		t.Errorf("written %v; want [authorizer starting flaky]", got)
	}
	if w, f := r.count(kindMain, "written"), r.count(kindMain, "failed"); w != 2 || f != 2 {
		t.Errorf("written %d, failed %d; want 2 and 2", w, f)
	}
}
