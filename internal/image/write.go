package image

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// Written says where Write put an image index.
type Written struct {
	// Ref is the name the archives carry, such as ghcr.io/sluice-dev/sluice:v0.1.0.
	Ref name.Tag
	// Digest is the index's: what a registry would serve for Ref.
	Digest v1.Hash
	// Layout is the OCI image layout directory, for crane or skopeo to push.
	Layout string
	// OCIArchive is the layout as one tar, every platform in it: for podman
	// load, kind load image-archive, skopeo and containerd.
	OCIArchive string
	// DockerArchives are `docker save` tarballs, one per platform (the format
	// holds one image per name), by "os/arch": for docker load and kind.
	DockerArchives map[string]string
}

// Write writes idx under dir: the layout (dir/oci), the OCI archive
// (dir/sluice-image_TAG.oci.tar) and a docker tarball per platform
// (dir/sluice-image_TAG_OS_ARCH.tar). Their bytes depend only on idx, ref and
// mtime.
func Write(idx v1.ImageIndex, ref name.Tag, dir string, mtime time.Time) (*Written, error) {
	w := &Written{
		Ref:            ref,
		Layout:         filepath.Join(dir, "oci"),
		OCIArchive:     filepath.Join(dir, "sluice-image_"+ref.TagStr()+".oci.tar"),
		DockerArchives: map[string]string{},
	}
	digest, err := idx.Digest()
	if err != nil {
		return nil, fmt.Errorf("index digest: %w", err)
	}
	w.Digest = digest
	if err := os.RemoveAll(w.Layout); err != nil {
		return nil, fmt.Errorf("remove the old layout: %w", err)
	}
	p, err := layout.Write(w.Layout, empty.Index)
	if err != nil {
		return nil, fmt.Errorf("write layout %s: %w", w.Layout, err)
	}
	// ref.name for podman and skopeo, io.containerd.image.name for
	// containerd (and so kind): both the whole name, so it loads as Ref.
	if err := p.AppendIndex(idx, layout.WithAnnotations(map[string]string{
		"org.opencontainers.image.ref.name": ref.Name(),
		"io.containerd.image.name":          ref.Name(),
	})); err != nil {
		return nil, fmt.Errorf("write layout %s: %w", w.Layout, err)
	}
	if err := archiveDir(w.Layout, w.OCIArchive, mtime); err != nil {
		return nil, err
	}
	manifest, err := idx.IndexManifest()
	if err != nil {
		return nil, fmt.Errorf("index manifest: %w", err)
	}
	for _, m := range manifest.Manifests {
		img, err := idx.Image(m.Digest)
		if err != nil {
			return nil, fmt.Errorf("image %s: %w", m.Digest, err)
		}
		platform := m.Platform.OS + "/" + m.Platform.Architecture
		out := filepath.Join(dir, fmt.Sprintf("sluice-image_%s_%s_%s.tar", ref.TagStr(), m.Platform.OS, m.Platform.Architecture))
		if err := tarball.WriteToFile(out, ref, img); err != nil {
			return nil, fmt.Errorf("docker archive for %s: %w", platform, err)
		}
		w.DockerArchives[platform] = out
	}
	return w, nil
}

// archiveDir tars the tree under dir into out, deterministically (see Layer):
// the layout writes its blobs 0600, which the archive does not keep.
func archiveDir(dir, out string, mtime time.Time) error {
	var files []File
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || path == dir {
			return err
		}
		rel, err := filepath.Rel(dir, path)
		if err != nil {
			return err
		}
		f := File{Name: filepath.ToSlash(rel), Mode: 0o755, Dir: d.IsDir()}
		if !f.Dir {
			f.Mode = 0o644
			if f.Data, err = os.ReadFile(path); err != nil {
				return err
			}
		}
		files = append(files, f)
		return nil
	})
	if err != nil {
		return fmt.Errorf("read %s: %w", dir, err)
	}
	data, err := Tar(files, mtime)
	if err != nil {
		return fmt.Errorf("archive %s: %w", dir, err)
	}
	if err := os.WriteFile(out, data, 0o644); err != nil {
		return fmt.Errorf("write %s: %w", out, err)
	}
	return nil
}
