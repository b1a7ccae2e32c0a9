package routers

import (
	"testing"

	"sluice.dev/sluice/pkg/canary"
)

// Every value of sluice.dev/router that the settings accept has its router.
func TestEveryRouterNameHasItsRouter(t *testing.T) {
	for _, name := range []string{canary.RouterIstio, canary.RouterGatewayAPI} {
		s, problems := canary.BuiltinDefaults().Parse(map[string]string{canary.AnnotationRouter: name})
		if len(problems) > 0 {
			t.Fatal(problems)
		}
		if got := For(s).Name(); got != name {
			t.Errorf("For(router %s) is router %s", name, got)
		}
	}
}
