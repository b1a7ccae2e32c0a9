// Package routingtest runs a router through a table of cases and compares
// the objects and patches it makes with golden files, so that every router
// is tested the same way and a change in what sluice writes shows as a diff.
package routingtest

import (
	"context"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/yaml"

	"sluice.dev/sluice/pkg/canary"
	"sluice.dev/sluice/pkg/routing"
)

// update rewrites the golden files: go test ./pkg/routing/... -update
var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// Case is one routing of one Deployment by a router.
type Case struct {
	Name string
	// Annotations of the Deployment web in namespace shop, besides the
	// opt-in.
	Annotations map[string]string
	// Route is the route before: nil for the one the router builds for
	// the Deployment at weight 0.
	Route client.Object
	// Want is the routing to set.
	Want routing.Routing
}

// AB is the routing of an A/B test by a header or a cookie.
var AB = routing.Routing{Match: []canary.RequestMatch{
	{Headers: []canary.HeaderMatch{{Name: "x-canary", Value: "insider"}, {Name: "x-region", Value: "eu-.*", Regex: true}}},
	{Headers: []canary.HeaderMatch{canary.CookieMatch("canary", "always")}},
}}

// Sticky is the routing of weight with a session cookie.
func Sticky(weight int32) routing.Routing {
	return routing.Routing{CanaryWeight: weight, Sticky: &routing.Sticky{Cookie: "sluice-canary", Value: "4f2a9c1b7e", MaxAge: 24 * time.Hour}}
}

// Target is the Deployment web of namespace shop, with annotations.
func Target(t *testing.T, annotations map[string]string) routing.Target {
	t.Helper()
	all := map[string]string{canary.AnnotationEnabled: canary.EnabledValue}
	for k, v := range annotations {
		all[k] = v
	}
	s, problems := canary.BuiltinDefaults().Parse(all)
	if len(problems) > 0 {
		t.Fatalf("annotations %v: %v", annotations, problems)
	}
	dep := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web", UID: "u1", Annotations: all},
		Spec:       appsv1.DeploymentSpec{Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}}},
	}
	return routing.Target{Deployment: dep, Settings: s, Port: 8080}
}

// Run sets each case's routing with rt and checks that the route then
// routes what the case wants, and that its patch and the route after it
// equal testdata/<test>/<case>.golden.yaml: the route as YAML, after the
// patch as a comment.
func Run(t *testing.T, rt routing.Router, cases []Case) {
	for _, tc := range cases {
		t.Run(tc.Name, func(t *testing.T) {
			target := Target(t, tc.Annotations)
			before := tc.Route
			if before == nil {
				before = rt.Build(target, routing.Routing{})
			}
			if msg := rt.Check(target, before); msg != "" {
				t.Fatalf("Check: %s", msg)
			}
			patch, err := rt.Patch(target, before, tc.Want)
			if err != nil {
				t.Fatal(err)
			}
			after, described := Apply(t, rt, before, patch)
			if got := rt.Routed(target, after); !got.Equal(tc.Want) {
				t.Errorf("routed after the patch: %+v; want %+v", got, tc.Want)
			}
			if again, err := rt.Patch(target, after, tc.Want); err != nil || again != nil {
				t.Errorf("a second patch to the same routing: %v, %v; want none", again, err)
			}
			Golden(t, described+YAML(t, rt, after))
		})
	}
}

// Apply applies patch to route the way the API server would (through a
// fake client), and describes the patch as a YAML comment.
func Apply(t *testing.T, rt routing.Router, route client.Object, patch client.Patch) (client.Object, string) {
	t.Helper()
	if patch == nil {
		return route, "# no patch\n"
	}
	scheme := runtime.NewScheme()
	if err := rt.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	c := fake.NewClientBuilder().WithScheme(scheme).WithObjects(route.DeepCopyObject().(client.Object)).Build()
	data, err := patch.Data(route)
	if err != nil {
		t.Fatal(err)
	}
	after := route.DeepCopyObject().(client.Object)
	if err := c.Patch(context.Background(), after, patch); err != nil {
		t.Fatalf("apply the patch %s: %v", data, err)
	}
	return after, "# " + string(patch.Type()) + ": " + string(data) + "\n"
}

// YAML is obj, one of rt's routes, as YAML with its kind and without the
// fields the API server sets.
func YAML(t *testing.T, rt routing.Router, obj client.Object) string {
	t.Helper()
	scheme := runtime.NewScheme()
	if err := rt.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	gvk, err := apiutil.GVKForObject(obj, scheme)
	if err != nil {
		t.Fatal(err)
	}
	obj = obj.DeepCopyObject().(client.Object)
	obj.GetObjectKind().SetGroupVersionKind(gvk)
	obj.SetResourceVersion("")
	raw, err := yaml.Marshal(obj)
	if err != nil {
		t.Fatal(err)
	}
	return string(raw)
}

// Golden compares got with the test's golden file, or rewrites it with
// -update.
func Golden(t *testing.T, got string) {
	t.Helper()
	path := filepath.Join("testdata", strings.ReplaceAll(t.Name(), " ", "_")+".golden.yaml")
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to write it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs (run with -update to rewrite it after checking the diff):\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}
