// Package shift is sluice's shifter: it runs the diverted template as a
// canary, moves Istio traffic to it step by step, and promotes or rolls back.
package shift

import (
	"context"
	"encoding/json"
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"sluice.dev/sluice/pkg/canary"
)

// Promote writes the diverted template of dep into its spec.template and
// removes the internal annotations, in one update conditioned on the
// resourceVersion dep was read at: if the user diverted a newer template
// meanwhile, the update fails with a conflict and nothing is promoted.
//
// An update takes the ownership of the fields it changes, which would make the
// user's next server-side apply of the template conflict with the shifter. So
// a second write hands the ownership back as it was before the promotion.
func Promote(ctx context.Context, c client.Client, dep *appsv1.Deployment) (*appsv1.Deployment, error) {
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
	if err := c.Update(ctx, promoted); err != nil {
		return nil, fmt.Errorf("promote %s/%s: %w", dep.Namespace, dep.Name, err)
	}

	ownership, err := json.Marshal([]map[string]any{
		{"op": "test", "path": "/metadata/resourceVersion", "value": promoted.ResourceVersion},
		{"op": "replace", "path": "/metadata/managedFields", "value": dep.ManagedFields},
	})
	if err != nil {
		return nil, fmt.Errorf("promote %s/%s: %w", dep.Namespace, dep.Name, err)
	}
	// When someone wrote in between, the test op fails (Invalid, or Conflict):
	// their write stands, and the promoted fields stay owned by the shifter.
	err = c.Patch(ctx, promoted, client.RawPatch(types.JSONPatchType, ownership))
	if err != nil && !apierrors.IsConflict(err) && !apierrors.IsInvalid(err) {
		return nil, fmt.Errorf("promote %s/%s: restore field ownership: %w", dep.Namespace, dep.Name, err)
	}
	return promoted, nil
}
