package release

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"sigs.k8s.io/yaml"

	"sluice.dev/sluice/internal/image"
)

// repoRoot is the module's root, two levels up from this package.
func repoRoot(t *testing.T) string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// TestKrewFillsEveryPlatform: the krew manifest of a release is
// deploy/krew/sluice.yaml, a krew Plugin whose every platform installs
// kubectl-sluice and its LICENSE, with the release's version, URIs and
// checksums filled in.
func TestKrewFillsEveryPlatform(t *testing.T) {
	template, err := os.ReadFile(filepath.Join(repoRoot(t), "deploy", "krew", "sluice.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	sums := map[string]string{}
	for i, p := range PluginPlatforms {
		sums[fmt.Sprintf("kubectl-sluice_%s_%s.tar.gz", p.OS, p.Architecture)] = strings.Repeat(fmt.Sprint(i), 64)
	}
	out, err := Krew(template, "v1.2.3", sums)
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
				Files  []struct {
					From string `json:"from"`
					To   string `json:"to"`
				} `json:"files"`
			} `json:"platforms"`
		} `json:"spec"`
	}
	if err := yaml.Unmarshal(out, &plugin); err != nil {
		t.Fatal(err)
	}
	if plugin.APIVersion != "krew.googlecontainertools.github.com/v1alpha2" || plugin.Kind != "Plugin" || plugin.Metadata.Name != "sluice" {
		t.Errorf("not the krew Plugin sluice: %s %s %s", plugin.APIVersion, plugin.Kind, plugin.Metadata.Name)
	}
	if plugin.Spec.Version != "v1.2.3" || plugin.Spec.ShortDescription == "" {
		t.Errorf("version %q, shortDescription %q: want v1.2.3 and the template's", plugin.Spec.Version, plugin.Spec.ShortDescription)
	}
	if len(plugin.Spec.Platforms) != len(PluginPlatforms) {
		t.Errorf("%d platforms; want %d", len(plugin.Spec.Platforms), len(PluginPlatforms))
	}
	for _, p := range plugin.Spec.Platforms {
		goos := p.Selector.MatchLabels["os"]
		file := fmt.Sprintf("kubectl-sluice_%s_%s.tar.gz", goos, p.Selector.MatchLabels["arch"])
		if want := Source + "/releases/download/v1.2.3/" + file; p.URI != want {
			t.Errorf("uri %s; want %s", p.URI, want)
		}
		if p.SHA256 != sums[file] {
			t.Errorf("%s: sha256 %s; want %s", file, p.SHA256, sums[file])
		}
		bin := Executable(Plugin, v1.Platform{OS: goos})
		var from []string
		for _, f := range p.Files {
			from = append(from, f.From)
		}
		if p.Bin != bin || strings.Join(from, " ") != bin+" LICENSE" {
			t.Errorf("%s: bin %q, files from %q; want %s and LICENSE", file, p.Bin, from, bin)
		}
	}
	delete(sums, "kubectl-sluice_windows_amd64.tar.gz")
	if _, err := Krew(template, "v1.2.3", sums); err == nil || !strings.Contains(err.Error(), "kubectl-sluice_windows_amd64.tar.gz") {
		t.Errorf("without the windows archive: %v; want an error that names it", err)
	}
}

func TestArchiveAndChecksums(t *testing.T) {
	mtime := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	files := []image.File{{Name: "kubectl-sluice", Mode: 0o755, Data: []byte("binary")}, {Name: "LICENSE", Mode: 0o644, Data: []byte("licence")}}
	a, err := Archive(files, mtime)
	if err != nil {
		t.Fatal(err)
	}
	b, err := Archive(files, mtime)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a, b) {
		t.Error("two archives of the same files differ")
	}
	dir := t.TempDir()
	for file, data := range map[string][]byte{
		"kubectl-sluice_linux_amd64.tar.gz": a,
		"install.yaml":                      []byte("kind: List\n"),
		"SHA256SUMS":                        []byte("stale\n"),
		"image/sluice-image_v1.2.3.oci.tar": []byte("oci"),
		"image/oci/index.json":              []byte("{}"),
	} {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, file)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, file), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	sums, err := Checksums(dir)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(sums)), "\n")
	var names []string
	for _, l := range lines {
		_, file, _ := strings.Cut(l, "  ")
		names = append(names, file)
	}
	if want := "image/sluice-image_v1.2.3.oci.tar install.yaml kubectl-sluice_linux_amd64.tar.gz"; strings.Join(names, " ") != want {
		t.Errorf("SHA256SUMS lists %q; want %q", names, want)
	}
	if err := os.WriteFile(filepath.Join(dir, "SHA256SUMS"), sums, 0o644); err != nil {
		t.Fatal(err)
	}
	if sha256sum, err := exec.LookPath("sha256sum"); err == nil {
		cmd := exec.Command(sha256sum, "--check", "--strict", "SHA256SUMS")
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("sha256sum --check: %v\n%s", err, out)
		}
	}
}

