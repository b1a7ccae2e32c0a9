package istio

import (
	"encoding/json"
	"testing"

	networkingv1 "istio.io/api/networking/v1"
	istiov1 "istio.io/client-go/pkg/apis/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"sluice.dev/sluice/pkg/canary"
	"sluice.dev/sluice/pkg/routing"
	"sluice.dev/sluice/pkg/routing/routingtest"
)

// adopted is a VirtualService a user wrote: a header route to a debug
// Service, then the route sluice sets, with fully qualified host names.
func adopted(primary, canary int32) *istiov1.VirtualService {
	vs := &istiov1.VirtualService{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "front", Labels: map[string]string{"team": "web"}}}
	vs.Spec.Hosts = []string{"shop.example.com"}
	vs.Spec.Http = []*networkingv1.HTTPRoute{
		{
			Match: []*networkingv1.HTTPMatchRequest{{Headers: map[string]*networkingv1.StringMatch{
				"x-debug": {MatchType: &networkingv1.StringMatch_Exact{Exact: "1"}},
			}}},
			Route: []*networkingv1.HTTPRouteDestination{{Destination: &networkingv1.Destination{Host: "debug"}, Weight: 100}},
		},
		{Route: []*networkingv1.HTTPRouteDestination{
			{Destination: &networkingv1.Destination{Host: "web-primary.shop.svc.cluster.local"}, Weight: primary},
			{Destination: &networkingv1.Destination{Host: "web-canary.shop.svc"}, Weight: canary},
		}},
	}
	return vs
}

func TestRoutes(t *testing.T) {
	routingtest.Run(t, Router{}, []routingtest.Case{
		{Name: "own at weight 20", Want: routing.Routing{CanaryWeight: 20}},
		{Name: "own on gateways and hosts", Annotations: map[string]string{
			canary.AnnotationGateways: "istio-system/public", canary.AnnotationHosts: "shop.example.com",
		}, Want: routing.Routing{CanaryWeight: 50}},
		{Name: "own back to the primary", Route: Router{}.Build(routingtest.Target(t, nil), routing.Routing{CanaryWeight: 60})},
		{Name: "own AB test", Want: routingtest.AB},
		{Name: "own AB test ends", Route: Router{}.Build(routingtest.Target(t, nil), routingtest.AB)},
		{Name: "own mirror", Want: routing.Routing{MirrorPercent: 50}},
		{Name: "own sticky at weight 40", Want: routingtest.Sticky(40)},
		{Name: "own sticky moves on", Route: Router{}.Build(routingtest.Target(t, nil), routingtest.Sticky(20)), Want: routingtest.Sticky(40)},
		{Name: "adopted moves only its weights", Annotations: map[string]string{canary.AnnotationVirtualService: "front"},
			Route: adopted(80, 20), Want: routing.Routing{CanaryWeight: 40}},
		{Name: "adopted already right", Annotations: map[string]string{canary.AnnotationVirtualService: "front"},
			Route: adopted(80, 20), Want: routing.Routing{CanaryWeight: 20}},
	})
}

func TestWeightPatch(t *testing.T) {
	for _, tc := range []struct {
		name   string
		vs     *istiov1.VirtualService
		weight int32
		want   string
	}{
		{"already right", adopted(80, 20), 20, "null"},
		{"both move, other routes untouched", adopted(80, 20), 40,
			`[{"op":"test","path":"/spec/http/1/route/0/destination/host","value":"web-primary.shop.svc.cluster.local"},` +
				`{"op":"add","path":"/spec/http/1/route/0/weight","value":60},` +
				`{"op":"test","path":"/spec/http/1/route/1/destination/host","value":"web-canary.shop.svc"},` +
				`{"op":"add","path":"/spec/http/1/route/1/weight","value":40}]`},
		{"back to the primary sets a weight of 0", adopted(60, 40), 0,
			`[{"op":"test","path":"/spec/http/1/route/0/destination/host","value":"web-primary.shop.svc.cluster.local"},` +
				`{"op":"add","path":"/spec/http/1/route/0/weight","value":100},` +
				`{"op":"test","path":"/spec/http/1/route/1/destination/host","value":"web-canary.shop.svc"},` +
				`{"op":"add","path":"/spec/http/1/route/1/weight","value":0}]`},
		{"no route to the Deployment", &istiov1.VirtualService{}, 20, "null"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			raw, err := json.Marshal(weightPatch(tc.vs, "web", tc.weight))
			if err != nil {
				t.Fatal(err)
			}
			if string(raw) != tc.want {
				t.Errorf("patch\n  %s\nwant\n  %s", raw, tc.want)
			}
		})
	}
}

func TestRoutedAndCheck(t *testing.T) {
	primaryOnly := adopted(100, 0)
	primaryOnly.Spec.Http[1].Route = primaryOnly.Spec.Http[1].Route[:1]
	otherNamespace := adopted(70, 30)
	otherNamespace.Spec.Http[1].Route[1].Destination.Host = "web-canary.other.svc.cluster.local"
	target := routingtest.Target(t, nil)
	for _, tc := range []struct {
		name   string
		vs     *istiov1.VirtualService
		weight int32
		check  string
	}{
		{"sluice's own", Router{}.Build(target, routing.Routing{CanaryWeight: 30}).(*istiov1.VirtualService), 30, ""},
		{"adopted, qualified hosts", adopted(70, 30), 30, ""},
		{"no canary route", primaryOnly, 0, "has no HTTP route to both web-primary and web-canary"},
		{"canary of another namespace", otherNamespace, 0, "has no HTTP route to both web-primary and web-canary"},
		{"empty", &istiov1.VirtualService{ObjectMeta: metav1.ObjectMeta{Namespace: "shop"}}, 0, "has no HTTP route to both web-primary and web-canary"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := (Router{}).Routed(target, tc.vs); got.CanaryWeight != tc.weight {
				t.Errorf("Routed = %+v; want canary weight %d", got, tc.weight)
			}
			if got := (Router{}).Check(target, tc.vs); got != tc.check {
				t.Errorf("Check = %q; want %q", got, tc.check)
			}
		})
	}
}
