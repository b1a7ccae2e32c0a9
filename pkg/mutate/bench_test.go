//go:build unix

package mutate_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"syscall"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	appsv1 "k8s.io/api/apps/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/webhook"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"sluice.dev/sluice/pkg/canary"
	"sluice.dev/sluice/pkg/mutate"
)

// The benchmarks report, besides ns/op (wall clock), cpu-ns/op: the CPU time
// of the whole process (all threads, garbage collection included) per
// operation, from getrusage(2). On a shared machine it is the steadier of the
// two, as time spent waiting for a CPU does not count. (Hence unix only.)

func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// measureCPU runs op in a b.Loop and reports cpu-ns/op.
func measureCPU(b *testing.B, op func()) {
	start := processCPU()
	for b.Loop() {
		op()
	}
	b.ReportMetric(float64(processCPU()-start)/float64(b.N), "cpu-ns/op")
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
	measureCPU(b, func() {
		if _, _, err := decoder.Decode(body, nil, &admissionv1.AdmissionReview{}); err != nil {
			b.Fatal(err)
		}
	})
}

// BenchmarkHandleNoop is the floor of any controller-runtime webhook: the
// full ServeHTTP of the diverting review with a handler that allows
// everything at once. It shows what of BenchmarkHandlePass is sluice's.
func BenchmarkHandleNoop(b *testing.B) {
	newWebhook(canary.BuiltinDefaults()) // sets the logger
	allow := admission.HandlerFunc(func(context.Context, admission.Request) admission.Response {
		return admission.Allowed("")
	})
	benchmarkServe(b, &webhook.Admission{Handler: allow}, divertingBody(b), false)
}

func benchmarkHandle(b *testing.B, body []byte, wantPatch bool) {
	benchmarkServe(b, webhookWith(canary.BuiltinDefaults(), mutate.PolicyReaders{Cache: noPolicies{}}), body, wantPatch)
}

// noPolicies stands in for the webhook's informer cache of the policies
// when there are none: every Deployment's lookup of the default
// ClusterCanaryPolicy finds nothing, as in most installations. (The fake
// client of the unit tests costs many times a cache's map lookup.)
type noPolicies struct{ client.Reader }

func (noPolicies) Get(_ context.Context, key client.ObjectKey, _ client.Object, _ ...client.GetOption) error {
	return apierrors.NewNotFound(schema.GroupResource{Group: "sluice.dev", Resource: "clustercanarypolicies"}, key.Name)
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
	// One request whose body is rewound each time, and a writer that keeps
	// nothing: the loop measures the webhook, not building requests and
	// recording answers, which the decode floor does not pay either.
	r, reader, w := newReviewRequest(body), bytes.NewReader(body), discard{http.Header{}}
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	measureCPU(b, func() {
		reader.Reset(body)
		r.Body = io.NopCloser(reader)
		wh.ServeHTTP(w, r)
	})
}

// discard is an http.ResponseWriter that drops the answer.
type discard struct{ header http.Header }

func (d discard) Header() http.Header       { return d.header }
func (discard) Write(p []byte) (int, error) { return len(p), nil }
func (discard) WriteHeader(int)             {}

func BenchmarkHandleDivert(b *testing.B) { benchmarkHandle(b, divertingBody(b), true) }

func BenchmarkHandlePass(b *testing.B) { benchmarkHandle(b, passingBody(b), false) }

func benchmarkDecide(b *testing.B, old, obj *appsv1.Deployment, want mutate.Verdict) {
	req := mutate.Request{Operation: admissionv1.Update, Object: mustJSON(b, obj), OldObject: mustJSON(b, old)}
	if d := mutate.Decide(canary.BuiltinDefaults(), req); d.Verdict != want {
		b.Fatalf("verdict %q, want %q (%s)", d.Verdict, want, d.Message)
	}
	b.SetBytes(int64(len(req.Object) + len(req.OldObject)))
	b.ReportAllocs()
	measureCPU(b, func() { mutate.Decide(canary.BuiltinDefaults(), req) })
}

func BenchmarkDecideDivert(b *testing.B) {
	old, obj := divertingUpdate()
	benchmarkDecide(b, old, obj, mutate.Diverted)
}

func BenchmarkDecidePass(b *testing.B) {
	old, obj := passingUpdate()
	benchmarkDecide(b, old, obj, mutate.Passed)
}
