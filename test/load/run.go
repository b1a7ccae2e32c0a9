package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"sigs.k8s.io/controller-runtime/pkg/client"

	"sluice.dev/sluice/pkg/shift"
	"sluice.dev/sluice/test/cluster"
	"sluice.dev/sluice/test/meshsim/telemetry"
	"sluice.dev/sluice/test/sluice"
)

// auditPolicy logs the shifter's requests, and nobody else's.
const auditPolicy = `apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
  - level: Metadata
    users: ["` + sluice.ShifterUser + `"]
  - level: None
`

// bench is what the rounds share: one control plane, the webhook, the
// shifter and the simulated telemetry.
type bench struct {
	o       options
	env     *cluster.Cluster
	webhook *sluice.Webhook
	shifter *sluice.Shifter
	mesh    *telemetry.Exporter
	client  client.Client
	rounds  int
	// answering and hanging receive the webhooks of --webhooks: the first
	// answers at once, the second never.
	answering, hanging *sluice.Receiver
}

// run starts everything, runs one round per entry of o.canaries, and stops
// everything again, also on failure.
func run(ctx context.Context, o options) (reports []report, err error) {
	dir, err := os.MkdirTemp("", "sluice-load-")
	if err != nil {
		return nil, err
	}
	var stops []func() error
	defer func() {
		for i := len(stops) - 1; i >= 0; i-- {
			err = errors.Join(err, stops[i]())
		}
		if err != nil {
			o.say("the logs are kept in %s", dir)
			return
		}
		err = os.RemoveAll(dir)
	}()

	o.say("starting the local control plane")
	env, err := cluster.Start(ctx, cluster.Options{Dir: filepath.Join(dir, "cluster"), BinDir: o.binDir, AuditPolicy: auditPolicy, Progress: os.Stderr})
	if err != nil {
		return nil, err
	}
	stops = append(stops, env.Stop)
	o.say("building and starting the webhook and the shifter")
	hook, err := sluice.StartWebhook(env, dir)
	if err != nil {
		return nil, err
	}
	stops = append(stops, func() error { hook.Stop(); return nil })
	mesh, err := telemetry.StartExporter(loadTick, requestsPerTick)
	if err != nil {
		return nil, err
	}
	stops = append(stops, func() error { mesh.Stop(); return nil })
	if err := env.SetScrapeTargets("mesh", mesh.Addr); err != nil {
		return nil, err
	}
	shifter, err := sluice.StartShifter(env, dir, "shifter")
	if err != nil {
		return nil, err
	}
	stops = append(stops, func() error { shifter.Stop(); return nil })
	scheme, err := shift.NewScheme()
	if err != nil {
		return nil, err
	}
	c, err := newClient(env, scheme)
	if err != nil {
		return nil, err
	}

	b := &bench{o: o, env: env, webhook: hook, shifter: shifter, mesh: mesh, client: c}
	if o.webhooks {
		b.answering, b.hanging = sluice.StartReceiver(nil), sluice.StartReceiver(nil)
		b.hanging.Answer("rollback", sluice.Hang)
		b.hanging.Answer("event", sluice.Hang)
		stops = append(stops, func() error { b.answering.Close(); b.hanging.Close(); return nil })
	}
	for _, n := range o.canaries {
		o.say("round of %d canaries", n)
		r, err := b.round(ctx, n)
		if err != nil {
			return reports, fmt.Errorf("round of %d canaries: %w", n, err)
		}
		reports = append(reports, r)
		r.print(o.out)
	}
	return reports, nil
}
