package shift

import (
	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Labels on every object sluice creates.
const (
	managedByLabel = "app.kubernetes.io/managed-by"
	managedBy      = "sluice"
)

// Names of the objects sluice creates for Deployment name.
func canaryName(name string) string  { return name + "-canary" }
func primaryName(name string) string { return name + "-primary" }

// ownedBy marks obj as created by sluice for dep, so that deleting dep
// deletes obj.
func ownedBy(dep *appsv1.Deployment, name string) metav1.ObjectMeta {
	return metav1.ObjectMeta{
		Name:      name,
		Namespace: dep.Namespace,
		Labels:    map[string]string{managedByLabel: managedBy},
		OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(dep,
			appsv1.SchemeGroupVersion.WithKind("Deployment"))},
	}
}
