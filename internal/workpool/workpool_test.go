package workpool

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// held is a one-worker pool whose worker is busy until release, and the
// order in which the tasks queued meanwhile ran.
type held struct {
	p     *Pool
	gate  chan struct{}
	wg    sync.WaitGroup
	mu    sync.Mutex
	order []string
}

func newHeld() *held {
	h := &held{p: New(1), gate: make(chan struct{})}
	started := make(chan struct{})
	h.wg.Add(1)
	h.p.Go(nil, context.Background(), func(context.Context) { close(started); <-h.gate; h.wg.Done() })
	<-started
	return h
}

// run queues a task on q (its own queue when nil) that records name.
func (h *held) run(q *Queue, name string) {
	h.wg.Add(1)
	h.p.Go(q, context.Background(), func(context.Context) {
		h.mu.Lock()
		h.order = append(h.order, name)
		h.mu.Unlock()
		h.wg.Done()
	})
}

func (h *held) release() string {
	close(h.gate)
	h.wg.Wait()
	return strings.Join(h.order, " ")
}

// Tasks beyond the limit wait, and run in the order they came.
func TestFIFOWithinLimit(t *testing.T) {
	h := newHeld()
	var want []string
	for i := range 100 {
		h.run(nil, fmt.Sprint(i))
		want = append(want, fmt.Sprint(i))
	}
	if s := h.p.Stats(); s.Queued != 100 || s.Active != 1 {
		t.Fatalf("with the only worker held: %+v, want 100 queued and 1 active", s)
	}
	if got := h.release(); got != strings.Join(want, " ") {
		t.Fatalf("ran %s", got)
	}
}

// No more than max tasks run at once outside Blocking.
func TestLimit(t *testing.T) {
	const max = 3
	p := New(max)
	var running, peak atomic.Int32
	var wg sync.WaitGroup
	for range 200 {
		wg.Add(1)
		p.Go(nil, context.Background(), func(context.Context) {
			defer wg.Done()
			n := running.Add(1)
			for {
				m := peak.Load()
				if n <= m || peak.CompareAndSwap(m, n) {
					break
				}
			}
			time.Sleep(100 * time.Microsecond)
			running.Add(-1)
		})
	}
	wg.Wait()
	if peak.Load() > max {
		t.Fatalf("%d tasks ran at once, limit %d", peak.Load(), max)
	}
	if peak.Load() < 2 {
		t.Fatalf("at most %d task ran at once, limit %d", peak.Load(), max)
	}
	// A worker parks just after its last task's Done.
	s := settled(p)
	if s.Active != 0 || s.Queued != 0 || s.Idle > max {
		t.Fatalf("after the last task: %+v", s)
	}
}

// A task waiting inside Blocking lets queued tasks run: a request waiting
// on the daemon does not hold up those the index answers.
func TestBlockingFreesTheWorker(t *testing.T) {
	p := New(1)
	release := make(chan struct{})
	waiting := make(chan struct{})
	var blockedDone sync.WaitGroup
	blockedDone.Add(2)
	for range 2 {
		p.Go(nil, context.Background(), func(ctx context.Context) {
			defer blockedDone.Done()
			done := Blocking(ctx)
			inner := Blocking(ctx) // nested: one place given up, taken back once
			waiting <- struct{}{}
			<-release
			inner()
			done()
		})
	}
	for range 2 {
		select {
		case <-waiting:
		case <-time.After(10 * time.Second):
			t.Fatal("the second task did not start while the first waited in Blocking")
		}
	}
	ran := make(chan struct{})
	p.Go(nil, context.Background(), func(context.Context) { close(ran) })
	select {
	case <-ran:
	case <-time.After(10 * time.Second):
		t.Fatal("a queued task did not run while the others waited in Blocking")
	}
	close(release)
	blockedDone.Wait()
	if s := settled(p); s.Active != 0 || s.Queued != 0 {
		t.Fatalf("after the blocked tasks ended: %+v", s)
	}
	// Outside a pool task Blocking does nothing.
	Blocking(context.Background())()
	if s := p.Stats(); s.Active != 0 {
		t.Fatalf("Blocking outside a task changed the pool: %+v", s)
	}
}

// Idle workers are kept for later tasks rather than started anew.
func TestWorkersAreReused(t *testing.T) {
	p := New(4)
	for range 50 {
		var wg sync.WaitGroup
		for range 4 {
			wg.Add(1)
			p.Go(nil, context.Background(), func(context.Context) { wg.Done() })
		}
		wg.Wait()
	}
	if n := p.Stats().Spawned; n > 4 {
		t.Fatalf("%d workers started for 200 tasks, at most 4 run at once", n)
	}
}

// Clients are served in turn: a single request queued after another
// client's burst runs after one of the burst, not after all of it.
func TestClientsInTurn(t *testing.T) {
	h := newHeld()
	run := h.run
	var burst, single, other Queue
	for i := range 5 {
		run(&burst, fmt.Sprint("burst", i))
	}
	run(&single, "single")
	run(&other, "other0")
	run(&other, "other1")
	want := "burst0 single other0 burst1 other1 burst2 burst3 burst4"
	if got := h.release(); got != want {
		t.Fatalf("ran %s, want %s", got, want)
	}
	if burst.tasks != nil || burst.ready {
		t.Fatalf("an emptied queue still holds %d tasks (ready %v)", len(burst.tasks), burst.ready)
	}
}

// settled waits up to 10 s for the pool's workers to park.
func settled(p *Pool) Stats {
	deadline := time.Now().Add(10 * time.Second)
	for {
		s := p.Stats()
		if s.Active == 0 || time.Now().After(deadline) {
			return s
		}
		time.Sleep(time.Millisecond)
	}
}
