package generate_test

import (
	"os"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"sluice.dev/sluice/test/sluice"
)

// TestKrewManifest: deploy/krew/sluice.yaml is a krew Plugin whose every
// platform installs the kubectl-sluice binary.
func TestKrewManifest(t *testing.T) {
	raw, err := os.ReadFile(sluice.RepoPath("deploy/krew/sluice.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var plugin struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
		Metadata   struct {
			Name string `json:"name"`
		} `json:"metadata"`
		Spec struct {
			Version          string `json:"version"`
			ShortDescription string `json:"shortDescription"`
			Platforms        []struct {
				Selector struct {
					MatchLabels map[string]string `json:"matchLabels"`
				} `json:"selector"`
				URI    string `json:"uri"`
				SHA256 string `json:"sha256"`
				Bin    string `json:"bin"`
			} `json:"platforms"`
		} `json:"spec"`
	}
	if err := yaml.Unmarshal(raw, &plugin); err != nil {
		t.Fatal(err)
	}
	if plugin.APIVersion != "krew.googlecontainertools.github.com/v1alpha2" || plugin.Kind != "Plugin" || plugin.Metadata.Name != "sluice" {
		t.Errorf("not the krew Plugin sluice: %s %s %s", plugin.APIVersion, plugin.Kind, plugin.Metadata.Name)
	}
	if plugin.Spec.Version == "" || plugin.Spec.ShortDescription == "" || len(plugin.Spec.Platforms) == 0 {
		t.Errorf("version, shortDescription and platforms are required: %+v", plugin.Spec)
	}
	for _, p := range plugin.Spec.Platforms {
		goos := p.Selector.MatchLabels["os"]
		want := "kubectl-sluice"
		if goos == "windows" {
			want += ".exe"
		}
		if p.Bin != want || len(p.SHA256) != 64 || !strings.HasPrefix(p.URI, "https://") || !strings.Contains(p.URI, goos) {
			t.Errorf("platform %v: bin %q (want %q), sha256 %q, uri %q", p.Selector.MatchLabels, p.Bin, want, p.SHA256, p.URI)
		}
	}
}
