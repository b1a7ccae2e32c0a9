package mutate_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"reflect"
	"runtime/debug"
	"strings"
	"sync"
	"testing"

	jsonpatch "github.com/evanphx/json-patch/v5"
	admissionv1 "k8s.io/api/admission/v1"
	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/utils/ptr"

	"sluice.dev/sluice/pkg/canary"
	"sluice.dev/sluice/pkg/mutate"
)

// recovered holds the stack of the last panic that controller-runtime
// recovered in a webhook. RecoverPanic is true in NewWebhook: a panic in the
// handler does not unwind through ServeHTTP but becomes a 500 response. The
// panic handler below keeps its stack so that the fuzz targets can report it.
var recovered struct {
	sync.Mutex
	value any
	stack []byte
}

var recordPanics sync.Once

func takeRecoveredPanic() (any, []byte) {
	recovered.Lock()
	defer recovered.Unlock()
	v, s := recovered.value, recovered.stack
	recovered.value, recovered.stack = nil, nil
	return v, s
}

// admissionDecoder decodes a review as controller-runtime does.
var admissionDecoder = func() runtime.Decoder {
	scheme := runtime.NewScheme()
	utilruntime.Must(admissionv1.AddToScheme(scheme))
	return serializer.NewCodecFactory(scheme).UniversalDeserializer()
}()

// unversionedReview is controller-runtime's trick to decode a v1 or v1beta1
// review into the v1 type: a type the scheme does not know.
type unversionedReview struct{ admissionv1.AdmissionReview }

// requestObject is the object of the review in body, as the handler sees it.
func requestObject(body []byte) ([]byte, error) {
	var ar unversionedReview
	ar.SetGroupVersionKind(admissionv1.SchemeGroupVersion.WithKind("AdmissionReview"))
	if _, _, err := admissionDecoder.Decode(body, nil, &ar); err != nil {
		return nil, err
	}
	if ar.Request == nil {
		return nil, fmt.Errorf("no request")
	}
	return ar.Request.Object.Raw, nil
}

// checkPatch checks that patch is a JSON patch that applies to obj and
// leaves valid JSON.
func checkPatch(t *testing.T, patch, obj []byte) {
	t.Helper()
	if !json.Valid(patch) {
		t.Fatalf("the patch is not valid JSON:\n%s\nobject:\n%s", patch, obj)
	}
	p, err := jsonpatch.DecodePatch(patch)
	if err != nil {
		t.Fatalf("the patch is not a JSON patch: %v\n%s", err, patch)
	}
	patched, err := p.Apply(obj)
	if err != nil {
		t.Fatalf("the patch does not apply: %v\npatch:\n%s\nobject:\n%s", err, patch, obj)
	}
	if !json.Valid(patched) {
		t.Fatalf("the patched object is not valid JSON:\n%s", patched)
	}
}

// withPending returns d carrying the pending canary that a diverted update
// to template leaves, as the webhook writes it.
func withPending(d *appsv1.Deployment, template []byte, revision string) *appsv1.Deployment {
	d = d.DeepCopy()
	d.Annotations[canary.AnnotationCanaryTemplate] = string(template)
	d.Annotations[canary.AnnotationCanaryRevision] = revision
	return d
}

// pendingPair returns a stored Deployment that carries a pending canary (the
// result of divertingUpdate) and a copy of it to modify.
func pendingPair(tb testing.TB) (old, obj *appsv1.Deployment) {
	primary, next := divertingUpdate()
	template := mustJSON(tb, next.Spec.Template)
	old = withPending(primary, template, canary.Revision(template))
	return old, old.DeepCopy()
}

type reviewSeed struct {
	name string
	body []byte
}

