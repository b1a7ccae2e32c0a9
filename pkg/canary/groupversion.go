// +kubebuilder:object:generate=true
// +groupName=sluice.dev
// +versionName=v1alpha1

package canary

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

var (
	// GroupVersion is the API group and version of the Canary resource.
	GroupVersion = schema.GroupVersion{Group: "sluice.dev", Version: "v1alpha1"}
	// SchemeBuilder registers the Canary types.
	SchemeBuilder = runtime.NewSchemeBuilder(func(s *runtime.Scheme) error {
		s.AddKnownTypes(GroupVersion, &Canary{}, &CanaryList{})
		metav1.AddToGroupVersion(s, GroupVersion)
		return nil
	})
	// AddToScheme adds the Canary types to a scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)
