package promconn

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"sluice.dev/sluice/pkg/canary"
)

// Basic auth reads these keys of its Secret, as Secrets of type
// kubernetes.io/basic-auth hold them.
const (
	UsernameKey = corev1.BasicAuthUsernameKey
	PasswordKey = corev1.BasicAuthPasswordKey
)

// Resolve reads the Secrets that spec names from namespace and returns the
// connection. Its errors name the Secret and key, and say what is allowed.
func Resolve(ctx context.Context, r client.Reader, namespace string, spec canary.PrometheusSpec) (Connection, error) {
	conn := Connection{Address: spec.Address, CABundle: []byte(spec.CABundle)}
	if spec.Timeout != nil {
		conn.Timeout = spec.Timeout.Duration
	}
	if spec.BearerTokenSecret != nil && spec.BasicAuthSecret != nil {
		return Connection{}, errors.New("prometheus: both a bearer token secret and a basic auth secret are set; give one")
	}
	if ref := spec.BearerTokenSecret; ref != nil {
		if ref.Key == "" {
			return Connection{}, fmt.Errorf("bearer token secret %s/%s: no key; name the key that holds the token", namespace, ref.Name)
		}
		data, err := readSecret(ctx, r, namespace, ref.Name, "the bearer token secret")
		if err != nil {
			return Connection{}, err
		}
		if conn.BearerToken, err = value(data, namespace, ref.Name, ref.Key, fmt.Sprintf("the bearer token is read from its key %q", ref.Key)); err != nil {
			return Connection{}, err
		}
	}
	if ref := spec.BasicAuthSecret; ref != nil {
		data, err := readSecret(ctx, r, namespace, ref.Name, "the basic auth secret")
		if err != nil {
			return Connection{}, err
		}
		const needs = "basic auth needs the keys " + UsernameKey + " and " + PasswordKey
		if conn.Username, err = value(data, namespace, ref.Name, UsernameKey, needs); err != nil {
			return Connection{}, err
		}
		if conn.Password, err = value(data, namespace, ref.Name, PasswordKey, needs); err != nil {
			return Connection{}, err
		}
	}
	return conn, nil
}

func readSecret(ctx context.Context, r client.Reader, namespace, name, role string) (map[string][]byte, error) {
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

// value is the text of key, trimmed as Prometheus trims credentials read from
// files: a token written with `echo` ends in a newline that no header may
// carry.
func value(data map[string][]byte, namespace, name, key, needs string) (string, error) {
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
