package hooks

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"sluice.dev/sluice/pkg/canary"
)

// Metrics count the webhook calls.
type Metrics struct {
	calls    *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

// NewMetrics registers sluice_hook_calls_total and
// sluice_hook_call_duration_seconds with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		calls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_hook_calls_total",
			Help: "Lifecycle webhook calls, by webhook type and result (Succeeded, Failed, Unreachable), retries included in one call.",
		}, []string{"type", "result"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "sluice_hook_call_duration_seconds",
			Help:    "Time from the start of a lifecycle webhook call to its result, retries included.",
			Buckets: prometheus.ExponentialBuckets(0.005, 4, 9),
		}, []string{"type"}),
	}
	reg.MustRegister(m.calls, m.duration)
	return m
}

func (m *Metrics) observe(t canary.HookType, result canary.HookResult, took time.Duration) {
	if m == nil {
		return
	}
	m.calls.WithLabelValues(string(t), string(result)).Inc()
	m.duration.WithLabelValues(string(t)).Observe(took.Seconds())
}
