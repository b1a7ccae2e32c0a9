package alert

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"sluice.dev/sluice/pkg/canary"
)

// Resolve reads the URL of spec from its address Secret in namespace: the
// policy's namespace for a CanaryPolicy, the one sluice runs in for a
// ClusterCanaryPolicy. Its errors name the Secret and key, and never hold
// the URL, which is a secret.
func Resolve(ctx context.Context, r client.Reader, namespace string, spec canary.AlertSpec) (string, error) {
	addr, err := address(ctx, r, namespace, spec.AddressSecret)
	if err != nil {
		return "", fmt.Errorf("alert %s: %w", spec.Name, err)
	}
	return addr, nil
}

func address(ctx context.Context, r client.Reader, namespace string, ref canary.SecretKeyRef) (string, error) {
	if ref.Name == "" || ref.Key == "" {
		return "", errors.New("the address secret needs a name and a key")
	}
	var s corev1.Secret
	err := r.Get(ctx, client.ObjectKey{Namespace: namespace, Name: ref.Name}, &s)
	switch {
	case apierrors.IsNotFound(err):
		return "", fmt.Errorf("secret %s/%s not found; the address secret must be in namespace %s", namespace, ref.Name, namespace)
	case apierrors.IsForbidden(err):
		return "", fmt.Errorf("sluice may not read secret %s/%s: grant it with a RoleBinding in %s to the ClusterRole sluice-policy-secrets "+
			"(or list the namespace in the chart's policySecretNamespaces)", namespace, ref.Name, namespace)
	case err != nil:
		return "", fmt.Errorf("read secret %s/%s: %w", namespace, ref.Name, err)
	}
	raw, ok := s.Data[ref.Key]
	if !ok {
		has := "it has no keys"
		if keys := slices.Sorted(maps.Keys(s.Data)); len(keys) > 0 {
			has = "it has " + strings.Join(keys, ", ")
		}
		return "", fmt.Errorf("secret %s/%s has no key %q (%s)", namespace, ref.Name, ref.Key, has)
	}
	// Trimmed: a URL written with `echo` ends in a newline.
	addr := strings.TrimSpace(string(raw))
	if u, err := url.Parse(addr); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		// The parse error would quote the URL.
		return "", fmt.Errorf("secret %s/%s: key %q does not hold an http or https URL", namespace, ref.Name, ref.Key)
	}
	return addr, nil
}
