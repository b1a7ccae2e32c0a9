package shift

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// writes remembers the resourceVersion of every object the shifter wrote
// until its cache has caught up with it: the expectations of Kubernetes'
// own controllers. A reconcile that reads an object older than the shifter's
// own last write of it would decide on the past and write the same change
// again; instead it waits for the watch event of that write, which brings
// the Deployment back by itself for the objects it owns (an adopted
// VirtualService, which it does not own, relies on the requeue).
type writes struct {
	mu     sync.Mutex
	last   map[writeKey]written
	pruned time.Time
}

type writeKey struct {
	kind      reflect.Type
	namespace string
	name      string
}

type written struct {
	resourceVersion string
	at              time.Time
	// created: the write made the object, so its absence from the cache
	// means the cache is behind, not that someone deleted it.
	created bool
}

// forgetAfter is how long a write is waited for at most. A write that never
// shows (the object was deleted meanwhile) must not hold a canary forever.
const forgetAfter = 30 * time.Second

func keyOf(obj client.Object) writeKey {
	return writeKey{reflect.TypeOf(obj), obj.GetNamespace(), obj.GetName()}
}

// record notes that obj, as the API server returned it, was written at now;
// created says the write made it.
func (w *writes) record(obj client.Object, created bool, now time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.last == nil {
		w.last = map[writeKey]written{}
	}
	if now.Sub(w.pruned) > forgetAfter {
		// Writes of objects never read again, a deleted one for instance,
		// would stay for good; a sweep once in a while is enough.
		for key, last := range w.last {
			if now.Sub(last.at) > forgetAfter {
				delete(w.last, key)
			}
		}
		w.pruned = now
	}
	key := keyOf(obj)
	if last, ok := w.last[key]; ok && !notOlder(obj.GetResourceVersion(), last.resourceVersion) {
		// Two reconciles wrote one shared object, such as an adopted
		// VirtualService; the newer write counts.
		return
	}
	w.last[key] = written{obj.GetResourceVersion(), now, created}
}

// stale reports whether the cache's copy of an object is older than the
// shifter's last write of it. obj names the object; found says whether the
// cache has it, and then obj is the cache's copy.
func (w *writes) stale(obj client.Object, found bool, now time.Time) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	key := keyOf(obj)
	last, ok := w.last[key]
	switch {
	case !ok:
		return false
	case now.Sub(last.at) > forgetAfter:
		delete(w.last, key)
		return false
	case !found && !last.created:
		// Deleted since the shifter last wrote it.
		delete(w.last, key)
		return false
	case !found || !notOlder(obj.GetResourceVersion(), last.resourceVersion):
		return true
	}
	delete(w.last, key)
	return false
}

// notOlder reports whether resourceVersion a is the same as b or newer.
// resourceVersions are opaque, but the API server's are etcd revisions,
// which increase; anything else must be equal.
func notOlder(a, b string) bool {
	x, errA := strconv.ParseUint(a, 10, 64)
	y, errB := strconv.ParseUint(b, 10, 64)
	if errA != nil || errB != nil {
		return a == b
	}
	return x >= y
}

// errBehind says that the cache has not caught up with the shifter's own
// last write of an object yet; the watch event of that write brings the
// Deployment back.
var errBehind = errors.New("the cache is behind the shifter's own writes")

// wrote records an update the shifter made, as the API server returned it.
func (r *Reconciler) wrote(obj client.Object) { r.writes.record(obj, false, r.now()) }

// created records an object the shifter created, as the API server returned
// it.
func (r *Reconciler) created(obj client.Object) { r.writes.record(obj, true, r.now()) }

// read gets obj from the cache and reports whether it is there, or
// errBehind if the cache has not seen the shifter's last write of it yet.
func (r *Reconciler) read(ctx context.Context, key types.NamespacedName, obj client.Object) (bool, error) {
	err := r.Client.Get(ctx, key, obj)
	if err != nil && !apierrors.IsNotFound(err) {
		return false, fmt.Errorf("read %T %s: %w", obj, key, err)
	}
	found := err == nil
	if !found {
		obj.SetNamespace(key.Namespace)
		obj.SetName(key.Name)
	}
	if r.writes.stale(obj, found, r.now()) {
		return found, errBehind
	}
	return found, nil
}
