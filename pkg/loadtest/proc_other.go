//go:build !unix

package loadtest

import "os/exec"

// killGroup leaves exec's default, which kills the command alone: process
// groups are a Unix notion.
func killGroup(*exec.Cmd) {}
