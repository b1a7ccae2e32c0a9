package promconn

import (
	"context"
	"errors"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"sluice.dev/sluice/pkg/canary"
	"sluice.dev/sluice/pkg/secrets"
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
		data, err := secrets.Read(ctx, r, namespace, ref.Name, "the bearer token secret")
		if err != nil {
			return Connection{}, err
		}
		if conn.BearerToken, err = secrets.Value(data, namespace, ref.Name, ref.Key, fmt.Sprintf("the bearer token is read from its key %q", ref.Key)); err != nil {
			return Connection{}, err
		}
	}
	if ref := spec.BasicAuthSecret; ref != nil {
		data, err := secrets.Read(ctx, r, namespace, ref.Name, "the basic auth secret")
		if err != nil {
			return Connection{}, err
		}
		const needs = "basic auth needs the keys " + UsernameKey + " and " + PasswordKey
		if conn.Username, err = secrets.Value(data, namespace, ref.Name, UsernameKey, needs); err != nil {
			return Connection{}, err
		}
		if conn.Password, err = secrets.Value(data, namespace, ref.Name, PasswordKey, needs); err != nil {
			return Connection{}, err
		}
	}
	return conn, nil
}
