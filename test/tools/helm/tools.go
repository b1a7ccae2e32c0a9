//go:build tools

// Package helm pins the version of a binary that sluice's tests run.
package helm

import _ "helm.sh/helm/v3/cmd/helm"
