package cli

import (
	"context"

	appsv1 "k8s.io/api/apps/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// deploymentReader reads a Canary's Deployments, for their images and the
// revision pending in their annotations. The read commands need no more
// than the right to read canaries: a refusal is remembered, so that it is
// asked, and told, once.
type deploymentReader struct {
	clients *Clients
	command string
	refused error
}

// get reads the Deployment namespace/name: nil without error when there is
// none; the explained refusal when the user may not read it.
func (r *deploymentReader) get(ctx context.Context, namespace, name string) (*appsv1.Deployment, error) {
	if r.refused != nil {
		return nil, r.refused
	}
	d, err := r.clients.Kube.AppsV1().Deployments(namespace).Get(ctx, name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		return nil, nil
	case apierrors.IsForbidden(err):
		r.refused = Request{Command: r.command, Verb: "get", Resource: "deployments.apps", Namespace: namespace, Name: name}.Explain(err)
		return nil, r.refused
	case err != nil:
		return nil, Request{Command: r.command, Verb: "get", Resource: "deployments.apps", Namespace: namespace, Name: name}.Explain(err)
	}
	return d, nil
}
