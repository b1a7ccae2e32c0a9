package version

import (
	"runtime"
	"runtime/debug"
	"testing"
)

func TestFromBuild(t *testing.T) {
	vcs := func(rev, modified, at string) []debug.BuildSetting {
		return []debug.BuildSetting{{Key: "vcs.revision", Value: rev}, {Key: "vcs.modified", Value: modified}, {Key: "vcs.time", Value: at}}
	}
	const rev = "0123456789abcdef0123456789abcdef01234567"
	cases := []struct {
		name                  string
		bi                    *debug.BuildInfo
		version, commit, date string
		want                  Info
		wantString            string
	}{
		{
			name: "no build information", want: Info{Version: "devel"},
			wantString: "devel (GO)",
		},
		{
			name:       "go build in a clean checkout",
			bi:         &debug.BuildInfo{Main: debug.Module{Version: "v0.0.0-20260102030405-0123456789ab"}, Settings: vcs(rev, "false", "2026-01-02T03:04:05Z")},
			want:       Info{Version: "v0.0.0-20260102030405-0123456789ab", Commit: rev, Date: "2026-01-02T03:04:05Z"},
			wantString: "v0.0.0-20260102030405-0123456789ab (commit 0123456789ab, 2026-01-02T03:04:05Z, GO)",
		},
		{
			name:       "go run in a modified tree",
			bi:         &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}, Settings: vcs(rev, "true", "2026-01-02T03:04:05Z")},
			want:       Info{Version: "devel", Commit: rev + "-dirty", Date: "2026-01-02T03:04:05Z"},
			wantString: "devel (commit 0123456789ab-dirty, 2026-01-02T03:04:05Z, GO)",
		},
		{
			name:    "a release stamped by the linker",
			bi:      &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}, Settings: vcs(rev, "true", "2026-01-02T03:04:05Z")},
			version: "v0.3.0", commit: "fedcba9876543210", date: "2026-02-03T00:00:00Z",
			want:       Info{Version: "v0.3.0", Commit: "fedcba9876543210", Date: "2026-02-03T00:00:00Z"},
			wantString: "v0.3.0 (commit fedcba987654, 2026-02-03T00:00:00Z, GO)",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := fromBuild(tc.bi, tc.version, tc.commit, tc.date)
			tc.want.Go = runtime.Version()
			if got != tc.want {
				t.Errorf("fromBuild = %+v; want %+v", got, tc.want)
			}
			want := tc.wantString[:len(tc.wantString)-len("GO)")] + runtime.Version() + ")"
			if got.String() != want {
				t.Errorf("String() = %q; want %q", got.String(), want)
			}
		})
	}
}
