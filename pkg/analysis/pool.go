package analysis

import (
	"sync"
	"time"

	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"

	"sluice.dev/sluice/pkg/promconn"
)

// Pool keeps one Batcher per Prometheus connection that policies name, so
// that the canaries that query one Prometheus share its batches.
type Pool struct {
	newBatcher func(promv1.API) *Batcher

	mu       sync.Mutex
	batchers map[string]*pooled
}

type pooled struct {
	*Batcher
	used time.Time
}

// idle is how long a connection that no canary uses is kept: a rotated
// password makes a new one, and the old one must not stay for ever.
const idle = time.Hour

// NewPool returns a Pool that makes the Batcher of a new connection with
// newBatcher.
func NewPool(newBatcher func(promv1.API) *Batcher) *Pool {
	return &Pool{newBatcher: newBatcher, batchers: map[string]*pooled{}}
}

// For returns the Batcher of c, made on first use.
func (p *Pool) For(c promconn.Connection) (*Batcher, error) {
	key, now := c.Key(), time.Now()
	p.mu.Lock()
	defer p.mu.Unlock()
	for k, b := range p.batchers {
		if now.Sub(b.used) > idle {
			delete(p.batchers, k)
		}
	}
	if b, ok := p.batchers[key]; ok {
		b.used = now
		return b.Batcher, nil
	}
	api, err := c.API()
	if err != nil {
		return nil, err
	}
	b := &pooled{Batcher: p.newBatcher(api), used: now}
	p.batchers[key] = b
	return b.Batcher, nil
}
