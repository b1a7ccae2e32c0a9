package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/tools/cache"
)

// follower keeps the objects of one or more watches up to date, with
// informers (a list, then a watch that resumes where it broke off), and
// signals every change on one channel: a live view draws the latest state
// of all of them, and never polls.
type follower struct {
	// changed gets a value after a change; changes in a burst are drawn
	// once.
	changed chan struct{}
	// failed gets the error that ends the view: a refusal, or a resource
	// the API server does not serve.
	failed chan error
	// warn gets the errors the informers retry, once per message.
	warn io.Writer

	mu        sync.Mutex
	warned    map[string]bool
	informers []cache.SharedIndexInformer
}

func newFollower(warn io.Writer) *follower {
	return &follower{changed: make(chan struct{}, 1), failed: make(chan error, 1), warn: warn, warned: map[string]bool{}}
}

// follow adds an informer of what lw lists and watches, objects like
// example; req explains its errors. It returns the informer's store.
func (f *follower) follow(lw cache.ListerWatcher, example runtime.Object, req Request) cache.Store {
	inf := cache.NewSharedIndexInformer(lw, example, 0, cache.Indexers{})
	_ = inf.SetWatchErrorHandlerWithContext(func(_ context.Context, _ *cache.Reflector, err error) {
		f.watchError(req, err)
	})
	signal := func() {
		select {
		case f.changed <- struct{}{}:
		default:
		}
	}
	_, _ = inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { signal() },
		UpdateFunc: func(any, any) { signal() },
		DeleteFunc: func(any) { signal() },
	})
	f.informers = append(f.informers, inf)
	return inf.GetStore()
}

// watchError ends the view on an error that retrying cannot cure, and
// tells the others, which the informer retries with backoff: an API server
// that restarts, a network that drops.
func (f *follower) watchError(req Request, err error) {
	switch {
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), apierrors.IsResourceExpired(err), apierrors.IsGone(err):
		// A watch that ended, or outlived its resourceVersion: the
		// informer resumes or lists again.
	case apierrors.IsForbidden(err), apierrors.IsUnauthorized(err), apierrors.IsNotFound(err):
		select {
		case f.failed <- req.Explain(err):
		default:
		}
	default:
		msg := req.Explain(err).Error()
		f.mu.Lock()
		defer f.mu.Unlock()
		if !f.warned[msg] {
			f.warned[msg] = true
			fmt.Fprintf(f.warn, "warning: %s; retrying\n", msg)
		}
	}
}

// start runs the informers until ctx ends, and waits until each has
// listed what it follows, or one failed.
func (f *follower) start(ctx context.Context) error {
	synced := make([]cache.InformerSynced, 0, len(f.informers))
	for _, inf := range f.informers {
		go inf.RunWithContext(ctx)
		synced = append(synced, inf.HasSynced)
	}
	done := make(chan bool, 1)
	go func() { done <- cache.WaitForCacheSync(ctx.Done(), synced...) }()
	select {
	case err := <-f.failed:
		return err
	case ok := <-done:
		if !ok {
			return ctx.Err()
		}
		return nil
	}
}
