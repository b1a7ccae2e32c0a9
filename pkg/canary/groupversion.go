// +kubebuilder:object:generate=true
// +groupName=sluice.dev
// +versionName=v1alpha1

package canary

import (
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/scheme"
)

var (
	// GroupVersion is the API group and version of the Canary resource.
	GroupVersion = schema.GroupVersion{Group: "sluice.dev", Version: "v1alpha1"}
	// SchemeBuilder registers the Canary types.
	SchemeBuilder = &scheme.Builder{GroupVersion: GroupVersion}
	// AddToScheme adds the Canary types to a scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)

func init() {
	SchemeBuilder.Register(&Canary{}, &CanaryList{})
}
