package webhook_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"sluice.dev/sluice/pkg/canary"
	"sluice.dev/sluice/pkg/shift"
	"sluice.dev/sluice/test/cluster"
	"sluice.dev/sluice/test/sluice"
)

const app = "web"

// manifest is an opted-in Deployment running image, with extra lines under
// metadata.annotations.
func manifest(image string, annotations ...string) string {
	return sluice.App{Name: app, Image: image, Replicas: 2,
		Annotations: append([]string{`sluice.dev/step-weight: "20"`}, annotations...),
		Container:   []string{"resources:", "  requests:", "    cpu: 100m"},
	}.YAML()
}

// state is what a test asserts of a Deployment after an update.
type state struct {
	// primary is the image in spec.template; canary the image in the
	// diverted template ("" for none).
	primary, canary string
	// replicaSets are the images of the Deployment's ReplicaSets, sorted: a
	// new one means the update rolled out.
	replicaSets []string
	replicas    int32
}

// observe waits until the deployment controller has seen the newest
// generation (so any rollout has begun) and reads the state.
func observe(t *testing.T, ns string) (state, *appsv1.Deployment) {
	t.Helper()
	cs := env.Clientset(t)
	var dep *appsv1.Deployment
	cluster.Eventually(t, 30*time.Second, "deployment controller observes the update", func(ctx context.Context) error {
		var err error
		if dep, err = cs.AppsV1().Deployments(ns).Get(ctx, app, metav1.GetOptions{}); err != nil {
			return err
		}
		if dep.Status.ObservedGeneration != dep.Generation {
			return fmt.Errorf("observed generation %d of %d", dep.Status.ObservedGeneration, dep.Generation)
		}
		return nil
	})
	s := state{primary: dep.Spec.Template.Spec.Containers[0].Image, replicas: *dep.Spec.Replicas}
	if raw, ok := dep.Annotations[canary.AnnotationCanaryTemplate]; ok {
		var tmpl corev1.PodTemplateSpec
		if err := json.Unmarshal([]byte(raw), &tmpl); err != nil {
			t.Fatalf("%s does not hold a pod template: %v", canary.AnnotationCanaryTemplate, err)
		}
		s.canary = tmpl.Spec.Containers[0].Image
		if got, want := dep.Annotations[canary.AnnotationCanaryRevision], canary.Revision([]byte(raw)); got != want {
			t.Errorf("%s = %q; want %q, the hash of the diverted template", canary.AnnotationCanaryRevision, got, want)
		}
	} else if rev, ok := dep.Annotations[canary.AnnotationCanaryRevision]; ok {
		t.Errorf("%s = %q without a diverted template", canary.AnnotationCanaryRevision, rev)
	}
	rss, err := cs.AppsV1().ReplicaSets(ns).List(t.Context(), metav1.ListOptions{LabelSelector: "app=" + app})
	if err != nil {
		t.Fatal(err)
	}
	for _, rs := range rss.Items {
		s.replicaSets = append(s.replicaSets, rs.Spec.Template.Spec.Containers[0].Image)
	}
	slices.Sort(s.replicaSets)
	return s, dep
}

func expectState(t *testing.T, ns string, want state) *appsv1.Deployment {
	t.Helper()
	got, dep := observe(t, ns)
	if got.primary != want.primary || got.canary != want.canary || got.replicas != want.replicas ||
		!slices.Equal(got.replicaSets, want.replicaSets) {
		t.Errorf("after the update:\n got primary %q, canary %q, replicas %d, ReplicaSets %v\nwant primary %q, canary %q, replicas %d, ReplicaSets %v",
			got.primary, got.canary, got.replicas, got.replicaSets, want.primary, want.canary, want.replicas, want.replicaSets)
	}
	return dep
}

// diverted is the state after an update to v2 of a Deployment running v1.
var diverted = state{primary: "example.com/web:v1", canary: "example.com/web:v2", replicaSets: []string{"example.com/web:v1"}, replicas: 2}

