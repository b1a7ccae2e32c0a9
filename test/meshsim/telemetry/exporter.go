package telemetry

import (
	"context"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Exporter runs a Load and serves its telemetry on a loopback port, for
// Prometheus to scrape.
type Exporter struct {
	*Load
	// Addr is the host:port of the /metrics endpoint.
	Addr   string
	srv    *http.Server
	cancel context.CancelFunc
	done   chan struct{}
}

// StartExporter starts a Load that records perTick requests per workload
// every tick, and serves it.
func StartExporter(tick time.Duration, perTick int) (*Exporter, error) {
	reg := prometheus.NewRegistry()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	e := &Exporter{
		Load:   NewLoad(New(reg)),
		Addr:   l.Addr().String(),
		srv:    &http.Server{Handler: promhttp.HandlerFor(reg, promhttp.HandlerOpts{}), ReadHeaderTimeout: 5 * time.Second},
		cancel: cancel,
		done:   make(chan struct{}),
	}
	go func() { _ = e.srv.Serve(l) }()
	go func() {
		defer close(e.done)
		e.Run(ctx, tick, perTick)
	}()
	return e, nil
}

// Stop stops the load and the server.
func (e *Exporter) Stop() {
	e.cancel()
	<-e.done
	_ = e.srv.Close()
}
