package metricsapi

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"testing"

	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/rest"
	"k8s.io/metrics/pkg/client/external_metrics"
)

// The HPA controller's own client reads the values, asking for protobuf as
// kube-controller-manager's clients do by default, so what it decodes here is
// what it decodes there.
func TestServesSeriesMatchingTheSelector(t *testing.T) {
	s := newServer()
	srv := httptest.NewServer(s.handler())
	defer srv.Close()
	cfg := &rest.Config{Host: srv.URL, ContentConfig: rest.ContentConfig{ContentType: runtime.ContentTypeProtobuf}}
	client, err := external_metrics.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	s.Set("shop", "queue_messages", map[string]string{"queue": "orders"}, resource.MustParse("40"))
	s.Set("shop", "queue_messages", map[string]string{"queue": "orders"}, resource.MustParse("30"))
	s.Set("shop", "queue_messages", map[string]string{"queue": "audit"}, resource.MustParse("1k"))
	s.Set("other", "queue_messages", map[string]string{"queue": "orders"}, resource.MustParse("7"))
	s.Set("shop", "lag_seconds", nil, resource.MustParse("2"))

	for _, tc := range []struct {
		selector string
		want     []string
	}{
		{"queue=orders", []string{"30"}},
		{"queue in (orders,audit)", []string{"1k", "30"}},
		{"", []string{"1k", "30"}},
		{"queue=billing", nil},
	} {
		sel, err := labels.Parse(tc.selector)
		if err != nil {
			t.Fatal(err)
		}
		list, err := client.NamespacedMetrics("shop").List("queue_messages", sel)
		if err != nil {
			t.Fatalf("%q: %v", tc.selector, err)
		}
		var got []string
		for _, item := range list.Items {
			if item.MetricName != "queue_messages" || item.Timestamp.IsZero() {
				t.Errorf("%q: item %+v: want metricName queue_messages and a timestamp", tc.selector, item)
			}
			got = append(got, item.Value.String())
		}
		slices.Sort(got)
		if !slices.Equal(got, tc.want) {
			t.Errorf("%q: values %v, want %v", tc.selector, got, tc.want)
		}
	}

	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	resources, err := dc.ServerResourcesForGroupVersion("external.metrics.k8s.io/v1beta1")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, r := range resources.APIResources {
		if !r.Namespaced || !slices.Equal(r.Verbs, []string{"get"}) {
			t.Errorf("resource %+v: want namespaced, verbs [get]", r)
		}
		names = append(names, r.Name)
	}
	if !slices.Equal(names, []string{"lag_seconds", "queue_messages"}) {
		t.Errorf("discovered %v, want [lag_seconds queue_messages]", names)
	}
}

func TestRefusesAnInvalidSelector(t *testing.T) {
	srv := httptest.NewServer(newServer().handler())
	defer srv.Close()
	resp, err := http.Get(srv.URL + groupVersionPath + "/namespaces/shop/queue_messages?" +
		url.Values{"labelSelector": {"queue in (orders"}}.Encode())
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var status metav1.Status
	if err := json.NewDecoder(resp.Body).Decode(&status); err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusBadRequest || status.Kind != "Status" || status.Reason != metav1.StatusReasonBadRequest {
		t.Errorf("invalid selector: %s, %+v; want 400 and a Status of reason BadRequest", resp.Status, status)
	}
}
