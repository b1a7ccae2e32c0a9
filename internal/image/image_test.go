package image

import (
	"archive/tar"
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/validate"
)

var mtime = time.Date(2026, 12, 1, 5, 43, 7, 0, time.UTC)

func TestLayerIsDeterministic(t *testing.T) {
	files := []File{
		{Name: "tmp", Mode: 0o1777, Dir: true},
		{Name: "etc/passwd", Mode: 0o644, Data: []byte("root:x:0:0::/:/sbin/nologin\n")},
		{Name: "etc", Mode: 0o755, Dir: true},
		{Name: "home/nonroot", Mode: 0o700, UID: UID, GID: UID, Dir: true},
	}
	first, err := Layer(files, mtime)
	if err != nil {
		t.Fatal(err)
	}
	reversed := slices.Clone(files)
	slices.Reverse(reversed)
	second, err := Layer(reversed, mtime.Add(500*time.Millisecond)) // the same second
	if err != nil {
		t.Fatal(err)
	}
	d1, _ := first.Digest()
	d2, _ := second.Digest()
	if d1 != d2 {
		t.Errorf("two layers of the same files: digests %s and %s", d1, d2)
	}
	rc, err := first.Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	tr := tar.NewReader(rc)
	var names []string
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, hdr.Name)
		if !hdr.ModTime.Equal(mtime) || hdr.Uname != "" || hdr.Gname != "" || hdr.Format != tar.FormatUSTAR {
			t.Errorf("%s: time %s, owner names %q %q, format %s: want %s, no names, USTAR", hdr.Name, hdr.ModTime, hdr.Uname, hdr.Gname, hdr.Format, mtime)
		}
		if hdr.Name == "home/nonroot/" && (hdr.Uid != UID || hdr.Gid != UID || hdr.Mode != 0o700) {
			t.Errorf("home/nonroot: owner %d:%d mode %o; want %d:%d 700", hdr.Uid, hdr.Gid, hdr.Mode, UID, UID)
		}
		if hdr.Name == "tmp/" && hdr.Mode != 0o1777 {
			t.Errorf("tmp: mode %o; want 1777", hdr.Mode)
		}
	}
	if want := []string{"etc/", "etc/passwd", "home/nonroot/", "tmp/"}; !slices.Equal(names, want) {
		t.Errorf("entries %q; want %q", names, want)
	}
}

func TestLayerRefusesBadNames(t *testing.T) {
	for _, files := range [][]File{
		{{Name: "/etc/passwd"}},
		{{Name: "etc/../passwd"}},
		{{Name: ""}},
		{{Name: "etc/passwd"}, {Name: "etc/passwd"}},
	} {
		if _, err := Layer(files, mtime); err == nil {
			t.Errorf("Layer(%q) made a layer; want an error", files[0].Name)
		}
	}
}

func TestCABundle(t *testing.T) {
	bundle := CABundle()
	if !bytes.Equal(bundle, CABundle()) {
		t.Fatal("two calls gave different bundles")
	}
	count := 0
	for rest := bundle; ; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			if len(bytes.TrimSpace(rest)) > 0 {
				t.Errorf("%d bytes after the last certificate", len(rest))
			}
			break
		}
		if _, err := x509.ParseCertificate(block.Bytes); err != nil {
			t.Errorf("certificate %d: %v", count, err)
		}
		count++
	}
	if count < 100 {
		t.Errorf("%d certificates; want the Mozilla roots, over 100", count)
	}
	if !x509.NewCertPool().AppendCertsFromPEM(bundle) {
		t.Error("a cert pool takes none of the bundle")
	}
}

