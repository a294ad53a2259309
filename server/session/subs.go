package session

import (
	"context"
	"encoding/hex"
	"fmt"
	"log/slog"
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
// The state a subscription reports (its reply, then each notification)
// is fixed under mu, and a reply's place among the notifications is
// reserved there too (order), so a client never sees an older state
// after a newer one, even with its requests running concurrently.
type Subs struct {
	mu        sync.Mutex
	headers   bool
	scripts   map[chain.HashX]*scriptSub
	outpoints map[wire.OutPoint]*outpointSub
	// mpScripts and mpOutpoints are the subscriptions whose status
	// involves the mempool: recomputed on every change, touched or not.
	mpScripts   map[chain.HashX]struct{}
	mpOutpoints map[wire.OutPoint]struct{}
	notify      Notifier
	max         int                       // most script plus outpoint subscriptions; 0 means no cap
	global      *SubCounter               // subscriptions over all sessions, or nil
	onCount     func(int)                 // told the new count after each change, or nil
	order       func(ctx context.Context) // reserves the reply's place before later notifications, or nil
	hub         atomic.Pointer[Hub]       // indexes these subscriptions while registered
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

// ordered reserves the place of the reply of the request in ctx; s.mu
// is held, so notifications of later states queue behind it.
func (s *Subs) ordered(ctx context.Context) {
	if s.order != nil {
		s.order(ctx)
	}
}

// round is the number of notification rounds begun so far.
func (s *Subs) round() uint64 {
	if h := s.hub.Load(); h != nil {
		return h.rounds.Load()
	}
	return 0
}

// stateTries bounds how often a subscription's state is recomputed
// because a notification round began while computing it.
const stateTries = 3

// setScript records a script subscription and indexes it; s.mu is held.
func (s *Subs) setScript(hx chain.HashX, sub *scriptSub) {
	_, had := s.scripts[hx]
	s.scripts[hx] = sub
	if !had {
		if h := s.hub.Load(); h != nil {
			h.indexScript(s, hx, true)
		}
	}
	s.markScript(hx, sub.mempool)
}

func (s *Subs) markScript(hx chain.HashX, mempool bool) {
	markIn(&s.mpScripts, hx, mempool)
	s.mempoolChanged()
}

// markIn adds k to *set, made on first use, or removes it.
func markIn[K comparable](set *map[K]struct{}, k K, in bool) {
	if !in {
		delete(*set, k)
		return
	}
	if *set == nil {
		*set = map[K]struct{}{}
	}
	(*set)[k] = struct{}{}
}

// dropScript removes a script subscription; s.mu is held.
func (s *Subs) dropScript(hx chain.HashX) bool {
	if _, ok := s.scripts[hx]; !ok {
		return false
	}
	delete(s.scripts, hx)
	delete(s.mpScripts, hx)
	if h := s.hub.Load(); h != nil {
		h.indexScript(s, hx, false)
	}
	s.mempoolChanged()
	s.counted(1)
	return true
}

func (s *Subs) setOutpoint(op wire.OutPoint, sub *outpointSub) {
	_, had := s.outpoints[op]
	s.outpoints[op] = sub
	if !had {
		if h := s.hub.Load(); h != nil {
			h.indexOutpoint(s, op, true)
		}
	}
	s.markOutpoint(op, sub.mempool)
}

func (s *Subs) markOutpoint(op wire.OutPoint, mempool bool) {
	markIn(&s.mpOutpoints, op, mempool)
	s.mempoolChanged()
}

// mempoolChanged tells the hub whether any subscription of the session
// involves the mempool; s.mu is held.
func (s *Subs) mempoolChanged() {
	if h := s.hub.Load(); h != nil {
		h.setMember(h.mempool, s, len(s.mpScripts)+len(s.mpOutpoints) > 0)
	}
}

// Release drops every subscription of an ending session from the global
// count and the hub's index.
func (s *Subs) Release() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if h := s.hub.Swap(nil); h != nil {
		h.unindex(s)
	}
	n := len(s.scripts) + len(s.outpoints)
	s.scripts, s.outpoints = map[chain.HashX]*scriptSub{}, map[wire.OutPoint]*outpointSub{}
	s.mpScripts, s.mpOutpoints = nil, nil
	s.headers = false
	s.counted(n)
}

// SubscribeHeaders records a headers subscription; tip, called under the
// subscriptions' lock, is the reply: the current tip, which no headers
// notification sent before it can be newer than.
func (s *Subs) SubscribeHeaders(ctx context.Context, tip func() (any, error)) (any, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, err := tip()
	if err != nil {
		return nil, err
	}
	s.headers = true
	if h := s.hub.Load(); h != nil {
		h.setMember(h.headers, s, true)
	}
	s.ordered(ctx)
	return v, nil
}

// SubscribeScript computes the script's status and records the
// subscription (only when the status could be computed, spec §4.19). A
// status computed while a notification round began is computed again,
// so the round cannot have missed it.
func (s *Subs) SubscribeScript(ctx context.Context, b *query.Backend, hx chain.HashX, method, echo string) (any, error) {
	for try := 1; ; try++ {
		round := s.round()
		status, ok, mp, err := b.ScriptStatus(hx)
		if err != nil {
			return nil, err
		}
		s.mu.Lock()
		if s.round() != round && try < stateTries {
			s.mu.Unlock()
			continue
		}
		if _, have := s.scripts[hx]; !have {
			if err := s.admit(); err != nil {
				s.mu.Unlock()
				return nil, err
			}
		}
		s.setScript(hx, &scriptSub{method: method, echo: echo, status: status, has: ok, mempool: mp})
		s.counted(0)
		s.ordered(ctx)
		s.mu.Unlock()
		return statusValue(status, ok), nil
	}
}

// UnsubscribeScript drops a script subscription, reporting whether it
// existed.
func (s *Subs) UnsubscribeScript(hx chain.HashX) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.dropScript(hx)
}

