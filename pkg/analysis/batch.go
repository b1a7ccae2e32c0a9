package analysis

import (
	"context"
	"sync"
	"time"
)

// Batcher gathers the targets that fall due within a short delay of each
// other and measures them together, in one query per metric.
type Batcher struct {
	analyzer *Analyzer
	delay    time.Duration
	timeout  time.Duration

	mu      sync.Mutex
	pending *batch
}

type batch struct {
	targets []Target
	queries []string
	done    chan struct{}
	results map[Target]Measurement
	values  map[string]Value
}

// NewBatcher returns a Batcher that waits delay after the first check of a
// batch for others to join it, and gives each batch's queries timeout.
func NewBatcher(a *Analyzer, delay, timeout time.Duration) *Batcher {
	return &Batcher{analyzer: a, delay: delay, timeout: timeout}
}

// Measure measures one target and asks its custom checks' queries,
// together with any others that are due at about the same time: a query
// that several targets ask is asked once.
func (b *Batcher) Measure(ctx context.Context, t Target, queries ...string) Measurement {
	b.mu.Lock()
	if b.pending == nil {
		b.pending = &batch{done: make(chan struct{})}
		time.AfterFunc(b.delay, b.flush)
	}
	cur := b.pending
	cur.targets = append(cur.targets, t)
	cur.queries = append(cur.queries, queries...)
	b.mu.Unlock()

	select {
	case <-cur.done:
		m := cur.results[t]
		if len(queries) > 0 {
			m.Values = make(map[string]Value, len(queries))
			for _, q := range queries {
				m.Values[q] = cur.values[q]
			}
		}
		return m
	case <-ctx.Done():
		return Measurement{Err: ctx.Err()}
	}
}

func (b *Batcher) flush() {
	b.mu.Lock()
	cur := b.pending
	b.pending = nil
	b.mu.Unlock()

	ctx, cancel := context.WithTimeout(context.Background(), b.timeout)
	defer cancel()
	now := time.Now()
	cur.results = b.analyzer.Run(ctx, now, cur.targets)
	cur.values = b.analyzer.Values(ctx, now, cur.queries)
	close(cur.done)
}
