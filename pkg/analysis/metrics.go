package analysis

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// QueryMetrics registers sluice_prometheus_queries_total and
// sluice_prometheus_query_duration_seconds with reg, and returns the observer
// that New takes.
func QueryMetrics(reg prometheus.Registerer) func(result string, took time.Duration) {
	queries := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "sluice_prometheus_queries_total",
		Help: "Prometheus queries of the canary analysis, by result (success, error).",
	}, []string{"result"})
	duration := prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "sluice_prometheus_query_duration_seconds",
		Help:    "Time Prometheus takes to answer one analysis query.",
		Buckets: prometheus.ExponentialBuckets(0.001, 2, 14),
	})
	reg.MustRegister(queries, duration)
	for _, r := range []string{"success", "error"} {
		queries.WithLabelValues(r)
	}
	return func(result string, took time.Duration) {
		queries.WithLabelValues(result).Inc()
		duration.Observe(took.Seconds())
	}
}
