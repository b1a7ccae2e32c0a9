// Package policy finds the CanaryPolicy or ClusterCanaryPolicy a Deployment
// runs by, for the webhook, which refuses references to policies that do
// not exist, and for the shifter, which runs rollouts by them.
package policy

import (
	"context"
	"errors"
	"fmt"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"sluice.dev/sluice/pkg/canary"
)

// NotFoundError says that the policy a Deployment names does not exist.
type NotFoundError struct {
	Namespace string
	// Tried are the policies looked for, in order.
	Tried []canary.PolicyRef
}

func (e *NotFoundError) Error() string {
	var tried []string
	for _, ref := range e.Tried {
		if ref.Kind == canary.KindCanaryPolicy {
			tried = append(tried, fmt.Sprintf("no CanaryPolicy %s in namespace %s", ref.Name, e.Namespace))
		} else {
			tried = append(tried, "no ClusterCanaryPolicy "+ref.Name)
		}
	}
	return fmt.Sprintf("%s names a policy that does not exist: %s; create it, or name one that kubectl get canarypolicies,clustercanarypolicies lists",
		canary.AnnotationPolicy, strings.Join(tried, " and "))
}

// Find returns the policy that a Deployment of namespace with annotations
// runs by, as a snapshot; nil if it names none and there is no default
// ClusterCanaryPolicy. A named policy that does not exist is a
// *NotFoundError.
func Find(ctx context.Context, r client.Reader, namespace string, annotations map[string]string) (*canary.PolicySnapshot, error) {
	refs, explicit := canary.ReferencedPolicies(annotations)
	for _, ref := range refs {
		snap, err := get(ctx, r, namespace, ref)
		if apierrors.IsNotFound(err) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", ref, err)
		}
		return snap, nil
	}
	if !explicit || len(refs) == 0 {
		// No policy, or a malformed name, which the settings' parser
		// reports.
		return nil, nil
	}
	return nil, &NotFoundError{Namespace: namespace, Tried: refs}
}

func get(ctx context.Context, r client.Reader, namespace string, ref canary.PolicyRef) (*canary.PolicySnapshot, error) {
	if ref.Kind == canary.KindCanaryPolicy {
		p := &canary.CanaryPolicy{}
		if err := r.Get(ctx, client.ObjectKey{Namespace: namespace, Name: ref.Name}, p); err != nil {
			return nil, err
		}
		return &canary.PolicySnapshot{Kind: ref.Kind, Name: ref.Name, Generation: p.Generation, Spec: p.Spec}, nil
	}
	p := &canary.ClusterCanaryPolicy{}
	if err := r.Get(ctx, client.ObjectKey{Name: ref.Name}, p); err != nil {
		return nil, err
	}
	return &canary.PolicySnapshot{Kind: ref.Kind, Name: ref.Name, Generation: p.Generation, Spec: p.Spec}, nil
}

// IsNotFound reports whether err says a named policy does not exist.
func IsNotFound(err error) bool {
	var nf *NotFoundError
	return errors.As(err, &nf)
}
