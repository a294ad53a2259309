package session

import (
	"encoding/hex"
	"fmt"
	"log/slog"
	"maps"
	"reflect"
	"sync"
	"sync/atomic"

	"github.com/btcsuite/btcd/wire/v2"

	"amber/internal/chain"
	"amber/server/query"
	"amber/server/rpc"
)

// Notifier sends one notification to a client.
type Notifier func(method string, params any)

// scriptSub is one script subscription of a session.
type scriptSub struct {
	method  string // blockchain.scripthash.subscribe or blockchain.scriptpubkey.subscribe
	echo    string // the scripthash to put in notifications
	status  string
	has     bool // status is not null
	mempool bool // the status involves mempool transactions
}

// outpointSub is one 1.7 outpoint subscription.
type outpointSub struct {
	status  map[string]any
	mempool bool
}

// Subs holds one session's subscriptions and sends its notifications.
type Subs struct {
	mu        sync.Mutex
	headers   bool
	scripts   map[chain.HashX]*scriptSub
	outpoints map[wire.OutPoint]*outpointSub
	notify    Notifier
	max       int         // most script plus outpoint subscriptions; 0 means no cap
	global    *SubCounter // subscriptions over all sessions, or nil
	onCount   func(int)   // told the new count after each change, or nil
}

// SubCounter caps the subscriptions of all sessions together (MAX_SUBS).
type SubCounter struct {
	Max int64
	n   atomic.Int64
}

// Count is the number of subscriptions held over all sessions.
func (c *SubCounter) Count() int64 { return c.n.Load() }

// NewSubs returns an empty subscription set sending through notify.
func NewSubs(notify Notifier, max int) *Subs {
	return &Subs{scripts: map[chain.HashX]*scriptSub{}, outpoints: map[wire.OutPoint]*outpointSub{}, notify: notify, max: max}
}

// Count is the number of script and outpoint subscriptions.
func (s *Subs) Count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.scripts) + len(s.outpoints)
}

// admit checks the caps before a new subscription is added and counts
// it; s.mu is held.
func (s *Subs) admit() error {
	if s.max > 0 && len(s.scripts)+len(s.outpoints) >= s.max {
		return &rpc.Error{Code: rpc.CodeExcessiveUsage, Message: fmt.Sprintf("excessive resource usage: over %d subscriptions in one session", s.max)}
	}
	if s.global != nil {
		if s.global.Max > 0 && s.global.n.Load() >= s.global.Max {
			return &rpc.Error{Code: rpc.CodeExcessiveUsage, Message: fmt.Sprintf("excessive resource usage: server subscription limit %d reached", s.global.Max)}
		}
		s.global.n.Add(1)
	}
	return nil
}

// counted reports a change in the count; s.mu is held.
func (s *Subs) counted(removed int) {
	if s.global != nil && removed > 0 {
		s.global.n.Add(-int64(removed))
	}
	if s.onCount != nil {
		s.onCount(len(s.scripts) + len(s.outpoints))
	}
}

// Release drops every subscription of an ending session from the global
// count.
func (s *Subs) Release() {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := len(s.scripts) + len(s.outpoints)
	s.scripts, s.outpoints = map[chain.HashX]*scriptSub{}, map[wire.OutPoint]*outpointSub{}
	s.headers = false
	s.counted(n)
}

// SubscribeHeaders records a headers subscription.
func (s *Subs) SubscribeHeaders() {
	s.mu.Lock()
	s.headers = true
	s.mu.Unlock()
}

// SubscribeScript computes the script's status and records the
// subscription (only when the status could be computed, spec §4.19).
func (s *Subs) SubscribeScript(b *query.Backend, hx chain.HashX, method, echo string) (any, error) {
	status, ok, mp, err := b.ScriptStatus(hx)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, have := s.scripts[hx]; !have {
		if err := s.admit(); err != nil {
			return nil, err
		}
	}
	s.scripts[hx] = &scriptSub{method: method, echo: echo, status: status, has: ok, mempool: mp}
	s.counted(0)
	return statusValue(status, ok), nil
}

// UnsubscribeScript drops a script subscription, reporting whether it
// existed.
func (s *Subs) UnsubscribeScript(hx chain.HashX) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.scripts[hx]
	if ok {
		delete(s.scripts, hx)
		s.counted(1)
	}
	return ok
}

// SubscribeOutpoint computes the outpoint's status and records it.
func (s *Subs) SubscribeOutpoint(b *query.Backend, op wire.OutPoint) (any, error) {
	st, mp, err := b.OutpointStatus(op)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, have := s.outpoints[op]; !have {
		if err := s.admit(); err != nil {
			return nil, err
		}
	}
	s.outpoints[op] = &outpointSub{status: st, mempool: mp}
	s.counted(0)
	return st, nil
}

// UnsubscribeOutpoint drops an outpoint subscription.
func (s *Subs) UnsubscribeOutpoint(op wire.OutPoint) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.outpoints[op]
	if ok {
		delete(s.outpoints, op)
		s.counted(1)
	}
	return ok
}

func statusValue(status string, ok bool) any {
	if !ok {
		return nil
	}
	return status
}

