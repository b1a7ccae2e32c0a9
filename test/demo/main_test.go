package main

import (
	"io"
	"strings"
	"testing"
)

// An unknown router is refused, from the flag or the environment, with
// the routers there are; a good flag makes up for a bad environment.
func TestRouterMustBeKnown(t *testing.T) {
	for _, tc := range []struct {
		env     string
		args    []string
		wantErr string
	}{
		{"", []string{"--router=linkerd"}, `router "linkerd" (--router or $DEMO_ROUTER) is not one of sluice's routers; want istio or gateway-api`},
		{"nginx", []string{"down"}, `router "nginx"`},
		// down, in a folder where no demo runs: it only says so.
		{"nginx", []string{"down", "--router=gateway-api"}, ""},
	} {
		t.Setenv("DEMO_ROUTER", tc.env)
		cmd := newCommand()
		cmd.SetArgs(append(tc.args, "--dir="+t.TempDir()))
		cmd.SetOut(io.Discard)
		cmd.SetErr(io.Discard)
		err := cmd.Execute()
		switch {
		case tc.wantErr == "" && err != nil:
			t.Errorf("DEMO_ROUTER=%s demo %s: %v", tc.env, strings.Join(tc.args, " "), err)
		case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
			t.Errorf("DEMO_ROUTER=%s demo %s: error %v; want %q", tc.env, strings.Join(tc.args, " "), err, tc.wantErr)
		}
	}
}
