package mutate

import (
	"encoding/json"
	"fmt"
	"maps"
	"strings"
	"testing"

	jsonpatch "github.com/evanphx/json-patch/v5"
	admissionv1 "k8s.io/api/admission/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"sluice.dev/sluice/pkg/canary"
)

// object is a Deployment as the API server hands it to the webhook.
func object(t *testing.T, image string, replicas int32, annotations map[string]string) []byte {
	t.Helper()
	raw, err := json.Marshal(appsv1.Deployment{
		TypeMeta: metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"},
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "shop", UID: "0f3c5a2e-8d41-4b6f-9a7c-2e5d1b8f4c60",
			Annotations: annotations},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Template: podTemplate(image),
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func podTemplate(image string) corev1.PodTemplateSpec {
	return corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "web"}},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: image}}},
	}
}

func templateJSON(t *testing.T, image string) string {
	t.Helper()
	raw, err := json.Marshal(podTemplate(image))
	if err != nil {
		t.Fatal(err)
	}
	return string(raw)
}

// with returns a copy of base with the key/value pairs set; a "-" value
// deletes the key.
func with(base map[string]string, kv ...string) map[string]string {
	out := maps.Clone(base)
	if out == nil {
		out = map[string]string{}
	}
	for i := 0; i < len(kv); i += 2 {
		if kv[i+1] == "-" {
			delete(out, kv[i])
		} else {
			out[kv[i]] = kv[i+1]
		}
	}
	return out
}

