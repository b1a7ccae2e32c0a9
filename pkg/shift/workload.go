package shift

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"sluice.dev/sluice/pkg/canary"
	"sluice.dev/sluice/pkg/routing"
)

// applyCanary runs the canary Deployment as d says: the pending template,
// with an autoscaler of its own when the primary has one, or scaled down.
func (r *Reconciler) applyCanary(ctx context.Context, dep *appsv1.Deployment, w seen, d Decision) error {
	key := types.NamespacedName{Namespace: dep.Namespace, Name: routing.CanaryName(dep.Name)}
	current := w.canary
	switch {
	case d.Canary == CanaryRun && w.template != nil:
		want := canaryDeployment(dep, *w.template, d.Status.CanaryRevision, canaryReplicas(dep, current, d.Status.CanaryRevision, w.autoscaler != nil))
		if current == nil {
			if err := r.Client.Create(ctx, want); err != nil {
				return fmt.Errorf("create canary Deployment %s: %w", key, err)
			}
			r.created(want)
			return r.ensureCanaryAutoscaler(ctx, want, w.autoscaler)
		}
		if current.Annotations[canary.AnnotationCanaryRevision] != d.Status.CanaryRevision ||
			ptr.Deref(current.Spec.Replicas, 1) != ptr.Deref(want.Spec.Replicas, 1) {
			current.Annotations = want.Annotations
			current.Spec.Replicas = want.Spec.Replicas
			current.Spec.Template = want.Spec.Template
			if err := r.Client.Update(ctx, current); err != nil {
				return fmt.Errorf("update canary Deployment %s: %w", key, err)
			}
			r.wrote(current)
		}
		return r.ensureCanaryAutoscaler(ctx, current, w.autoscaler)
	case d.Canary == CanaryScaleDown && current != nil:
		wrote, err := stopCanary(ctx, r.Client, current)
		if err != nil {
			return err
		}
		if wrote {
			r.wrote(current)
		}
	}
	return nil
}

// canaryReplicas is how many replicas the canary Deployment run of revision
// should have: the primary's, as they are now; but once an autoscaler scales
// a running canary, as many as it says.
func canaryReplicas(dep, run *appsv1.Deployment, revision string, autoscaled bool) int32 {
	if autoscaled && run != nil && run.Annotations[canary.AnnotationCanaryRevision] == revision && ptr.Deref(run.Spec.Replicas, 1) > 0 {
		return ptr.Deref(run.Spec.Replicas, 1)
	}
	return ptr.Deref(dep.Spec.Replicas, 1)
}

// canaryReady reports whether run, the canary Deployment, runs revision with
// all the replicas it should have: the primary's number, or whatever its own
// autoscaler set.
func canaryReady(run *appsv1.Deployment, revision string, primaryReplicas int32, autoscaled bool) bool {
	if run == nil || revision == "" || run.Annotations[canary.AnnotationCanaryRevision] != revision {
		return false
	}
	want := ptr.Deref(run.Spec.Replicas, 1)
	return (autoscaled && want > 0 || want == primaryReplicas) && run.Status.ObservedGeneration >= run.Generation &&
		run.Status.UpdatedReplicas == want && run.Status.ReadyReplicas == want && run.Status.Replicas == want
}

// canaryDeployment is the Deployment that runs template as the canary of dep.
func canaryDeployment(dep *appsv1.Deployment, template corev1.PodTemplateSpec, revision string, replicas int32) *appsv1.Deployment {
	selector := dep.Spec.Selector.MatchLabels
	labels := canaryLabels(selector)
	template = *template.DeepCopy()
	template.Labels = maps.Clone(template.Labels)
	if template.Labels == nil {
		template.Labels = map[string]string{}
	}
	maps.Copy(template.Labels, labels)
	meta := routing.OwnedBy(dep, routing.CanaryName(dep.Name))
	meta.Annotations = map[string]string{canary.AnnotationCanaryRevision: revision}
	return &appsv1.Deployment{
		ObjectMeta: meta,
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To(replicas),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: template,
			Strategy: dep.Spec.Strategy,
		},
	}
}

// canaryLabels are the primary's selector labels with each value suffixed
// "-canary", so that no Service of the primary selects a canary pod.
func canaryLabels(selector map[string]string) map[string]string {
	out := make(map[string]string, len(selector))
	for k, v := range selector {
		out[k] = canaryValue(v)
	}
	return out
}

// canaryValue suffixes v with -canary, shortening it with a hash where the
// result would pass the 63 characters a label value may have.
func canaryValue(v string) string {
	const suffix, limit = "-canary", 63
	if len(v)+len(suffix) <= limit {
		return v + suffix
	}
	sum := sha256.Sum256([]byte(v))
	hash := hex.EncodeToString(sum[:4])
	return v[:limit-len(suffix)-len(hash)-1] + "-" + hash + suffix
}

// stopCanary deletes the autoscaler of the canary Deployment run, if any, and
// sets it to zero replicas unless it has none already; it reports whether it
// wrote run.
func stopCanary(ctx context.Context, c client.Client, run *appsv1.Deployment) (bool, error) {
	if err := deleteCanaryAutoscaler(ctx, c, run); err != nil {
		return false, err
	}
	if ptr.Deref(run.Spec.Replicas, 1) == 0 {
		return false, nil
	}
	run.Spec.Replicas = ptr.To[int32](0)
	if err := c.Update(ctx, run); err != nil {
		return false, fmt.Errorf("scale down canary Deployment %s/%s: %w", run.Namespace, run.Name, err)
	}
	return true, nil
}
