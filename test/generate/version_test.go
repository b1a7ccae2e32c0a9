package generate_test

import (
	"os"
	"regexp"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"sluice.dev/sluice/internal/release"
	"sluice.dev/sluice/test/sluice"
)

// TestVersionsAgree: the chart's version is its appVersion without the v,
// the image tag, the binaries' --version and the git tag of a release are the
// appVersion, and deploy/install.yaml runs the image of that version. The
// image has one way to be built (make image), so no Dockerfile.
func TestVersionsAgree(t *testing.T) {
	raw, err := os.ReadFile(sluice.RepoPath("deploy/chart/Chart.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var chart struct {
		Version    string `json:"version"`
		AppVersion string `json:"appVersion"`
	}
	if err := yaml.Unmarshal(raw, &chart); err != nil {
		t.Fatal(err)
	}
	if !release.IsVersion(chart.AppVersion) || chart.Version != strings.TrimPrefix(chart.AppVersion, "v") {
		t.Errorf("Chart.yaml: version %q, appVersion %q; want a version such as 1.2.3 and the same with a v (make version-set)", chart.Version, chart.AppVersion)
	}
	ref, err := release.ChartImage(sluice.RepoPath("."))
	if err != nil {
		t.Fatal(err)
	}
	install, err := os.ReadFile(sluice.RepoPath("deploy/install.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	images := regexp.MustCompile(`(?m)^\s+image: (\S+)$`).FindAllStringSubmatch(string(install), -1)
	if len(images) != 2 {
		t.Errorf("deploy/install.yaml runs %d images; want the webhook's and the shifter's", len(images))
	}
	for _, m := range images {
		if m[1] != ref.String() {
			t.Errorf("deploy/install.yaml runs %s; want %s", m[1], ref)
		}
	}
	if !strings.Contains(string(install), `app.kubernetes.io/version: "`+chart.AppVersion+`"`) {
		t.Errorf("deploy/install.yaml does not label its objects with version %s", chart.AppVersion)
	}
	if _, err := os.Stat(sluice.RepoPath("Dockerfile")); !os.IsNotExist(err) {
		t.Errorf("a Dockerfile exists (%v): make image is the one way to build the image", err)
	}
}