// Change is what happened since the last notification round: a new tip
// (Header non-nil) and the scripts and outpoints that blocks or the
// mempool touched.
type Change struct {
	Header    *HeaderNotice
	Scripts   map[chain.HashX]struct{}
	Outpoints map[wire.OutPoint]struct{}

	memo *statusMemo // shared by the sessions of one round
}

// statusMemo computes each script's status once per notification round,
// however many sessions subscribe to it.
type statusMemo struct {
	mu sync.Mutex
	m  map[chain.HashX]*memoEntry
}

type memoEntry struct {
	once   sync.Once
	status string
	ok, mp bool
	err    error
}

func (m *statusMemo) status(b *query.Backend, hx chain.HashX) (string, bool, bool, error) {
	if m == nil {
		return b.ScriptStatus(hx)
	}
	m.mu.Lock()
	e, ok := m.m[hx]
	if !ok {
		e = &memoEntry{}
		m.m[hx] = e
	}
	m.mu.Unlock()
	e.once.Do(func() { e.status, e.ok, e.mp, e.err = b.ScriptStatus(hx) })
	return e.status, e.ok, e.mp, e.err
}

// HeaderNotice is the payload of a headers notification: exactly the two
// keys Electrum expects.
type HeaderNotice struct {
	Hex    string `json:"hex"`
	Height int32  `json:"height"`
}

// NewHeaderNotice builds the notice for a raw header at height.
func NewHeaderNotice(raw []byte, height int32) *HeaderNotice {
	return &HeaderNotice{Hex: hex.EncodeToString(raw), Height: height}
}

// Apply sends the notifications this change calls for (spec §5.10):
// the new tip to headers subscribers, then every subscribed script whose
// status changed, then outpoints. Scripts not touched are recomputed only
// when their status involved the mempool (a parent confirming turns -1
// into 0 without touching the child's script). A script whose status can
// no longer be computed (history too large) is dropped with a null
// status.
func (s *Subs) Apply(b *query.Backend, c Change, log *slog.Logger) {
	s.mu.Lock()
	headers := s.headers
	scripts := maps.Clone(s.scripts)
	outpoints := maps.Clone(s.outpoints)
	s.mu.Unlock()

	if c.Header != nil && headers {
		s.notify("blockchain.headers.subscribe", []any{c.Header})
	}
	anything := c.Header != nil || len(c.Scripts) > 0 || len(c.Outpoints) > 0
	for hx, sub := range scripts {
		_, touched := c.Scripts[hx]
		if !touched && !(sub.mempool && anything) {
			continue
		}
		status, ok, mp, err := c.memo.status(b, hx)
		if err != nil {
			log.Debug("dropping subscription", "scripthash", sub.echo, "err", err)
			s.mu.Lock()
			if _, still := s.scripts[hx]; still {
				delete(s.scripts, hx)
				s.counted(1)
			}
			s.mu.Unlock()
			s.notify(sub.method, []any{sub.echo, nil})
			continue
		}
		if status == sub.status && ok == sub.has {
			continue
		}
		s.mu.Lock()
		if cur, still := s.scripts[hx]; still {
			cur.status, cur.has, cur.mempool = status, ok, mp
		}
		s.mu.Unlock()
		s.notify(sub.method, []any{sub.echo, statusValue(status, ok)})
	}
	for op, sub := range outpoints {
		_, touched := c.Outpoints[op]
		if !touched && !(sub.mempool && anything) {
			continue
		}
		st, mp, err := b.OutpointStatus(op)
		if err != nil || reflect.DeepEqual(st, sub.status) {
			continue
		}
		s.mu.Lock()
		if cur, still := s.outpoints[op]; still {
			cur.status, cur.mempool = st, mp
		}
		s.mu.Unlock()
		s.notify("blockchain.outpoint.subscribe", []any{op.Hash.String(), op.Index, st})
	}
}

// Hub holds every live session's subscriptions so a change reaches them.
type Hub struct {
	mu   sync.Mutex
	subs map[*Subs]struct{}
}

// NewHub returns an empty Hub.
func NewHub() *Hub { return &Hub{subs: map[*Subs]struct{}{}} }

// Add registers a session's subscriptions; the returned func removes them.
func (h *Hub) Add(s *Subs) func() {
	h.mu.Lock()
	h.subs[s] = struct{}{}
	h.mu.Unlock()
	return func() {
		h.mu.Lock()
		delete(h.subs, s)
		h.mu.Unlock()
	}
}

// Len is the number of registered sessions.
func (h *Hub) Len() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.subs)
}

// Broadcast applies a change to every session, several at a time.
func (h *Hub) Broadcast(b *query.Backend, c Change, log *slog.Logger) {
	c.memo = &statusMemo{m: map[chain.HashX]*memoEntry{}}
	h.mu.Lock()
	all := make([]*Subs, 0, len(h.subs))
	for s := range h.subs {
		all = append(all, s)
	}
	h.mu.Unlock()
	var wg sync.WaitGroup
	sem := make(chan struct{}, 16)
	for _, s := range all {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			s.Apply(b, c, log)
		}()
	}
	wg.Wait()
}
