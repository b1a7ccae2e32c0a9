package shift

import (
	"encoding/json"
	"testing"

	networkingv1 "istio.io/api/networking/v1"
	istiov1 "istio.io/client-go/pkg/apis/networking/v1"
	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// adopted is a VirtualService a user wrote: a header route to a debug
// Service, then the route sluice sets, with fully qualified host names.
func adopted(primary, canary int32) *istiov1.VirtualService {
	vs := &istiov1.VirtualService{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "front"}}
	vs.Spec.Http = []*networkingv1.HTTPRoute{
		{Route: []*networkingv1.HTTPRouteDestination{{Destination: &networkingv1.Destination{Host: "debug"}, Weight: 100}}},
		{Route: []*networkingv1.HTTPRouteDestination{
			{Destination: &networkingv1.Destination{Host: "web-primary.shop.svc.cluster.local"}, Weight: primary},
			{Destination: &networkingv1.Destination{Host: "web-canary.shop.svc"}, Weight: canary},
		}},
	}
	return vs
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

func TestRoutedWeightAndRoutes(t *testing.T) {
	primaryOnly := adopted(100, 0)
	primaryOnly.Spec.Http[1].Route = primaryOnly.Spec.Http[1].Route[:1]
	otherNamespace := adopted(70, 30)
	otherNamespace.Spec.Http[1].Route[1].Destination.Host = "web-canary.other.svc.cluster.local"
	for _, tc := range []struct {
		name   string
		vs     *istiov1.VirtualService
		weight int32
		routes bool
	}{
		{"sluice's own", virtualService(deployment(), lesson(t), 30), 30, true},
		{"adopted, qualified hosts", adopted(70, 30), 30, true},
		{"no canary route", primaryOnly, 0, false},
		{"canary of another namespace", otherNamespace, 0, false},
		{"empty", &istiov1.VirtualService{}, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := routedWeight(tc.vs, "web"); got != tc.weight {
				t.Errorf("routedWeight = %d; want %d", got, tc.weight)
			}
			if got := routes(tc.vs, "web"); got != tc.routes {
				t.Errorf("routes = %t; want %t", got, tc.routes)
			}
		})
	}
}

// deployment is an opted-in Deployment web in shop.
func deployment() *appsv1.Deployment {
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web", UID: "u1"},
		Spec:       appsv1.DeploymentSpec{Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}}},
	}
}
