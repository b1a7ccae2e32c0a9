//go:build tools

// Package lint pins staticcheck, which make lint runs.
package lint

import _ "honnef.co/go/tools/cmd/staticcheck"
