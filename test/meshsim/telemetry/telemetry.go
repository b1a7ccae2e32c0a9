// Package telemetry exports Istio's standard request metrics, named and
// labelled as Istio's Envoy sidecars export them, for a simulated mesh: sluice
// analyses what Prometheus scrapes from here exactly as it would a real mesh.
package telemetry

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// DurationBuckets are Istio's default buckets of
// istio_request_duration_milliseconds.
var DurationBuckets = []float64{0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 300000, 600000, 1800000, 3600000}

var labels = []string{
	"reporter", "source_workload", "source_workload_namespace",
	"destination_workload", "destination_workload_namespace", "destination_app", "destination_version",
	"destination_service", "destination_service_name", "destination_service_namespace",
	"request_protocol", "response_code", "response_flags", "connection_security_policy",
}

// Telemetry holds the metrics of one simulated mesh, and the business
// metric of its applications.
type Telemetry struct {
	requests  *prometheus.CounterVec
	duration  *prometheus.HistogramVec
	checkouts *prometheus.CounterVec
}

// New creates the metrics and registers them with reg.
func New(reg prometheus.Registerer) *Telemetry {
	t := &Telemetry{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "istio_requests_total",
			Help: "Requests, as Istio's sidecars count them.",
		}, labels),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "istio_request_duration_milliseconds",
			Help:    "Request durations, as Istio's sidecars measure them.",
			Buckets: DurationBuckets,
		}, labels),
		checkouts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "shop_checkouts_total",
			Help: "Checkouts completed: the simulated applications' own business metric, for custom checks.",
		}, []string{"namespace", "workload"}),
	}
	reg.MustRegister(t.requests, t.duration, t.checkouts)
	return t
}

// Request describes one request that reached a workload.
type Request struct {
	Namespace, Workload, Service string
	Code                         int
	Duration                     time.Duration
	// Checkout: the request completed a checkout.
	Checkout bool
}

// Record counts one request as the destination's sidecar reports it.
func (t *Telemetry) Record(r Request) {
	values := []string{
		"destination", "istio-ingressgateway", "istio-system",
		r.Workload, r.Namespace, r.Workload, "unknown",
		r.Service + "." + r.Namespace + ".svc.cluster.local", r.Service, r.Namespace,
		"http", strconv.Itoa(r.Code), "-", "mutual_tls",
	}
	t.requests.WithLabelValues(values...).Inc()
	t.duration.WithLabelValues(values...).Observe(float64(r.Duration) / float64(time.Millisecond))
	// The counter exists, at 0, from a workload's first request, as a
	// well-instrumented application exports it: a query of its increase
	// then has data as soon as the requests' counter does.
	checkouts := t.checkouts.WithLabelValues(r.Namespace, r.Workload)
	if r.Checkout {
		checkouts.Inc()
	}
}
