//go:build unix

package loadtest

import (
	"os/exec"
	"syscall"
)

// killGroup makes a timeout kill the command's whole process group: a test
// script's children would otherwise go on after it, holding its output open
// and whatever they hold.
func killGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
}
