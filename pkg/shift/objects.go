package shift

import (
	"encoding/json"
	"fmt"

	corev1 "k8s.io/api/core/v1"

	"sluice.dev/sluice/pkg/canary"
)

// templateRevision is a pod template's revision as the shifter counts it,
// the hash of its JSON as the shifter encodes it: the primary's, and the
// primary's to be once the pending template is promoted. (The webhook's
// revision of the pending template hashes the API server's JSON instead.)
func templateRevision(t corev1.PodTemplateSpec) (string, error) {
	raw, err := json.Marshal(t)
	if err != nil {
		return "", fmt.Errorf("encode a pod template: %w", err)
	}
	return canary.Revision(raw), nil
}
