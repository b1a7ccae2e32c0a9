package webhook_test

import (
	"regexp"
	"slices"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"

	"sluice.dev/sluice/pkg/shift"
)

// TestPromotionLeavesTheTemplateToItsOwner: after a promotion the template is
// owned as if the user's own update had set it, whatever the user deployed
// with. A server-side apply that follows, without --force-conflicts, meets
// exactly the conflicts it meets on a Deployment sluice never touched (none
// after kubectl apply, client- or server-side; the tool's own field manager
// after helm or kubectl replace, as Kubernetes has it) and never
// sluice-shifter.
func TestPromotionLeavesTheTemplateToItsOwner(t *testing.T) {
	setup(t)
	grantShifter(t)
	plain := func(image string) string {
		return strings.Replace(manifest(image), "sluice.dev/canary: enabled", "sluice.dev/canary: disabled", 1)
	}
	for _, tc := range []struct {
		name string
		// deploy sends image with the client under test; optIn says
		// whether the Deployment is sluice's.
		deploy func(t *testing.T, ns, image string, optIn bool)
		// conflicts are the managers a following server-side apply of a new
		// template conflicts with, on a plain Deployment and so on a promoted
		// one.
		conflicts []string
	}{
		{"kubectl apply", func(t *testing.T, ns, image string, optIn bool) {
			kubectl(t, pick(optIn, manifest(image), plain(image)), "apply", "-n", ns, "-f", "-")
		}, nil},
		{"kubectl apply --server-side", func(t *testing.T, ns, image string, optIn bool) {
			kubectl(t, pick(optIn, manifest(image), plain(image)), "apply", "--server-side", "-n", ns, "-f", "-")
		}, nil},
		{"helm upgrade", func(t *testing.T, ns, image string, optIn bool) {
			helm(t, ns, "upgrade", "--install", "rel", chartPath(), "--set", "image="+image, "--set", "canary="+pick(optIn, "enabled", "disabled"))
		}, []string{"helm"}},
		{"kubectl replace", func(t *testing.T, ns, image string, optIn bool) {
			verb := "replace"
			if image == "example.com/web:v1" {
				verb = "create"
			}
			kubectl(t, pick(optIn, manifest(image), plain(image)), verb, "-n", ns, "-f", "-")
		}, []string{"kubectl-replace"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, optIn := range []bool{false, true} {
				ns := env.NewNamespace(t)
				tc.deploy(t, ns, "example.com/web:v1", optIn)
				tc.deploy(t, ns, "example.com/web:v2", optIn)
				if optIn {
					promoteFromCache(t, ns)
					_, dep := observe(t, ns)
					if i := slices.IndexFunc(dep.ManagedFields, func(f metav1.ManagedFieldsEntry) bool { return f.Manager == shift.FieldManager }); i >= 0 {
						t.Errorf("after the promotion %s still owns %s", shift.FieldManager, dep.ManagedFields[i].FieldsV1.GetRawString())
					}
				}
				_, stderr, err := tryKubectl(t, pick(optIn, manifest("example.com/web:v3"), plain("example.com/web:v3")), "apply", "--server-side", "-n", ns, "-f", "-")
				got := conflictManagers(stderr)
				if (err == nil) != (len(tc.conflicts) == 0) || !slices.Equal(got, tc.conflicts) {
					t.Errorf("opted in %t: server-side apply of v3: %v, conflicts with %v; want conflicts with %v\n%s", optIn, err, got, tc.conflicts, stderr)
				}
			}
		})
	}
}

// promoteFromCache promotes the diverted template of the Deployment in ns as
// the shifter does, from a copy as its cache keeps it, again when the
// deployment controller's status write wins the race.
func promoteFromCache(t *testing.T, ns string) {
	t.Helper()
	c := shifterClient(t)
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		_, dep := observe(t, ns)
		if _, err := shift.TransformManagedFields(dep); err != nil {
			return err
		}
		_, err := shift.Promote(t.Context(), c, c, dep)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	expectState(t, ns, state{primary: "example.com/web:v2", replicaSets: []string{"example.com/web:v1", "example.com/web:v2"}, replicas: 2})
}

// pick is a if cond, else b.
func pick[T any](cond bool, a, b T) T {
	if cond {
		return a
	}
	return b
}

// conflictManagers lists the managers that kubectl's conflict message names,
// sorted and without repeats.
func conflictManagers(stderr string) []string {
	var out []string
	for _, m := range regexp.MustCompile(`conflicts? with "([^"]+)"`).FindAllStringSubmatch(stderr, -1) {
		out = append(out, m[1])
	}
	slices.Sort(out)
	return slices.Compact(out)
}
