package mesh

import (
	"context"
	"errors"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"k8s.io/client-go/rest"

	"sluice.dev/sluice/test/meshsim/telemetry"
)

// Options configure Start.
type Options struct {
	// Listen is the host:port of the mesh's HTTP entry, routing by the Host
	// header; "127.0.0.1:0" picks a free port.
	Listen string
	// MetricsListen is the host:port of the telemetry's /metrics.
	MetricsListen string
	// RPS is the background load per route object (VirtualService or
	// HTTPRoute) and second; 0 for none.
	RPS int
	// Clients are the kinds of client in the background load, each with
	// its share of the requests and the headers they carry; the requests
	// of no client carry none.
	Clients []Client
}

// Server is a running simulator.
type Server struct {
	// Addr is the host:port of the HTTP entry; MetricsAddr of /metrics.
	Addr, MetricsAddr string

	cancel  context.CancelFunc
	servers []*http.Server
	wg      sync.WaitGroup
}

// Start runs a simulated mesh for the cluster cfg points at.
func Start(ctx context.Context, cfg *rest.Config, o Options) (*Server, error) {
	if err := ValidateClients(o.Clients); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	s := &Server{cancel: cancel}
	c, err := NewCache(ctx, cfg)
	if err != nil {
		cancel()
		return nil, err
	}
	reg := prometheus.NewRegistry()
	m := New(c, telemetry.New(reg))
	for _, l := range []struct {
		addr    *string
		listen  string
		handler http.Handler
	}{
		{&s.Addr, o.Listen, m},
		{&s.MetricsAddr, o.MetricsListen, promhttp.HandlerFor(reg, promhttp.HandlerOpts{})},
	} {
		ln, err := net.Listen("tcp", l.listen)
		if err != nil {
			s.Stop()
			return nil, err
		}
		*l.addr = ln.Addr().String()
		srv := &http.Server{Handler: l.handler, ReadHeaderTimeout: 5 * time.Second}
		s.servers = append(s.servers, srv)
		s.wg.Go(func() {
			if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
				cancel()
			}
		})
	}
	if o.RPS > 0 {
		s.wg.Go(func() { m.Generate(ctx, o.RPS, o.Clients) })
	}
	return s, nil
}

// Stop stops the servers, the load and the cache.
func (s *Server) Stop() {
	s.cancel()
	for _, srv := range s.servers {
		_ = srv.Close()
	}
	s.wg.Wait()
}
