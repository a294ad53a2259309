//go:build unix && !linux

package testenv

import "syscall"

// sysProcAttr puts a daemon in its own process group, so that it and any
// children can be signalled together.
//
// NOTE: only Linux can have the kernel kill daemons whose test binary
// died; elsewhere a killed test binary can leave them running.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
