// Package image builds sluice's container image from its static binaries and
// writes it where a cluster can take it, with go-containerregistry and
// without pulling a base image: a first layer holds what a distroless base
// would give (a passwd entry for the non-root user, its home, /tmp and CA
// certificates), a second the binaries, for each platform of one index.
package image

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

const (
	// UID is the non-root user and group the image runs as, distroless's
	// "nonroot"; the chart's securityContext names the same.
	UID = 65532
	// User is the config's user, numeric so that the kubelet can check
	// runAsNonRoot without reading /etc/passwd.
	User = "65532:65532"
)

// Options say what goes into the image.
type Options struct {
	// Binaries are the executables at the image's root, such as "webhook".
	Binaries []string
	// Entrypoint is the binary a container runs when its pod names no command.
	Entrypoint string
	// Platforms are the index's images, one per platform.
	Platforms []v1.Platform
	// BinDir is the directory that holds a platform's Binaries.
	BinDir func(v1.Platform) string
	// Labels go on every image's config, and as annotations on the index.
	Labels map[string]string
	// Created is every time in the image: the commit's, so that a rebuild of
	// the commit gives the same digest.
	Created time.Time
}

// Build assembles the index of o.Platforms' images.
func Build(o Options) (v1.ImageIndex, error) {
	base, err := Layer(baseFiles(), o.Created)
	if err != nil {
		return nil, fmt.Errorf("base layer: %w", err)
	}
	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	for _, p := range o.Platforms {
		img, err := platformImage(o, p, base)
		if err != nil {
			return nil, fmt.Errorf("image for %s: %w", p, err)
		}
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{
			Add:        img,
			Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: p.OS, Architecture: p.Architecture}},
		})
	}
	annotated, ok := mutate.Annotations(idx, o.Labels).(v1.ImageIndex)
	if !ok {
		return nil, fmt.Errorf("annotate the index: not an index")
	}
	return annotated, nil
}

// baseFiles are the first layer's: the same for every platform, so one blob.
func baseFiles() []File {
	passwd := fmt.Sprintf("root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:%d:%d:nonroot:/home/nonroot:/sbin/nologin\n", UID, UID)
	group := fmt.Sprintf("root:x:0:\nnonroot:x:%d:\n", UID)
	return []File{
		{Name: "etc", Mode: 0o755, Dir: true},
		{Name: "etc/passwd", Mode: 0o644, Data: []byte(passwd)},
		{Name: "etc/group", Mode: 0o644, Data: []byte(group)},
		{Name: "etc/ssl", Mode: 0o755, Dir: true},
		{Name: "etc/ssl/certs", Mode: 0o755, Dir: true},
		{Name: CABundlePath, Mode: 0o644, Data: CABundle()},
		{Name: "home", Mode: 0o755, Dir: true},
		{Name: "home/nonroot", Mode: 0o700, UID: UID, GID: UID, Dir: true},
		{Name: "tmp", Mode: 0o1777, Dir: true},
	}
}

// platformImage is one platform's image: the base layer, then its binaries.
func platformImage(o Options, p v1.Platform, base v1.Layer) (v1.Image, error) {
	var bins []File
	for _, b := range o.Binaries {
		data, err := os.ReadFile(filepath.Join(o.BinDir(p), b))
		if err != nil {
			return nil, fmt.Errorf("binary %s: %w", b, err)
		}
		bins = append(bins, File{Name: b, Mode: 0o755, Data: data})
	}
	binaries, err := Layer(bins, o.Created)
	if err != nil {
		return nil, fmt.Errorf("binaries layer: %w", err)
	}
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	created := v1.Time{Time: o.Created}
	img, err = mutate.ConfigFile(img, &v1.ConfigFile{
		Architecture: p.Architecture,
		OS:           p.OS,
		Created:      created,
		RootFS:       v1.RootFS{Type: "layers"}, // Append adds the layers' DiffIDs
		Config: v1.Config{
			User:       User,
			Entrypoint: []string{"/" + o.Entrypoint},
			WorkingDir: "/",
			Labels:     o.Labels,
		},
	})
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return mutate.Append(img,
		mutate.Addendum{Layer: base, History: v1.History{Created: created, CreatedBy: "sluice: nonroot user, /tmp, CA certificates"}},
		mutate.Addendum{Layer: binaries, History: v1.History{Created: created, CreatedBy: "sluice: " + strings.Join(o.Binaries, ", ")}},
	)
}
