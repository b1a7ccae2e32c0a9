// Package secrets reads the keys of the Secrets that policies name, with
// errors that say which Secret and key, and what is allowed.
package secrets

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"sluice.dev/sluice/pkg/canary"
)

// KeyValue reads the key ref names of a Secret in namespace, which plays
// role ("the signing secret of webhook smoke").
func KeyValue(ctx context.Context, r client.Reader, namespace string, ref canary.SecretKeyRef, role string) (string, error) {
	data, err := Read(ctx, r, namespace, ref.Name, role)
	if err != nil {
		return "", err
	}
	return Value(data, namespace, ref.Name, ref.Key, fmt.Sprintf("%s is read from its key %q", role, ref.Key))
}

// Read returns the data of Secret namespace/name, which plays role ("the
// bearer token secret"); its errors say where the Secret must be and how to
// let sluice read it.
func Read(ctx context.Context, r client.Reader, namespace, name, role string) (map[string][]byte, error) {
	if name == "" {
		return nil, fmt.Errorf("%s has no name", role)
	}
	var s corev1.Secret
	err := r.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, &s)
	switch {
	case apierrors.IsNotFound(err):
		return nil, fmt.Errorf("secret %s/%s not found; %s must be in namespace %s", namespace, name, role, namespace)
	case apierrors.IsForbidden(err):
		return nil, fmt.Errorf("sluice may not read secret %s/%s: grant it with a RoleBinding in %s to the ClusterRole sluice-policy-secrets "+
			"(or list the namespace in the chart's policySecretNamespaces)", namespace, name, namespace)
	case err != nil:
		return nil, fmt.Errorf("read secret %s/%s: %w", namespace, name, err)
	}
	return s.Data, nil
}

// Value is the text of key, trimmed as Prometheus trims credentials read from
// files: a token written with `echo` ends in a newline that no header may
// carry.
func Value(data map[string][]byte, namespace, name, key, needs string) (string, error) {
	raw, ok := data[key]
	if !ok {
		keys := slices.Sorted(maps.Keys(data))
		has := "it has no keys"
		if len(keys) > 0 {
			has = "it has " + strings.Join(keys, ", ")
		}
		return "", fmt.Errorf("secret %s/%s has no key %q (%s); %s", namespace, name, key, has, needs)
	}
	v := strings.TrimSpace(string(raw))
	if v == "" {
		return "", fmt.Errorf("secret %s/%s: key %q is empty; %s", namespace, name, key, needs)
	}
	return v, nil
}
