//go:build tools

// Package codegen pins controller-gen, which writes the Canary CRD and its
// deep-copy functions (make generate).
package codegen

import _ "sigs.k8s.io/controller-tools/cmd/controller-gen"
