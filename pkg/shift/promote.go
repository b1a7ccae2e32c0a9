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

// EventSource is the component that the shifter's events name as their source.
const EventSource = "sluice-shifter"

// Promote writes the diverted template of dep into its spec.template and
// removes the internal annotations, in one update conditioned on the
// resourceVersion dep was read at: if the user diverted a newer template
// meanwhile, the update fails with a conflict and nothing is promoted.
//
// An update takes the ownership of the fields it changes, which would make the
// user's next server-side apply of the template conflict with the shifter. So
// when the update's answer shows that a server-side apply manages dep too,
// Promote then drops the shifter's ownership record, as that answer has it.
// Only if another write came in between does it read the record again,
// through reader, which must not be a cache that strips managed fields. dep
// itself may come from such a cache: an update without managed fields keeps
// the server's. Promote returns the promoted Deployment whenever the update
// went through, also with the error of a failed ownership cleanup.
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
	if !appliedServerSide(promoted) {
		// Whoever updates the template next takes the fields over without a
		// conflict; only a server-side apply would meet the shifter's claim.
		return promoted, nil
	}
	current := promoted.DeepCopy()
	err := retry.OnError(retry.DefaultBackoff, func(err error) bool { return apierrors.IsConflict(err) || apierrors.IsInvalid(err) },
		func() error {
			err := disown(ctx, c, current)
			if apierrors.IsConflict(err) || apierrors.IsInvalid(err) {
				// The deployment controller writes the status right after the
				// promotion and may have moved the record.
				if getErr := reader.Get(ctx, client.ObjectKeyFromObject(dep), current); getErr != nil {
					return getErr
				}
			}
			return err
		})
	if err != nil {
		// The template is promoted; only the ownership record stayed.
		return promoted, fmt.Errorf("promote %s/%s: give up the ownership of the promoted fields: %w", dep.Namespace, dep.Name, err)
	}
	return current, nil
}

// appliedServerSide reports whether a server-side apply manages fields of
// dep, other than its status.
func appliedServerSide(dep *appsv1.Deployment) bool {
	return slices.ContainsFunc(dep.ManagedFields, func(f metav1.ManagedFieldsEntry) bool {
		return f.Operation == metav1.ManagedFieldsOperationApply && f.Subresource == ""
	})
}

// disown removes the shifter's entry from the managed fields of current,
// leaving every other manager's as it is, and updates current to the result.
// The patch tests that the entry is
// still where current has it, so a concurrent write makes it fail rather
// than remove someone else's.
func disown(ctx context.Context, c client.Client, current *appsv1.Deployment) error {
	i := slices.IndexFunc(current.ManagedFields, func(f metav1.ManagedFieldsEntry) bool {
		return f.Manager == FieldManager && f.Operation == metav1.ManagedFieldsOperationUpdate && f.Subresource == ""
	})
	if i < 0 || len(current.ManagedFields) == 1 {
		// Nothing of ours; or ours alone, and an empty list would not remove it.
		return nil
	}
	entry := fmt.Sprintf("/metadata/managedFields/%d", i)
	patch, err := json.Marshal([]map[string]any{
		{"op": "test", "path": entry, "value": current.ManagedFields[i]},
		{"op": "remove", "path": entry},
	})
	if err != nil {
		return err
	}
	return c.Patch(ctx, current, client.RawPatch(types.JSONPatchType, patch))
}
