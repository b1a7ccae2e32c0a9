package analysis

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"
)

// fakeProm answers every query with a value per workload it was asked about.
type fakeProm struct{ queries atomic.Int32 }

func (f *fakeProm) Query(_ context.Context, _ string, _ time.Time, _ ...promv1.Option) (model.Value, promv1.Warnings, promv1.Infos, error) {
	f.queries.Add(1)
	var vec model.Vector
	for i := range 100 {
		vec = append(vec, &model.Sample{Metric: model.Metric{
			"destination_workload_namespace": "shop",
			"destination_workload":           model.LabelValue(fmt.Sprintf("w%d-canary", i)),
		}, Value: model.SampleValue(i)})
	}
	return vec, nil, nil, nil
}

// TestBatcherSharesQueries: a hundred canaries due together cost one query per
// metric, and each gets its own workload's values.
func TestBatcherSharesQueries(t *testing.T) {
	prom := &fakeProm{}
	// A window far longer than it takes to start a hundred goroutines.
	b := NewBatcher(New(prom, nil), 2*time.Second, time.Second)
	var wg sync.WaitGroup
	for i := range 100 {
		wg.Go(func() {
			got := b.Measure(t.Context(), Target{Namespace: "shop", Canary: fmt.Sprintf("w%d-canary", i), Primary: fmt.Sprintf("w%d", i),
				Window: time.Minute}, "sum(rate(checkouts_total[1m]))")
			if got.Err != nil || got.Canary.Requests != float64(i) || got.Primary.Requests != 0 || got.Values["sum(rate(checkouts_total[1m]))"].Series != 100 {
				t.Errorf("w%d: %+v", i, got)
			}
		})
	}
	wg.Wait()
	// Three for the built-in checks, one for the custom query they share.
	if n := prom.queries.Load(); n != 4 {
		t.Errorf("%d queries for 100 checks due together; want 4", n)
	}
}
