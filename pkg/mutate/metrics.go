package mutate

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	admissionv1 "k8s.io/api/admission/v1"
)

// Metrics are the webhook's Prometheus metrics.
type Metrics struct {
	admissions *prometheus.CounterVec
	duration   prometheus.Histogram
}

// NewMetrics creates the webhook's metrics and registers them with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		admissions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_webhook_admissions_total",
			Help: "Admission requests for Deployments, by operation and result (diverted, passed, cleared, denied, error).",
		}, []string{"operation", "result"}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "sluice_webhook_admission_duration_seconds",
			Help: "Time the webhook takes to decide on one admission request.",
			// From 25µs to about 0.4s: a decision takes well under a millisecond.
			Buckets: prometheus.ExponentialBuckets(0.000025, 2, 15),
		}),
	}
	reg.MustRegister(m.admissions, m.duration)
	// Every series exists from the start, so that "none yet" reads as 0.
	for _, op := range []admissionv1.Operation{admissionv1.Create, admissionv1.Update} {
		for _, v := range []Verdict{Diverted, Passed, Cleared, Denied, Errored} {
			m.admissions.WithLabelValues(string(op), string(v))
		}
	}
	return m
}

func (m *Metrics) observe(op admissionv1.Operation, v Verdict, took time.Duration) {
	// The operation comes from the request: bound the label's values.
	if op != admissionv1.Create && op != admissionv1.Update {
		op = "other"
	}
	m.admissions.WithLabelValues(string(op), string(v)).Inc()
	m.duration.Observe(took.Seconds())
}
