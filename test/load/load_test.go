package main

import (
	"bytes"
	"testing"
	"time"

	"sluice.dev/sluice/test/cluster"
)

// TestLoadCommand runs a small round of the load command, with a custom
// check and webhooks (one receiver that never answers): every canary
// succeeds, each step is measured, every main event is written, and a
// rollout costs at most 26 API requests, counted from the audit log, besides
// what halts and holds cost (25 until the weight that reaches max-weight was
// analysed too, with a status write of its own). At a 2s interval, on a
// busy machine, an analysis may find no data in Prometheus yet: it fails
// (a status write and an event for each failing check) or holds the weight
// for want of requests (a status write and an event).
func TestLoadCommand(t *testing.T) {
	var out bytes.Buffer
	o := options{canaries: []int{3}, interval: 2 * time.Second, timeout: 5 * time.Minute, binDir: cluster.DefaultBinDir(),
		customCheck: true, webhooks: true, out: &out, progress: t.Logf}
	reports, err := run(t.Context(), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Log(out.String())
	r := reports[0]
	if len(r.applyToSucceeded) != 3 || len(r.stepLags) != 3*3 {
		t.Errorf("%d canaries succeeded with %d steps measured; want 3 with 3 steps each after the first", len(r.applyToSucceeded), len(r.stepLags))
	}
	if perRollout := float64(r.totalRequests()-r.haltRequests-r.holdRequests) / 3; perRollout > 26 || r.requests["update canaries/status"] == 0 {
		t.Errorf("%.1f API requests per rollout besides %d halts (%d requests) and %d holds (%d requests), by kind %v; want at most 26",
			perRollout, r.halts, r.haltRequests, r.holds, r.holdRequests, r.requests)
	}
	if r.events.main != 3*mainEventsPerRollout {
		t.Errorf("%d main events written; want %d", r.events.main, 3*mainEventsPerRollout)
	}
	if r.webhookCalls["rollout"] < 3*4 || r.webhookCalls["event"] == 0 {
		t.Errorf("webhook calls %v; want a rollout call per analysis (4 per canary), and event calls", r.webhookCalls)
	}
	if r.peakRSS == 0 || r.cpuBy["kube-apiserver"] == 0 {
		t.Errorf("peak RSS %d, CPU by process %v; want both measured", r.peakRSS, r.cpuBy)
	}
}
