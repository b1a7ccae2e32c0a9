package shift

import (
	"github.com/prometheus/client_golang/prometheus"
	appsv1 "k8s.io/api/apps/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"

	"sluice.dev/sluice/pkg/canary"
)

// phases lists every phase, for sluice_canary_phase.
var phases = []canary.Phase{
	canary.PhaseInitialized, canary.PhaseWaiting, canary.PhaseProgressing, canary.PhaseWaitingPromotion, canary.PhasePromoting,
	canary.PhaseSucceeded, canary.PhaseFailed,
}

// Metrics are the shifter's Prometheus metrics about canaries.
type Metrics struct {
	weight    *prometheus.GaugeVec
	phase     *prometheus.GaugeVec
	failed    *prometheus.GaugeVec
	check     *prometheus.GaugeVec
	threshold *prometheus.GaugeVec
	verdict   *prometheus.GaugeVec
	blind     *prometheus.GaugeVec
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
			Name: "sluice_canary_check_value", Help: "Last value of each analysis check, in the check's unit.",
		}, []string{"namespace", "name", "check"}),
		threshold: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "sluice_canary_check_threshold", Help: "Bounds of the good values of each analysis check (bound: min, max), in the check's unit.",
		}, []string{"namespace", "name", "check", "bound"}),
		verdict: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "sluice_canary_check_verdict", Help: "1 for the last verdict of each analysis check (Passed, Failed, Inconclusive, Blind), 0 for the others.",
		}, []string{"namespace", "name", "check", "verdict"}),
		blind: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "sluice_canary_blind", Help: "1 while the analysis of the canary cannot read its metrics.",
		}, []string{"namespace", "name"}),
		rollouts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_canary_rollouts_total", Help: "Finished canaries, by result (promoted, rolled_back).",
		}, []string{"namespace", "name", "result"}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "sluice_canary_rollout_duration_seconds", Help: "Time from a new revision to Succeeded or Failed.",
			Buckets: prometheus.ExponentialBuckets(5, 2, 12),
		}),
	}
	reg.MustRegister(m.weight, m.phase, m.failed, m.check, m.threshold, m.verdict, m.blind, m.rollouts, m.duration)
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
		labels := prometheus.Labels{"namespace": dep.Namespace, "name": dep.Name, "check": c.Name}
		if c.Value != nil {
			m.check.With(labels).Set(*c.Value)
		}
		for bound, v := range map[string]*float64{"min": c.Min, "max": c.Max} {
			if v != nil {
				m.threshold.MustCurryWith(labels).WithLabelValues(bound).Set(*v)
			}
		}
		for _, v := range verdicts {
			m.verdict.MustCurryWith(labels).WithLabelValues(string(v)).Set(is(v == c.Verdict))
		}
	}
	m.blind.WithLabelValues(dep.Namespace, dep.Name).Set(is(apimeta.IsStatusConditionTrue(st.Conditions, canary.ConditionBlind)))
	m.weight.WithLabelValues(dep.Namespace, dep.Name).Set(float64(st.CanaryWeight))
	m.failed.WithLabelValues(dep.Namespace, dep.Name).Set(float64(st.FailedChecks))
	for _, p := range phases {
		m.phase.WithLabelValues(dep.Namespace, dep.Name, string(p)).Set(is(p == st.Phase))
	}
}

// verdicts lists every verdict, for sluice_canary_check_verdict.
var verdicts = []canary.Verdict{canary.VerdictPassed, canary.VerdictFailed, canary.VerdictInconclusive, canary.VerdictBlind}

// is is a gauge's value for a condition: 1 or 0.
func is(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
