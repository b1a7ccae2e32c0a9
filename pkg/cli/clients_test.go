package cli

import (
	"errors"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

func TestExplain(t *testing.T) {
	canaries := schema.GroupResource{Group: "sluice.dev", Resource: "canaries"}
	cases := []struct {
		name string
		req  Request
		err  error
		want string
	}{
		{
			name: "a refusal names the verb and the resource lacking",
			req:  Request{Command: "get", Verb: "list", Resource: CanaryResource, Namespace: "shop"},
			err:  apierrors.NewForbidden(canaries, "", errors.New("RBAC: no")),
			want: `kubectl sluice get needs list on canaries.sluice.dev in namespace shop: canaries.sluice.dev is forbidden: RBAC: no`,
		},
		{
			name: "across namespaces",
			req:  Request{Command: "get", Verb: "list", Resource: CanaryResource},
			err:  apierrors.NewForbidden(canaries, "", errors.New("RBAC: no")),
			want: `kubectl sluice get needs list on canaries.sluice.dev in all namespaces: canaries.sluice.dev is forbidden: RBAC: no`,
		},
		{
			name: "no such Canary",
			req:  Request{Command: "status", Verb: "get", Resource: CanaryResource, Namespace: "shop", Name: "web"},
			err:  apierrors.NewNotFound(canaries, "web"),
			want: `no Canary shop/web: sluice makes one for each Deployment annotated sluice.dev/canary: enabled: canaries.sluice.dev "web" not found`,
		},
		{
			name: "no Canary CRD",
			req:  Request{Command: "status", Verb: "get", Resource: CanaryResource, Namespace: "shop", Name: "web"},
			err:  apierrors.NewGenericServerResponse(404, "get", canaries, "web", "", 0, false),
			want: `the API server does not serve canaries.sluice.dev: is sluice installed in this cluster? the server could not find the requested resource (get canaries.sluice.dev web)`,
		},
		{
			name: "not an API error",
			req:  Request{Command: "get", Verb: "list", Resource: CanaryResource, Namespace: "shop"},
			err:  errors.New("dial tcp: connection refused"),
			want: `list canaries.sluice.dev in namespace shop: dial tcp: connection refused`,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := tc.req.Explain(tc.err)
			if got.Error() != tc.want {
				t.Errorf("Explain:\n%s\nwant:\n%s", got, tc.want)
			}
			if !errors.Is(got, tc.err) {
				t.Error("the explanation does not wrap the error")
			}
		})
	}
}
