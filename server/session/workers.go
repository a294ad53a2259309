package session

import (
	"runtime"

	"amber/internal/workpool"
)

// requests runs every session's requests (see workpool for why a pool).
// Requests that wait call workpool.Blocking, so the limit counts only
// requests using a CPU: a few per core keep them busy while some read
// Pebble's files.
var requests = workpool.New(max(8, 4*runtime.GOMAXPROCS(0)))
