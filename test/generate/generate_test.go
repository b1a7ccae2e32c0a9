// Package generate_test checks that the generated files in the repository are
// what make generate and make manifests would write now.
package generate_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"sluice.dev/sluice/test/cluster"
	"sluice.dev/sluice/test/sluice"
)

func TestGeneratedFilesAreFresh(t *testing.T) {
	out := t.TempDir()
	// The same generators and options as the Makefile's generate target.
	cmd := exec.Command(filepath.Join(cluster.DefaultBinDir(), "controller-gen"),
		"object", "paths=./pkg/canary/...", "output:object:dir="+out,
		"crd:crdVersions=v1,allowDangerousTypes=true", "output:crd:dir="+out)
	cmd.Dir = sluice.RepoPath(".")
	if msg, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("controller-gen: %v\n%s", err, msg)
	}
	for generated, committed := range map[string]string{
		"zz_generated.deepcopy.go": "pkg/canary/zz_generated.deepcopy.go",
		"sluice.dev_canaries.yaml": "deploy/chart/crds/sluice.dev_canaries.yaml",
	} {
		want, err := os.ReadFile(filepath.Join(out, generated))
		if err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(sluice.RepoPath(committed))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s is stale: run make generate", committed)
		}
	}
}

func TestInstallManifestIsFresh(t *testing.T) {
	want, err := exec.Command(sluice.RepoPath("deploy/render.sh")).Output()
	if err != nil {
		t.Fatalf("deploy/render.sh: %v", err)
	}
	got, err := os.ReadFile(sluice.RepoPath("deploy/install.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Error("deploy/install.yaml is stale: run make manifests")
	}
}
