//go:build tools

// Package kwok pins the version of a binary that sluice's tests run.
package kwok

import _ "sigs.k8s.io/kwok/cmd/kwok"
