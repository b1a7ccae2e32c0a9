package cluster_test

import (
	"os"
	"sync"
	"testing"
	"time"

	"sluice.dev/sluice/test/cluster"
)

// signalWriter closes its channel on the first write.
type signalWriter struct {
	once sync.Once
	ch   chan struct{}
}

func (w *signalWriter) Write(p []byte) (int, error) {
	w.once.Do(func() { close(w.ch) })
	return len(p), nil
}

// TestAttachedPackagesTakeTurns: a second test package attached to the same
// cluster waits, and says so, until the first one's run ends.
func TestAttachedPackagesTakeTurns(t *testing.T) {
	dir := t.TempDir()
	first, err := cluster.LockCluster(dir, os.Stderr)
	if err != nil {
		t.Fatal(err)
	}
	waiting := &signalWriter{ch: make(chan struct{})}
	type result struct {
		f   *os.File
		err error
	}
	second := make(chan result, 1)
	go func() {
		f, err := cluster.LockCluster(dir, waiting)
		second <- result{f, err}
	}()
	select {
	case <-waiting.ch:
	case r := <-second:
		t.Fatalf("the second package took the cluster while the first held it (%v)", r.err)
	case <-time.After(30 * time.Second):
		t.Fatal("the second package neither waited nor took the cluster within 30s")
	}

	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-second:
		if r.err != nil {
			t.Fatalf("the second package, after the first ended: %v", r.err)
		}
		r.f.Close()
	case <-time.After(30 * time.Second):
		t.Fatal("the second package still waits 30s after the first ended")
	}
}
