package loadtest

import (
	"container/list"
	"time"
)

// deliveries are the runs by Sluice-Delivery id: sluice repeats a call when
// an attempt timed out or after the shifter restarted, and a repeat must
// neither send a second load nor run a test twice. Runs going on are kept
// until they end, finished ones for ttl and at most max of them, the oldest
// dropped first. The caller holds the Server's mutex.
type deliveries struct {
	ttl time.Duration
	max int
	ids map[string]*run
	// done are the finished runs, oldest first.
	done *list.List
}

func newDeliveries(ttl time.Duration, max int) *deliveries {
	return &deliveries{ttl: ttl, max: max, ids: map[string]*run{}, done: list.New()}
}

// get returns the run of id, unless it is unknown or its answer expired.
func (d *deliveries) get(id string, now time.Time) *run {
	d.expire(now)
	return d.ids[id]
}

// add keeps a run that has started.
func (d *deliveries) add(rn *run) { d.ids[rn.delivery] = rn }

// finished starts rn's time to live, and drops the oldest answers beyond max.
func (d *deliveries) finished(rn *run) {
	d.done.PushBack(rn)
	for d.done.Len() > d.max {
		d.drop(d.done.Front())
	}
}

func (d *deliveries) expire(now time.Time) {
	for e := d.done.Front(); e != nil && now.Sub(e.Value.(*run).finishedAt) >= d.ttl; e = d.done.Front() {
		d.drop(e)
	}
}

func (d *deliveries) drop(e *list.Element) {
	rn := d.done.Remove(e).(*run)
	delete(d.ids, rn.delivery)
}
