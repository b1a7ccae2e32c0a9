package main

import (
	"context"
	"fmt"
	"sync"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"sluice.dev/sluice/test/cluster"
	"sluice.dev/sluice/test/sluice"
)

// binary is one of sluice's processes, as test/sluice runs it.
type binary interface {
	Start() error
	Stop()
	Kill() error
	Pid() int
	Done() <-chan struct{}
}

// supervisor restarts a binary whenever it ends, as the kubelet restarts a
// container: after a back-off that doubles up to 8s while it keeps ending,
// and not before a fault's hold is over. A shifter that loses its Lease (etcd
// paused past its renew deadline) ends by itself, and comes back this way.
type supervisor struct {
	name string
	bin  binary
	mu   sync.Mutex
	// holdUntil is when a fault lets the binary come back.
	holdUntil time.Time
	// deliberate says that a fault ends the binary, not the binary itself.
	deliberate bool
	stopping   bool
	up         bool
	// selfExits counts the ends that no fault caused.
	selfExits int
	done      chan struct{}
}

func supervise(ctx context.Context, name string, bin binary, say func(string, ...any)) *supervisor {
	s := &supervisor{name: name, bin: bin, up: true, done: make(chan struct{})}
	go s.loop(ctx, say)
	return s
}

func (s *supervisor) loop(ctx context.Context, say func(string, ...any)) {
	defer close(s.done)
	backoff := 500 * time.Millisecond
	for {
		s.mu.Lock()
		exited, started := s.bin.Done(), time.Now()
		s.mu.Unlock()
		select {
		case <-exited:
		case <-ctx.Done():
			return
		}
		s.mu.Lock()
		if s.stopping {
			s.mu.Unlock()
			return
		}
		if !s.deliberate {
			s.selfExits++
			say("%s (pid %d) ended by itself; restarting it", s.name, s.bin.Pid())
		}
		if time.Since(started) > 30*time.Second {
			backoff = 500 * time.Millisecond
		}
		delay := max(backoff, time.Until(s.holdUntil))
		s.deliberate, s.up = false, false
		s.mu.Unlock()
		select {
		case <-time.After(delay):
		case <-ctx.Done():
			return
		}
		backoff = min(2*backoff, 8*time.Second)
		s.mu.Lock()
		if !s.stopping {
			if err := s.bin.Start(); err != nil {
				say("restart %s: %v", s.name, err)
			} else {
				s.up = true
			}
		}
		s.mu.Unlock()
	}
}

// kill ends the binary with SIGKILL and keeps it down for hold at least.
func (s *supervisor) kill(hold time.Duration) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.deliberate, s.up, s.holdUntil = true, false, time.Now().Add(hold)
	return s.bin.Kill()
}

// term ends the binary with SIGTERM, waiting for it to end: a leader gives
// its Lease up.
func (s *supervisor) term() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.deliberate, s.up = true, false
	s.bin.Stop()
}

// waitUp waits until the binary runs again.
func (s *supervisor) waitUp(ctx context.Context) error {
	return wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 2*time.Minute, true, func(context.Context) (bool, error) {
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.up, nil
	})
}

// stop stops the binary for good.
func (s *supervisor) stop() {
	s.mu.Lock()
	s.stopping = true
	s.bin.Stop()
	s.mu.Unlock()
	<-s.done
}

// injected is one fault as it happened.
type injected struct {
	fault
	start, end time.Time
	err        error
}

// inject runs one fault and heals it: it returns once the faulty part works
// again.
func (r *runner) inject(ctx context.Context, f fault) injected {
	in := injected{fault: f, start: time.Now()}
	in.err = r.injectErr(ctx, f)
	in.end = time.Now()
	return in
}

func (r *runner) injectErr(ctx context.Context, f fault) error {
	switch f.kind {
	case killShifter:
		s := r.shifters[f.replica]
		if err := s.kill(f.hold); err != nil {
			return err
		}
		return s.waitUp(ctx)
	case killWebhook:
		if err := r.webhook.kill(f.hold); err != nil {
			return err
		}
		return r.webhook.waitUp(ctx)
	case restartAPIServer:
		return r.env.Restart(ctx, "kube-apiserver")
	case pauseEtcd:
		etcd, err := r.process("etcd")
		if err != nil {
			return err
		}
		if err := etcd.Pause(); err != nil {
			return err
		}
		r.pause(context.WithoutCancel(ctx), f.hold)
		return etcd.Resume()
	case stopPrometheus:
		if err := r.env.StopPrometheus(); err != nil {
			return err
		}
		r.pause(context.WithoutCancel(ctx), f.hold)
		return r.env.StartPrometheus(context.WithoutCancel(ctx))
	case handOver:
		return r.handOver(ctx)
	}
	return fmt.Errorf("unknown fault %d", f.kind)
}

func (r *runner) process(name string) (*cluster.Process, error) {
	for _, p := range r.env.Processes() {
		if p.Name() == name {
			return p, nil
		}
	}
	return nil, fmt.Errorf("no %s among the control plane's processes", name)
}

// leaseName is the shifter's leader election Lease in sluice-system.
const leaseName = "sluice-shifter"

// handOver stops the leading shifter with SIGTERM, which gives its Lease up,
// and waits until the other holds the Lease; the supervisor starts the
// stopped one again.
func (r *runner) handOver(ctx context.Context) error {
	var holder string
	leader := -1
	err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		holder, leader = r.leaseHolder(ctx), r.leader()
		return holder != "" && leader >= 0, nil
	})
	if err != nil {
		return fmt.Errorf("find the leading shifter: %w", err)
	}
	r.shifters[leader].term()
	err = wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 2*time.Minute, true, func(ctx context.Context) (bool, error) {
		h := r.leaseHolder(ctx)
		return h != "" && h != holder, nil
	})
	if err != nil {
		return fmt.Errorf("the Lease stayed with %s: %w", holder, err)
	}
	return r.shifters[leader].waitUp(ctx)
}

// leaseHolder is the identity that holds the shifter's Lease; "" for none.
func (r *runner) leaseHolder(ctx context.Context) string {
	lease := &coordinationv1.Lease{}
	if err := r.client.Get(ctx, client.ObjectKey{Namespace: "sluice-system", Name: leaseName}, lease); err != nil {
		return ""
	}
	return ptr.Deref(lease.Spec.HolderIdentity, "")
}

// leader is the index of the shifter whose metrics say it leads; -1 if not
// exactly one does.
func (r *runner) leader() int {
	leading := -1
	for i, s := range r.shifterBins {
		families, err := sluice.Metrics(s.MetricsPort)
		if err != nil {
			continue
		}
		for _, m := range families["leader_election_master_status"].GetMetric() {
			if m.GetGauge().GetValue() == 1 {
				if leading >= 0 {
					return -1
				}
				leading = i
			}
		}
	}
	return leading
}
