//go:build !linux

package reliability

import "syscall"

// dieWithTest has no portable equivalent outside Linux; t.Cleanup still
// kills every child of a test that ends normally.
func dieWithTest() *syscall.SysProcAttr { return nil }