// SubscribeOutpoint computes the outpoint's status and records it.
func (s *Subs) SubscribeOutpoint(ctx context.Context, b *query.Backend, op wire.OutPoint) (any, error) {
	for try := 1; ; try++ {
		round := s.round()
		st, mp, err := b.OutpointStatus(op)
		if err != nil {
			return nil, err
		}
		s.mu.Lock()
		if s.round() != round && try < stateTries {
			s.mu.Unlock()
			continue
		}
		if _, have := s.outpoints[op]; !have {
			if err := s.admit(); err != nil {
				s.mu.Unlock()
				return nil, err
			}
		}
		s.setOutpoint(op, &outpointSub{status: st, mempool: mp})
		s.counted(0)
		s.ordered(ctx)
		s.mu.Unlock()
		return st, nil
	}
}

// UnsubscribeOutpoint drops an outpoint subscription.
func (s *Subs) UnsubscribeOutpoint(op wire.OutPoint) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.outpoints[op]; !ok {
		return false
	}
	delete(s.outpoints, op)
	delete(s.mpOutpoints, op)
	if h := s.hub.Load(); h != nil {
		h.indexOutpoint(s, op, false)
	}
	s.mempoolChanged()
	s.counted(1)
	return true
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

// touched is what a change touched of one session's subscriptions.
type touched struct {
	scripts   []chain.HashX
	outpoints []wire.OutPoint
}

// apply sends the notifications a change calls for (spec §5.10): the new
// tip to a headers subscriber, then every subscribed script whose status
// changed, then outpoints. t lists the session's subscriptions the change
// touched; those whose status involved the mempool are recomputed too
// (a parent confirming turns -1 into 0 without touching the child's
// script). A script whose status can no longer be computed (history too
// large) is dropped with a null status. States are compared and
// notifications queued under s.mu, in the order the states were fixed.
func (s *Subs) apply(b *query.Backend, c *Change, t touched, log *slog.Logger) {
	anything := c.Header != nil || len(c.Scripts) > 0 || len(c.Outpoints) > 0
	s.mu.Lock()
	if c.Header != nil && s.headers {
		s.notify("blockchain.headers.subscribe", []any{c.Header})
	}
	scripts := t.scripts
	outpoints := t.outpoints
	if anything {
		for hx := range s.mpScripts {
			if _, in := c.Scripts[hx]; !in {
				scripts = append(scripts, hx)
			}
		}
		for op := range s.mpOutpoints {
			if _, in := c.Outpoints[op]; !in {
				outpoints = append(outpoints, op)
			}
		}
	}
	s.mu.Unlock()

	for _, hx := range scripts {
		status, ok, mp, err := c.memo.status(b, hx)
		s.mu.Lock()
		cur, still := s.scripts[hx]
		switch {
		case !still:
		case err != nil:
			log.Debug("dropping subscription", "scripthash", cur.echo, "err", err)
			s.dropScript(hx)
			s.notify(cur.method, []any{cur.echo, nil})
		case status != cur.status || ok != cur.has:
			cur.status, cur.has = status, ok
			if cur.mempool != mp {
				cur.mempool = mp
				s.markScript(hx, mp)
			}
			s.notify(cur.method, []any{cur.echo, statusValue(status, ok)})
		case cur.mempool != mp:
			cur.mempool = mp
			s.markScript(hx, mp)
		}
		s.mu.Unlock()
	}
	for _, op := range outpoints {
		st, mp, err := b.OutpointStatus(op)
		if err != nil {
			continue
		}
		s.mu.Lock()
		if cur, still := s.outpoints[op]; still && !reflect.DeepEqual(st, cur.status) {
			cur.status = st
			if cur.mempool != mp {
				cur.mempool = mp
				s.markOutpoint(op, mp)
			}
			s.notify("blockchain.outpoint.subscribe", []any{op.Hash.String(), op.Index, st})
		}
		s.mu.Unlock()
	}
}

