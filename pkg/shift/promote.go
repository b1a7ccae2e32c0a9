// Package shift is sluice's shifter: it runs the diverted template as a
// canary, moves Istio traffic to it step by step, and promotes or rolls back.
package shift

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"

	"github.com/tidwall/gjson"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/structured-merge-diff/v6/fieldpath"

	"sluice.dev/sluice/pkg/canary"
)

// FieldManager is the name under which the shifter writes.
const FieldManager = "sluice-shifter"

// EventSource is the component that the shifter's events name as their source.
const EventSource = "sluice-shifter"

// Promote writes the diverted template of dep into its spec.template and
// removes the internal annotations, in one update conditioned on the
// resourceVersion dep was read at: if the user diverted a newer template
// meanwhile, the update fails with a conflict and nothing is promoted.
//
// The promoted template must end up owned as if the user's own update had
// set it, or the user's next server-side apply would conflict with the
// shifter. The user is the template's latest owner in dep's managed fields
// (the update that diverted the template claimed its fields, although the
// webhook kept their values); dep may come from a cache that keeps only those
// entries (TransformManagedFields). When that owner wrote with an update
// (client-side kubectl apply, helm, kubectl replace, a client), the promotion
// is an update under its name, and its entry takes the fields. When it was a
// server-side apply, an update under its name would make a second entry that
// conflicts with its next apply; so the promotion is the shifter's, and the
// fields it took are then handed to the apply's entry, as the update's answer
// has them. Only if another write came in between does Promote read the
// entries again, through reader, which must not be a cache that strips
// managed fields. Promote returns the promoted Deployment whenever the update
// went through, also with the error of a failed hand-over.
func Promote(ctx context.Context, c client.Client, reader client.Reader, dep *appsv1.Deployment) (*appsv1.Deployment, error) {
	raw, ok := dep.Annotations[canary.AnnotationCanaryTemplate]
	if !ok {
		return nil, fmt.Errorf("promote %s/%s: no %s annotation", dep.Namespace, dep.Name, canary.AnnotationCanaryTemplate)
	}
	var template corev1.PodTemplateSpec
	if err := json.Unmarshal([]byte(raw), &template); err != nil {
		return nil, fmt.Errorf("promote %s/%s: decode %s: %w", dep.Namespace, dep.Name, canary.AnnotationCanaryTemplate, err)
	}
	owner := templateOwner(dep.ManagedFields)
	promoted := dep.DeepCopy()
	promoted.Spec.Template = template
	delete(promoted.Annotations, canary.AnnotationCanaryTemplate)
	delete(promoted.Annotations, canary.AnnotationCanaryRevision)
	// Managed fields sent with an update replace the server's: send none.
	promoted.ManagedFields = nil
	manager := FieldManager
	if owner != nil && owner.Operation == metav1.ManagedFieldsOperationUpdate {
		manager = owner.Manager
	}
	if err := c.Update(ctx, promoted, client.FieldOwner(manager)); err != nil {
		return nil, fmt.Errorf("promote %s/%s: %w", dep.Namespace, dep.Name, err)
	}
	if manager != FieldManager || owner == nil {
		return promoted, nil
	}
	current := promoted.DeepCopy()
	err := retry.OnError(retry.DefaultBackoff, func(err error) bool { return apierrors.IsConflict(err) || apierrors.IsInvalid(err) },
		func() error {
			err := handOver(ctx, c, current, owner.Manager)
			if apierrors.IsConflict(err) || apierrors.IsInvalid(err) {
				// The deployment controller writes the status right after the
				// promotion and may have moved the entries.
				if getErr := reader.Get(ctx, client.ObjectKeyFromObject(dep), current); getErr != nil {
					return getErr
				}
			}
			return err
		})
	if err != nil {
		// The template is promoted; only the ownership stayed with the shifter.
		return promoted, fmt.Errorf("promote %s/%s: hand the promoted fields to %s: %w", dep.Namespace, dep.Name, owner.Manager, err)
	}
	return current, nil
}

