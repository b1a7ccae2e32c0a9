package image_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"sluice.dev/sluice/test/cluster"
)

// engine finds the programs a container engine's test needs, and skips the
// test without them unless SLUICE_REQUIRE_ENGINES is set (as in CI, which
// installs them), where it fails.
func engine(t *testing.T, programs ...string) map[string]string {
	t.Helper()
	paths := map[string]string{}
	var missing []error
	for _, p := range programs {
		path, err := exec.LookPath(p)
		missing = append(missing, err)
		paths[p] = path
	}
	if err := errors.Join(missing...); err != nil {
		msg := fmt.Sprintf("apt-get install podman runc containerd: %v", err)
		if os.Getenv("SLUICE_REQUIRE_ENGINES") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return paths
}

// hostPlatform is the platform of this machine, the one whose containers run.
var hostPlatform = runtime.GOOS + "/" + runtime.GOARCH

// TestPodmanLoadsAndRuns: podman loads each docker archive and the OCI
// archive under the image's name, with the platform, user and entrypoint of
// the image, and runs the webhook and the shifter of this machine's
// platform.
func TestPodmanLoadsAndRuns(t *testing.T) {
	w := build(t)
	bin := engine(t, "podman", "runc")
	// A store of the test's own; runc with cgroupfs, since the sandboxes that
	// run these tests allow neither crun's rlimits nor systemd's cgroups.
	store := t.TempDir()
	podman := func(args ...string) (string, error) {
		args = append([]string{"--root", filepath.Join(store, "root"), "--runroot", filepath.Join(store, "run"),
			"--storage-driver", "vfs", "--cgroup-manager", "cgroupfs", "--runtime", bin["runc"], "--events-backend", "none"}, args...)
		out, err := exec.CommandContext(t.Context(), bin["podman"], args...).CombinedOutput()
		if err != nil {
			return string(out), fmt.Errorf("podman %s: %w\n%s", strings.Join(args, " "), err, out)
		}
		return string(out), nil
	}
	inspect := func() string {
		t.Helper()
		out, err := podman("image", "inspect", "--format", "{{.Os}}/{{.Architecture}} {{.Config.User}} {{.Config.Entrypoint}}", w.Ref.String())
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(out)
	}
	for _, platform := range []string{"linux/amd64", "linux/arm64"} {
		if _, err := podman("load", "--input", w.DockerArchives[platform]); err != nil {
			t.Fatal(err)
		}
		if got, want := inspect(), platform+" 65532:65532 [/shifter]"; got != want {
			t.Errorf("docker archive of %s loaded as %q; want %q", platform, got, want)
		}
		if _, err := podman("rmi", w.Ref.String()); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := podman("load", "--input", w.OCIArchive); err != nil {
		t.Fatal(err)
	}
	if got, want := inspect(), hostPlatform+" 65532:65532 [/shifter]"; got != want {
		t.Errorf("OCI archive loaded as %q; want %q, this machine's image of the index", got, want)
	}
	for _, b := range []string{"webhook", "shifter"} {
		// Limits lower than the sandbox's: it refuses to set them higher.
		out, err := podman("run", "--rm", "--network", "none", "--read-only",
			"--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024", "--entrypoint", "/"+b, w.Ref.String(), "--version")
		if err != nil {
			t.Fatal(err)
		}
		if want := versionLine(b); out != want {
			t.Errorf("podman run %s --version: %q; want %q", b, out, want)
		}
	}
}

// TestContainerdImportsAsKindDoes: containerd imports each archive with the
// command `kind load image-archive` runs on a node, keeps the OCI archive's
// index (both platforms, the same digest) under the image's name, and runs
// the image of this machine's platform.
func TestContainerdImportsAsKindDoes(t *testing.T) {
	w := build(t)
	bin := engine(t, "containerd", "ctr", "runc")
	dir := t.TempDir()
	sock := filepath.Join(dir, "containerd.sock")
	config := fmt.Sprintf("version = 2\nroot = %q\nstate = %q\ndisabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n[grpc]\n  address = %q\n",
		filepath.Join(dir, "root"), filepath.Join(dir, "state"), sock)
	if err := os.WriteFile(filepath.Join(dir, "config.toml"), []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	daemon, err := cluster.StartProcess(dir, "containerd", bin["containerd"], "--config", filepath.Join(dir, "config.toml"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = daemon.Stop(10 * time.Second) })
	ctr := func(stdin string, args ...string) (string, error) {
		args = append([]string{"--address", sock, "--namespace", "k8s.io"}, args...)
		cmd := exec.CommandContext(t.Context(), bin["ctr"], args...)
		if stdin != "" {
			f, err := os.Open(stdin)
			if err != nil {
				return "", err
			}
			defer f.Close()
			cmd.Stdin = f
		}
		out, err := cmd.CombinedOutput()
		if err != nil {
			return string(out), fmt.Errorf("ctr %s: %w\n%s", strings.Join(args, " "), err, out)
		}
		return string(out), nil
	}
	cluster.Eventually(t, 30*time.Second, "containerd serving", func(context.Context) error {
		_, err := ctr("", "version")
		return err
	})
	// What kind runs on the node for each archive it loads.
	load := func(archive string) {
		t.Helper()
		if _, err := ctr(archive, "images", "import", "--all-platforms", "--digests", "--snapshotter", "native", "-"); err != nil {
			t.Fatal(err)
		}
	}
	images := func() string {
		t.Helper()
		out, err := ctr("", "images", "ls")
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(out, "\n") {
			if strings.HasPrefix(line, w.Ref.String()+" ") {
				return strings.Join(strings.Fields(line), " ")
			}
		}
		t.Fatalf("containerd has no image %s:\n%s", w.Ref, out)
		return ""
	}

	load(w.DockerArchives[hostPlatform])
	if got := images(); !strings.Contains(got, " "+hostPlatform+" ") {
		t.Errorf("docker archive of %s imported as %q", hostPlatform, got)
	}
	load(w.OCIArchive)
	if got, want := images(), " "+w.Digest.String()+" "; !strings.Contains(got, want) || !strings.Contains(got, " linux/amd64,linux/arm64 ") {
		t.Errorf("OCI archive imported as %q; want the index %s of linux/amd64 and linux/arm64", got, w.Digest)
	}
	for _, b := range []string{"webhook", "shifter"} {
		out, err := ctr("", "run", "--rm", "--snapshotter", "native", w.Ref.String(), "sluice-"+b, "/"+b, "--version")
		if err != nil {
			t.Fatal(err)
		}
		if want := versionLine(b); out != want {
			t.Errorf("ctr run %s --version: %q; want %q", b, out, want)
		}
	}
}
