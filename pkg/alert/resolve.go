package alert

import (
	"context"
	"errors"
	"fmt"
	"net/url"

	"sigs.k8s.io/controller-runtime/pkg/client"

	"sluice.dev/sluice/pkg/canary"
	"sluice.dev/sluice/pkg/secrets"
)

// Resolve reads the URL of spec from its address Secret in namespace: the
// policy's namespace for a CanaryPolicy, the one sluice runs in for a
// ClusterCanaryPolicy. Its errors name the Secret and key, and never hold
// the URL, which is a secret.
func Resolve(ctx context.Context, r client.Reader, namespace string, spec canary.AlertSpec) (string, error) {
	ref := spec.AddressSecret
	if ref.Name == "" || ref.Key == "" {
		return "", fmt.Errorf("alert %s: %w", spec.Name, errors.New("the address secret needs a name and a key"))
	}
	addr, err := secrets.KeyValue(ctx, r, namespace, ref, "the address secret")
	if err == nil {
		if u, perr := url.Parse(addr); perr != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			// The parse error would quote the URL.
			err = fmt.Errorf("secret %s/%s: key %q does not hold an http or https URL", namespace, ref.Name, ref.Key)
		}
	}
	if err != nil {
		return "", fmt.Errorf("alert %s: %w", spec.Name, err)
	}
	return addr, nil
}
