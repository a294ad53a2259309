// Package workpool runs requests on a bounded set of long-lived
// goroutines, each client's in the order they arrive and the clients in
// turn.
//
// A goroutine per request let a burst of 20,000 requests run 20,000
// goroutines at once: each grew its stack by copying to the depth a
// request needs (a seventh of a busy server's CPU), and the scheduler
// favoured new requests over old ones, so a few waited seconds. The pool
// keeps at most max workers running and queues the rest: each client's
// in order, the clients served in turn. A worker about to wait (on the daemon, a throttle delay, a
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

	mu      sync.Mutex
	cond    sync.Cond
	ready   []*Queue // queues holding tasks, served in turn
	head    int
	pending int // tasks queued
	active  int // workers running or handed a task, outside Blocking
	idle    int // workers parked, waiting for a task

	spawned atomic.Int64 // goroutines started, for tests and metrics
}

// Queue is one client's line of tasks: its tasks run in the order given,
// and the pool serves the queues in turn, one task each, so a client's
// burst of requests delays another's single request by at most one of
// them. Its fields belong to the pool.
type Queue struct {
	tasks []task
	ready bool // in the pool's ready list
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

// Go queues f on q (a queue of its own when q is nil) to run on a worker
// with ctx, marked so that Blocking(ctx) frees the worker's place. It
// never blocks.
func (p *Pool) Go(q *Queue, ctx context.Context, f func(context.Context)) {
	if q == nil {
		q = new(Queue)
	}
	ctx = context.WithValue(ctx, tokenKey{}, &token{p: p})
	p.mu.Lock()
	q.tasks = append(q.tasks, task{ctx, f})
	p.pending++
	if !q.ready {
		q.ready = true
		p.ready = append(p.ready, q)
	}
	p.startLocked()
	p.mu.Unlock()
}

// nextLocked takes the task at the head of the queue whose turn it is.
func (p *Pool) nextLocked() task {
	q := p.ready[p.head]
	p.ready[p.head] = nil
	p.head++
	t := q.tasks[0]
	q.tasks[0] = task{}
	q.tasks = q.tasks[1:]
	p.pending--
	if len(q.tasks) > 0 {
		p.ready = append(p.ready, q) // its next task waits for the others' turns
	} else {
		q.tasks, q.ready = nil, false // an idle client holds no slice
	}
	if p.head == len(p.ready) {
		p.ready, p.head = p.ready[:0], 0
	} else if p.head >= 1024 && 2*p.head >= len(p.ready) {
		// A list that never empties would otherwise grow forever.
		n := copy(p.ready, p.ready[p.head:])
		clear(p.ready[n:])
		p.ready, p.head = p.ready[:n], 0
	}
	return t
}

// startLocked gives the queue one more running worker if the limit
// allows: a parked one, else a new one.
func (p *Pool) startLocked() {
	if p.pending == 0 || p.active >= p.max {
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
		if p.pending > 0 && p.active <= p.max {
			t := p.nextLocked()
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
	return Stats{Queued: p.pending, Active: p.active, Idle: p.idle, Spawned: p.spawned.Load()}
}
