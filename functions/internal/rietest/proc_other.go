//go:build !unix

package rietest

import "os/exec"

func setProcessGroup(*exec.Cmd) {}

func signalGroup(cmd *exec.Cmd, kill bool) { _ = cmd.Process.Kill() }
