// Package image_test builds sluice's image as make image does, for both
// platforms, from this commit, and checks it: read back with
// go-containerregistry, its binaries run, built a second time, and loaded and
// run by podman and by containerd as kind loads it.
package image_test

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/validate"
	appsv1 "k8s.io/api/apps/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"

	"sluice.dev/sluice/internal/image"
	"sluice.dev/sluice/internal/release"
	"sluice.dev/sluice/pkg/version"
	"sluice.dev/sluice/test/sluice"
)

// testVersion is the version the test's image is stamped with: not the
// chart's, so that a check cannot pass on a default.
const testVersion = "v0.0.0-imagetest"

// built is the image, built once for the package.
var built struct {
	once  sync.Once
	err   error
	stamp release.Stamp
	image *image.Written
	// files are each platform's image flattened: path → header and content.
	files map[string]map[string]file
}

type file struct {
	hdr  *tar.Header
	data []byte
}

func TestMain(m *testing.M) {
	code := m.Run()
	if built.image != nil {
		_ = os.RemoveAll(filepath.Dir(built.image.Layout))
	}
	os.Exit(code)
}

// build builds the image, or fails the test if it cannot.
func build(t *testing.T) *image.Written {
	t.Helper()
	built.once.Do(func() {
		built.stamp, built.err = release.GitStamp(context.Background(), sluice.RepoPath("."), testVersion)
		if built.err != nil {
			return
		}
		var dir string
		if dir, built.err = os.MkdirTemp("", "sluice-image-test-"); built.err != nil {
			return
		}
		niced(func() { built.image, built.err = buildInto(context.Background(), dir) })
		if built.err != nil {
			return
		}
		built.files, built.err = flatten(built.image)
	})
	if built.err != nil {
		t.Fatal(built.err)
	}
	return built.image
}

// niced runs f on a thread of its own at a lower priority, which the
// processes it starts inherit: the image's two cross builds are minutes of
// CPU on a cold cache, and so yield to the packages that go test runs beside
// this one, whose rollouts keep time. Linux sets the priority per thread.
func niced(f func()) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		// Never unlocked: the thread ends with the goroutine, and its
		// priority with it.
		runtime.LockOSThread()
		if err := syscall.Setpriority(syscall.PRIO_PROCESS, 0, 10); err != nil {
			fmt.Fprintf(os.Stderr, "build the image at the usual priority: %v\n", err)
		}
		f()
	}()
	<-done
}

func buildInto(ctx context.Context, dir string) (*image.Written, error) {
	return release.BuildImage(ctx, sluice.RepoPath("."), release.ImageOptions{
		Repo: "ghcr.io/sluice-dev/sluice", Stamp: built.stamp, Out: dir,
	})
}

// flatten reads each platform's filesystem from the layout on disk.
func flatten(w *image.Written) (map[string]map[string]file, error) {
	_, images, err := loadImages(w)
	if err != nil {
		return nil, err
	}
	out := map[string]map[string]file{}
	for _, m := range images {
		if out[m.Platform.String()], err = extract(m.img); err != nil {
			return nil, fmt.Errorf("image of %s: %w", m.Platform, err)
		}
	}
	return out, nil
}

// extract reads the files of img's layers, flattened, by absolute path.
func extract(img v1.Image) (map[string]file, error) {
	rc := mutate.Extract(img)
	defer rc.Close()
	files := map[string]file{}
	tr := tar.NewReader(rc)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return files, nil
		}
		if err != nil {
			return nil, err
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			return nil, err
		}
		files["/"+strings.TrimSuffix(hdr.Name, "/")] = file{hdr: hdr, data: data}
	}
}

// readIndex reads the image's index back from the layout on disk.
func readIndex(w *image.Written) (v1.ImageIndex, error) {
	p, err := layout.FromPath(w.Layout)
	if err != nil {
		return nil, err
	}
	root, err := p.ImageIndex()
	if err != nil {
		return nil, err
	}
	return root.ImageIndex(w.Digest)
}

// platformImage is one image of the index, read back from the layout.
type platformImage struct {
	v1.Descriptor
	img v1.Image
	cfg *v1.ConfigFile
}

// loadImages reads the index back from the layout, validates it, and reads
// each of its images.
func loadImages(w *image.Written) (*v1.IndexManifest, []platformImage, error) {
	idx, err := readIndex(w)
	if err != nil {
		return nil, nil, err
	}
	if err := validate.Index(idx); err != nil {
		return nil, nil, err
	}
	manifest, err := idx.IndexManifest()
	if err != nil {
		return nil, nil, err
	}
	var images []platformImage
	for _, m := range manifest.Manifests {
		img, err := idx.Image(m.Digest)
		if err != nil {
			return nil, nil, err
		}
		cfg, err := img.ConfigFile()
		if err != nil {
			return nil, nil, err
		}
		images = append(images, platformImage{Descriptor: m, img: img, cfg: cfg})
	}
	return manifest, images, nil
}

