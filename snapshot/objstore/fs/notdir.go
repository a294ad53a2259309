package fs

import "syscall"

// notDir is the error for a path through a regular file ("a/b" when "a" is
// an object), which means the object does not exist.
var notDir error = syscall.ENOTDIR
