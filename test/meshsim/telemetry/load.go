package telemetry

import (
	"context"
	"sync"
	"time"
)

// Behaviour is how a simulated workload answers.
type Behaviour struct {
	// ErrorRate is the share of requests answered 500, 0..1.
	ErrorRate float64
	// Latency is the duration of every request.
	Latency time.Duration
	// CheckoutRate is the share of requests that complete a checkout, 0..1.
	CheckoutRate float64
}

type workload struct{ namespace, name string }

// Load records synthetic requests to workloads, without any HTTP: for tests
// that need Istio's telemetry of workloads but not their answers.
type Load struct {
	tel    *Telemetry
	mu     sync.Mutex
	behave map[workload]Behaviour
}

// NewLoad returns a Load that records into t.
func NewLoad(t *Telemetry) *Load {
	return &Load{tel: t, behave: map[workload]Behaviour{}}
}

// Set makes the workload name in namespace receive requests that behave as b.
func (l *Load) Set(namespace, name string, b Behaviour) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.behave[workload{namespace, name}] = b
}

// Clear stops the requests to every workload.
func (l *Load) Clear() {
	l.mu.Lock()
	defer l.mu.Unlock()
	clear(l.behave)
}

// Run records perTick requests to each workload every tick until ctx ends.
// Errors and checkouts are spread evenly: of every 100 requests,
// ErrorRate*100 fail and CheckoutRate*100 complete a checkout.
func (l *Load) Run(ctx context.Context, tick time.Duration, perTick int) {
	t := time.NewTicker(tick)
	defer t.Stop()
	for n := 0; ; n++ {
		l.mu.Lock()
		for w, b := range l.behave {
			for i := range perTick {
				code, share := 200, float64((n*perTick+i)%100)
				if share < b.ErrorRate*100 {
					code = 500
				}
				l.tel.Record(Request{Namespace: w.namespace, Workload: w.name, Service: w.name, Code: code, Duration: b.Latency,
					Checkout: share < b.CheckoutRate*100})
			}
		}
		l.mu.Unlock()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
