//go:build !linux

package localdemo

import "syscall"

// sysProcAttr puts btcd in its own process group.
func sysProcAttr() *syscall.SysProcAttr { return &syscall.SysProcAttr{Setpgid: true} }