// divertV2 applies v1 and then v2 with kubectl apply, and expects v2 diverted.
func divertV2(t *testing.T, ns string) *appsv1.Deployment {
	t.Helper()
	kubectl(t, manifest("example.com/web:v1"), "apply", "-n", ns, "-f", "-")
	kubectl(t, manifest("example.com/web:v2"), "apply", "-n", ns, "-f", "-")
	return expectState(t, ns, diverted)
}

// TestClientPaths updates an opted-in Deployment from v1 to v2 through every
// way people deploy, and checks that each one was diverted: the Deployment
// still runs v1, v2 waits in the annotations, and no ReplicaSet rolled.
func TestClientPaths(t *testing.T) {
	setup(t)
	v1, v2 := manifest("example.com/web:v1"), manifest("example.com/web:v2")
	applyV1 := func(t *testing.T, ns string) { kubectl(t, v1, "apply", "-n", ns, "-f", "-") }
	cases := []struct {
		name   string
		create func(t *testing.T, ns string)
		update func(t *testing.T, ns string)
	}{
		{"kubectl apply", applyV1, func(t *testing.T, ns string) { kubectl(t, v2, "apply", "-n", ns, "-f", "-") }},
		{
			"kubectl apply --server-side",
			func(t *testing.T, ns string) { kubectl(t, v1, "apply", "--server-side", "-n", ns, "-f", "-") },
			func(t *testing.T, ns string) { kubectl(t, v2, "apply", "--server-side", "-n", ns, "-f", "-") },
		},
		{"kubectl replace", applyV1, func(t *testing.T, ns string) { kubectl(t, v2, "replace", "-n", ns, "-f", "-") }},
		{"kubectl patch", applyV1, func(t *testing.T, ns string) {
			kubectl(t, "", "patch", "-n", ns, "deployment", app, "-p",
				`{"spec":{"template":{"spec":{"containers":[{"name":"app","image":"example.com/web:v2"}]}}}}`)
		}},
		{"kubectl set image", applyV1, func(t *testing.T, ns string) {
			kubectl(t, "", "set", "image", "-n", ns, "deployment/"+app, "app=example.com/web:v2")
		}},
		{"client-go Update", applyV1, func(t *testing.T, ns string) {
			api := env.Clientset(t).AppsV1().Deployments(ns)
			err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
				dep, err := api.Get(t.Context(), app, metav1.GetOptions{})
				if err != nil {
					return err
				}
				dep.Spec.Template.Spec.Containers[0].Image = "example.com/web:v2"
				_, err = api.Update(t.Context(), dep, metav1.UpdateOptions{})
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
		}},
		{"client-go Patch", applyV1, func(t *testing.T, ns string) {
			_, err := env.Clientset(t).AppsV1().Deployments(ns).Patch(t.Context(), app, types.StrategicMergePatchType,
				[]byte(`{"spec":{"template":{"spec":{"containers":[{"name":"app","image":"example.com/web:v2"}]}}}}`), metav1.PatchOptions{})
			if err != nil {
				t.Fatal(err)
			}
		}},
		{
			"helm upgrade",
			func(t *testing.T, ns string) {
				helm(t, ns, "upgrade", "--install", "rel", chartPath(), "--set", "image=example.com/web:v1")
			},
			func(t *testing.T, ns string) {
				helm(t, ns, "upgrade", "rel", chartPath(), "--set", "image=example.com/web:v2")
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ns := env.NewNamespace(t)
			tc.create(t, ns)
			expectState(t, ns, state{primary: "example.com/web:v1", replicaSets: []string{"example.com/web:v1"}, replicas: 2})
			tc.update(t, ns)
			expectState(t, ns, diverted)
		})
	}
}