// TestWriteReadsBack writes an index of two platforms built from fake
// binaries, and reads every form of it back (test/image does the same with
// sluice's real binaries).
func TestWriteReadsBack(t *testing.T) {
	dir := t.TempDir()
	platforms := []v1.Platform{{OS: "linux", Architecture: "amd64"}, {OS: "linux", Architecture: "arm64"}}
	for _, p := range platforms {
		bin := filepath.Join(dir, "bin", p.Architecture)
		if err := os.MkdirAll(bin, 0o755); err != nil {
			t.Fatal(err)
		}
		for _, b := range []string{"webhook", "shifter"} {
			if err := os.WriteFile(filepath.Join(bin, b), []byte(b+" for "+p.Architecture), 0o755); err != nil {
				t.Fatal(err)
			}
		}
	}
	labels := map[string]string{"org.opencontainers.image.version": "v1.2.3"}
	idx, err := Build(Options{
		Binaries:   []string{"webhook", "shifter"},
		Entrypoint: "shifter",
		Platforms:  platforms,
		BinDir:     func(p v1.Platform) string { return filepath.Join(dir, "bin", p.Architecture) },
		Labels:     labels,
		Created:    mtime,
	})
	if err != nil {
		t.Fatal(err)
	}
	ref := name.MustParseReference("example.com/sluice:v1.2.3").(name.Tag)
	w, err := Write(idx, ref, filepath.Join(dir, "out"), mtime)
	if err != nil {
		t.Fatal(err)
	}

	read, err := layout.ImageIndexFromPath(w.Layout)
	if err != nil {
		t.Fatal(err)
	}
	top, err := read.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(top.Manifests) != 1 || top.Manifests[0].Digest != w.Digest || top.Manifests[0].Annotations["io.containerd.image.name"] != ref.Name() {
		t.Fatalf("layout index.json: %+v; want the index %s named %s", top.Manifests, w.Digest, ref)
	}
	got, err := read.ImageIndex(w.Digest)
	if err != nil {
		t.Fatal(err)
	}
	if err := validate.Index(got); err != nil {
		t.Fatal(err)
	}
	manifest, err := got.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if manifest.Annotations["org.opencontainers.image.version"] != "v1.2.3" {
		t.Errorf("index annotations %v; want the labels", manifest.Annotations)
	}
	var baseLayers []v1.Hash
	for i, m := range manifest.Manifests {
		if !m.Platform.Equals(platforms[i]) {
			t.Errorf("manifest %d: platform %s; want %s", i, m.Platform, platforms[i])
		}
		img, err := got.Image(m.Digest)
		if err != nil {
			t.Fatal(err)
		}
		if err := validate.Image(img); err != nil {
			t.Fatal(err)
		}
		cfg, err := img.ConfigFile()
		if err != nil {
			t.Fatal(err)
		}
		if cfg.Architecture != platforms[i].Architecture || cfg.Config.User != "65532:65532" ||
			!slices.Equal(cfg.Config.Entrypoint, []string{"/shifter"}) || cfg.Config.Labels["org.opencontainers.image.version"] != "v1.2.3" ||
			!cfg.Created.Equal(mtime) {
			t.Errorf("config of %s: arch %s, user %s, entrypoint %q, labels %v, created %s", platforms[i], cfg.Architecture, cfg.Config.User, cfg.Config.Entrypoint, cfg.Config.Labels, cfg.Created)
		}
		layers, err := img.Layers()
		if err != nil || len(layers) != 2 {
			t.Fatalf("layers %d, %v; want 2", len(layers), err)
		}
		d, _ := layers[0].Digest()
		baseLayers = append(baseLayers, d)

		docker, err := tarball.ImageFromPath(w.DockerArchives[platforms[i].OS+"/"+platforms[i].Architecture], &ref)
		if err != nil {
			t.Fatal(err)
		}
		if err := validate.Image(docker); err != nil {
			t.Fatal(err)
		}
		want, _ := img.ConfigName()
		if have, _ := docker.ConfigName(); have != want {
			t.Errorf("docker archive of %s: config %s; want the layout's %s", platforms[i], have, want)
		}
	}
	if len(baseLayers) != 2 || baseLayers[0] != baseLayers[1] {
		t.Errorf("base layers %v: want one blob for both platforms", baseLayers)
	}

	entries := archiveEntries(t, w.OCIArchive)
	for _, want := range []string{"oci-layout", "index.json", "blobs/sha256/" + w.Digest.Hex} {
		if !slices.Contains(entries, want) {
			t.Errorf("OCI archive lacks %s: %q", want, entries)
		}
	}
}

func archiveEntries(t *testing.T, path string) []string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var names []string
	tr := tar.NewReader(f)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return names
		}
		if err != nil {
			t.Fatal(err)
		}
		if hdr.Typeflag == tar.TypeReg && hdr.Mode != 0o644 {
			t.Errorf("%s: mode %o; want 644", hdr.Name, hdr.Mode)
		}
		names = append(names, hdr.Name)
	}
}

func TestUserIsUID(t *testing.T) {
	if want := fmt.Sprintf("%d:%d", UID, UID); User != want {
		t.Errorf("User %q; want %q", User, want)
	}
}
