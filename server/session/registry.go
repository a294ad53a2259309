package session

import (
	"errors"
	"net/netip"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"amber/server/cost"
	"amber/server/transport"
)

// Stats are one session's counters, read by the admin RPC while the
// session runs.
type Stats struct {
	ID        uint64
	Transport string
	Remote    netip.AddrPort
	Start     time.Time

	c     transport.Conn
	meter *cost.Meter

	mu     sync.Mutex
	client string
	proto  string

	requests, errors, txsSent atomic.Int64
	recvCount, recvBytes      atomic.Int64
	sendCount, sendBytes      atomic.Int64
	subs                      atomic.Int64
	throttled                 atomic.Bool
}

func newStats(c transport.Conn, proto string) *Stats {
	return &Stats{Transport: proto, Remote: c.RemoteAddr(), Start: time.Now(), c: c}
}

func (s *Stats) received(n int) { s.recvCount.Add(1); s.recvBytes.Add(int64(n)) }
func (s *Stats) sent(n int)     { s.sendCount.Add(1); s.sendBytes.Add(int64(n)) }

func (s *Stats) setClient(name string) { s.mu.Lock(); s.client = name; s.mu.Unlock() }
func (s *Stats) setProto(p string)     { s.mu.Lock(); s.proto = p; s.mu.Unlock() }

// SessionInfo is one row of `amber rpc sessions`.
type SessionInfo struct {
	ID        uint64  `json:"id"`
	Transport string  `json:"transport"`
	Remote    string  `json:"remote"`
	Group     string  `json:"group,omitempty"`
	Client    string  `json:"client"`
	Protocol  string  `json:"protocol"`
	Cost      float64 `json:"cost"`
	ExtraCost float64 `json:"extra_cost"`
	Throttled bool    `json:"throttled"`
	Requests  int64   `json:"requests"`
	Errors    int64   `json:"errors"`
	TxsSent   int64   `json:"txs_sent"`
	Subs      int64   `json:"subs"`
	RecvCount int64   `json:"recv_count"`
	RecvBytes int64   `json:"recv_bytes"`
	SendCount int64   `json:"send_count"`
	SendBytes int64   `json:"send_bytes"`
	Seconds   float64 `json:"seconds"`
}

// Info is a snapshot of the session's counters.
func (s *Stats) Info() SessionInfo {
	s.mu.Lock()
	client, proto := s.client, s.proto
	s.mu.Unlock()
	in := SessionInfo{
		ID: s.ID, Transport: s.Transport, Remote: s.Remote.String(), Client: client, Protocol: proto,
		Throttled: s.throttled.Load(), Requests: s.requests.Load(), Errors: s.errors.Load(), TxsSent: s.txsSent.Load(),
		Subs: s.subs.Load(), RecvCount: s.recvCount.Load(), RecvBytes: s.recvBytes.Load(),
		SendCount: s.sendCount.Load(), SendBytes: s.sendBytes.Load(),
		Seconds: float64(time.Since(s.Start).Milliseconds()) / 1000,
	}
	if s.meter != nil {
		in.Group = s.meter.Group()
		in.Cost = round2(s.meter.Cost())
		in.ExtraCost = round2(s.meter.ExtraCost())
	}
	return in
}

