package main

import (
	"bytes"
	"flag"
	"testing"
	"time"

	"github.com/go-logr/logr"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"sluice.dev/sluice/test/cluster"
)

var seed = flag.Uint64("seed", 0, "seed of TestChaos's schedule; 0: from the time")

// TestChaos runs a short round of the chaos suite: 8 Deployments until 30
// rollouts are done and 10 faults injected. Any violation fails it. The seed
// comes from the time and is printed; -args -seed N runs that schedule again.
func TestChaos(t *testing.T) {
	ctrllog.SetLogger(logr.Discard())
	o := options{seed: *seed, deployments: 8, rollouts: 30, minFaults: 10, interval: 2 * time.Second,
		settle: 2 * time.Minute, timeout: 8 * time.Minute, binDir: cluster.DefaultBinDir(), progress: t.Logf}
	rep, err := run(t.Context(), o)
	if rep != nil {
		var out bytes.Buffer
		rep.print(&out, o)
		t.Log("\n" + out.String())
	}
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.violations) > 0 {
		t.Errorf("%d violations with seed %d (go test ./test/chaos -run TestChaos -args -seed %d)", len(rep.violations), rep.seed, rep.seed)
	}
	if n := rep.ledger.completed(); n < o.rollouts {
		t.Errorf("%d rollouts completed; want %d", n, o.rollouts)
	}
}
