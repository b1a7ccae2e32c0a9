package main

import (
	"bytes"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	"sigs.k8s.io/yaml"

	"sluice.dev/sluice/pkg/canary"
	"sluice.dev/sluice/pkg/routing/routers"
)

// The demo's Deployment is valid on each router, as a plain release and as
// the A/B test, and only the A/B test matches requests.
func TestManifestOnEachRouter(t *testing.T) {
	for _, router := range routerNames {
		v := releases(options{interval: 2 * time.Second, router: router}, "http://127.0.0.1:1", "127.0.0.1:2")
		for _, r := range []release{v("0.0.2", progressive, "0", checkoutRate), abTestOf(v("0.0.6", insiders, "0", checkoutRate))} {
			dep := deploymentOf(t, r)
			s, _, problems := routers.ParseWithPolicy(canary.BuiltinDefaults(), nil, dep.Annotations)
			if len(problems) > 0 {
				t.Errorf("%s, %s: %q", router, r.Message, problems)
				continue
			}
			if got := routers.For(s).Name(); got != router {
				t.Errorf("%s, %s: the Deployment picks router %s", router, r.Message, got)
			}
			wantGateway := map[string]string{canary.RouterIstio: istioGateway, canary.RouterGatewayAPI: gatewayAPIGateway}[router]
			if !slices.Equal(s.Gateways, []string{wantGateway}) || !slices.Equal(s.Hosts, []string{host}) {
				t.Errorf("%s, %s: gateways %q and hosts %q; want %s and %s", router, r.Message, s.Gateways, s.Hosts, wantGateway, host)
			}
			wantMatch := r.MatchHeaders != ""
			if got := len(s.Match) > 0; got != wantMatch || (wantMatch && s.Iterations != abIterations) {
				t.Errorf("%s, %s: matches %v, iterations %d; want an A/B test %v", router, r.Message, s.Match, s.Iterations, wantMatch)
			}
		}
	}
}

// deploymentOf renders r and returns its Deployment.
func deploymentOf(t *testing.T, r release) *appsv1.Deployment {
	t.Helper()
	var b bytes.Buffer
	if err := manifest.Execute(&b, r); err != nil {
		t.Fatal(err)
	}
	for _, doc := range strings.Split(b.String(), "\n---\n") {
		if !strings.Contains(doc, "\nkind: Deployment\n") {
			continue
		}
		dep := &appsv1.Deployment{}
		if err := yaml.UnmarshalStrict([]byte(doc), dep); err != nil {
			t.Fatalf("the Deployment of %s: %v\n%s", r.Message, err, doc)
		}
		return dep
	}
	t.Fatalf("no Deployment in the manifest:\n%s", b.String())
	return nil
}