// Registry is the table of live sessions.
type Registry struct {
	mu   sync.Mutex
	next uint64
	m    map[uint64]*Stats
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry { return &Registry{m: map[uint64]*Stats{}} }

func (r *Registry) add(s *Stats) (remove func()) {
	r.mu.Lock()
	r.next++
	s.ID = r.next
	r.m[s.ID] = s
	r.mu.Unlock()
	return func() {
		r.mu.Lock()
		delete(r.m, s.ID)
		r.mu.Unlock()
	}
}

// List returns every live session, oldest first.
func (r *Registry) List() []SessionInfo {
	r.mu.Lock()
	all := make([]*Stats, 0, len(r.m))
	for _, s := range r.m {
		all = append(all, s)
	}
	r.mu.Unlock()
	out := make([]SessionInfo, len(all))
	for i, s := range all {
		out[i] = s.Info()
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// Len is the number of live sessions.
func (r *Registry) Len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.m)
}

// Disconnect closes the sessions that targets name: session ids, cost
// group names, client addresses or "all". It returns one line per
// target.
func (r *Registry) Disconnect(targets []string) []string {
	r.mu.Lock()
	all := make([]*Stats, 0, len(r.m))
	for _, s := range r.m {
		all = append(all, s)
	}
	r.mu.Unlock()
	sort.Slice(all, func(i, j int) bool { return all[i].ID < all[j].ID })
	var lines []string
	for _, t := range targets {
		n := 0
		for _, s := range all {
			if t == "all" || strconv.FormatUint(s.ID, 10) == t || s.Remote.Addr().String() == t ||
				(s.meter != nil && s.meter.Group() == t) {
				_ = s.c.CloseWith(transport.ClosePolicyViolation, "disconnected by the operator")
				lines = append(lines, "disconnecting session "+strconv.FormatUint(s.ID, 10)+" ("+s.Remote.String()+")")
				n++
			}
		}
		if n == 0 {
			lines = append(lines, "unknown: "+t)
		}
	}
	return lines
}

// DisconnectBanned closes the live sessions from a banned prefix.
func (r *Registry) DisconnectBanned(p netip.Prefix) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, s := range r.m {
		if p.Contains(s.Remote.Addr().Unmap()) {
			_ = s.c.CloseWith(transport.ClosePolicyViolation, "banned")
			n++
		}
	}
	return n
}

// outbox is a session's queue of outgoing messages for its writer:
// notifications, bounded in bytes, and the places of replies that carry
// a subscription's state. A reply's place is reserved when the state is
// fixed, under the subscriptions' lock, so a notification of a later
// state always goes out after it (spec §5.10: never an older state after
// a newer one).
type outbox struct {
	mu     sync.Mutex
	cond   *sync.Cond
	msgs   []outItem
	bytes  int
	limit  int
	closed bool
}

type outItem struct {
	msg  []byte
	slot *replySlot // nil for a notification
}

// replySlot is a reply's place in the queue; its request fills it.
type replySlot struct {
	ready bool
	msg   []byte     // nil: the request had no reply
	done  chan error // the write's result, sent once
}

var errOutboxClosed = errors.New("session: closed")

func newOutbox(limit int) *outbox {
	o := &outbox{limit: limit}
	o.cond = sync.NewCond(&o.mu)
	return o
}

// push queues a notification; false means the queue is over its limit
// (the client is not reading) and msg was dropped.
func (o *outbox) push(msg []byte) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closed {
		return true
	}
	if o.bytes+len(msg) > o.limit && len(o.msgs) > 0 {
		return false
	}
	o.msgs = append(o.msgs, outItem{msg: msg})
	o.bytes += len(msg)
	o.cond.Signal()
	return true
}

// reserve queues the place of a reply still being computed; messages
// pushed later wait behind it until fill.
func (o *outbox) reserve() *replySlot {
	s := &replySlot{done: make(chan error, 1)}
	o.mu.Lock()
	o.msgs = append(o.msgs, outItem{slot: s})
	o.mu.Unlock()
	return s
}

// fill puts the reply in its place (nil: nothing to send); its write's
// result then comes on s.done.
func (o *outbox) fill(s *replySlot, msg []byte) {
	o.mu.Lock()
	defer o.mu.Unlock()
	s.ready, s.msg = true, msg
	if o.closed {
		s.done <- errOutboxClosed
		return
	}
	o.bytes += len(msg)
	o.cond.Signal()
}

// pop waits for the next message to write and returns it with its slot
// (nil for a notification), whose done the writer reports to; false once
// closed.
func (o *outbox) pop() ([]byte, *replySlot, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for {
		for !o.closed && (len(o.msgs) == 0 || (o.msgs[0].slot != nil && !o.msgs[0].slot.ready)) {
			o.cond.Wait()
		}
		if o.closed {
			return nil, nil, false
		}
		it := o.msgs[0]
		o.msgs[0] = outItem{}
		o.msgs = o.msgs[1:]
		if it.slot != nil {
			it.msg = it.slot.msg
			if it.msg == nil {
				it.slot.done <- nil
				continue
			}
		}
		o.bytes -= len(it.msg)
		return it.msg, it.slot, true
	}
}

func (o *outbox) close() {
	o.mu.Lock()
	o.closed = true
	for _, it := range o.msgs {
		if it.slot != nil && it.slot.ready {
			it.slot.done <- errOutboxClosed
		}
	}
	o.msgs = nil
	o.cond.Broadcast()
	o.mu.Unlock()
}
