package buildinfo

import (
	"fmt"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"sluice.dev/sluice/pkg/version"
)

func TestBuildInfo(t *testing.T) {
	reg := prometheus.NewRegistry()
	for range 2 {
		if err := Register(reg); err != nil {
			t.Fatalf("Register: %v", err)
		}
	}
	info := version.Get()
	want := fmt.Sprintf(`# HELP sluice_build_info The build of sluice this process runs (its version, VCS revision and Go toolchain); always 1.
# TYPE sluice_build_info gauge
sluice_build_info{goversion=%q,revision=%q,version=%q} 1
`, info.Go, info.Commit, info.Version)
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "sluice_build_info"); err != nil {
		t.Error(err)
	}
}
