package release

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/google/go-containerregistry/pkg/name"
	"sigs.k8s.io/yaml"
)

// ChartImage is the image the chart in repo/deploy/chart installs by default:
// values.yaml's image.repository, tagged with Chart.yaml's appVersion.
func ChartImage(repo string) (name.Tag, error) {
	var chart struct {
		AppVersion string `json:"appVersion"`
	}
	var values struct {
		Image struct {
			Repository string `json:"repository"`
		} `json:"image"`
	}
	for file, into := range map[string]any{"Chart.yaml": &chart, "values.yaml": &values} {
		data, err := os.ReadFile(filepath.Join(repo, "deploy", "chart", file))
		if err != nil {
			return name.Tag{}, fmt.Errorf("chart image: %w", err)
		}
		if err := yaml.Unmarshal(data, into); err != nil {
			return name.Tag{}, fmt.Errorf("chart image: %s: %w", file, err)
		}
	}
	ref, err := name.NewTag(values.Image.Repository + ":" + chart.AppVersion)
	if err != nil {
		return name.Tag{}, fmt.Errorf("chart image %s:%s: %w", values.Image.Repository, chart.AppVersion, err)
	}
	return ref, nil
}
