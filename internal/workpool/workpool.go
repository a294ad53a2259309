// Package workpool runs requests on a bounded set of long-lived
// goroutines, in the order they arrive.
//
// A goroutine per request let a burst of 20,000 requests run 20,000
// goroutines at once: each grew its stack by copying to the depth a
// request needs (a seventh of a busy server's CPU), and the scheduler
// favoured new requests over old ones, so a few waited seconds. The pool
// keeps at most Max workers running and queues the rest first in, first
// out. A worker about to wait (on the daemon, a throttle delay, a
// client's socket) calls Blocking, which lets another worker take its
// place, so a slow daemon never holds up requests the index answers.
package workpool

import (
	"context"
	"sync"
	"sync/atomic"
)

// Pool runs functions on its workers. The zero value is not usable; use
// New.
type Pool struct {
	max int // workers running at once, outside Blocking sections

	mu     sync.Mutex
	cond   sync.Cond
	queue  []task
	head   int
	active int // workers running or handed a task, outside Blocking
	idle   int // workers parked, waiting for a task

	spawned atomic.Int64 // goroutines started, for tests and metrics
}

type task struct {
	ctx context.Context
	f   func(context.Context)
}

// New returns a pool that runs up to max functions at once, outside their
// Blocking sections, and keeps up to max idle workers for later ones.
func New(max int) *Pool {
	p := &Pool{max: max}
	p.cond.L = &p.mu
	return p
}

// token marks a context as a pool task's, so Blocking knows it runs on a
// worker.
type token struct {
	p     *Pool
	depth atomic.Int32 // nested Blocking sections
}

type tokenKey struct{}

// Go queues f to run on a worker with ctx, marked so that Blocking(ctx)
// frees the worker's place. It never blocks.
func (p *Pool) Go(ctx context.Context, f func(context.Context)) {
	ctx = context.WithValue(ctx, tokenKey{}, &token{p: p})
	p.mu.Lock()
	p.queue = append(p.queue, task{ctx, f})
	p.startLocked()
	p.mu.Unlock()
}

// startLocked gives the queue one more running worker if the limit
// allows: a parked one, else a new one.
func (p *Pool) startLocked() {
	if p.head == len(p.queue) || p.active >= p.max {
		return
	}
	p.active++
	if p.idle > 0 {
		p.idle--
		p.cond.Signal()
		return
	}
	p.spawned.Add(1)
	go p.work()
}

// work runs queued tasks while the pool is within its limit, then parks
// (or ends, with enough parked already). It is counted in active on entry
// and whenever it runs.
func (p *Pool) work() {
	p.mu.Lock()
	for {
		if p.head < len(p.queue) && p.active <= p.max {
			t := p.queue[p.head]
			p.queue[p.head] = task{}
			p.head++
			if p.head == len(p.queue) {
				p.queue, p.head = p.queue[:0], 0
			} else if p.head >= 1024 && 2*p.head >= len(p.queue) {
				// A queue that never empties would otherwise grow forever.
				n := copy(p.queue, p.queue[p.head:])
				clear(p.queue[n:])
				p.queue, p.head = p.queue[:n], 0
			}
			p.mu.Unlock()
			t.f(t.ctx)
			p.mu.Lock()
			continue
		}
		p.active--
		if p.idle >= p.max {
			p.mu.Unlock()
			return
		}
		p.idle++
		p.cond.Wait() // whoever signals has moved us from idle to active
	}
}

// Blocking marks the start of a wait in a pool task: the worker's place
// goes to a queued task until the returned function, called when the
// wait is over, takes it back (the pool may then run one worker over its
// limit until a task ends). Outside a pool task it does nothing.
func Blocking(ctx context.Context) (done func()) {
	tok, _ := ctx.Value(tokenKey{}).(*token)
	if tok == nil {
		return func() {}
	}
	if tok.depth.Add(1) > 1 {
		return func() { tok.depth.Add(-1) }
	}
	p := tok.p
	p.mu.Lock()
	p.active--
	p.startLocked()
	p.mu.Unlock()
	return func() {
		if tok.depth.Add(-1) == 0 {
			p.mu.Lock()
			p.active++
			p.mu.Unlock()
		}
	}
}

// Stats is what a pool holds now.
type Stats struct {
	Queued, Active, Idle int
	Spawned              int64
}

// Stats returns the pool's counts.
func (p *Pool) Stats() Stats {
	p.mu.Lock()
	defer p.mu.Unlock()
	return Stats{Queued: len(p.queue) - p.head, Active: p.active, Idle: p.idle, Spawned: p.spawned.Load()}
}