// TestRolloutRestartIsACanary: a restart changes the template (an
// annotation on it), so it runs as a canary like any other change.
func TestRolloutRestartIsACanary(t *testing.T) {
	setup(t)
	ns := env.NewNamespace(t)
	kubectl(t, manifest("example.com/web:v1"), "apply", "-n", ns, "-f", "-")
	kubectl(t, "", "rollout", "restart", "-n", ns, "deployment/"+app)
	dep := expectState(t, ns, state{primary: "example.com/web:v1", canary: "example.com/web:v1",
		replicaSets: []string{"example.com/web:v1"}, replicas: 2})
	if !strings.Contains(dep.Annotations[canary.AnnotationCanaryTemplate], "kubectl.kubernetes.io/restartedAt") {
		t.Errorf("diverted template %s lacks the restart annotation", dep.Annotations[canary.AnnotationCanaryTemplate])
	}
}

// TestScaleKeepsThePendingCanary: scaling goes through the scale
// subresource, which the webhook does not see; the canary stays pending.
func TestScaleKeepsThePendingCanary(t *testing.T) {
	setup(t)
	ns := env.NewNamespace(t)
	kubectl(t, manifest("example.com/web:v1"), "apply", "-n", ns, "-f", "-")
	kubectl(t, manifest("example.com/web:v2"), "apply", "-n", ns, "-f", "-")
	kubectl(t, "", "scale", "-n", ns, "deployment/"+app, "--replicas=5")
	want := diverted
	want.replicas = 5
	expectState(t, ns, want)
}

// TestReplaceCarriesThePendingCanaryOver: a PUT built from a manifest that
// lacks the internal annotations must not erase a pending canary.
func TestReplaceCarriesThePendingCanaryOver(t *testing.T) {
	setup(t)
	ns := env.NewNamespace(t)
	kubectl(t, manifest("example.com/web:v1"), "create", "-n", ns, "-f", "-")
	kubectl(t, "", "set", "image", "-n", ns, "deployment/"+app, "app=example.com/web:v2")
	before := expectState(t, ns, diverted)
	kubectl(t, strings.Replace(manifest("example.com/web:v1"), "replicas: 2", "replicas: 3", 1), "replace", "-n", ns, "-f", "-")
	want := diverted
	want.replicas = 3
	after := expectState(t, ns, want)
	if after.Annotations[canary.AnnotationCanaryRevision] != before.Annotations[canary.AnnotationCanaryRevision] {
		t.Errorf("revision changed from %s to %s", before.Annotations[canary.AnnotationCanaryRevision], after.Annotations[canary.AnnotationCanaryRevision])
	}
}

// TestSameTemplateTwiceIsIdempotent: diverting the same template again
// changes nothing a user or sluice owns. The resourceVersion is no witness:
// the deployment controller may write status or its revision annotation
// between the two reads.
func TestSameTemplateTwiceIsIdempotent(t *testing.T) {
	setup(t)
	ns := env.NewNamespace(t)
	kubectl(t, manifest("example.com/web:v1"), "apply", "-n", ns, "-f", "-")
	kubectl(t, "", "set", "image", "-n", ns, "deployment/"+app, "app=example.com/web:v2")
	first := expectState(t, ns, diverted)
	kubectl(t, "", "set", "image", "-n", ns, "deployment/"+app, "app=example.com/web:v2")
	second := expectState(t, ns, diverted)
	if first.Generation != second.Generation || !equality.Semantic.DeepEqual(first.Spec, second.Spec) {
		t.Errorf("generation %d became %d (spec %+v became %+v): the second diversion wrote the spec",
			first.Generation, second.Generation, first.Spec, second.Spec)
	}
	ownAnnotations := func(d *appsv1.Deployment) map[string]string {
		a := maps.Clone(d.Annotations)
		delete(a, "deployment.kubernetes.io/revision") // the deployment controller's
		return a
	}
	if a, b := ownAnnotations(first), ownAnnotations(second); !maps.Equal(a, b) {
		t.Errorf("annotations %v became %v: the second diversion wrote them", a, b)
	}
}