func TestDecide(t *testing.T) {
	on := map[string]string{canary.AnnotationEnabled: canary.EnabledValue}
	v2 := templateJSON(t, "web:v2")
	v3 := templateJSON(t, "web:v3")
	pending := func(template string) map[string]string {
		return with(on, canary.AnnotationCanaryTemplate, template, canary.AnnotationCanaryRevision, canary.Revision([]byte(template)))
	}
	v4 := templateJSON(t, "web:v4")
	pendingV2, pendingV3, pendingV4 := pending(v2), pending(v3), pending(v4)
	applied := func(image string) string {
		return `{"apiVersion":"apps/v1","kind":"Deployment","spec":{"template":` + templateJSON(t, image) + `}}`
	}
	const lastApplied = "kubectl.kubernetes.io/last-applied-configuration"
	// The field managers of kubectl's commands.
	const (
		apply      = "kubectl-client-side-apply"
		serverSide = "kubectl"
		replace    = "kubectl-replace"
		edit       = "kubectl-edit"
	)
	// printed is what `kubectl get` printed of the Deployment with a pending
	// canary, without sluice's annotations: as kubectl replace or apply
	// sends it, and writes it to its record.
	printed := string(object(t, "web:v1", 2, on))
	cancelled := func(command, manager string) string {
		return "sluice: " + command + " (field manager " + manager + ") set the pod template back to the running primary's, " +
			"so the pending canary (revision " + canary.Revision([]byte(v2)) + ") is cancelled; to run it after all, apply its version again"
	}
	optInForged := "sluice.dev/canary-template and sluice.dev/canary-revision are written only by sluice, " +
		"and this update sets them while it turns sluice.dev/canary on; leave them out of the manifest"
	forged := "sluice.dev/canary-template and sluice.dev/canary-revision are written only by sluice: this update sets or changes them. " +
		"Leave them out of the manifest or keep the values the Deployment has; to cancel a pending canary, apply the running version again"

	type want struct {
		verdict Verdict
		message string
		// image and annotations of the object after the patch; checked when
		// the verdict lets the request through.
		image       string
		annotations map[string]string
		warning     string
	}
	cases := []struct {
		name     string
		op       admissionv1.Operation
		shifter  bool
		manager  string
		old, obj []byte
		want     want
	}{
		{
			name: "the shifter's promotion passes as written",
			op:   admissionv1.Update, shifter: true,
			old:  object(t, "web:v1", 2, pendingV2),
			obj:  object(t, "web:v2", 2, on),
			want: want{verdict: Passed, image: "web:v2", annotations: on},
		},
		{
			name: "create passes",
			op:   admissionv1.Create,
			obj:  object(t, "web:v1", 2, on),
			want: want{verdict: Passed, image: "web:v1", annotations: on},
		},
		{
			name: "create with internal annotations is denied",
			op:   admissionv1.Create,
			obj:  object(t, "web:v1", 2, pendingV2),
			want: want{verdict: Denied, message: "sluice.dev/canary-template and sluice.dev/canary-revision are written only by sluice; remove them from the manifest"},
		},
		{
			name: "invalid settings are denied on create",
			op:   admissionv1.Create,
			obj:  object(t, "web:v1", 2, with(on, canary.AnnotationStepWeight, "abc")),
			want: want{verdict: Denied, message: `invalid sluice settings: sluice.dev/step-weight: "abc" is not an integer between 1 and 100`},
		},
		{
			name: "invalid settings are denied on update, with one message per problem",
			op:   admissionv1.Update,
			old:  object(t, "web:v1", 2, on),
			obj:  object(t, "web:v2", 2, with(on, canary.AnnotationThreshold, "0", canary.AnnotationPort, "x")),
			want: want{verdict: Denied, message: `invalid sluice settings: sluice.dev/port: "x" is not an integer between 1 and 65535; ` +
				`sluice.dev/threshold: "0" is not an integer between 1 and 1000`},
		},
		{
			name: "turning opt-in on passes the update unchanged",
			op:   admissionv1.Update,
			old:  object(t, "web:v1", 2, nil),
			obj:  object(t, "web:v2", 2, on),
			want: want{verdict: Passed, image: "web:v2", annotations: on},
		},
		{
			name: "turning opt-in on with forged internal annotations is denied",
			op:   admissionv1.Update,
			old:  object(t, "web:v1", 2, nil),
			obj:  object(t, "web:v1", 2, pendingV2),
			want: want{verdict: Denied, message: optInForged},
		},
		{
			// The webhook is not called while a Deployment is not opted in,
			// so these are left from an opt-out it did not see.
			name: "turning opt-in on drops internal annotations left while it was off",
			op:   admissionv1.Update,
			old:  object(t, "web:v1", 2, with(pendingV2, canary.AnnotationEnabled, "-")),
			obj:  object(t, "web:v1", 2, pendingV2),
			want: want{verdict: Cleared, image: "web:v1", annotations: on,
				warning: "sluice: this update turns sluice.dev/canary on, so the canary annotations (revision " + canary.Revision([]byte(v2)) +
					") left from an update the webhook did not see were dropped; sluice takes over from the next change of the pod template"},
		},
		{
			// Set while the webhook was down: the shifter ignores them while
			// skip-analysis is true, and they must not come back after.
			name: "turning skip-analysis off drops canary annotations left while it was on",
			op:   admissionv1.Update,
			old:  object(t, "web:v3", 2, with(pendingV2, canary.AnnotationSkipAnalysis, "true")),
			obj:  object(t, "web:v3", 2, with(pendingV2, canary.AnnotationSkipAnalysis, "false")),
			want: want{verdict: Cleared, image: "web:v3", annotations: with(on, canary.AnnotationSkipAnalysis, "false"),
				warning: "sluice: this update turns sluice.dev/skip-analysis off, so the canary annotations (revision " + canary.Revision([]byte(v2)) +
					") left from an update the webhook did not see were dropped; sluice takes over from the next change of the pod template"},
		},
		{
			// A PUT without the annotations, or the reinvocation after the
			// drop: the leftover must not be carried over.
			name: "turning skip-analysis off without the leftover annotations does not bring them back",
			op:   admissionv1.Update,
			old:  object(t, "web:v3", 2, with(pendingV2, canary.AnnotationSkipAnalysis, "true")),
			obj:  object(t, "web:v3", 2, on),
			want: want{verdict: Cleared, image: "web:v3", annotations: on,
				warning: "sluice: this update turns sluice.dev/skip-analysis off, so the canary annotations (revision " + canary.Revision([]byte(v2)) +
					") left from an update the webhook did not see were dropped; sluice takes over from the next change of the pod template"},
		},
		{
			name: "turning skip-analysis off with a template change diverts it",
			op:   admissionv1.Update,
			old:  object(t, "web:v1", 2, with(on, canary.AnnotationSkipAnalysis, "true")),
			obj:  object(t, "web:v2", 2, on),
			want: want{verdict: Diverted, image: "web:v1", annotations: pendingV2},
		},
		{
			name: "turning opt-in on while removing annotations left while it was off clears them",
			op:   admissionv1.Update,
			old:  object(t, "web:v1", 2, with(pendingV2, canary.AnnotationEnabled, "-")),
			obj:  object(t, "web:v1", 2, on),
			want: want{verdict: Cleared, image: "web:v1", annotations: on,
				warning: "sluice: this update turns sluice.dev/canary on, so the canary annotations (revision " + canary.Revision([]byte(v2)) +
					") left from an update the webhook did not see were dropped; sluice takes over from the next change of the pod template"},
		},
		{
			name: "turning opt-in off rolls the update out and drops the pending canary",
			op:   admissionv1.Update,
			old:  object(t, "web:v1", 2, pendingV2),
			obj:  object(t, "web:v3", 2, with(pendingV2, canary.AnnotationEnabled, "-")),
			want: want{verdict: Cleared, image: "web:v3", annotations: map[string]string{},
				warning: "sluice: opt-in is off, so the pending canary (revision " + canary.Revision([]byte(v2)) + ") was dropped; this update rolls out as a plain rolling update"},
		},
		{
			name: "disabled counts as off",
			op:   admissionv1.Update,
			old:  object(t, "web:v1", 2, on),
			obj:  object(t, "web:v2", 2, map[string]string{canary.AnnotationEnabled: canary.DisabledValue}),
			want: want{verdict: Passed, image: "web:v2", annotations: map[string]string{canary.AnnotationEnabled: canary.DisabledValue}},
		},
		{
			name: "skip-analysis rolls the update out and drops the pending canary",
			op:   admissionv1.Update,
			old:  object(t, "web:v1", 2, pendingV2),
			obj:  object(t, "web:v3", 2, with(pendingV2, canary.AnnotationSkipAnalysis, "true")),
			want: want{verdict: Cleared, image: "web:v3", annotations: with(on, canary.AnnotationSkipAnalysis, "true"),
				warning: "sluice: sluice.dev/skip-analysis is true, so the pending canary (revision " + canary.Revision([]byte(v2)) + ") was dropped; this update rolls out as a plain rolling update"},
		},
		{
			name: "a template change is diverted",
			op:   admissionv1.Update,
			old:  object(t, "web:v1", 2, on),
			obj:  object(t, "web:v2", 3, with(on, "team", "shop")),
			want: want{verdict: Diverted, image: "web:v1", annotations: with(pendingV2, "team", "shop")},
		},
		{
			name: "a newer template replaces the pending one",
			op:   admissionv1.Update,
			old:  object(t, "web:v1", 2, pendingV2),
			obj:  object(t, "web:v3", 2, pendingV2),
			want: want{verdict: Diverted, image: "web:v1",
				annotations: with(on, canary.AnnotationCanaryTemplate, v3, canary.AnnotationCanaryRevision, canary.Revision([]byte(v3)))},
		},
		{
			name: "the pending template again is the same diversion",
			op:   admissionv1.Update,
			old:  object(t, "web:v1", 2, pendingV2),
			obj:  object(t, "web:v2", 2, pendingV2),
			want: want{verdict: Diverted, image: "web:v1", annotations: pendingV2},
		},
		{
			name: "a template change overwrites whatever the update put in the internal annotations",
			op:   admissionv1.Update,
			old:  object(t, "web:v1", 2, on),
			obj:  object(t, "web:v2", 2, with(on, canary.AnnotationCanaryTemplate, v3, canary.AnnotationCanaryRevision, "0000000000")),
			want: want{verdict: Diverted, image: "web:v1", annotations: pendingV2},
		},
		{
			name: "scaling keeps the pending canary",
			op:   admissionv1.Update,
			old:  object(t, "web:v1", 2, pendingV2),
			obj:  object(t, "web:v1", 5, pendingV2),
			want: want{verdict: Passed, image: "web:v1", annotations: pendingV2},
		},
		{
			name: "a PUT without the internal annotations carries them over",
			op:   admissionv1.Update,
			old:  object(t, "web:v1", 2, pendingV2),
			obj:  object(t, "web:v1", 3, on),
			want: want{verdict: Passed, image: "web:v1", annotations: pendingV2},
		},
		{
			// A half pair can only be there if the webhook was bypassed; carrying
			// over what there is keeps reinvocation from refusing it.
			name: "a PUT carries over only the internal annotations the Deployment has",
			op:   admissionv1.Update,
			old:  object(t, "web:v1", 2, with(on, canary.AnnotationCanaryRevision, "0123456789")),
			obj:  object(t, "web:v1", 3, on),
			want: want{verdict: Passed, image: "web:v1", annotations: with(on, canary.AnnotationCanaryRevision, "0123456789")},
		},
		{
			name: "kubectl apply of the primary's template cancels the pending canary",
			op:   admissionv1.Update, manager: apply,
			old: object(t, "web:v1", 2, with(pendingV2, lastApplied, applied("web:v2"))),
			obj: object(t, "web:v1", 2, with(pendingV2, lastApplied, applied("web:v1"))),
			want: want{verdict: Cleared, image: "web:v1", annotations: with(on, lastApplied, applied("web:v1")),
				warning: cancelled("kubectl apply", apply)},
		},
		{
			// The API server rewrites the client-side record for the field
			// manager of kubectl apply --server-side.
			name: "kubectl apply --server-side of the primary's template cancels the pending canary",
			op:   admissionv1.Update, manager: serverSide,
			old: object(t, "web:v1", 2, with(pendingV2, lastApplied, applied("web:v2"))),
			obj: object(t, "web:v1", 2, with(pendingV2, lastApplied, applied("web:v1"))),
			want: want{verdict: Cleared, image: "web:v1", annotations: with(on, lastApplied, applied("web:v1")),
				warning: cancelled("kubectl apply --server-side", serverSide)},
		},
		{
			name: "kubectl apply of the pending version with other changes keeps it",
			op:   admissionv1.Update, manager: apply,
			old:  object(t, "web:v1", 2, with(pendingV2, lastApplied, applied("web:v2"))),
			obj:  object(t, "web:v1", 4, with(pendingV2, lastApplied, applied("web:v2")+" ")),
			want: want{verdict: Passed, image: "web:v1", annotations: with(pendingV2, lastApplied, applied("web:v2")+" ")},
		},
		{
			name: "kubectl apply of what kubectl get printed does not cancel",
			op:   admissionv1.Update, manager: apply,
			old:  object(t, "web:v1", 2, with(pendingV2, lastApplied, applied("web:v2"))),
			obj:  object(t, "web:v1", 3, with(pendingV2, lastApplied, string(object(t, "web:v1", 3, pendingV2)))),
			want: want{verdict: Passed, image: "web:v1", annotations: with(pendingV2, lastApplied, string(object(t, "web:v1", 3, pendingV2)))},
		},
		{
			name: "kubectl apply of what kubectl get printed, without the canary annotations, does not cancel",
			op:   admissionv1.Update, manager: apply,
			old:  object(t, "web:v1", 2, with(pendingV2, lastApplied, applied("web:v2"))),
			obj:  object(t, "web:v1", 2, with(pendingV2, lastApplied, printed)),
			want: want{verdict: Passed, image: "web:v1", annotations: with(pendingV2, lastApplied, printed)},
		},
		{
			// kubectl replace rewrites the record that the object it sends
			// carries with that object.
			name: "kubectl replace of what kubectl get printed, without the canary annotations, keeps the pending canary",
			op:   admissionv1.Update, manager: replace,
			old:  object(t, "web:v1", 2, with(pendingV2, lastApplied, applied("web:v2"))),
			obj:  object(t, "web:v1", 2, with(on, lastApplied, printed)),
			want: want{verdict: Passed, image: "web:v1", annotations: with(pendingV2, lastApplied, printed)},
		},
		{
			name: "kubectl replace of a manifest with kubectl's record and the primary's template keeps the pending canary",
			op:   admissionv1.Update, manager: replace,
			old:  object(t, "web:v1", 2, with(pendingV2, lastApplied, applied("web:v2"))),
			obj:  object(t, "web:v1", 2, with(on, lastApplied, applied("web:v1"))),
			want: want{verdict: Passed, image: "web:v1", annotations: with(pendingV2, lastApplied, applied("web:v1"))},
		},
		{
			name: "kubectl edit that removes the canary annotations and rewrites the record keeps the pending canary",
			op:   admissionv1.Update, manager: edit,
			old:  object(t, "web:v1", 2, with(pendingV2, lastApplied, applied("web:v2"))),
			obj:  object(t, "web:v1", 2, with(on, lastApplied, applied("web:v1"))),
			want: want{verdict: Passed, image: "web:v1", annotations: with(pendingV2, lastApplied, applied("web:v1"))},
		},
		{
			// kubectl apply set-last-applied names none, for one.
			name: "a record of the primary's template written under no field manager of kubectl apply does not cancel",
			op:   admissionv1.Update,
			old:  object(t, "web:v1", 2, with(pendingV2, lastApplied, applied("web:v2"))),
			obj:  object(t, "web:v1", 2, with(pendingV2, lastApplied, applied("web:v1"))),
			want: want{verdict: Passed, image: "web:v1", annotations: with(pendingV2, lastApplied, applied("web:v1"))},
		},
		{
			name: "kubectl apply of the primary's template after a record rewritten from the live object cancels",
			op:   admissionv1.Update, manager: apply,
			old: object(t, "web:v1", 2, with(pendingV2, lastApplied, string(object(t, "web:v1", 2, pendingV2)))),
			obj: object(t, "web:v1", 2, with(pendingV2, lastApplied, applied("web:v1"))),
			want: want{verdict: Cleared, image: "web:v1", annotations: with(on, lastApplied, applied("web:v1")),
				warning: cancelled("kubectl apply", apply)},
		},
		{
			// The record holds the primary's template, as the new one does;
			// yet it was never the user's manifest.
			name: "kubectl apply of the primary's template after a replace of what kubectl get printed cancels",
			op:   admissionv1.Update, manager: apply,
			old: object(t, "web:v1", 2, with(pendingV2, lastApplied, printed)),
			obj: object(t, "web:v1", 2, with(pendingV2, lastApplied, applied("web:v1"))),
			want: want{verdict: Cleared, image: "web:v1", annotations: with(on, lastApplied, applied("web:v1")),
				warning: cancelled("kubectl apply", apply)},
		},
		{
			name: "a PUT without kubectl's record does not cancel",
			op:   admissionv1.Update, manager: replace,
			old:  object(t, "web:v1", 2, with(pendingV2, lastApplied, applied("web:v2"))),
			obj:  object(t, "web:v1", 2, on),
			want: want{verdict: Passed, image: "web:v1", annotations: pendingV2},
		},
		{
			name: "the webhook's own diversion, seen again on reinvocation, passes",
			op:   admissionv1.Update,
			old:  object(t, "web:v1", 2, on),
			obj:  object(t, "web:v1", 2, pendingV2),
			want: want{verdict: Passed, image: "web:v1", annotations: pendingV2},
		},
		{
			// kubectl rollout undo copies the annotations of an old
			// ReplicaSet, which may hold a canary of its time.
			name: "a new template that brings canary annotations of its own is diverted, saying which one it replaces",
			op:   admissionv1.Update,
			old:  object(t, "web:v1", 2, pendingV2),
			obj:  object(t, "web:v3", 2, pendingV4),
			want: want{verdict: Diverted, image: "web:v1", annotations: pendingV3,
				warning: "sluice: this update carried the canary template of revision " + canary.Revision([]byte(v4)) +
					"; the new pod template (revision " + canary.Revision([]byte(v3)) + ") replaces it as the canary"},
		},
		{
			name: "a forged revision is denied",
			op:   admissionv1.Update,
			old:  object(t, "web:v1", 2, pendingV2),
			obj:  object(t, "web:v1", 2, with(pendingV2, canary.AnnotationCanaryRevision, "0123456789")),
			want: want{verdict: Denied, message: forged},
		},
		{
			name: "a forged template is denied",
			op:   admissionv1.Update,
			old:  object(t, "web:v1", 2, pendingV2),
			obj:  object(t, "web:v1", 2, with(pendingV2, canary.AnnotationCanaryTemplate, v3)),
			want: want{verdict: Denied, message: forged},
		},
		{
			name: "a revision alone is denied",
			op:   admissionv1.Update,
			old:  object(t, "web:v1", 2, on),
			obj:  object(t, "web:v1", 2, with(on, canary.AnnotationCanaryRevision, "0123456789")),
			want: want{verdict: Denied, message: forged},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := Decide(canary.BuiltinDefaults(), Request{Operation: tc.op, FieldManager: tc.manager, FromShifter: tc.shifter, Object: tc.obj, OldObject: tc.old})
			if d.Verdict != tc.want.verdict || d.Message != tc.want.message {
				t.Fatalf("verdict %s, message %q; want %s, %q", d.Verdict, d.Message, tc.want.verdict, tc.want.message)
			}
			if d.Verdict == Denied {
				return
			}
			image, annotations := applyPatch(t, tc.obj, d.Patch)
			if image != tc.want.image || !maps.Equal(annotations, tc.want.annotations) {
				t.Errorf("after the patch: image %q, annotations %v\nwant image %q, annotations %v", image, annotations, tc.want.image, tc.want.annotations)
			}
			if got := strings.Join(d.Warnings, "\n"); got != tc.want.warning {
				t.Errorf("warnings %q; want %q", got, tc.want.warning)
			}
			if d.Verdict == Diverted {
				// Deciding again on the diverted object is the reinvocation
				// case: it must accept the webhook's own work unchanged.
				again := Decide(canary.BuiltinDefaults(), Request{Operation: tc.op, Object: patched(t, tc.obj, d.Patch), OldObject: tc.old})
				if again.Verdict != Passed || again.Patch != nil {
					t.Errorf("reinvoked on its own result: %s with patch %s", again.Verdict, again.Patch)
				}
			}
		})
	}
}