func reviewSeeds(tb testing.TB) []reviewSeed {
	old, obj := divertingUpdate()
	seeds := []reviewSeed{
		{"divert", divertingBody(tb)},
		{"pass", passingBody(tb)},
		{"empty", []byte{}},
		{"empty object", []byte(`{}`)},
		{"malformed", []byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"x","object":{"metadata":`)},
		{"no request", []byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}`)},
		{"create", reviewBody(tb, admissionRequest(tb, admissionv1.Create, nil, obj))},
		{"update without oldObject", reviewBody(tb, admissionRequest(tb, admissionv1.Update, nil, obj))},
	}

	// A ReplicaSet (the webhook is registered for Deployments only).
	rs := &appsv1.ReplicaSet{
		TypeMeta:   metav1.TypeMeta{APIVersion: "apps/v1", Kind: "ReplicaSet"},
		ObjectMeta: *obj.ObjectMeta.DeepCopy(),
		Spec: appsv1.ReplicaSetSpec{
			Replicas: obj.Spec.Replicas, Selector: obj.Spec.Selector, Template: obj.Spec.Template,
		},
	}
	req := admissionRequest(tb, admissionv1.Update, old, obj)
	req.Kind = metav1.GroupVersionKind{Group: "apps", Version: "v1", Kind: "ReplicaSet"}
	req.Resource = metav1.GroupVersionResource{Group: "apps", Version: "v1", Resource: "replicasets"}
	req.RequestKind, req.RequestResource = &req.Kind, &req.Resource
	req.Object.Raw, req.OldObject.Raw = mustJSON(tb, rs), mustJSON(tb, rs)
	seeds = append(seeds, reviewSeed{"replicaset", reviewBody(tb, req)})

	// A v1beta1 review, which controller-runtime decodes into the v1 type.
	v1beta1 := strings.Replace(string(divertingBody(tb)), `"apiVersion":"admission.k8s.io/v1"`, `"apiVersion":"admission.k8s.io/v1beta1"`, 1)
	seeds = append(seeds, reviewSeed{"v1beta1", []byte(v1beta1)})

	// Bogus canary-template values written by a user.
	bogus := withPending(obj, []byte(`{"spec":{"containers":[{"name":"x"`), "0123456789")
	seeds = append(seeds,
		reviewSeed{"bogus template in the update", updateReview(tb, old, bogus)},
		reviewSeed{"bogus template stored, PUT without it", updateReview(tb, withPending(old, []byte(`not json`), "ffffffffff"), old)},
		reviewSeed{"bogus template stored and kept, template changed", updateReview(tb, withPending(old, []byte(`[]`), ""), withPending(obj, []byte(`[]`), ""))},
	)

	// A pending canary: updates that keep, drop or cancel it.
	stored, next := pendingPair(tb)
	next.Spec.Replicas = ptr.To[int32](4)
	seeds = append(seeds, reviewSeed{"pending, scale", updateReview(tb, stored, next)})
	stored, next = pendingPair(tb)
	delete(next.Annotations, canary.AnnotationCanaryTemplate)
	delete(next.Annotations, canary.AnnotationCanaryRevision)
	seeds = append(seeds, reviewSeed{"pending, PUT from scratch", updateReview(tb, stored, next)})
	stored, next = pendingPair(tb)
	next.Annotations[canary.AnnotationEnabled] = canary.DisabledValue
	seeds = append(seeds, reviewSeed{"pending, opt out", updateReview(tb, stored, next)})
	stored, next = pendingPair(tb)
	next.Spec.Template.Spec.Containers[1].Image = "registry.example.com/infra/log-shipper:1.9.0"
	seeds = append(seeds, reviewSeed{"pending, another template", updateReview(tb, stored, next)})
	stored, next = pendingPair(tb)
	next.Annotations[canary.AnnotationStepWeight] = "200"
	seeds = append(seeds, reviewSeed{"invalid settings", updateReview(tb, stored, next)})

	// Small reviews, which the fuzzer mutates (and minimizes) much faster
	// than the realistic ones above.
	const (
		on      = `"sluice.dev/canary":"enabled"`
		small1  = `{"metadata":{"annotations":{` + on + `}},"spec":{"replicas":1,"template":{"spec":{"containers":[{"image":"a:1"}]}}}}`
		small2  = `{"metadata":{"annotations":{` + on + `}},"spec":{"replicas":1,"template":{"spec":{"containers":[{"image":"a:2"}]}}}}`
		pending = `{"metadata":{"annotations":{` + on + `,"sluice.dev/canary-template":"{\"spec\":{\"containers\":[{\"image\":\"a:2\"}]}}","sluice.dev/canary-revision":"x"}},"spec":{"replicas":1,"template":{"spec":{"containers":[{"image":"a:1"}]}}}}`
		// kubectl's record of the last apply, from the canary's template to
		// the primary's.
		recorded  = `{"metadata":{"annotations":{` + on + `,"sluice.dev/canary-template":"{\"a\":2}","sluice.dev/canary-revision":"x","kubectl.kubernetes.io/last-applied-configuration":"{\"spec\":{\"template\":{\"a\":2}}}"}},"spec":{"template":{"a":1}}}`
		reapplied = `{"metadata":{"annotations":{` + on + `,"kubectl.kubernetes.io/last-applied-configuration":"{\"spec\":{\"template\":{\"a\":1}}}"}},"spec":{"template":{"a":1}}}`
	)
	review := func(op, obj, old string) []byte {
		return []byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u",` +
			`"kind":{"group":"apps","version":"v1","kind":"Deployment"},"operation":"` + op + `","userInfo":{"username":"alice"},` +
			`"object":` + obj + `,"oldObject":` + old + `,"options":{"fieldManager":"kubectl-client-side-apply"}}}`)
	}
	seeds = append(seeds,
		reviewSeed{"small divert", review("UPDATE", small2, small1)},
		reviewSeed{"small pass", review("UPDATE", small1, small1)},
		reviewSeed{"small create", review("CREATE", small1, "null")},
		reviewSeed{"small pending, PUT", review("UPDATE", small1, pending)},
		reviewSeed{"small pending, kept", review("UPDATE", pending, pending)},
		reviewSeed{"small pending, applied the primary again", review("UPDATE", reapplied, recorded)},
	)
	return seeds
}