// readImages is loadImages of the test's image, failing the test on an error.
func readImages(t *testing.T) (*v1.IndexManifest, []platformImage) {
	t.Helper()
	manifest, images, err := loadImages(build(t))
	if err != nil {
		t.Fatal(err)
	}
	return manifest, images
}

func TestIndexHasBothPlatforms(t *testing.T) {
	w := build(t)
	_, images := readImages(t)
	var platforms []string
	for _, m := range images {
		platforms = append(platforms, m.Platform.String())
		if m.cfg.OS+"/"+m.cfg.Architecture != m.Platform.String() {
			t.Errorf("image of %s: its config says %s/%s", m.Platform, m.cfg.OS, m.cfg.Architecture)
		}
		docker, err := tarball.ImageFromPath(w.DockerArchives[m.Platform.String()], &w.Ref)
		if err != nil {
			t.Fatal(err)
		}
		if err := validate.Image(docker); err != nil {
			t.Errorf("docker archive of %s: %v", m.Platform, err)
		}
		want, _ := m.img.ConfigName()
		if have, _ := docker.ConfigName(); have != want {
			t.Errorf("docker archive of %s: config %s; want the layout's %s", m.Platform, have, want)
		}
	}
	if want := []string{"linux/amd64", "linux/arm64"}; !slices.Equal(platforms, want) {
		t.Errorf("platforms %q; want %q", platforms, want)
	}
}

func TestConfigRunsAsNonRootAndIsLabelled(t *testing.T) {
	build(t)
	manifest, images := readImages(t)
	want := map[string]string{
		"org.opencontainers.image.version":  testVersion,
		"org.opencontainers.image.revision": built.stamp.Commit,
		"org.opencontainers.image.created":  built.stamp.Date,
		"org.opencontainers.image.licenses": "Apache-2.0",
		"org.opencontainers.image.source":   "https://github.com/sluice-dev/sluice",
	}
	for _, m := range images {
		cfg := m.cfg
		if cfg.Config.User != "65532:65532" || !slices.Equal(cfg.Config.Entrypoint, []string{"/shifter"}) {
			t.Errorf("%s: user %q, entrypoint %q; want 65532:65532 and /shifter", m.Platform, cfg.Config.User, cfg.Config.Entrypoint)
		}
		for k, v := range want {
			if cfg.Config.Labels[k] != v {
				t.Errorf("%s: label %s=%q; want %q", m.Platform, k, cfg.Config.Labels[k], v)
			}
			if manifest.Annotations[k] != v {
				t.Errorf("index annotation %s=%q; want %q", k, manifest.Annotations[k], v)
			}
		}
	}
	license, err := os.ReadFile(sluice.RepoPath("LICENSE"))
	if err != nil || !bytes.Contains(license, []byte("Apache License\n                           Version 2.0")) {
		t.Errorf("LICENSE (%v) is not the Apache License 2.0 that the label names", err)
	}
}

// TestEveryChartCommandIsInTheImage: what the chart's containers run is an
// executable of the image, as the user the image and the chart name.
func TestEveryChartCommandIsInTheImage(t *testing.T) {
	build(t)
	d := chartDeployment(t)
	pod := d.Spec.Template.Spec
	if pod.SecurityContext == nil || pod.SecurityContext.RunAsUser == nil || *pod.SecurityContext.RunAsUser != image.UID {
		t.Errorf("the chart's pod runs as %+v; want user %d, the image's", pod.SecurityContext, image.UID)
	}
	ref, err := release.ChartImage(sluice.RepoPath("."))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range pod.Containers {
		if c.Image != ref.String() {
			t.Errorf("container %s: image %s; want the chart's version-tagged %s", c.Name, c.Image, ref)
		}
		if len(c.Command) == 0 {
			t.Errorf("container %s: no command", c.Name)
			continue
		}
		for platform, files := range built.files {
			f, ok := files[c.Command[0]]
			if !ok || f.hdr.Typeflag != tar.TypeReg || f.hdr.Mode != 0o755 {
				t.Errorf("%s: container %s runs %s, which is not an executable of the image (%+v)", platform, c.Name, c.Command[0], f.hdr)
			}
		}
	}
	for platform, files := range built.files {
		passwd := string(files["/etc/passwd"].data)
		if !strings.Contains(passwd, fmt.Sprintf("nonroot:x:%d:%d:", image.UID, image.UID)) {
			t.Errorf("%s: /etc/passwd has no user %d: %q", platform, image.UID, passwd)
		}
		if home := files["/home/nonroot"].hdr; home == nil || home.Uid != image.UID {
			t.Errorf("%s: /home/nonroot is not the user's: %+v", platform, home)
		}
		if tmp := files["/tmp"].hdr; tmp == nil || tmp.Mode != 0o1777 {
			t.Errorf("%s: /tmp is not writable by all: %+v", platform, tmp)
		}
	}
}

