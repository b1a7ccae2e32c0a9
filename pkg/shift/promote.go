// Package shift is sluice's shifter: it runs the diverted template as a
// canary, moves Istio traffic to it step by step, and promotes or rolls back.
package shift

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"sluice.dev/sluice/pkg/canary"
)

// FieldManager is the name under which the shifter writes.
const FieldManager = "sluice-shifter"

// Promote writes the diverted template of dep into its spec.template and
// removes the internal annotations, in one update conditioned on the
// resourceVersion dep was read at: if the user diverted a newer template
// meanwhile, the update fails with a conflict and nothing is promoted.
//
// An update takes the ownership of the fields it changes, which would make the
// user's next server-side apply of the template conflict with the shifter. So
// Promote then drops the shifter's ownership record; reader must read from the
// API server, not from a cache, to see the record.
func Promote(ctx context.Context, c client.Client, reader client.Reader, dep *appsv1.Deployment) (*appsv1.Deployment, error) {
	raw, ok := dep.Annotations[canary.AnnotationCanaryTemplate]
	if !ok {
		return nil, fmt.Errorf("promote %s/%s: no %s annotation", dep.Namespace, dep.Name, canary.AnnotationCanaryTemplate)
	}
	var template corev1.PodTemplateSpec
	if err := json.Unmarshal([]byte(raw), &template); err != nil {
		return nil, fmt.Errorf("promote %s/%s: decode %s: %w", dep.Namespace, dep.Name, canary.AnnotationCanaryTemplate, err)
	}
	promoted := dep.DeepCopy()
	promoted.Spec.Template = template
	delete(promoted.Annotations, canary.AnnotationCanaryTemplate)
	delete(promoted.Annotations, canary.AnnotationCanaryRevision)
	if err := c.Update(ctx, promoted, client.FieldOwner(FieldManager)); err != nil {
		return nil, fmt.Errorf("promote %s/%s: %w", dep.Namespace, dep.Name, err)
	}
	// The deployment controller writes the status right after the promotion,
	// so the first try may meet a newer resourceVersion.
	err := retry.OnError(retry.DefaultBackoff, func(err error) bool { return apierrors.IsConflict(err) || apierrors.IsInvalid(err) },
		func() error { return disown(ctx, c, reader, client.ObjectKeyFromObject(dep)) })
	if err != nil {
		return nil, fmt.Errorf("promote %s/%s: give up the ownership of the promoted fields: %w", dep.Namespace, dep.Name, err)
	}
	return promoted, nil
}

// disown removes the shifter's entries from the Deployment's managed fields,
// leaving every other manager's as it is.
func disown(ctx context.Context, c client.Client, reader client.Reader, key types.NamespacedName) error {
	current := &appsv1.Deployment{}
	if err := reader.Get(ctx, key, current); err != nil {
		return err
	}
	fields := slices.DeleteFunc(slices.Clone(current.ManagedFields), func(f metav1.ManagedFieldsEntry) bool {
		return f.Manager == FieldManager && f.Operation == metav1.ManagedFieldsOperationUpdate
	})
	if len(fields) == len(current.ManagedFields) || len(fields) == 0 {
		// Nothing of ours; or ours alone, and an empty list would not remove it.
		return nil
	}
	patch, err := json.Marshal([]map[string]any{
		{"op": "test", "path": "/metadata/resourceVersion", "value": current.ResourceVersion},
		{"op": "replace", "path": "/metadata/managedFields", "value": fields},
	})
	if err != nil {
		return err
	}
	return c.Patch(ctx, current, client.RawPatch(types.JSONPatchType, patch))
}
