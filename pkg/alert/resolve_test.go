package alert

import (
	"context"
	"errors"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	"sluice.dev/sluice/pkg/canary"
)

func TestResolve(t *testing.T) {
	const slackURL = "https://hooks.slack.com/services/T0001/B0001/s3cr3t"
	secret := func(ns, name string, data map[string]string) client.Object {
		s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Data: map[string][]byte{}}
		for k, v := range data {
			s.Data[k] = []byte(v)
		}
		return s
	}
	scheme := runtime.NewScheme()
	if err := corev1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	r := fake.NewClientBuilder().WithScheme(scheme).WithObjects(
		secret("shop", "chat", map[string]string{"slack": slackURL + "\n", "teams": "hooks.example.com/s3cr3t", "empty": " "}),
		secret("sluice", "chat", map[string]string{"slack": slackURL}),
	).WithInterceptorFuncs(interceptor.Funcs{
		Get: func(ctx context.Context, c client.WithWatch, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
			if key.Namespace == "locked" {
				return apierrors.NewForbidden(corev1.Resource("secrets"), key.Name, errors.New("no"))
			}
			return c.Get(ctx, key, obj, opts...)
		},
	}).Build()
	tests := []struct {
		name    string
		ns      string
		ref     canary.SecretKeyRef
		want    string
		wantErr string
	}{
		{name: "trimmed", ns: "shop", ref: canary.SecretKeyRef{Name: "chat", Key: "slack"}, want: slackURL},
		{name: "a cluster policy's, in sluice's namespace", ns: "sluice", ref: canary.SecretKeyRef{Name: "chat", Key: "slack"}, want: slackURL},
		{
			name: "no such secret", ns: "shop", ref: canary.SecretKeyRef{Name: "hooks", Key: "slack"},
			wantErr: "alert team: secret shop/hooks not found; the address secret must be in namespace shop",
		},
		{
			name: "no such key", ns: "shop", ref: canary.SecretKeyRef{Name: "chat", Key: "discord"},
			wantErr: `alert team: secret shop/chat has no key "discord" (it has empty, slack, teams); the address secret is read from its key "discord"`,
		},
		{
			name: "not a URL", ns: "shop", ref: canary.SecretKeyRef{Name: "chat", Key: "teams"},
			wantErr: `alert team: secret shop/chat: key "teams" does not hold an http or https URL`,
		},
		{
			name: "empty", ns: "shop", ref: canary.SecretKeyRef{Name: "chat", Key: "empty"},
			wantErr: `alert team: secret shop/chat: key "empty" is empty; the address secret is read from its key "empty"`,
		},
		{
			name: "forbidden", ns: "locked", ref: canary.SecretKeyRef{Name: "chat", Key: "slack"},
			wantErr: "alert team: sluice may not read secret locked/chat: grant it with a RoleBinding in locked to the ClusterRole " +
				"sluice-policy-secrets (or list the namespace in the chart's policySecretNamespaces)",
		},
		{
			name: "no key named", ns: "shop", ref: canary.SecretKeyRef{Name: "chat"},
			wantErr: "alert team: the address secret needs a name and a key",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Resolve(t.Context(), r, tt.ns, canary.AlertSpec{Name: "team", Provider: canary.AlertSlack, AddressSecret: tt.ref})
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("error %v, want %q", err, tt.wantErr)
				}
				if strings.Contains(err.Error(), "s3cr3t") {
					t.Errorf("the error shows the secret: %v", err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("Resolve = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}