// chartDeployment is the Deployment of deploy/install.yaml, the chart
// rendered with its defaults (test/generate checks that it is fresh).
func chartDeployment(t *testing.T) *appsv1.Deployment {
	t.Helper()
	f, err := os.Open(sluice.RepoPath("deploy/install.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	dec := utilyaml.NewYAMLOrJSONDecoder(f, 4096)
	for {
		var d appsv1.Deployment
		if err := dec.Decode(&d); errors.Is(err, io.EOF) {
			t.Fatal("deploy/install.yaml has no Deployment")
		} else if err != nil {
			t.Fatal(err)
		}
		if d.Kind == "Deployment" {
			return &d
		}
	}
}

// TestBinariesAreStaticAndTellTheVersion: every binary is a static
// executable of its platform, and those of this machine's platform print the
// stamped version.
func TestBinariesAreStaticAndTellTheVersion(t *testing.T) {
	build(t)
	machines := map[string]elf.Machine{"linux/amd64": elf.EM_X86_64, "linux/arm64": elf.EM_AARCH64}
	dir := t.TempDir()
	for platform, files := range built.files {
		for _, b := range release.ImageBinaries {
			f, ok := files["/"+b]
			if !ok {
				t.Errorf("%s: no /%s", platform, b)
				continue
			}
			exe, err := elf.NewFile(bytes.NewReader(f.data))
			if err != nil {
				t.Errorf("%s /%s: %v", platform, b, err)
				continue
			}
			if exe.Machine != machines[platform] {
				t.Errorf("%s /%s: machine %s; want %s", platform, b, exe.Machine, machines[platform])
			}
			for _, p := range exe.Progs {
				if p.Type == elf.PT_INTERP {
					t.Errorf("%s /%s: dynamically linked; want static", platform, b)
				}
			}
			if platform != hostPlatform {
				continue
			}
			path := filepath.Join(dir, b)
			if err := os.WriteFile(path, f.data, 0o755); err != nil {
				t.Fatal(err)
			}
			out, err := exec.Command(path, "--version").CombinedOutput()
			if want := versionLine(b); err != nil || string(out) != want {
				t.Errorf("%s /%s --version: %v, %q; want %q", platform, b, err, out, want)
			}
		}
	}
}

// versionLine is what binary prints for --version, stamped as the test's
// image is, by the Go toolchain of the test.
func versionLine(binary string) string {
	return binary + " version " + version.Info{Version: testVersion, Commit: built.stamp.Commit, Date: built.stamp.Date, Go: runtime.Version()}.String() + "\n"
}

func TestCABundleIsInPlace(t *testing.T) {
	build(t)
	for platform, files := range built.files {
		f, ok := files["/"+image.CABundlePath]
		if !ok || !bytes.Equal(f.data, image.CABundle()) || f.hdr.Mode != 0o644 {
			t.Errorf("%s: /%s is not the CA bundle (present %t, %d bytes)", platform, image.CABundlePath, ok, len(f.data))
		}
	}
}

// TestRebuildGivesTheSameImage: a second build of the commit, into another
// directory, gives the same index and the same archives, byte for byte.
func TestRebuildGivesTheSameImage(t *testing.T) {
	first := build(t)
	second, err := buildInto(t.Context(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if first.Digest != second.Digest {
		t.Errorf("index digests %s and %s", first.Digest, second.Digest)
	}
	pairs := [][2]string{{first.OCIArchive, second.OCIArchive}}
	for p, a := range first.DockerArchives {
		pairs = append(pairs, [2]string{a, second.DockerArchives[p]})
	}
	for _, pair := range pairs {
		if a, b := sha256File(t, pair[0]), sha256File(t, pair[1]); a != b {
			t.Errorf("%s: sha256 %s then %s", filepath.Base(pair[0]), a, b)
		}
	}
}

func sha256File(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%x", sha256.Sum256(data))
}