// TestApplyingThePrimaryAgainCancels: `kubectl apply` of the running version
// clears the pending canary, and kubectl shows the webhook's warning, which
// names the command. With --server-side, the API server rewrites the record
// of the earlier client-side applies, and the apply cancels as well.
func TestApplyingThePrimaryAgainCancels(t *testing.T) {
	setup(t)
	for _, tc := range []struct{ name, command, manager string }{
		{"client-side", "kubectl apply", "kubectl-client-side-apply"},
		{"server-side", "kubectl apply --server-side", "kubectl"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ns := env.NewNamespace(t)
			revision := divertV2(t, ns).Annotations[canary.AnnotationCanaryRevision]
			args := []string{"apply", "-n", ns, "-f", "-"}
			if tc.name == "server-side" {
				args = append(args, "--server-side")
			}
			_, stderr := kubectl(t, manifest("example.com/web:v1"), args...)
			expectState(t, ns, state{primary: "example.com/web:v1", replicaSets: []string{"example.com/web:v1"}, replicas: 2})
			expectWarnings(t, stderr, cancelWarning(tc.command, tc.manager, revision))
		})
	}
}

// cancelWarning is the webhook's warning when command cancels the pending
// canary of revision.
func cancelWarning(command, manager, revision string) string {
	return "sluice: " + command + " (field manager " + manager + ") set the pod template back to the running primary's, " +
		"so the pending canary (revision " + revision + ") is cancelled; to run it after all, apply its version again"
}

// expectWarnings checks the warnings that kubectl printed on stderr.
func expectWarnings(t *testing.T, stderr string, want ...string) {
	t.Helper()
	var got []string
	for _, line := range strings.Split(stderr, "\n") {
		if w, ok := strings.CutPrefix(line, "Warning: "); ok {
			got = append(got, w)
		}
	}
	if !slices.Equal(got, want) {
		t.Errorf("kubectl printed the warnings %q; want %q\nstderr: %s", got, want, stderr)
	}
}

// TestEquivalentManifestIsNotAChange: the same template written another way
// (key order, quantity spelling) is no new version.
func TestEquivalentManifestIsNotAChange(t *testing.T) {
	setup(t)
	ns := env.NewNamespace(t)
	kubectl(t, manifest("example.com/web:v1"), "apply", "-n", ns, "-f", "-")
	expectState(t, ns, state{primary: "example.com/web:v1", replicaSets: []string{"example.com/web:v1"}, replicas: 2})
	reworded := strings.Replace(manifest("example.com/web:v1"), "cpu: 100m", "cpu: 0.1", 1)
	reworded = strings.Replace(reworded, "replicas: 2", "replicas: 4", 1)
	kubectl(t, reworded, "replace", "-n", ns, "-f", "-")
	expectState(t, ns, state{primary: "example.com/web:v1", replicaSets: []string{"example.com/web:v1"}, replicas: 4})
}

// TestServerSideApplyAfterPromotion: once the shifter has promoted v2, the
// user's next server-side apply (v3, same field manager) neither conflicts
// with the shifter nor escapes the webhook.
func TestServerSideApplyAfterPromotion(t *testing.T) {
	setup(t)
	ns := env.NewNamespace(t)
	kubectl(t, manifest("example.com/web:v1"), "apply", "--server-side", "-n", ns, "-f", "-")
	kubectl(t, manifest("example.com/web:v2"), "apply", "--server-side", "-n", ns, "-f", "-")
	dep := expectState(t, ns, diverted)

	promoteAsShifter(t, dep)
	expectState(t, ns, state{primary: "example.com/web:v2", replicaSets: []string{"example.com/web:v1", "example.com/web:v2"}, replicas: 2})

	kubectl(t, manifest("example.com/web:v3"), "apply", "--server-side", "-n", ns, "-f", "-")
	expectState(t, ns, state{primary: "example.com/web:v2", canary: "example.com/web:v3",
		replicaSets: []string{"example.com/web:v1", "example.com/web:v2"}, replicas: 2})
}