// Hub holds every live session's subscriptions, indexed by script and
// outpoint, so a change reaches the sessions it concerns without
// visiting the others.
type Hub struct {
	mu        sync.Mutex
	subs      map[*Subs]struct{}
	headers   map[*Subs]struct{} // sessions subscribed to headers
	mempool   map[*Subs]struct{} // sessions with a status involving the mempool
	scripts   map[chain.HashX][]*Subs
	outpoints map[wire.OutPoint][]*Subs
	rounds    atomic.Uint64 // notification rounds begun
}

// NewHub returns an empty Hub.
func NewHub() *Hub {
	return &Hub{subs: map[*Subs]struct{}{}, headers: map[*Subs]struct{}{}, mempool: map[*Subs]struct{}{},
		scripts: map[chain.HashX][]*Subs{}, outpoints: map[wire.OutPoint][]*Subs{}}
}

// Add registers a session's subscriptions; the returned func removes them.
func (h *Hub) Add(s *Subs) func() {
	s.mu.Lock()
	h.mu.Lock()
	h.subs[s] = struct{}{}
	h.mu.Unlock()
	s.hub.Store(h)
	for hx := range s.scripts {
		h.indexScript(s, hx, true)
	}
	for op := range s.outpoints {
		h.indexOutpoint(s, op, true)
	}
	h.setMember(h.headers, s, s.headers)
	h.setMember(h.mempool, s, len(s.mpScripts)+len(s.mpOutpoints) > 0)
	s.mu.Unlock()
	return func() {
		s.mu.Lock()
		if s.hub.CompareAndSwap(h, nil) {
			h.unindex(s)
		}
		s.mu.Unlock()
		h.mu.Lock()
		delete(h.subs, s)
		h.mu.Unlock()
	}
}

// unindex removes every entry of s; s.mu is held.
func (h *Hub) unindex(s *Subs) {
	for hx := range s.scripts {
		h.indexScript(s, hx, false)
	}
	for op := range s.outpoints {
		h.indexOutpoint(s, op, false)
	}
	h.setMember(h.headers, s, false)
	h.setMember(h.mempool, s, false)
}

func (h *Hub) setMember(set map[*Subs]struct{}, s *Subs, in bool) {
	h.mu.Lock()
	if in {
		set[s] = struct{}{}
	} else {
		delete(set, s)
	}
	h.mu.Unlock()
}

func (h *Hub) indexScript(s *Subs, hx chain.HashX, add bool) {
	h.mu.Lock()
	h.scripts[hx] = addOrRemove(h.scripts[hx], s, add)
	if len(h.scripts[hx]) == 0 {
		delete(h.scripts, hx)
	}
	h.mu.Unlock()
}

func (h *Hub) indexOutpoint(s *Subs, op wire.OutPoint, add bool) {
	h.mu.Lock()
	h.outpoints[op] = addOrRemove(h.outpoints[op], s, add)
	if len(h.outpoints[op]) == 0 {
		delete(h.outpoints, op)
	}
	h.mu.Unlock()
}

// addOrRemove adds s to list or removes it; most scripts have one
// subscribed session, so a slice beats a set.
func addOrRemove(list []*Subs, s *Subs, add bool) []*Subs {
	for i, o := range list {
		if o == s {
			if add {
				return list
			}
			list[i] = list[len(list)-1]
			list[len(list)-1] = nil
			return list[:len(list)-1]
		}
	}
	if add {
		list = append(list, s)
	}
	return list
}

// Len is the number of registered sessions.
func (h *Hub) Len() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.subs)
}

// Broadcast applies a change to the sessions it concerns, several at a
// time: those subscribed to a touched script or outpoint, headers
// subscribers on a new tip, and sessions with a status involving the
// mempool.
func (h *Hub) Broadcast(b *query.Backend, c Change, log *slog.Logger) {
	h.rounds.Add(1)
	c.memo = &statusMemo{m: map[chain.HashX]*memoEntry{}}
	anything := c.Header != nil || len(c.Scripts) > 0 || len(c.Outpoints) > 0
	if !anything {
		return
	}
	visit := map[*Subs]*touched{}
	get := func(s *Subs) *touched {
		t := visit[s]
		if t == nil {
			t = &touched{}
			visit[s] = t
		}
		return t
	}
	h.mu.Lock()
	for hx := range c.Scripts {
		for _, s := range h.scripts[hx] {
			t := get(s)
			t.scripts = append(t.scripts, hx)
		}
	}
	for op := range c.Outpoints {
		for _, s := range h.outpoints[op] {
			t := get(s)
			t.outpoints = append(t.outpoints, op)
		}
	}
	if c.Header != nil {
		for s := range h.headers {
			get(s)
		}
	}
	for s := range h.mempool {
		get(s)
	}
	h.mu.Unlock()
	var wg sync.WaitGroup
	sem := make(chan struct{}, 16)
	for s, t := range visit {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			s.apply(b, &c, *t, log)
		}()
	}
	wg.Wait()
}
