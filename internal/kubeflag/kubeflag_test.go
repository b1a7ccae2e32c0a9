package kubeflag

import (
	"strings"
	"testing"

	"github.com/spf13/pflag"
)

func TestNamespacedName(t *testing.T) {
	for _, tc := range []struct {
		value, want, err string
	}{
		{"sluice-system/sluice", "sluice-system/sluice", ""},
		{"sluice", "", `invalid argument "sluice" for "--deployment" flag: want namespace/name, such as sluice-system/sluice`},
		{"a/b/c", "", "want namespace/name"},
		{"/sluice", "", "want namespace/name"},
		{"sluice-system/", "", "want namespace/name"},
	} {
		f := pflag.NewFlagSet("test", pflag.ContinueOnError)
		v := NamespacedName{Example: "sluice-system/sluice"}
		f.Var(&v, "deployment", "")
		err := f.Parse([]string{"--deployment=" + tc.value})
		switch {
		case tc.err == "" && err != nil:
			t.Errorf("%q: %v", tc.value, err)
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("%q: error %v; want one containing %q", tc.value, err, tc.err)
		case tc.err == "" && v.String() != tc.want:
			t.Errorf("%q: parsed as %q; want %q", tc.value, v.String(), tc.want)
		}
	}
}
