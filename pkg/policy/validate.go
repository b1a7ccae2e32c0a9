package policy

import (
	"fmt"
	"time"

	"github.com/prometheus/prometheus/promql/parser"

	"sluice.dev/sluice/pkg/analysis"
	"sluice.dev/sluice/pkg/canary"
)

// example are the variables a query template is checked with: any
// Deployment's would do, since they only fill label values and the window.
var example = analysis.VarsFor("shop", "web", time.Minute).For("web-canary")

// Validate lists what is wrong with a policy beyond what its schema checks:
// each custom check's query must render as a Go template with the variables
// sluice gives it, and parse as PromQL by Prometheus' own parser. Each
// problem names the field.
func Validate(spec canary.PolicySpec) []string {
	promql := parser.NewParser(parser.Options{})
	var problems []string
	for i, c := range spec.Checks {
		if c.Query == "" {
			continue
		}
		field := fmt.Sprintf("spec.checks[%d].query", i)
		rendered, err := analysis.Render(c.Query, example)
		if err != nil {
			problems = append(problems, fmt.Sprintf("%s: %v; the variables are .Namespace, .Deployment, .Workload, .Canary, .Primary and .Window", field, err))
			continue
		}
		if _, err := promql.ParseExpr(rendered); err != nil {
			problems = append(problems, fmt.Sprintf("%s: not PromQL once rendered (%s): %v", field, rendered, err))
		}
	}
	return problems
}
