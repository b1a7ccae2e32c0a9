package analysis

import (
	"fmt"
	"strings"
	"text/template"
	"time"

	"github.com/prometheus/common/model"
)

// Vars are what a custom check's query template may use.
type Vars struct {
	// Namespace and Deployment name the Deployment.
	Namespace, Deployment string
	// Workload is the workload measured: Canary, or Primary when the check
	// compares the canary with it.
	Workload string
	// Canary and Primary are the two workloads' names.
	Canary, Primary string
	// Window is the analysis window as a PromQL duration, such as 1m.
	Window string
}

// VarsFor returns the variables of the Deployment name in namespace, with
// Workload unset.
func VarsFor(namespace, name string, window time.Duration) Vars {
	return Vars{Namespace: namespace, Deployment: name, Canary: name + "-canary", Primary: name, Window: model.Duration(window).String()}
}

// For returns v measuring workload.
func (v Vars) For(workload string) Vars {
	v.Workload = workload
	return v
}

// Render renders a custom check's query template with v. A variable the
// template names but Vars lacks is an error, not an empty string.
func Render(query string, v Vars) (string, error) {
	t, err := template.New("query").Option("missingkey=error").Parse(query)
	if err != nil {
		return "", fmt.Errorf("parse the query template: %w", err)
	}
	var b strings.Builder
	if err := t.Execute(&b, v); err != nil {
		return "", fmt.Errorf("render the query template: %w", err)
	}
	return b.String(), nil
}
