package session

import "sync/atomic"

// maxIdleWorkers is how many request goroutines wait for work between
// requests: enough for every running request of a busy server to find
// one.
const maxIdleWorkers = 128

// workers runs requests on goroutines that outlive one request. A new
// goroutine starts with a small stack and grows it, copying, to the
// depth a request needs (Pebble iterators, JSON encoding); under a
// wallet load that copying was about a seventh of the server's CPU. A
// worker keeps its grown stack for the next request.
var workers = struct {
	tasks chan func() // unbuffered: a send succeeds only to a waiting worker
	idle  atomic.Int32
}{tasks: make(chan func())}

// goRequest runs f on an idle worker, or on a new goroutine that then
// stays as a worker while fewer than maxIdleWorkers wait.
func goRequest(f func()) {
	select {
	case workers.tasks <- f:
	default:
		go work(f)
	}
}

func work(f func()) {
	for {
		f()
		if workers.idle.Add(1) > maxIdleWorkers {
			workers.idle.Add(-1)
			return
		}
		f = <-workers.tasks
		workers.idle.Add(-1)
	}
}
