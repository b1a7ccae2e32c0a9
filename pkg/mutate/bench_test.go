package mutate_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	admissionv1 "k8s.io/api/admission/v1"
	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/webhook"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"sluice.dev/sluice/pkg/mutate"
)

// setLogger stands in for cmd/webhook's ctrl.SetLogger. Until it is called,
// controller-runtime's root logger keeps a promise for every logger derived
// from it, and the webhook derives one per request: without it, a benchmark
// measures that growing tree (and the garbage collector walking it).
var setLogger sync.Once

// newWebhook is the webhook as Serve registers it, with metrics on a private
// registry and no logging. RecoverPanic is left unset, as asked; note that
// controller-runtime treats nil as true and recovers panics itself.
func newWebhook() *webhook.Admission {
	setLogger.Do(func() { ctrllog.SetLogger(logr.New(ctrllog.NullLogSink{})) })
	h := mutate.NewHandler([]string{"system:serviceaccount:sluice-system:sluice"},
		mutate.NewMetrics(prometheus.NewRegistry()), logr.Discard())
	return &webhook.Admission{Handler: h}
}

func newReviewRequest(body []byte) *http.Request {
	r := httptest.NewRequest(http.MethodPost, mutate.Path, bytes.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	return r
}

// serve posts body to wh and decodes the response it writes.
func serve(tb testing.TB, wh http.Handler, body []byte) *admissionv1.AdmissionReview {
	tb.Helper()
	rec := httptest.NewRecorder()
	wh.ServeHTTP(rec, newReviewRequest(body))
	var review admissionv1.AdmissionReview
	if err := json.Unmarshal(rec.Body.Bytes(), &review); err != nil {
		tb.Fatalf("the response is not an AdmissionReview: %v\n%s", err, rec.Body.Bytes())
	}
	if review.Response == nil {
		tb.Fatalf("the AdmissionReview has no response:\n%s", rec.Body.Bytes())
	}
	return &review
}

// BenchmarkDecodeFloor is the least any webhook pays for the review: decoding
// it the way controller-runtime does.
func BenchmarkDecodeFloor(b *testing.B) {
	body := divertingBody(b)
	scheme := runtime.NewScheme()
	if err := admissionv1.AddToScheme(scheme); err != nil {
		b.Fatal(err)
	}
	decoder := serializer.NewCodecFactory(scheme).UniversalDeserializer()
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := decoder.Decode(body, nil, &admissionv1.AdmissionReview{}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkHandleNoop is the floor of any controller-runtime webhook: the
// full ServeHTTP of the diverting review with a handler that allows
// everything at once. It shows what of BenchmarkHandlePass is sluice's.
func BenchmarkHandleNoop(b *testing.B) {
	newWebhook() // sets the logger
	allow := admission.HandlerFunc(func(context.Context, admission.Request) admission.Response {
		return admission.Allowed("")
	})
	benchmarkServe(b, &webhook.Admission{Handler: allow}, divertingBody(b), false)
}

func benchmarkHandle(b *testing.B, body []byte, wantPatch bool) {
	benchmarkServe(b, newWebhook(), body, wantPatch)
}

func benchmarkServe(b *testing.B, wh *webhook.Admission, body []byte, wantPatch bool) {
	review := serve(b, wh, body)
	switch res := review.Response; {
	case !res.Allowed:
		b.Fatalf("the request was not allowed: %+v", res.Result)
	case wantPatch && len(res.Patch) == 0:
		b.Fatal("the response carries no patch")
	case !wantPatch && len(res.Patch) != 0:
		b.Fatalf("the response carries a patch: %s", res.Patch)
	}
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		wh.ServeHTTP(httptest.NewRecorder(), newReviewRequest(body))
	}
}

func BenchmarkHandleDivert(b *testing.B) { benchmarkHandle(b, divertingBody(b), true) }

func BenchmarkHandlePass(b *testing.B) { benchmarkHandle(b, passingBody(b), false) }

func benchmarkDecide(b *testing.B, old, obj *appsv1.Deployment, want mutate.Verdict) {
	req := mutate.Request{Operation: admissionv1.Update, Object: mustJSON(b, obj), OldObject: mustJSON(b, old)}
	if d := mutate.Decide(req); d.Verdict != want {
		b.Fatalf("verdict %q, want %q (%s)", d.Verdict, want, d.Message)
	}
	b.SetBytes(int64(len(req.Object) + len(req.OldObject)))
	b.ReportAllocs()
	for b.Loop() {
		mutate.Decide(req)
	}
}

func BenchmarkDecideDivert(b *testing.B) {
	old, obj := divertingUpdate()
	benchmarkDecide(b, old, obj, mutate.Diverted)
}

func BenchmarkDecidePass(b *testing.B) {
	old, obj := passingUpdate()
	benchmarkDecide(b, old, obj, mutate.Passed)
}
