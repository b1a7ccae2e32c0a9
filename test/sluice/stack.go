package sluice

import (
	"os"
	"time"

	"sluice.dev/sluice/test/cluster"
	"sluice.dev/sluice/test/meshsim/telemetry"
)

// Stack is sluice as the integration tests run it against a control plane:
// its webhook and its shifter, and an exporter of the canaries' telemetry
// that Prometheus scrapes, each test setting how its canary answers.
type Stack struct {
	// Dir is the stack's folder: binaries, certificates, logs.
	Dir     string
	Webhook *Webhook
	Shifter *Shifter
	Mesh    *telemetry.Exporter
}

// StartStack starts a Stack in a new folder whose name begins with prefix;
// shifterArgs are extra flags of the shifter. On an error it stops what it
// started.
func StartStack(env *cluster.Cluster, prefix string, shifterArgs ...string) (*Stack, error) {
	dir, err := os.MkdirTemp("", prefix)
	if err != nil {
		return nil, err
	}
	s := &Stack{Dir: dir}
	if err := s.start(env, shifterArgs); err != nil {
		s.Stop()
		return nil, err
	}
	return s, nil
}

func (s *Stack) start(env *cluster.Cluster, shifterArgs []string) error {
	var err error
	if s.Webhook, err = StartWebhook(env, s.Dir); err != nil {
		return err
	}
	// 20 requests every 100ms per canary workload: enough to judge each
	// step of a 2s interval.
	if s.Mesh, err = telemetry.StartExporter(100*time.Millisecond, 20); err != nil {
		return err
	}
	if err := env.SetScrapeTargets("mesh", s.Mesh.Addr); err != nil {
		return err
	}
	s.Shifter, err = StartShifter(env, s.Dir, "shifter", shifterArgs...)
	return err
}

// Stop stops what the Stack runs, by PID, and removes its folder; a nil
// Stack is nothing to stop.
func (s *Stack) Stop() {
	if s == nil {
		return
	}
	if s.Shifter != nil {
		s.Shifter.Stop()
	}
	if s.Webhook != nil {
		s.Webhook.Stop()
	}
	if s.Mesh != nil {
		s.Mesh.Stop()
	}
	_ = os.RemoveAll(s.Dir)
}
