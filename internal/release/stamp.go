// Package release builds what a sluice release ships: static binaries stamped
// with the version, the container image, the plugin's archives, its krew
// manifest and the checksums. hack/release and the image tests drive it.
package release

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"regexp"
	"strings"
	"time"
)

// Stamp is what pkg/version reports for a build.
type Stamp struct {
	// Version is the release, such as v0.1.0.
	Version string
	// Commit is the git commit, with "-dirty" when the tree was modified.
	Commit string
	// Date is the commit's time in RFC 3339 UTC: a rebuild of the commit
	// gives the same bytes, which the build's wall-clock time would not.
	Date string
}

// GitStamp stamps version with the commit checked out in dir and its time.
func GitStamp(ctx context.Context, dir, version string) (Stamp, error) {
	commit, err := git(ctx, dir, "rev-parse", "HEAD")
	if err != nil {
		return Stamp{}, err
	}
	status, err := git(ctx, dir, "status", "--porcelain")
	if err != nil {
		return Stamp{}, err
	}
	if status != "" {
		commit += "-dirty"
	}
	unix, err := git(ctx, dir, "log", "-1", "--format=%ct")
	if err != nil {
		return Stamp{}, err
	}
	var seconds int64
	if _, err := fmt.Sscan(unix, &seconds); err != nil {
		return Stamp{}, fmt.Errorf("commit time %q: %w", unix, err)
	}
	date := time.Unix(seconds, 0).UTC().Format(time.RFC3339)
	return Stamp{Version: version, Commit: commit, Date: date}, nil
}

// Time is the stamp's date, the time every file of the release carries.
func (s Stamp) Time() (time.Time, error) {
	t, err := time.Parse(time.RFC3339, s.Date)
	if err != nil {
		return time.Time{}, fmt.Errorf("stamp date %q: want RFC 3339, such as 2026-12-01T05:43:07Z: %w", s.Date, err)
	}
	return t, nil
}

// LDFlags set pkg/version's variables, and strip the symbol table and the
// build ID, which would differ between builders.
func (s Stamp) LDFlags() string {
	const pkg = "sluice.dev/sluice/pkg/version"
	return fmt.Sprintf("-s -w -buildid= -X %s.Version=%s -X %s.Commit=%s -X %s.Date=%s",
		pkg, s.Version, pkg, s.Commit, pkg, s.Date)
}

func git(ctx context.Context, dir string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "git", args...)
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("git %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return strings.TrimSpace(string(out)), nil
}

// Describe is the version of the commit checked out in dir, as git describes
// it: the release tag (v0.1.0), a tag and the commits since
// (v0.1.0-3-g1a2b3c4), or the abbreviated commit where no tag exists, each
// with "-dirty" when the tree was modified.
func Describe(ctx context.Context, dir string) (string, error) {
	return git(ctx, dir, "describe", "--tags", "--match", "v[0-9]*", "--always", "--dirty")
}

// releaseVersion is a semantic version with the v that git tags, image tags
// and pkg/version carry.
var releaseVersion = regexp.MustCompile(`^v(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)(-[0-9A-Za-z.-]+)?$`)

// IsVersion tells whether v is a release's version, such as v1.2.3 or
// v1.3.0-rc.1.
func IsVersion(v string) bool { return releaseVersion.MatchString(v) }
