package release

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"sigs.k8s.io/yaml"

	"sluice.dev/sluice/internal/image"
)

// DistPlatforms are the platforms of the released binaries.
var DistPlatforms = []v1.Platform{
	{OS: "linux", Architecture: "amd64"}, {OS: "linux", Architecture: "arm64"},
	{OS: "darwin", Architecture: "amd64"}, {OS: "darwin", Architecture: "arm64"},
}

// PluginPlatforms are the platforms of kubectl-sluice's krew archives: the
// binaries' and Windows, where kubectl runs too.
var PluginPlatforms = append(slices.Clone(DistPlatforms), v1.Platform{OS: "windows", Architecture: "amd64"})

// Plugin is the kubectl plugin's binary, released as a krew archive.
const Plugin = "kubectl-sluice"

// Dist writes a release of the module in repo into out: every binary for
// every DistPlatform (out/BINARY_OS_ARCH), the plugin's archives
// (out/kubectl-sluice_OS_ARCH.tar.gz), the krew manifest filled in from
// krewTemplate (out/krew-sluice.yaml) and the image (out/image). The chart,
// install.yaml and SHA256SUMS are the Makefile's, with helm.
func Dist(ctx context.Context, repo, out string, s Stamp, krewTemplate []byte) error {
	license, err := os.ReadFile(filepath.Join(repo, "LICENSE"))
	if err != nil {
		return fmt.Errorf("release: %w", err)
	}
	sums := map[string]string{}
	for _, p := range PluginPlatforms {
		if err := distPlatform(ctx, repo, out, p, s, license, sums); err != nil {
			return err
		}
	}
	if err := os.RemoveAll(filepath.Join(out, "build")); err != nil {
		return fmt.Errorf("release: %w", err)
	}
	krew, err := Krew(krewTemplate, s.Version, sums)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(out, "krew-sluice.yaml"), krew, 0o644); err != nil {
		return fmt.Errorf("release: %w", err)
	}
	ref, err := ChartImage(repo)
	if err != nil {
		return err
	}
	_, err = BuildImage(ctx, repo, ImageOptions{Repo: ref.Context().Name(), Stamp: s, Out: filepath.Join(out, "image")})
	return err
}

// distPlatform builds the binaries for p into out: every binary on a
// DistPlatform, the plugin's archive on every platform, whose checksum it
// adds to sums by file name.
func distPlatform(ctx context.Context, repo, out string, p v1.Platform, s Stamp, license []byte, sums map[string]string) error {
	mtime, err := s.Time()
	if err != nil {
		return err
	}
	full := slices.ContainsFunc(DistPlatforms, p.Equals)
	binaries := []string{Plugin}
	if full {
		binaries = Binaries()
	}
	build := filepath.Join(out, "build", p.OS+"_"+p.Architecture)
	if err := GoBuild(ctx, repo, p, s, build, binaries...); err != nil {
		return err
	}
	for _, b := range binaries {
		exe := Executable(b, p)
		data, err := os.ReadFile(filepath.Join(build, exe))
		if err != nil {
			return fmt.Errorf("release %s: %w", exe, err)
		}
		if full {
			file := fmt.Sprintf("%s_%s_%s", b, p.OS, p.Architecture)
			if err := os.WriteFile(filepath.Join(out, file), data, 0o755); err != nil {
				return fmt.Errorf("release: %w", err)
			}
		}
		if b != Plugin {
			continue
		}
		archive, err := Archive([]image.File{
			{Name: exe, Mode: 0o755, Data: data},
			{Name: "LICENSE", Mode: 0o644, Data: license},
		}, mtime)
		if err != nil {
			return fmt.Errorf("release %s: %w", exe, err)
		}
		file := fmt.Sprintf("%s_%s_%s.tar.gz", Plugin, p.OS, p.Architecture)
		if err := os.WriteFile(filepath.Join(out, file), archive, 0o644); err != nil {
			return fmt.Errorf("release: %w", err)
		}
		sums[file] = sha256Hex(archive)
	}
	return nil
}