// ownsTemplate reports whether a managed fields entry of a Deployment, other
// than its status, owns part of spec.template.
func ownsTemplate(f metav1.ManagedFieldsEntry) bool {
	return f.Subresource == "" && f.FieldsV1 != nil && gjson.Get(f.FieldsV1.GetRawString(), "f:spec.f:template").Exists()
}

// templateOwner is the manager that wrote spec.template last: of the entries
// that own part of it, the latest; nil when none does.
func templateOwner(entries []metav1.ManagedFieldsEntry) *metav1.ManagedFieldsEntry {
	var owner *metav1.ManagedFieldsEntry
	for i, f := range entries {
		if ownsTemplate(f) && (owner == nil || !f.Time.Before(owner.Time)) {
			owner = &entries[i]
		}
	}
	return owner
}

// templateMarker stands for an entry's field set in the cache: it says that
// the entry owns part of spec.template, which is all Promote asks of it.
var templateMarker = metav1.NewFieldsV1(`{"f:spec":{"f:template":{}}}`)

// TransformManagedFields is the shifter's cache transform. It drops the
// managed fields of every object, a good part of a Deployment's size, except
// that a Deployment keeps the entries that own part of its pod template,
// each with a marker instead of its field set: Promote names the latest of
// them as the owner of the promoted template.
func TransformManagedFields(obj any) (any, error) {
	o, ok := obj.(client.Object)
	if !ok {
		return obj, nil
	}
	var kept []metav1.ManagedFieldsEntry
	if _, isDeployment := obj.(*appsv1.Deployment); isDeployment {
		for _, f := range o.GetManagedFields() {
			if ownsTemplate(f) {
				f.FieldsV1 = templateMarker
				kept = append(kept, f)
			}
		}
	}
	o.SetManagedFields(kept)
	return obj, nil
}

// handOver moves the fields of the shifter's update entry into the apply
// entry of manager and updates current to the result. The patch tests that
// both entries are still where current has them, so a concurrent write makes
// it fail rather than change someone else's.
func handOver(ctx context.Context, c client.Client, current *appsv1.Deployment, manager string) error {
	entries := current.ManagedFields
	ours := slices.IndexFunc(entries, func(f metav1.ManagedFieldsEntry) bool {
		return f.Manager == FieldManager && f.Operation == metav1.ManagedFieldsOperationUpdate && f.Subresource == ""
	})
	theirs := slices.IndexFunc(entries, func(f metav1.ManagedFieldsEntry) bool {
		return f.Manager == manager && f.Operation == metav1.ManagedFieldsOperationApply && f.Subresource == ""
	})
	if ours < 0 || theirs < 0 {
		return nil
	}
	merged, err := union(entries[theirs].FieldsV1, entries[ours].FieldsV1)
	if err != nil {
		return err
	}
	given := entries[theirs]
	given.FieldsV1 = merged
	entry := func(i int) string { return fmt.Sprintf("/metadata/managedFields/%d", i) }
	// The replace comes before the remove, which shifts the entries after
	// it: both indices still point where the tests found them.
	ops := []map[string]any{
		{"op": "test", "path": entry(ours), "value": entries[ours]},
		{"op": "test", "path": entry(theirs), "value": entries[theirs]},
		{"op": "replace", "path": entry(theirs), "value": given},
		{"op": "remove", "path": entry(ours)},
	}
	patch, err := json.Marshal(ops)
	if err != nil {
		return err
	}
	return c.Patch(ctx, current, client.RawPatch(types.JSONPatchType, patch))
}

// union is the union of two field sets.
func union(a, b *metav1.FieldsV1) (*metav1.FieldsV1, error) {
	sets := make([]*fieldpath.Set, 2)
	for i, f := range []*metav1.FieldsV1{a, b} {
		sets[i] = &fieldpath.Set{}
		if f == nil {
			continue
		}
		if err := sets[i].FromJSON(bytes.NewReader(f.GetRawBytes())); err != nil {
			return nil, fmt.Errorf("read a managed fields entry: %w", err)
		}
	}
	raw, err := sets[0].Union(sets[1]).ToJSON()
	if err != nil {
		return nil, err
	}
	return metav1.NewFieldsV1(string(raw)), nil
}
