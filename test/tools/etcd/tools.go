//go:build tools

// Package etcd pins the version of a binary that sluice's tests run.
package etcd

import _ "go.etcd.io/etcd/server/v3"
