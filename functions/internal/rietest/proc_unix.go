//go:build unix

package rietest

import (
	"os/exec"
	"syscall"
)

// setProcessGroup puts the emulator in its own process group, so that Stop
// also ends the bootstrap it spawned and no process outlives the test.
func setProcessGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
}

func signalGroup(cmd *exec.Cmd, kill bool) {
	sig := syscall.SIGTERM
	if kill {
		sig = syscall.SIGKILL
	}
	// The group id is the emulator's pid (Setpgid with Pgid 0).
	_ = syscall.Kill(-cmd.Process.Pid, sig)
}