// TestRolloutUndoIsACanary: undo brings back an older template, which runs
// as a canary too.
func TestRolloutUndoIsACanary(t *testing.T) {
	setup(t)
	ns := env.NewNamespace(t)
	promoteAsShifter(t, divertV2(t, ns))
	expectState(t, ns, state{primary: "example.com/web:v2", replicaSets: []string{"example.com/web:v1", "example.com/web:v2"}, replicas: 2})

	kubectl(t, "", "rollout", "undo", "-n", ns, "deployment/"+app)
	expectState(t, ns, state{primary: "example.com/web:v2", canary: "example.com/web:v1",
		replicaSets: []string{"example.com/web:v1", "example.com/web:v2"}, replicas: 2})
}

// TestDryRunStoresNothing: a server-side dry run shows the diverted object
// and leaves the stored one alone.
func TestDryRunStoresNothing(t *testing.T) {
	setup(t)
	ns := env.NewNamespace(t)
	kubectl(t, manifest("example.com/web:v1"), "apply", "-n", ns, "-f", "-")
	out, _ := kubectl(t, manifest("example.com/web:v2"), "apply", "--dry-run=server", "-o", "json", "-n", ns, "-f", "-")
	var shown appsv1.Deployment
	if err := json.Unmarshal([]byte(out), &shown); err != nil {
		t.Fatalf("dry run printed %q: %v", out, err)
	}
	if img := shown.Spec.Template.Spec.Containers[0].Image; img != "example.com/web:v1" || shown.Annotations[canary.AnnotationCanaryRevision] == "" {
		t.Errorf("dry run shows image %q and revision %q; want the diverted object", img, shown.Annotations[canary.AnnotationCanaryRevision])
	}
	expectState(t, ns, state{primary: "example.com/web:v1", replicaSets: []string{"example.com/web:v1"}, replicas: 2})
}

func promoteAsShifter(t *testing.T, dep *appsv1.Deployment) {
	t.Helper()
	c := shifterClient(t)
	if _, err := shift.Promote(t.Context(), c, c, dep); err != nil {
		t.Fatal(err)
	}
}

