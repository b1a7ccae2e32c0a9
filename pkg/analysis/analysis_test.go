package analysis

import (
	"context"
	"errors"
	"fmt"
	"math"
	"testing"
	"time"

	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"
)

func TestQueries(t *testing.T) {
	one := []Target{{Namespace: "shop", Workload: "web-canary", Window: time.Minute}}
	// Unsorted, with a repeated namespace and a workload that needs quoting
	// as a regular expression.
	several := []Target{
		{Namespace: "shop", Workload: "web-canary"},
		{Namespace: "jx-staging", Workload: "api.v2-canary"},
		{Namespace: "shop", Workload: "cart-canary"},
	}
	for _, tc := range []struct {
		name string
		got  string
		want string
	}{
		{"success rate, one target", successRateQuery(time.Minute, one),
			`(sum by (destination_workload_namespace, destination_workload) (rate(istio_requests_total{reporter="destination",destination_workload_namespace=~"shop",destination_workload=~"web-canary",response_code!~"5.*"}[1m]))` +
				` or sum by (destination_workload_namespace, destination_workload) (rate(istio_requests_total{reporter="destination",destination_workload_namespace=~"shop",destination_workload=~"web-canary"}[1m])) * 0)` +
				` / sum by (destination_workload_namespace, destination_workload) (rate(istio_requests_total{reporter="destination",destination_workload_namespace=~"shop",destination_workload=~"web-canary"}[1m])) * 100`},
		{"duration, several targets", durationQuery(90*time.Second, several),
			`histogram_quantile(0.99, sum by (le, destination_workload_namespace, destination_workload) (rate(istio_request_duration_milliseconds_bucket{reporter="destination",` +
				`destination_workload_namespace=~"jx-staging|shop",destination_workload=~"api\\.v2-canary|cart-canary|web-canary"}[1m30s])))`},
	} {
		if tc.got != tc.want {
			t.Errorf("%s:\n  %s\nwant\n  %s", tc.name, tc.got, tc.want)
		}
	}
}

// answers is a Prometheus that returns one value per workload of shop, or
// an error.
type answers struct {
	values map[string]float64
	err    error
	kind   model.Value
}

func (a answers) Query(context.Context, string, time.Time, ...promv1.Option) (model.Value, promv1.Warnings, promv1.Infos, error) {
	if a.err != nil || a.kind != nil {
		return a.kind, nil, nil, a.err
	}
	var vec model.Vector
	for w, v := range a.values {
		vec = append(vec, &model.Sample{Metric: model.Metric{"destination_workload_namespace": "shop", "destination_workload": model.LabelValue(w)},
			Value: model.SampleValue(v)})
	}
	return vec, nil, nil, nil
}

// TestResultsSayWhyThereIsNoValue: no series, a NaN (no requests in the
// window), a failing Prometheus and an answer of the wrong type each give an
// error users can act on.
func TestResultsSayWhyThereIsNoValue(t *testing.T) {
	target := Target{Namespace: "shop", Workload: "web-canary", Window: time.Minute}
	noValues := "no values found for metric request-success-rate, probably not receiving traffic"
	for _, tc := range []struct {
		name  string
		prom  Querier
		value float64
		err   string
	}{
		{"value", answers{values: map[string]float64{"web-canary": 99.5}}, 99.5, ""},
		{"no series", answers{values: map[string]float64{"other-canary": 1}}, 0, noValues},
		{"NaN: no requests in the window", answers{values: map[string]float64{"web-canary": math.NaN()}}, 0, noValues},
		{"Prometheus fails", answers{err: errors.New("connection refused")}, 0, "Prometheus query failed: connection refused"},
		{"not a vector", answers{kind: model.Matrix{}}, 0, "Prometheus query failed: got a matrix, want a vector"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := New(tc.prom, nil).Run(t.Context(), time.Now(), []Target{target})[target]
			if len(got) != 2 || got[0].Name != SuccessRate || got[1].Name != RequestDuration {
				t.Fatalf("results %+v; want one per check, in order", got)
			}
			r := got[0]
			if errText := fmt.Sprint(r.Err); (tc.err == "" && r.Err != nil) || (tc.err != "" && errText != tc.err) || r.Value != tc.value {
				t.Errorf("result %v, error %v; want %v, error %q", r.Value, r.Err, tc.value, tc.err)
			}
		})
	}
}