func TestGitStamp(t *testing.T) {
	dir := t.TempDir()
	run := func(args ...string) {
		t.Helper()
		cmd := exec.Command("git", args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "GIT_AUTHOR_DATE=2026-11-30T10:00:00+02:00", "GIT_COMMITTER_DATE=2026-11-30T10:00:00+02:00",
			"GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.com", "GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@example.com")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	run("init", "-q")
	if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module x\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	run("add", "go.mod")
	run("commit", "-q", "-m", "first")
	ctx := context.Background()
	s, err := GitStamp(ctx, dir, "v1.2.3")
	if err != nil {
		t.Fatal(err)
	}
	if s.Date != "2026-11-30T08:00:00Z" || len(s.Commit) != 40 || s.Version != "v1.2.3" {
		t.Errorf("stamp %+v; want v1.2.3, a 40-digit commit, 2026-11-30T08:00:00Z", s)
	}
	if v, err := Describe(ctx, dir); err != nil || v != s.Commit[:7] {
		t.Errorf("describe without tags: %q, %v; want %s", v, err, s.Commit[:7])
	}
	run("tag", "v1.2.3")
	if v, err := Describe(ctx, dir); err != nil || v != "v1.2.3" {
		t.Errorf("describe at a tag: %q, %v; want v1.2.3", v, err)
	}
	if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module y\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if dirty, err := GitStamp(ctx, dir, "v1.2.3"); err != nil || dirty.Commit != s.Commit+"-dirty" {
		t.Errorf("modified tree: %+v, %v; want commit %s-dirty", dirty, err, s.Commit)
	}
	if v, err := Describe(ctx, dir); err != nil || v != "v1.2.3-dirty" {
		t.Errorf("describe a modified tree: %q, %v; want v1.2.3-dirty", v, err)
	}
	if _, err := (Stamp{Date: "yesterday"}).Time(); err == nil || !strings.Contains(err.Error(), "RFC 3339") {
		t.Errorf("bad date: %v; want an error that says RFC 3339", err)
	}
}

func TestChartImage(t *testing.T) {
	ref, err := ChartImage(repoRoot(t))
	if err != nil {
		t.Fatal(err)
	}
	if ref.Context().Name() != "ghcr.io/sluice-dev/sluice" || !strings.HasPrefix(ref.TagStr(), "v") {
		t.Errorf("chart image %s; want ghcr.io/sluice-dev/sluice at a v-version", ref)
	}
}

func TestIsVersion(t *testing.T) {
	for v, want := range map[string]bool{
		"v0.1.0": true, "v1.22.333": true, "v1.3.0-rc.1": true,
		"0.1.0": false, "v1.2": false, "v01.2.3": false, "1a2b3c4": false, "v0.1.0-3-g1a2b3c4-dirty": true, "": false,
	} {
		if IsVersion(v) != want {
			t.Errorf("IsVersion(%q) = %t; want %t", v, !want, want)
		}
	}
}

func TestRepackKeepsTheFilesAndDropsTheTimes(t *testing.T) {
	dir := t.TempDir()
	write := func(path string, stamp time.Time) {
		var buf bytes.Buffer
		zw := gzip.NewWriter(&buf)
		tw := tar.NewWriter(zw)
		for _, f := range []struct {
			name string
			mode int64
			data string
		}{{"sluice/Chart.yaml", 0o644, "name: sluice\n"}, {"sluice/templates/a.yaml", 0o600, "kind: A\n"}} {
			if err := tw.WriteHeader(&tar.Header{Name: f.name, Mode: f.mode, Size: int64(len(f.data)), ModTime: stamp, Typeflag: tar.TypeReg}); err != nil {
				t.Fatal(err)
			}
			if _, err := tw.Write([]byte(f.data)); err != nil {
				t.Fatal(err)
			}
		}
		if err := tw.Close(); err != nil {
			t.Fatal(err)
		}
		if err := zw.Close(); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	a, b := filepath.Join(dir, "a.tgz"), filepath.Join(dir, "b.tgz")
	write(a, time.Now())
	write(b, time.Now().Add(time.Hour))
	mtime := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	for _, p := range []string{a, b} {
		if err := Repack(p, mtime); err != nil {
			t.Fatal(err)
		}
	}
	da, _ := os.ReadFile(a)
	db, _ := os.ReadFile(b)
	if !bytes.Equal(da, db) {
		t.Fatal("two packages of the same files at different times differ after Repack")
	}
	zr, err := gzip.NewReader(bytes.NewReader(da))
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(zr)
	var got []string
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		data, _ := io.ReadAll(tr)
		got = append(got, fmt.Sprintf("%s %o %q %s", hdr.Name, hdr.Mode, data, hdr.ModTime.UTC().Format(time.RFC3339)))
	}
	want := []string{
		`sluice/Chart.yaml 644 "name: sluice\n" 2026-12-01T00:00:00Z`,
		`sluice/templates/a.yaml 600 "kind: A\n" 2026-12-01T00:00:00Z`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("repacked:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