func FuzzHandle(f *testing.F) {
	for _, s := range reviewSeeds(f) {
		f.Add(s.body)
	}
	recordPanics.Do(func() {
		utilruntime.PanicHandlers = append(utilruntime.PanicHandlers, func(_ context.Context, r any) {
			recovered.Lock()
			defer recovered.Unlock()
			recovered.value, recovered.stack = r, debug.Stack()
		})
	})
	wh := newWebhook(canary.BuiltinDefaults())
	f.Fuzz(func(t *testing.T, body []byte) {
		rec := httptest.NewRecorder()
		wh.ServeHTTP(rec, newReviewRequest(body))
		if v, stack := takeRecoveredPanic(); v != nil {
			t.Fatalf("the handler panicked (controller-runtime recovered it): %v\n%s", v, stack)
		}
		if ct := rec.Header().Get("Content-Type"); ct != "" && !strings.HasPrefix(ct, "application/json") && !strings.HasPrefix(ct, "text/plain") {
			t.Errorf("Content-Type %q", ct)
		}
		var review admissionv1.AdmissionReview
		if err := json.Unmarshal(rec.Body.Bytes(), &review); err != nil {
			t.Fatalf("the response is not an AdmissionReview: %v\n%s", err, rec.Body.Bytes())
		}
		res := review.Response
		if res == nil {
			t.Fatalf("the AdmissionReview has no response:\n%s", rec.Body.Bytes())
		}
		if res.Result != nil && res.Result.Code == http.StatusInternalServerError {
			t.Fatalf("internal error: %s", res.Result.Message)
		}
		if len(res.Patch) == 0 {
			if res.PatchType != nil {
				t.Errorf("patch type %q without a patch", *res.PatchType)
			}
			return
		}
		if !res.Allowed {
			t.Fatalf("a denial carries a patch: %s", res.Patch)
		}
		if res.PatchType == nil || *res.PatchType != admissionv1.PatchTypeJSONPatch {
			t.Fatalf("patch type %v, want JSONPatch", res.PatchType)
		}
		obj, err := requestObject(body)
		if err != nil {
			t.Fatalf("a patch for a request that does not decode: %v", err)
		}
		checkPatch(t, res.Patch, obj)
	})
}