func TestDecideRefusesTemplatesTooLargeForAnAnnotation(t *testing.T) {
	on := map[string]string{canary.AnnotationEnabled: canary.EnabledValue}
	image := "web:" + strings.Repeat("x", 200*1024)
	note := strings.Repeat("y", 60*1024)
	huge := object(t, image, 2, with(on, "note", note))
	d := Decide(canary.BuiltinDefaults(), Request{Operation: admissionv1.Update, Object: huge, OldObject: object(t, "web:v1", 2, on)})

	template := len(templateJSON(t, image))
	total := len(canary.AnnotationEnabled) + len(canary.EnabledValue) + len("note") + len(note) +
		len(canary.AnnotationCanaryTemplate) + template + len(canary.AnnotationCanaryRevision) + 10
	want := fmt.Sprintf("the new pod template is %d bytes of JSON; sluice keeps it in the annotation sluice.dev/canary-template until it is promoted, "+
		"and with it the Deployment's annotations would total %d bytes, over the API server's limit of 262144 bytes (256 KiB); "+
		`make the template or the other annotations smaller, or set sluice.dev/skip-analysis: "true" to roll it out without a canary`, template, total)
	if d.Verdict != Denied || d.Message != want {
		t.Errorf("verdict %s, message %q\nwant denied, %q", d.Verdict, d.Message, want)
	}
}

func patched(t *testing.T, obj, patch []byte) []byte {
	t.Helper()
	if patch == nil {
		return obj
	}
	p, err := jsonpatch.DecodePatch(patch)
	if err != nil {
		t.Fatalf("patch %s: %v", patch, err)
	}
	out, err := p.Apply(obj)
	if err != nil {
		t.Fatalf("apply patch %s: %v", patch, err)
	}
	return out
}

func applyPatch(t *testing.T, obj, patch []byte) (string, map[string]string) {
	t.Helper()
	var dep appsv1.Deployment
	if err := json.Unmarshal(patched(t, obj, patch), &dep); err != nil {
		t.Fatal(err)
	}
	annotations := dep.Annotations
	if annotations == nil {
		annotations = map[string]string{}
	}
	return dep.Spec.Template.Spec.Containers[0].Image, annotations
}
