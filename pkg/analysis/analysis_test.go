package analysis

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"

	"sluice.dev/sluice/pkg/analysis/stats"
)

func TestQueries(t *testing.T) {
	one := []Target{{Namespace: "shop", Canary: "web-canary", Primary: "web", Window: time.Minute}}
	// Unsorted, with a repeated namespace and a workload that needs quoting
	// as a regular expression.
	several := []Target{
		{Namespace: "shop", Canary: "web-canary", Primary: "web"},
		{Namespace: "jx-staging", Canary: "api.v2-canary", Primary: "api.v2"},
		{Namespace: "shop", Canary: "cart-canary", Primary: "cart"},
	}
	for _, tc := range []struct {
		name string
		got  string
		want string
	}{
		{"requests, one target", requestsQuery(time.Minute, one, ""),
			`sum by (destination_workload_namespace, destination_workload) (increase(istio_requests_total{reporter="destination",` +
				`destination_workload_namespace=~"shop",destination_workload=~"web|web-canary"}[1m]))`},
		{"errors, one target", requestsQuery(time.Minute, one, `,response_code=~"5.*"`),
			`sum by (destination_workload_namespace, destination_workload) (increase(istio_requests_total{reporter="destination",` +
				`destination_workload_namespace=~"shop",destination_workload=~"web|web-canary",response_code=~"5.*"}[1m]))`},
		{"durations, several targets", durationQuery(90*time.Second, several),
			`sum by (le, destination_workload_namespace, destination_workload) (increase(istio_request_duration_milliseconds_bucket{reporter="destination",` +
				`destination_workload_namespace=~"jx-staging|shop",destination_workload=~"api\\.v2|api\\.v2-canary|cart|cart-canary|web|web-canary"}[1m30s]))`},
	} {
		if tc.got != tc.want {
			t.Errorf("%s:\n  %s\nwant\n  %s", tc.name, tc.got, tc.want)
		}
	}
}

// answers is a Prometheus that returns one value per workload of shop, or
// an error. Asked for a histogram, it answers with two buckets: half the
// value at 100ms, all of it at +Inf.
type answers struct {
	values map[string]float64
	err    error
	kind   model.Value
}

func (a answers) Query(_ context.Context, q string, _ time.Time, _ ...promv1.Option) (model.Value, promv1.Warnings, promv1.Infos, error) {
	if a.err != nil || a.kind != nil {
		return a.kind, nil, nil, a.err
	}
	var vec model.Vector
	for w, v := range a.values {
		m := model.Metric{"destination_workload_namespace": "shop", "destination_workload": model.LabelValue(w)}
		if !strings.Contains(q, "_bucket") {
			vec = append(vec, &model.Sample{Metric: m, Value: model.SampleValue(v)})
			continue
		}
		for le, share := range map[string]float64{"100": 0.5, "+Inf": 1} {
			bucket := m.Clone()
			bucket["le"] = model.LabelValue(le)
			vec = append(vec, &model.Sample{Metric: bucket, Value: model.SampleValue(v * share)})
		}
	}
	return vec, nil, nil, nil
}

// TestMeasurements: counts and histograms per workload; no series or a NaN
// is no data; a failing Prometheus and an answer of the wrong type make the
// measurement blind, with an error users can act on.
func TestMeasurements(t *testing.T) {
	target := Target{Namespace: "shop", Canary: "web-canary", Primary: "web", Window: time.Minute}
	histogram := func(n float64) []stats.Bucket {
		return []stats.Bucket{{UpperBound: 100, Count: n / 2}, {UpperBound: math.Inf(1), Count: n}}
	}
	for _, tc := range []struct {
		name    string
		prom    Querier
		canary  Sample
		primary Sample
		err     string
	}{
		{"values", answers{values: map[string]float64{"web-canary": 40, "web": 400}},
			Sample{Requests: 40, Errors: 40, Durations: histogram(40)}, Sample{Requests: 400, Errors: 400, Durations: histogram(400)}, ""},
		{"no series", answers{values: map[string]float64{"other-canary": 1}}, Sample{}, Sample{}, ""},
		{"NaN: no requests in the window", answers{values: map[string]float64{"web-canary": math.NaN()}}, Sample{}, Sample{}, ""},
		{"Prometheus fails", answers{err: errors.New("connection refused")}, Sample{}, Sample{}, "Prometheus query failed: connection refused"},
		{"not a vector", answers{kind: model.Matrix{}}, Sample{}, Sample{}, "Prometheus query failed: got a matrix, want a vector"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := New(tc.prom, nil).Run(t.Context(), time.Now(), []Target{target})[target]
			if errText := fmt.Sprint(got.Err); (tc.err == "") != (got.Err == nil) || (tc.err != "" && errText != tc.err) {
				t.Fatalf("error %v; want %q", got.Err, tc.err)
			}
			if tc.err == "" && (!same(got.Canary, tc.canary) || !same(got.Primary, tc.primary)) {
				t.Errorf("canary %+v, primary %+v; want %+v, %+v", got.Canary, got.Primary, tc.canary, tc.primary)
			}
		})
	}
}

func same(a, b Sample) bool {
	slices.SortFunc(a.Durations, func(x, y stats.Bucket) int { return cmp.Compare(x.UpperBound, y.UpperBound) })
	return a.Requests == b.Requests && a.Errors == b.Errors && slices.Equal(a.Durations, b.Durations)
}