func FuzzDecide(f *testing.F) {
	raw := func(d *appsv1.Deployment) []byte { return mustJSON(f, d) }
	old, obj := divertingUpdate()
	f.Add(raw(obj), raw(old), false, "")
	f.Add(raw(obj), []byte(nil), true, "")
	old, obj = passingUpdate()
	f.Add(raw(obj), raw(old), false, "")
	stored, next := pendingPair(f)
	f.Add(raw(next), raw(stored), false, "")
	delete(next.Annotations, canary.AnnotationCanaryTemplate)
	delete(next.Annotations, canary.AnnotationCanaryRevision)
	f.Add(raw(next), raw(stored), false, "")
	stored, next = pendingPair(f)
	next.Annotations[canary.AnnotationEnabled] = canary.DisabledValue
	f.Add(raw(next), raw(stored), false, "")
	stored, next = pendingPair(f)
	next.Annotations[canary.AnnotationSkipAnalysis] = "true"
	f.Add(raw(next), raw(stored), false, "")
	f.Add(raw(withPending(obj, []byte(`{"spec":`), "0123456789")), raw(old), false, "")
	f.Add(raw(withPending(obj, []byte(`{"spec":`), "0123456789")), []byte(nil), true, "")
	// Small objects, which the fuzzer mutates faster.
	f.Add([]byte(`{"metadata":{"annotations":{"sluice.dev/canary":"enabled"}},"spec":{"template":{"a":2}}}`),
		[]byte(`{"metadata":{"annotations":{"sluice.dev/canary":"enabled"}},"spec":{"template":{"a":1}}}`), false, "")
	f.Add([]byte(`{"metadata":{"annotations":{"sluice.dev/canary":"enabled"}},"spec":{"template":{"a":1}}}`),
		[]byte(`{"metadata":{"annotations":{"sluice.dev/canary":"enabled","sluice.dev/canary-template":"{\"a\":2}","sluice.dev/canary-revision":"x"}},"spec":{"template":{"a":1}}}`), false, "")
	// kubectl's record of the last apply goes from the canary's template to
	// the primary's: kubectl apply cancels, kubectl replace carries over.
	const (
		recorded = `{"metadata":{"annotations":{"sluice.dev/canary":"enabled","sluice.dev/canary-template":"{\"a\":2}","sluice.dev/canary-revision":"x",` +
			`"kubectl.kubernetes.io/last-applied-configuration":"{\"spec\":{\"template\":{\"a\":2}}}"}},"spec":{"template":{"a":1}}}`
		reapplied = `{"metadata":{"annotations":{"sluice.dev/canary":"enabled",` +
			`"kubectl.kubernetes.io/last-applied-configuration":"{\"spec\":{\"template\":{\"a\":1}}}"}},"spec":{"template":{"a":1}}}`
	)
	for _, manager := range []string{"kubectl-client-side-apply", "kubectl", "kubectl-replace", "kubectl-edit"} {
		f.Add([]byte(reapplied), []byte(recorded), false, manager)
	}
	f.Add([]byte(`{}`), []byte(`{}`), false, "")
	f.Add([]byte(``), []byte(``), false, "")
	f.Add([]byte(`not json`), []byte(`{"metadata":`), false, "")

	f.Fuzz(func(t *testing.T, object, oldObject []byte, create bool, manager string) {
		req := mutate.Request{Operation: admissionv1.Update, FieldManager: manager, Object: object, OldObject: oldObject}
		if create {
			req.Operation = admissionv1.Create
		}
		d := mutate.Decide(canary.BuiltinDefaults(), req)
		if again := mutate.Decide(canary.BuiltinDefaults(), req); !reflect.DeepEqual(d, again) {
			t.Fatalf("Decide is not deterministic: %+v, then %+v", d, again)
		}
		if d.Patch == nil {
			return
		}
		if d.Verdict == mutate.Denied || d.Verdict == mutate.Errored {
			t.Fatalf("verdict %s with a patch: %s", d.Verdict, d.Patch)
		}
		// The handler hands Decide only objects that decoded as JSON, and an
		// UPDATE only with an oldObject: the patch must hold for those.
		if !json.Valid(object) || (!create && !json.Valid(oldObject)) {
			return
		}
		checkPatch(t, d.Patch, object)
	})
}
