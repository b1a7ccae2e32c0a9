package shifter_test

import (
	"strings"
	"testing"
	"time"

	"sluice.dev/sluice/pkg/canary"
	"sluice.dev/sluice/test/meshsim/telemetry"
)

// lessonManifest has the classic lesson's settings (step 20, max 70,
// threshold 5) with a 10s interval: the settings Flagger was measured with on
// this kind of control plane (77s to Succeeded, 78s to Failed).
func lessonManifest(image string) string {
	m := manifest(image)
	for _, r := range [][2]string{
		{`sluice.dev/interval: 2s`, `sluice.dev/interval: 10s`},
		{`sluice.dev/analysis-window: 5s`, `sluice.dev/analysis-window: 1m`},
		{`sluice.dev/threshold: "3"`, `sluice.dev/threshold: "5"`},
		{`sluice.dev/progress-deadline: 1m`, `sluice.dev/progress-deadline: 10m`},
	} {
		m = strings.Replace(m, r[0], r[1], 1)
	}
	return m
}

// BenchmarkLessonRollout times one canary from kubectl apply to Succeeded
// (healthy) and one from kubectl apply to Failed (half its requests fail).
// Each run takes about a minute and a half: use -benchtime=1x.
func BenchmarkLessonRollout(b *testing.B) {
	setup(b)
	c := newClient(b)
	var succeeded, failed time.Duration
	for range b.N {
		for _, tc := range []struct {
			errorRate float64
			phase     canary.Phase
			took      *time.Duration
		}{{0, canary.PhaseSucceeded, &succeeded}, {0.5, canary.PhaseFailed, &failed}} {
			ns := env.NewNamespace(b)
			mesh.Set(ns, app+"-canary", telemetry.Behaviour{ErrorRate: tc.errorRate, Latency: 20 * time.Millisecond})
			kubectlApply(b, ns, lessonManifest("example.com/web:v1"))
			waitPhase(b, c, ns, canary.PhaseInitialized, 30*time.Second)
			start := time.Now()
			kubectlApply(b, ns, lessonManifest("example.com/web:v2"))
			waitPhase(b, c, ns, tc.phase, 3*time.Minute)
			*tc.took += time.Since(start)
		}
	}
	b.ReportMetric(succeeded.Seconds()/float64(b.N), "s-to-succeeded")
	b.ReportMetric(failed.Seconds()/float64(b.N), "s-to-failed")
}
