package shift

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	appsv1 "k8s.io/api/apps/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	"sluice.dev/sluice/pkg/canary"
)

// told collects the reasons of the events recorded.
type told []string

func (t *told) Event(_ runtime.Object, _, reason, _ string)     { *t = append(*t, reason) }
func (t *told) StepEvent(_ runtime.Object, _, reason, _ string) { *t = append(*t, reason) }

// TestStatusWriteInDoubt: a status write whose answer is lost tells its
// events once, after the API server shows whether it took the write; one
// refused with an answer tells nothing and keeps nothing.
func TestStatusWriteInDoubt(t *testing.T) {
	lost := apierrors.NewServerTimeout(schema.GroupResource{Group: canary.GroupVersion.Group, Resource: "canaries"}, "update", 1)
	cases := []struct {
		name string
		// landed: the API server takes the write; answer: what the write
		// returns.
		landed bool
		answer error
		// confirm: the error of the next reconcile's confirm; told: the
		// events recorded by then.
		confirm error
		told    []string
	}{
		{"taken, answer lost", true, lost, errBehind, []string{"Promoted", "Promoted", "NewRevision"}},
		{"not taken, answer lost", false, lost, nil, nil},
		{"conflict", false, apierrors.NewConflict(schema.GroupResource{Resource: "canaries"}, "web", errors.New("changed")), nil, nil},
		{"taken", true, nil, nil, []string{"Promoted", "Promoted", "NewRevision"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			scheme := runtime.NewScheme()
			if err := errors.Join(clientgoscheme.AddToScheme(scheme), canary.AddToScheme(scheme)); err != nil {
				t.Fatal(err)
			}
			dep := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web"}}
			cr := &canary.Canary{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web", UID: "1"},
				Status: canary.CanaryStatus{Phase: canary.PhasePromoting}}
			c := fake.NewClientBuilder().WithScheme(scheme).WithObjects(cr.DeepCopy()).WithStatusSubresource(cr).
				WithInterceptorFuncs(interceptor.Funcs{SubResourceUpdate: func(ctx context.Context, c client.Client, sub string, obj client.Object, opts ...client.SubResourceUpdateOption) error {
					if tc.landed {
						if err := c.SubResource(sub).Update(ctx, obj.DeepCopyObject().(client.Object), opts...); err != nil {
							return err
						}
					}
					return tc.answer
				}}).Build()
			var events told
			r := &Reconciler{Client: c, APIReader: c, Events: &events, Metrics: NewMetrics(prometheus.NewRegistry())}
			if err := c.Get(t.Context(), client.ObjectKeyFromObject(cr), cr); err != nil {
				t.Fatal(err)
			}
			d := Decision{
				Status: canary.CanaryStatus{Phase: canary.PhaseProgressing, CanaryRevision: "b", LastStepTime: metav1.NewTime(time.Date(2026, 11, 30, 17, 0, 0, 123456789, time.UTC))},
				Events: []Event{{Reason: "Promoted", Main: true}, {Reason: "NewRevision"}},
			}
			if err := r.writeStatus(t.Context(), dep, cr, d); !errors.Is(err, tc.answer) {
				t.Fatalf("writeStatus = %v; want %v", err, tc.answer)
			}
			if err := r.confirm(t.Context(), dep, cr); !errors.Is(err, tc.confirm) {
				t.Errorf("confirm = %v; want %v", err, tc.confirm)
			}
			if !slices.Equal(events, tc.told) {
				t.Errorf("told %v; want %v", events, tc.told)
			}
			// Settled: nothing is told again.
			if err := r.confirm(t.Context(), dep, cr); err != nil || !slices.Equal(events, tc.told) {
				t.Errorf("confirm again = %v, told %v; want nil, %v", err, events, tc.told)
			}
		})
	}
}
