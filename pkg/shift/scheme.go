package shift

import (
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"

	"sluice.dev/sluice/pkg/canary"
	"sluice.dev/sluice/pkg/routing/routers"
)

// NewScheme knows every type the shifter reads and writes: Kubernetes' own,
// the Canary and the route objects of every router.
func NewScheme() (*runtime.Scheme, error) {
	scheme := runtime.NewScheme()
	adds := []func(*runtime.Scheme) error{clientgoscheme.AddToScheme, canary.AddToScheme}
	for _, rt := range routers.All() {
		adds = append(adds, rt.AddToScheme)
	}
	for _, add := range adds {
		if err := add(scheme); err != nil {
			return nil, err
		}
	}
	return scheme, nil
}
