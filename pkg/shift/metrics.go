package shift

import (
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	appsv1 "k8s.io/api/apps/v1"

	"sluice.dev/sluice/pkg/canary"
)

// phases lists every phase, for sluice_canary_phase.
var phases = []canary.Phase{
	canary.PhaseInitialized, canary.PhaseProgressing, canary.PhasePromoting, canary.PhaseSucceeded, canary.PhaseFailed,
}

// Metrics are the shifter's Prometheus metrics about canaries.
type Metrics struct {
	weight    *prometheus.GaugeVec
	phase     *prometheus.GaugeVec
	failed    *prometheus.GaugeVec
	check     *prometheus.GaugeVec
	threshold *prometheus.GaugeVec
	rollouts  *prometheus.CounterVec
	duration  prometheus.Histogram
}

// NewMetrics creates the canary metrics and registers them with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		weight: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "sluice_canary_weight", Help: "Share of traffic, in percent, sent to the canary.",
		}, []string{"namespace", "name"}),
		phase: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "sluice_canary_phase", Help: "1 for the canary's current phase, 0 for the others.",
		}, []string{"namespace", "name", "phase"}),
		failed: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "sluice_canary_failed_checks", Help: "Failed checks of the canary under analysis.",
		}, []string{"namespace", "name"}),
		check: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "sluice_canary_check_value", Help: "Last value of each analysis check (percent, or milliseconds).",
		}, []string{"namespace", "name", "check"}),
		threshold: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "sluice_canary_check_threshold", Help: "Threshold each analysis check is compared with (percent, or milliseconds).",
		}, []string{"namespace", "name", "check"}),
		rollouts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_canary_rollouts_total", Help: "Finished canaries, by result (promoted, rolled_back).",
		}, []string{"namespace", "name", "result"}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "sluice_canary_rollout_duration_seconds", Help: "Time from a new revision to Succeeded or Failed.",
			Buckets: prometheus.ExponentialBuckets(5, 2, 12),
		}),
	}
	reg.MustRegister(m.weight, m.phase, m.failed, m.check, m.threshold, m.rollouts, m.duration)
	return m
}

// observe records the decision d about dep.
func (m *Metrics) observe(dep *appsv1.Deployment, d Decision) {
	st := d.Status
	if o := d.Outcome; o.Phase != "" {
		result := "promoted"
		if o.Phase == canary.PhaseFailed {
			result = "rolled_back"
		}
		m.rollouts.WithLabelValues(dep.Namespace, dep.Name, result).Inc()
		m.duration.Observe(o.Took.Seconds())
	}
	for _, c := range st.Checks {
		if v, err := strconv.ParseFloat(c.Value, 64); err == nil {
			m.check.WithLabelValues(dep.Namespace, dep.Name, c.Name).Set(v)
		}
		if v, ok := thresholdValue(c.Threshold); ok {
			m.threshold.WithLabelValues(dep.Namespace, dep.Name, c.Name).Set(v)
		}
	}
	m.weight.WithLabelValues(dep.Namespace, dep.Name).Set(float64(st.CanaryWeight))
	m.failed.WithLabelValues(dep.Namespace, dep.Name).Set(float64(st.FailedChecks))
	for _, p := range phases {
		v := 0.0
		if p == st.Phase {
			v = 1
		}
		m.phase.WithLabelValues(dep.Namespace, dep.Name, string(p)).Set(v)
	}
}

// thresholdValue reads a check's threshold ("99%", "500ms") in the unit of its
// value: percent, or milliseconds.
func thresholdValue(text string) (float64, bool) {
	if d, err := time.ParseDuration(text); err == nil {
		return float64(d) / float64(time.Millisecond), true
	}
	v, err := strconv.ParseFloat(strings.TrimSuffix(text, "%"), 64)
	return v, err == nil
}
