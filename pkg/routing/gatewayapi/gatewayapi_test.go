package gatewayapi

import (
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	"sluice.dev/sluice/pkg/canary"
	"sluice.dev/sluice/pkg/routing"
	"sluice.dev/sluice/pkg/routing/routingtest"
)

var gatewayAPI = map[string]string{canary.AnnotationRouter: canary.RouterGatewayAPI}

func with(annotations map[string]string) map[string]string {
	all := map[string]string{canary.AnnotationRouter: canary.RouterGatewayAPI}
	for k, v := range annotations {
		all[k] = v
	}
	return all
}

// adopted is an HTTPRoute a user wrote: a header rule to a debug Service,
// then the rule sluice sets, one backendRef without a weight.
func adopted(primary, canaryWeight *int32) *gatewayv1.HTTPRoute {
	ref := func(name string, weight *int32) gatewayv1.HTTPBackendRef {
		return gatewayv1.HTTPBackendRef{BackendRef: gatewayv1.BackendRef{
			BackendObjectReference: gatewayv1.BackendObjectReference{Name: gatewayv1.ObjectName(name), Port: ptr.To[int32](8080)},
			Weight:                 weight,
		}}
	}
	return &gatewayv1.HTTPRoute{
		ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "front", Labels: map[string]string{"team": "web"}},
		Spec: gatewayv1.HTTPRouteSpec{
			CommonRouteSpec: gatewayv1.CommonRouteSpec{ParentRefs: []gatewayv1.ParentReference{{Name: "public", Namespace: ptr.To[gatewayv1.Namespace]("edge")}}},
			Hostnames:       []gatewayv1.Hostname{"shop.example.com"},
			Rules: []gatewayv1.HTTPRouteRule{
				{
					Matches:     []gatewayv1.HTTPRouteMatch{{Headers: []gatewayv1.HTTPHeaderMatch{{Name: "x-debug", Value: "1"}}}},
					BackendRefs: []gatewayv1.HTTPBackendRef{ref("debug", nil)},
				},
				{BackendRefs: []gatewayv1.HTTPBackendRef{ref("web-primary", primary), ref("web-canary", canaryWeight)}},
			},
		},
	}
}

func TestRoutes(t *testing.T) {
	routingtest.Run(t, Router{}, []routingtest.Case{
		{Name: "own on the mesh at weight 20", Annotations: gatewayAPI, Want: routing.Routing{CanaryWeight: 20}},
		{Name: "own on gateways and hosts", Annotations: with(map[string]string{
			canary.AnnotationGateways: "edge/public,internal,mesh", canary.AnnotationHosts: "shop.example.com,*.shop.example.com",
		}), Want: routing.Routing{CanaryWeight: 50}},
		{Name: "own back to the primary", Annotations: gatewayAPI,
			Route: Router{}.Build(routingtest.Target(t, gatewayAPI), routing.Routing{CanaryWeight: 60})},
		{Name: "own AB test", Annotations: gatewayAPI, Want: routingtest.AB},
		{Name: "own AB test ends", Annotations: gatewayAPI, Route: Router{}.Build(routingtest.Target(t, gatewayAPI), routingtest.AB)},
		{Name: "own mirror", Annotations: gatewayAPI, Want: routing.Routing{MirrorPercent: 50}},
		{Name: "own sticky at weight 40", Annotations: gatewayAPI, Want: routingtest.Sticky(40)},
		{Name: "own sticky moves on", Annotations: gatewayAPI,
			Route: Router{}.Build(routingtest.Target(t, gatewayAPI), routingtest.Sticky(20)), Want: routingtest.Sticky(40)},
		{Name: "adopted moves only its weights", Annotations: with(map[string]string{canary.AnnotationHTTPRoute: "front"}),
			Route: adopted(ptr.To[int32](80), ptr.To[int32](20)), Want: routing.Routing{CanaryWeight: 40}},
		{Name: "adopted without weights", Annotations: with(map[string]string{canary.AnnotationHTTPRoute: "front"}),
			Route: adopted(nil, nil), Want: routing.Routing{CanaryWeight: 10}},
		{Name: "adopted already right", Annotations: with(map[string]string{canary.AnnotationHTTPRoute: "front"}),
			Route: adopted(ptr.To[int32](80), ptr.To[int32](20)), Want: routing.Routing{CanaryWeight: 20}},
	})
}

func TestRoutedAndCheck(t *testing.T) {
	target := routingtest.Target(t, gatewayAPI)
	primaryOnly := adopted(ptr.To[int32](100), nil)
	primaryOnly.Spec.Rules[1].BackendRefs = primaryOnly.Spec.Rules[1].BackendRefs[:1]
	otherNamespace := adopted(ptr.To[int32](70), ptr.To[int32](30))
	otherNamespace.Spec.Rules[1].BackendRefs[1].Namespace = ptr.To[gatewayv1.Namespace]("other")
	notAService := adopted(ptr.To[int32](70), ptr.To[int32](30))
	notAService.Spec.Rules[1].BackendRefs[1].Kind = ptr.To[gatewayv1.Kind]("ServiceImport")
	const missing = "has no rule with backendRefs to both Services web-primary and web-canary"
	for _, tc := range []struct {
		name   string
		route  *gatewayv1.HTTPRoute
		weight int32
		check  string
	}{
		{"sluice's own", Router{}.Build(target, routing.Routing{CanaryWeight: 30}).(*gatewayv1.HTTPRoute), 30, ""},
		{"adopted", adopted(ptr.To[int32](70), ptr.To[int32](30)), 30, ""},
		{"adopted, weights left to the default", adopted(nil, nil), 1, ""},
		{"no canary backend", primaryOnly, 0, missing},
		{"canary of another namespace", otherNamespace, 0, missing},
		{"canary not a Service", notAService, 0, missing},
		{"empty", &gatewayv1.HTTPRoute{ObjectMeta: metav1.ObjectMeta{Namespace: "shop"}}, 0, missing},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := (Router{}).Routed(target, tc.route); got.CanaryWeight != tc.weight {
				t.Errorf("Routed = %+v; want canary weight %d", got, tc.weight)
			}
			if got := (Router{}).Check(target, tc.route); got != tc.check {
				t.Errorf("Check = %q; want %q", got, tc.check)
			}
		})
	}
}

func TestUnsupported(t *testing.T) {
	for _, tc := range []struct {
		name  string
		hosts string
		want  []string
	}{
		{"named hosts", "shop.example.com,*.example.com", nil},
		{"a bare wildcard", "*", []string{`sluice.dev/hosts: "*": an HTTPRoute's hostname cannot be a bare *; ` +
			`leave it out to match every host, or name a wildcard domain such as *.example.com`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := Router{}.Unsupported(routingtest.Target(t, with(map[string]string{canary.AnnotationHosts: tc.hosts})).Settings)
			if len(got) != len(tc.want) || len(got) > 0 && got[0] != tc.want[0] {
				t.Errorf("Unsupported = %q; want %q", got, tc.want)
			}
		})
	}
}
