// Package version tells which build of sluice a binary is: the webhook, the
// shifter, gencert, kubectl-sluice and sluice-loadtester all print the same
// string.
//
// A release stamps it with the linker:
//
//	go build -ldflags "-X sluice.dev/sluice/pkg/version.Version=v0.3.0 \
//	  -X sluice.dev/sluice/pkg/version.Commit=$(git rev-parse HEAD) \
//	  -X sluice.dev/sluice/pkg/version.Date=$(date -u +%Y-%m-%dT%H:%M:%SZ)" ./cmd/...
//
// Without it, the Go toolchain's own build information fills in what it
// knows: the module version (a tag, or a pseudo-version of the commit) and
// the VCS revision, time and whether the tree was modified.
package version

import (
	"cmp"
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"
)

// Set by the linker (-X) for a release; empty otherwise.
var (
	// Version is the release, such as v0.3.0.
	Version string
	// Commit is the git commit the release was built from.
	Commit string
	// Date is when the release was built, in RFC 3339.
	Date string
)

// Info is what is known of the running build.
type Info struct {
	// Version is the release or module version; "devel" when unknown.
	Version string `json:"version"`
	// Commit is the VCS revision, with "-dirty" if the tree was modified.
	Commit string `json:"commit,omitempty"`
	// Date is the build's or the commit's time.
	Date string `json:"date,omitempty"`
	// Go is the toolchain that built the binary.
	Go string `json:"go"`
}

// Get returns the running build's Info: the linker's values where set,
// the Go build information otherwise.
func Get() Info {
	bi, _ := debug.ReadBuildInfo()
	return fromBuild(bi, Version, Commit, Date)
}

// fromBuild merges the linker's values (which win) with bi, which may be nil.
func fromBuild(bi *debug.BuildInfo, version, commit, date string) Info {
	info := Info{Version: version, Commit: commit, Date: date, Go: runtime.Version()}
	if bi == nil {
		info.Version = cmp.Or(info.Version, "devel")
		return info
	}
	if v := bi.Main.Version; info.Version == "" && v != "" && v != "(devel)" {
		info.Version = v
	}
	info.Version = cmp.Or(info.Version, "devel")
	var revision, modified, vcsTime string
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			revision = s.Value
		case "vcs.modified":
			modified = s.Value
		case "vcs.time":
			vcsTime = s.Value
		}
	}
	if info.Commit == "" && revision != "" {
		info.Commit = revision
		if modified == "true" {
			info.Commit += "-dirty"
		}
	}
	info.Date = cmp.Or(info.Date, vcsTime)
	return info
}

// String is the version in one line: "v0.3.0 (commit 1a2b3c4d5e6f, 2026-01-02T03:04:05Z, go1.26.8)".
func (i Info) String() string {
	about := []string{}
	if i.Commit != "" {
		about = append(about, "commit "+shorten(i.Commit))
	}
	if i.Date != "" {
		about = append(about, i.Date)
	}
	about = append(about, i.Go)
	return fmt.Sprintf("%s (%s)", i.Version, strings.Join(about, ", "))
}

// String is Get().String(): what every sluice binary prints for --version.
func String() string { return Get().String() }

// shorten keeps 12 hex digits of a commit, and a "-dirty" suffix.
func shorten(commit string) string {
	hash, dirty, _ := strings.Cut(commit, "-")
	if len(hash) > 12 {
		hash = hash[:12]
	}
	if dirty != "" {
		return hash + "-" + dirty
	}
	return hash
}
