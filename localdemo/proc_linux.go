package localdemo

import "syscall"

// sysProcAttr puts btcd in its own process group and has the kernel kill
// it if the thread that started it dies, so a crashed demo leaves nothing
// running.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
