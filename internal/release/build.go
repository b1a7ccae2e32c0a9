package release

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// Commands are the packages of sluice's binaries, by binary name.
var Commands = map[string]string{
	"webhook":           "./cmd/webhook",
	"shifter":           "./cmd/shifter",
	"kubectl-sluice":    "./cmd/kubectl-sluice",
	"sluice-loadtester": "./cmd/sluice-loadtester",
	"gencert":           "./certs/gencert",
}

// GoBuild builds the binaries named into out for platform p, from the module
// in repo: static (no cgo), without the builder's paths (-trimpath), for the
// baseline CPU of the architecture, and stamped with s. The same commit and
// toolchain give the same bytes.
func GoBuild(ctx context.Context, repo string, p v1.Platform, s Stamp, out string, binaries ...string) error {
	if err := os.MkdirAll(out, 0o755); err != nil {
		return fmt.Errorf("build for %s: %w", p, err)
	}
	args := []string{"build", "-trimpath", "-ldflags", s.LDFlags(), "-o", out + string(filepath.Separator)}
	for _, b := range binaries {
		pkg, ok := Commands[b]
		if !ok {
			return fmt.Errorf("build for %s: no binary %q; there are %s", p, b, strings.Join(Binaries(), ", "))
		}
		args = append(args, pkg)
	}
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = repo
	cmd.Env = append(os.Environ(),
		"CGO_ENABLED=0", "GOOS="+p.OS, "GOARCH="+p.Architecture,
		"GOAMD64=v1", "GOARM64=v8.0", "GOFLAGS=-mod=readonly")
	var output bytes.Buffer
	cmd.Stdout, cmd.Stderr = &output, &output
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("build %s for %s: %w\n%s", strings.Join(binaries, ", "), p, err, output.String())
	}
	return nil
}

// Executable is the file name of binary on platform p.
func Executable(binary string, p v1.Platform) string {
	if p.OS == "windows" {
		return binary + ".exe"
	}
	return binary
}

// Binaries are the names of Commands, sorted.
func Binaries() []string {
	return slices.Sorted(maps.Keys(Commands))
}

// HostPlatform is the platform this program runs on.
func HostPlatform() v1.Platform {
	return v1.Platform{OS: runtime.GOOS, Architecture: runtime.GOARCH}
}
