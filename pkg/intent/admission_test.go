package intent_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"sluice.dev/sluice/pkg/canary"
	"sluice.dev/sluice/pkg/intent"
)

var (
	now     = time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	earlier = metav1.NewTime(now.Add(-time.Hour))
)

func canaryWith(in *canary.Intent) []byte {
	b, err := json.Marshal(canary.Canary{TypeMeta: metav1.TypeMeta{APIVersion: "sluice.dev/v1alpha1", Kind: "Canary"},
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "shop"}, Spec: canary.CanarySpec{Intent: in}})
	if err != nil {
		panic(err)
	}
	return b
}

// TestStamp: a changed intent gets the asker and the time, whatever the
// client wrote there; an unchanged one keeps its stamp, whoever writes the
// Canary.
func TestStamp(t *testing.T) {
	pause := &canary.Intent{Action: canary.ActionPause, Revision: "abc"}
	stampedPause := &canary.Intent{Action: canary.ActionPause, Revision: "abc", RequestedBy: "jane", RequestedAt: earlier}
	forged := &canary.Intent{Action: canary.ActionAbort, Revision: "abc", RequestedBy: "the-boss", RequestedAt: earlier}
	for _, tc := range []struct {
		name     string
		old, obj *canary.Intent
		user     string
		want     *canary.Intent // nil: allowed unchanged
	}{
		{"no intent", nil, nil, "jane", nil},
		{"a new intent", nil, pause, "jane", &canary.Intent{Action: canary.ActionPause, Revision: "abc", RequestedBy: "jane", RequestedAt: metav1.NewTime(now)}},
		{"the shifter writes the spec, the intent unchanged", stampedPause, stampedPause, "system:serviceaccount:sluice-system:sluice", nil},
		{"a client drops the stamp of an unchanged intent", stampedPause, pause, "bob", stampedPause},
		{"a client claims to be someone else", stampedPause, forged, "bob",
			&canary.Intent{Action: canary.ActionAbort, Revision: "abc", RequestedBy: "bob", RequestedAt: metav1.NewTime(now)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := admission.Request{AdmissionRequest: admissionv1.AdmissionRequest{
				Kind:      metav1.GroupVersionKind{Group: "sluice.dev", Version: "v1alpha1", Kind: "Canary"},
				Operation: admissionv1.Update, UserInfo: authenticationv1.UserInfo{Username: tc.user},
				Object: runtime.RawExtension{Raw: canaryWith(tc.obj)}, OldObject: runtime.RawExtension{Raw: canaryWith(tc.old)},
			}}
			res := intent.Stamp{Now: func() time.Time { return now.Add(300 * time.Millisecond) }}.Handle(context.Background(), req)
			if !res.Allowed {
				t.Fatalf("refused: %+v", res.Result)
			}
			if tc.want == nil {
				if len(res.Patches) > 0 {
					t.Errorf("patches %+v; want none", res.Patches)
				}
				return
			}
			if len(res.Patches) != 1 || res.Patches[0].Path != "/spec/intent" {
				t.Fatalf("patches %+v; want one of /spec/intent", res.Patches)
			}
			raw, _ := json.Marshal(res.Patches[0].Value)
			var got canary.Intent
			if err := json.Unmarshal(raw, &got); err != nil {
				t.Fatal(err)
			}
			if got.Action != tc.want.Action || got.RequestedBy != tc.want.RequestedBy || !got.RequestedAt.Equal(&tc.want.RequestedAt) {
				t.Errorf("stamped %+v; want %+v", got, *tc.want)
			}
		})
	}
}

// TestStampRefusesOtherKinds: a misconfigured rule gets a clear error.
func TestStampRefusesOtherKinds(t *testing.T) {
	req := admission.Request{AdmissionRequest: admissionv1.AdmissionRequest{
		Kind: metav1.GroupVersionKind{Group: "apps", Version: "v1", Kind: "Deployment"}}}
	res := intent.Stamp{}.Handle(context.Background(), req)
	if res.Allowed || res.Result == nil || res.Result.Message !=
		"sluice's intent webhook handles Canaries, not apps/v1, Kind=Deployment; check the rules of its webhook configuration" {
		t.Errorf("response %+v", res.Result)
	}
}
