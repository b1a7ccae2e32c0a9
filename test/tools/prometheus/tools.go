//go:build tools

// Package prometheus pins the version of a binary that sluice's tests run.
package prometheus

import _ "github.com/prometheus/prometheus/cmd/prometheus"
