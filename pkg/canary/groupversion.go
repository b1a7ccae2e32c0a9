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
	// GroupVersion is the API group and version of sluice's resources.
	GroupVersion = schema.GroupVersion{Group: "sluice.dev", Version: "v1alpha1"}
	// SchemeBuilder registers sluice's types.
	SchemeBuilder = runtime.NewSchemeBuilder(func(s *runtime.Scheme) error {
		s.AddKnownTypes(GroupVersion, &Canary{}, &CanaryList{}, &CanaryPolicy{}, &CanaryPolicyList{},
			&ClusterCanaryPolicy{}, &ClusterCanaryPolicyList{})
		metav1.AddToGroupVersion(s, GroupVersion)
		return nil
	})
	// AddToScheme adds sluice's types to a scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)
