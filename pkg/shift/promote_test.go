package shift

import (
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func entry(manager string, op metav1.ManagedFieldsOperationType, subresource, fields string, at int) metav1.ManagedFieldsEntry {
	return metav1.ManagedFieldsEntry{Manager: manager, Operation: op, Subresource: subresource,
		Time: &metav1.Time{Time: t0.Add(time.Duration(at) * time.Second)}, FieldsV1: metav1.NewFieldsV1(fields)}
}

const (
	templateImage = `{"f:spec":{"f:template":{"f:spec":{"f:containers":{"k:{\"name\":\"app\"}":{"f:image":{}}}}}}}`
	annotations   = `{"f:metadata":{"f:annotations":{"f:team":{}}}}`
	status        = `{"f:status":{"f:replicas":{}}}`
)

func TestTemplateOwner(t *testing.T) {
	update, apply := metav1.ManagedFieldsOperationUpdate, metav1.ManagedFieldsOperationApply
	for _, tc := range []struct {
		name    string
		entries []metav1.ManagedFieldsEntry
		want    string
	}{
		{"the latest of the template's owners", []metav1.ManagedFieldsEntry{
			entry("kubectl-create", update, "", templateImage, 1), entry("kubectl-replace", update, "", templateImage, 5),
			entry("kubectl-annotate", update, "", annotations, 9), entry("kube-controller-manager", update, "status", status, 9),
		}, "kubectl-replace"},
		{"a server-side apply", []metav1.ManagedFieldsEntry{entry("kubectl", apply, "", templateImage, 3)}, "kubectl"},
		{"none owns the template", []metav1.ManagedFieldsEntry{entry("kubectl-annotate", update, "", annotations, 9)}, ""},
		{"none at all", nil, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := ""
			if owner := templateOwner(tc.entries); owner != nil {
				got = owner.Manager
			}
			if got != tc.want {
				t.Errorf("templateOwner = %q; want %q", got, tc.want)
			}
		})
	}
}

// TestTransformManagedFields: the cache keeps of a Deployment's managed fields
// what Promote reads, the template's owners, and nothing of other objects.
func TestTransformManagedFields(t *testing.T) {
	update := metav1.ManagedFieldsOperationUpdate
	dep := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{ManagedFields: []metav1.ManagedFieldsEntry{
		entry("helm", update, "", templateImage, 1), entry("kubectl-annotate", update, "", annotations, 2),
		entry("kube-controller-manager", update, "status", `{"f:spec":{"f:template":{}},"f:status":{}}`, 3),
	}}}
	if _, err := TransformManagedFields(dep); err != nil {
		t.Fatal(err)
	}
	if len(dep.ManagedFields) != 1 || dep.ManagedFields[0].Manager != "helm" || dep.ManagedFields[0].FieldsV1.GetRawString() != templateMarker.GetRawString() {
		t.Errorf("kept %+v; want helm's entry alone, with the marker", dep.ManagedFields)
	}
	if owner := templateOwner(dep.ManagedFields); owner == nil || owner.Manager != "helm" {
		t.Errorf("templateOwner of the cached copy = %v; want helm", owner)
	}
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{ManagedFields: []metav1.ManagedFieldsEntry{entry("sluice-shifter", update, "", `{"f:spec":{}}`, 1)}}}
	if _, err := TransformManagedFields(svc); err != nil || len(svc.ManagedFields) != 0 {
		t.Errorf("a Service keeps %v (%v); want no managed fields", svc.ManagedFields, err)
	}
}

func TestUnion(t *testing.T) {
	got, err := union(metav1.NewFieldsV1(annotations), metav1.NewFieldsV1(templateImage))
	if err != nil {
		t.Fatal(err)
	}
	want := `{"f:metadata":{"f:annotations":{"f:team":{}}},"f:spec":{"f:template":{"f:spec":{"f:containers":{"k:{\"name\":\"app\"}":{"f:image":{}}}}}}}`
	if got.GetRawString() != want {
		t.Errorf("union = %s; want %s", got.GetRawString(), want)
	}
	if _, err := union(metav1.NewFieldsV1("{"), nil); err == nil {
		t.Error("a broken field set: no error")
	}
}