// Archive is a .tar.gz of files whose bytes depend only on files and mtime.
func Archive(files []image.File, mtime time.Time) ([]byte, error) {
	data, err := image.Tar(files, mtime)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if err != nil {
		return nil, err
	}
	if _, err := zw.Write(data); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// Repack rewrites the .tar.gz at path as Archive writes one, every time
// mtime: helm package stamps the chart's entries with the time of packaging,
// which would make every build of a release differ.
func Repack(path string, mtime time.Time) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("repack: %w", err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		return fmt.Errorf("repack %s: %w", path, err)
	}
	var files []image.File
	tr := tar.NewReader(zr)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("repack %s: %w", path, err)
		}
		name := strings.TrimSuffix(hdr.Name, "/")
		switch hdr.Typeflag {
		case tar.TypeDir:
			files = append(files, image.File{Name: name, Mode: hdr.Mode, Dir: true})
		case tar.TypeReg:
			data, err := io.ReadAll(tr)
			if err != nil {
				return fmt.Errorf("repack %s: %s: %w", path, hdr.Name, err)
			}
			files = append(files, image.File{Name: name, Mode: hdr.Mode, Data: data})
		default:
			return fmt.Errorf("repack %s: %s is neither a file nor a directory", path, hdr.Name)
		}
	}
	archive, err := Archive(files, mtime)
	if err != nil {
		return fmt.Errorf("repack %s: %w", path, err)
	}
	return os.WriteFile(path, archive, 0o644)
}

// Checksums is the SHA256SUMS of the regular files in dir and, for the image,
// dir/image/*.tar, in `sha256sum` format sorted by name, so that
// `sha256sum -c SHA256SUMS` checks them from dir. SHA256SUMS itself is left out.
func Checksums(dir string) ([]byte, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("checksums: %w", err)
	}
	var files []string
	for _, e := range entries {
		if e.Type().IsRegular() && e.Name() != "SHA256SUMS" {
			files = append(files, e.Name())
		}
	}
	archives, err := filepath.Glob(filepath.Join(dir, "image", "*.tar"))
	if err != nil {
		return nil, fmt.Errorf("checksums: %w", err)
	}
	for _, a := range archives {
		files = append(files, filepath.ToSlash(filepath.Join("image", filepath.Base(a))))
	}
	slices.Sort(files)
	var sums strings.Builder
	for _, f := range files {
		data, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(f)))
		if err != nil {
			return nil, fmt.Errorf("checksums: %w", err)
		}
		fmt.Fprintf(&sums, "%s  %s\n", sha256Hex(data), f)
	}
	return []byte(sums.String()), nil
}

// Krew fills in the krew manifest template (deploy/krew/sluice.yaml) for
// version: spec.version, and each platform's uri and sha256 from sums, the
// checksums of the archives by file name.
func Krew(template []byte, version string, sums map[string]string) ([]byte, error) {
	var plugin map[string]any
	if err := yaml.Unmarshal(template, &plugin); err != nil {
		return nil, fmt.Errorf("krew manifest: %w", err)
	}
	spec, _ := plugin["spec"].(map[string]any)
	platforms, _ := spec["platforms"].([]any)
	if len(platforms) == 0 {
		return nil, fmt.Errorf("krew manifest: no spec.platforms")
	}
	spec["version"] = version
	for i, p := range platforms {
		platform, _ := p.(map[string]any)
		selector, _ := platform["selector"].(map[string]any)
		labels, _ := selector["matchLabels"].(map[string]any)
		goos, _ := labels["os"].(string)
		arch, _ := labels["arch"].(string)
		file := fmt.Sprintf("%s_%s_%s.tar.gz", Plugin, goos, arch)
		sum, ok := sums[file]
		if !ok {
			return nil, fmt.Errorf("krew manifest: platform %d (os %q, arch %q) has no archive %s", i, goos, arch, file)
		}
		platform["uri"] = fmt.Sprintf("%s/releases/download/%s/%s", Source, version, file)
		platform["sha256"] = sum
	}
	out, err := yaml.Marshal(plugin)
	if err != nil {
		return nil, fmt.Errorf("krew manifest: %w", err)
	}
	return append([]byte("# kubectl sluice's krew manifest for "+version+", written by make release.\n"), out...), nil
}

func sha256Hex(data []byte) string {
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}
