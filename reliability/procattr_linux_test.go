package reliability

import "syscall"

// dieWithTest makes a child process die with the test binary, even when
// that is killed, so that no amber outlives its test.
func dieWithTest() *syscall.SysProcAttr { return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL} }
