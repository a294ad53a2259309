package testenv

import "syscall"

// sysProcAttr puts a daemon in its own process group, so that it and any
// children can be signalled together, and has the kernel SIGKILL it when
// the thread that started it dies, so a crashed or killed test binary
// leaves no daemon behind.
//
// NOTE: Pdeathsig fires when the starting OS thread exits, not the
// process. The Go runtime keeps its threads for the life of the process
// unless a goroutine exits while locked to one, which the harness never
// does.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
