package release

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"sluice.dev/sluice/internal/image"
)

const (
	// Source is where sluice's code lives, for the image's labels.
	Source = "https://github.com/sluice-dev/sluice"
	// License is sluice's licence (the LICENSE file), as an SPDX identifier.
	License = "Apache-2.0"
)

// ImageBinaries are what the image holds: the chart runs the webhook and the
// shifter (the entrypoint); the load tester is there for the policies that
// call it.
var ImageBinaries = []string{"webhook", "shifter", "sluice-loadtester"}

// ImagePlatforms are the platforms of the image's index.
var ImagePlatforms = []v1.Platform{{OS: "linux", Architecture: "amd64"}, {OS: "linux", Architecture: "arm64"}}

// ImageOptions say which image to build and where.
type ImageOptions struct {
	// Repo is the image's repository, such as ghcr.io/sluice-dev/sluice.
	Repo string
	// Tag is the image's tag; Stamp.Version when empty.
	Tag string
	// Stamp is the version the binaries and the labels carry.
	Stamp Stamp
	// Out is the directory of the layout and the archives (see image.Write).
	Out string
}

// BuildImage builds ImageBinaries for every ImagePlatform from the module in
// repo, and writes the image under o.Out.
func BuildImage(ctx context.Context, repo string, o ImageOptions) (*image.Written, error) {
	tag := o.Tag
	if tag == "" {
		tag = o.Stamp.Version
	}
	ref, err := name.NewTag(o.Repo + ":" + tag)
	if err != nil {
		return nil, fmt.Errorf("image name %s:%s: %w", o.Repo, tag, err)
	}
	created, err := o.Stamp.Time()
	if err != nil {
		return nil, err
	}
	bins, err := os.MkdirTemp("", "sluice-image-binaries-")
	if err != nil {
		return nil, fmt.Errorf("image %s: %w", ref, err)
	}
	defer os.RemoveAll(bins)
	binDir := func(p v1.Platform) string { return filepath.Join(bins, p.OS+"_"+p.Architecture) }
	for _, p := range ImagePlatforms {
		if err := GoBuild(ctx, repo, p, o.Stamp, binDir(p), ImageBinaries...); err != nil {
			return nil, err
		}
	}
	idx, err := image.Build(image.Options{
		Binaries:   ImageBinaries,
		Entrypoint: "shifter",
		Platforms:  ImagePlatforms,
		BinDir:     binDir,
		Labels:     Labels(o.Stamp),
		Created:    created,
	})
	if err != nil {
		return nil, fmt.Errorf("image %s: %w", ref, err)
	}
	w, err := image.Write(idx, ref, o.Out, created)
	if err != nil {
		return nil, fmt.Errorf("image %s: %w", ref, err)
	}
	return w, nil
}

// Labels are the image's OCI annotations for a build stamped s.
func Labels(s Stamp) map[string]string {
	return map[string]string{
		"org.opencontainers.image.title":       "sluice",
		"org.opencontainers.image.description": "sluice's webhook, shifter and load tester: canary releases of plain Kubernetes Deployments",
		"org.opencontainers.image.source":      Source,
		"org.opencontainers.image.url":         Source,
		"org.opencontainers.image.revision":    s.Commit,
		"org.opencontainers.image.version":     s.Version,
		"org.opencontainers.image.created":     s.Date,
		"org.opencontainers.image.licenses":    License,
	}
}
