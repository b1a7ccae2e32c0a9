package image

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"path"
	"slices"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// File is one entry of a layer: a directory, or a regular file with its bytes.
type File struct {
	// Name is the path in the image, without a leading slash ("etc/passwd").
	Name string
	// Mode is the permission bits (0o755); setuid, setgid and sticky included.
	Mode int64
	// UID and GID own the entry; root when zero.
	UID, GID int
	// Dir makes the entry a directory; Data is then ignored.
	Dir bool
	// Data is a regular file's content.
	Data []byte
}

// Layer builds an OCI layer of files whose bytes depend only on the files and
// mtime: entries in path order, every time mtime, numeric owners without
// names, the USTAR format, and gzip without a header time. Two builds of the
// same files give the same digest, which is what makes the image reproducible.
func Layer(files []File, mtime time.Time) (v1.Layer, error) {
	data, err := Tar(files, mtime)
	if err != nil {
		return nil, err
	}
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(data)), nil
	}, tarball.WithMediaType(types.OCILayer), tarball.WithCompressedCaching)
}

// Tar writes files as a deterministic tar stream (see Layer); a release
// archives the plugin with it.
func Tar(files []File, mtime time.Time) ([]byte, error) {
	sorted := slices.Clone(files)
	slices.SortFunc(sorted, func(a, b File) int { return strings.Compare(a.Name, b.Name) })
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for i, f := range sorted {
		if f.Name == "" || path.IsAbs(f.Name) || path.Clean(f.Name) != f.Name {
			return nil, fmt.Errorf("layer entry %q: want a clean relative path such as etc/passwd", f.Name)
		}
		if i > 0 && sorted[i-1].Name == f.Name {
			return nil, fmt.Errorf("layer entry %q: listed twice", f.Name)
		}
		hdr := &tar.Header{
			Name:    f.Name,
			Mode:    f.Mode,
			Uid:     f.UID,
			Gid:     f.GID,
			ModTime: mtime.UTC().Truncate(time.Second),
			Format:  tar.FormatUSTAR,
		}
		if f.Dir {
			hdr.Typeflag, hdr.Name = tar.TypeDir, f.Name+"/"
		} else {
			hdr.Typeflag, hdr.Size = tar.TypeReg, int64(len(f.Data))
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return nil, fmt.Errorf("layer entry %s: %w", f.Name, err)
		}
		if !f.Dir {
			if _, err := tw.Write(f.Data); err != nil {
				return nil, fmt.Errorf("layer entry %s: %w", f.Name, err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("close layer: %w", err)
	}
	return buf.Bytes(), nil
}