// shifterClient is a client with the shifter's identity and rights.
func shifterClient(t *testing.T) client.Client {
	t.Helper()
	cfg, err := env.UserConfig(shifterUser, "system:serviceaccounts", "system:serviceaccounts:sluice-system")
	if err != nil {
		t.Fatal(err)
	}
	grantShifter(t)
	c, err := client.New(cfg, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// grantShifter installs the shifter's RBAC as deploy/install.yaml ships it.
func grantShifter(t *testing.T) {
	t.Helper()
	if err := sluice.Install(env, sluice.RBACKinds...); err != nil {
		t.Fatal(err)
	}
}

func chartPath() string {
	abs, _ := filepath.Abs(filepath.Join("testdata", "chart"))
	return abs
}

func helm(t *testing.T, ns string, args ...string) {
	t.Helper()
	cmd := env.HelmCommand(t.Context(), append(args, "--namespace", ns)...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("helm %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// TestPromotionLosesToANewerTemplate: a promotion written with the
// resourceVersion of a Deployment that has since diverted a newer template
// fails, and the newer template stays pending: nothing the user applied is
// lost to the race.
func TestPromotionLosesToANewerTemplate(t *testing.T) {
	setup(t)
	grantShifter(t)
	ns := env.NewNamespace(t)
	stale := divertV2(t, ns)
	kubectl(t, manifest("example.com/web:v3"), "apply", "-n", ns, "-f", "-")

	cfg, err := env.UserConfig(shifterUser, "system:serviceaccounts", "system:serviceaccounts:sluice-system")
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.New(cfg, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := shift.Promote(t.Context(), c, c, stale); !apierrors.IsConflict(err) {
		t.Fatalf("promotion of a stale read: %v; want a conflict", err)
	}
	expectState(t, ns, state{primary: "example.com/web:v1", canary: "example.com/web:v3", replicaSets: []string{"example.com/web:v1"}, replicas: 2})
}

// TestDivertKeepsEveryOtherChange: an update that changes the template and
// more stores all of the rest; only the template waits as a canary.
func TestDivertKeepsEveryOtherChange(t *testing.T) {
	setup(t)
	ns := env.NewNamespace(t)
	kubectl(t, manifest("example.com/web:v1"), "apply", "-n", ns, "-f", "-")
	v2 := strings.NewReplacer(
		"  name: web\n", "  name: web\n  labels:\n    team: shop\n",
		"  replicas: 2\n", "  replicas: 3\n  strategy:\n    rollingUpdate:\n      maxSurge: 50%\n",
	).Replace(manifest("example.com/web:v2", `note: "second release"`))
	kubectl(t, v2, "apply", "-n", ns, "-f", "-")
	want := diverted
	want.replicas = 3
	dep := expectState(t, ns, want)
	if dep.Labels["team"] != "shop" || dep.Annotations["note"] != "second release" ||
		dep.Spec.Strategy.RollingUpdate == nil || dep.Spec.Strategy.RollingUpdate.MaxSurge.String() != "50%" {
		t.Errorf("the update's other changes were not all kept: labels %v, annotations %v, strategy %+v",
			dep.Labels, dep.Annotations, dep.Spec.Strategy)
	}
}

// TestEditingTheLiveObjectKeepsThePendingCanary: `kubectl replace` of what
// `kubectl get` printed rewrites kubectl's record of the last apply with a
// copy of the live object, whose template is the primary's. That is no
// request to cancel the canary, and neither is `kubectl edit`.
func TestEditingTheLiveObjectKeepsThePendingCanary(t *testing.T) {
	setup(t)
	ns := env.NewNamespace(t)
	before := divertV2(t, ns)
	const record = "kubectl.kubernetes.io/last-applied-configuration"

	live, _ := kubectl(t, "", "get", "-n", ns, "deployment/"+app, "-o", "yaml")
	// Without its resourceVersion the replace is unconditional: the
	// controllers' status writes in between must not make it conflict.
	live = regexp.MustCompile(`(?m)^  resourceVersion: .*\n`).ReplaceAllString(live, "")
	kubectl(t, strings.Replace(live, "\n  replicas: 2\n", "\n  replicas: 3\n", 1), "replace", "-n", ns, "-f", "-")
	want := diverted
	want.replicas = 3
	replaced := expectState(t, ns, want)
	if replaced.Annotations[record] == before.Annotations[record] {
		t.Fatal("kubectl replace left the record of the last apply alone; this test no longer tests what it says")
	}

	edit := env.Kubectl(t.Context(), "edit", "-n", ns, "deployment/"+app)
	edit.Env = append(edit.Env, `KUBE_EDITOR=sed -i -e 's/^  replicas: 3$/  replicas: 4/'`)
	if out, err := edit.CombinedOutput(); err != nil {
		t.Fatalf("kubectl edit: %v\n%s", err, out)
	}
	want.replicas = 4
	edited := expectState(t, ns, want)
	if edited.Annotations[canary.AnnotationCanaryRevision] != before.Annotations[canary.AnnotationCanaryRevision] {
		t.Errorf("revision %s became %s", before.Annotations[canary.AnnotationCanaryRevision], edited.Annotations[canary.AnnotationCanaryRevision])
	}
}

// withoutCanaryAnnotations removes the sluice.dev/canary-* annotations from
// what `kubectl get -o yaml` printed, as a user would in an editor: the line
// of each key and the continuation lines of its value. It also removes the
// resourceVersion, so that the replace is unconditional: the controllers'
// status writes in between must not make it conflict.
func withoutCanaryAnnotations(t *testing.T, printed string) string {
	t.Helper()
	var kept []string
	value := false
	for _, line := range strings.SplitAfter(printed, "\n") {
		switch {
		case strings.HasPrefix(line, "    sluice.dev/canary-"):
			value = true
		case value && strings.HasPrefix(line, "      "):
		case strings.HasPrefix(line, "  resourceVersion: "):
			value = false
		default:
			value = false
			kept = append(kept, line)
		}
	}
	stripped := strings.Join(kept, "")
	if strings.Contains(stripped, "sluice.dev/canary-") || !strings.Contains(stripped, "\n  uid: ") {
		t.Fatalf("the canary annotations were not removed from what kubectl get printed, or it has no uid:\n%s", stripped)
	}
	return stripped
}

// TestReplacingWhatGetPrintedKeepsThePendingCanary: a user who replaces the
// Deployment with what `kubectl get -o yaml` printed, without sluice's
// annotations, keeps the pending canary. kubectl replace rewrites kubectl's
// record of the last apply with that copy, whose template is the primary's:
// no request to cancel. A later `kubectl apply` of the primary's version
// still cancels.
func TestReplacingWhatGetPrintedKeepsThePendingCanary(t *testing.T) {
	setup(t)
	ns := env.NewNamespace(t)
	before := divertV2(t, ns)
	revision := before.Annotations[canary.AnnotationCanaryRevision]
	const record = "kubectl.kubernetes.io/last-applied-configuration"

	printed, _ := kubectl(t, "", "get", "-n", ns, "deployment/"+app, "-o", "yaml")
	_, stderr := kubectl(t, withoutCanaryAnnotations(t, printed), "replace", "-n", ns, "-f", "-")
	replaced := expectState(t, ns, diverted)
	expectWarnings(t, stderr)
	if replaced.Annotations[canary.AnnotationCanaryRevision] != revision {
		t.Errorf("revision %s became %s", revision, replaced.Annotations[canary.AnnotationCanaryRevision])
	}
	if replaced.Annotations[record] == before.Annotations[record] {
		t.Fatal("kubectl replace left the record of the last apply alone; this test no longer tests what it says")
	}

	_, stderr = kubectl(t, manifest("example.com/web:v1"), "apply", "-n", ns, "-f", "-")
	expectState(t, ns, state{primary: "example.com/web:v1", replicaSets: []string{"example.com/web:v1"}, replicas: 2})
	expectWarnings(t, stderr, cancelWarning("kubectl apply", "kubectl-client-side-apply", revision))
}

// TestEditingOutTheCanaryAnnotationsKeepsThePendingCanary: `kubectl edit
// --save-config` that deletes sluice's annotations and scales is no request
// to cancel either, although it rewrites kubectl's record of the last apply
// with the edited object.
func TestEditingOutTheCanaryAnnotationsKeepsThePendingCanary(t *testing.T) {
	setup(t)
	ns := env.NewNamespace(t)
	before := divertV2(t, ns)
	revision := before.Annotations[canary.AnnotationCanaryRevision]
	const record = "kubectl.kubernetes.io/last-applied-configuration"

	// The editor is a script that kubectl runs on the file to edit.
	editor := filepath.Join(t.TempDir(), "editor.sh")
	script := `#!/bin/sh
awk '/^    sluice\.dev\/canary-/ { value = 1; next } value && /^      / { next } { value = 0; sub(/^  replicas: 2$/, "  replicas: 3"); print }' "$1" >"$1.new" &&
mv "$1.new" "$1"
`
	if err := os.WriteFile(editor, []byte(script), 0o700); err != nil {
		t.Fatal(err)
	}
	edit := env.Kubectl(t.Context(), "edit", "--save-config", "-n", ns, "deployment/"+app)
	edit.Env = append(edit.Env, "KUBE_EDITOR="+editor)
	var stderr bytes.Buffer
	edit.Stderr = &stderr
	if out, err := edit.Output(); err != nil {
		t.Fatalf("kubectl edit: %v\n%s%s", err, out, stderr.String())
	}
	want := diverted
	want.replicas = 3
	edited := expectState(t, ns, want)
	expectWarnings(t, stderr.String())
	if edited.Annotations[record] == before.Annotations[record] {
		t.Fatal("kubectl edit left the record of the last apply alone; this test no longer tests what it says")
	}
	if edited.Annotations[canary.AnnotationCanaryRevision] != revision {
		t.Errorf("revision %s became %s", revision, edited.Annotations[canary.AnnotationCanaryRevision])
	}
}
