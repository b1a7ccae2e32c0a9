package shift

import (
	"encoding/json"
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"sluice.dev/sluice/pkg/canary"
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

// templateRevision is a pod template's revision as the shifter counts it,
// the hash of its JSON as the shifter encodes it: the primary's, and the
// primary's to be once the pending template is promoted. (The webhook's
// revision of the pending template hashes the API server's JSON instead.)
func templateRevision(t corev1.PodTemplateSpec) (string, error) {
	raw, err := json.Marshal(t)
	if err != nil {
		return "", fmt.Errorf("encode a pod template: %w", err)
	}
	return canary.Revision(raw), nil
}
