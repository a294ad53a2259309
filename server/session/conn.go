package session

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/netip"
	"regexp"
	"sync"
	"sync/atomic"
	"time"

	"amber/internal/workpool"
	"amber/server/cost"
	"amber/server/rpc"
	"amber/server/transport"
)

// Server serves Electrum sessions over transport connections.
type Server struct {
	// Software is this server's name and version, as server.version
	// reports it ("Amber 0.1.0").
	Software string
	// Table answers every method but server.version.
	Table  *rpc.Table[*Session]
	Hub    *Hub
	Logger *slog.Logger

	// MaxSend is MAX_SEND: the largest response.
	MaxSend int
	// RequestTimeout bounds one request, throttling delay included
	// (-102 "server busy" after it).
	RequestTimeout time.Duration
	// IdleTimeout closes a session that sent nothing for this long.
	IdleTimeout time.Duration
	// DropClient disconnects clients whose name matches.
	DropClient *regexp.Regexp
	// DropClientUnknown disconnects clients that give no name.
	DropClientUnknown bool
	// Concurrent is how many requests of one session run at once
	// (INITIAL_CONCURRENT) when there is no cost model; with one, its
	// Throttle decides. 0 means 1.
	Concurrent int
	// MaxSubs caps one session's subscriptions; 0 means no cap.
	MaxSubs int
	// AllSubs caps the subscriptions of all sessions; nil means no cap.
	AllSubs *SubCounter
	// Groups meters session cost (spec §7.1); nil turns it off.
	Groups *cost.Groups
	// Registry lists live sessions for the admin RPC; nil keeps none.
	Registry *Registry
	// Metrics counts requests, errors and bytes; nil counts nothing.
	Metrics *Metrics
	// NotifyQueue is how many bytes of notifications may wait for a
	// client that is not reading before it is disconnected; 0 means
	// MaxSend.
	NotifyQueue int
	// Stop, when closed, makes sessions close (WebSocket clients get
	// "going away") once the request in hand is answered.
	Stop <-chan struct{}
}

// Protocol versions this server negotiates.
var (
	ProtocolMin = rpc.MustParseVersion("1.4")
	ProtocolMax = rpc.MustParseVersion("1.7.0")
)

// Session is the per-connection state the method table sees.
type Session struct {
	Subs  *Subs
	Proto rpc.Version
	// Remote is the client's address (after any PROXY header).
	Remote netip.AddrPort

	meter *cost.Meter // nil without a cost model
}

// Charge adds the part of a request's cost that depends on the work it
// did (rows read, headers returned), on top of the method's flat cost.
func (s *Session) Charge(c float64) {
	if s.meter != nil {
		s.meter.Charge(c)
	}
}

var versionMethod = rpc.Method[*Session]{Name: "server.version", Params: []string{"client_name", "protocol_version"}, IgnoreExtra: true}

// conn is the state of one connection.
type conn struct {
	sv        *Server
	c         transport.Conn
	codec     *rpc.Codec
	sess      *Session
	versioned atomic.Bool
	log       *slog.Logger
	meter     *cost.Meter // nil without a cost model
	stats     *Stats
	out       *outbox
	queue     workpool.Queue // the session's requests waiting for a worker

	// Requests run concurrently once the client has a protocol version:
	// inflight of them, at most allowed (the cost model's latest word).
	mu       sync.Mutex
	cond     *sync.Cond
	inflight int
	allowed  atomic.Int32

	throttleLogged atomic.Bool
}

// errDisconnect ends a session after its reply is sent.
var errDisconnect = errors.New("session: disconnect")

// Serve runs one session until the client goes away or ctx ends. It is a
// transport.Handler. Until the client has negotiated a version, its
// messages are handled one after the other; then up to the allowed
// concurrency of them run at once (as ElectrumX does), each reply going
// out as soon as it is ready, tagged with its request's id.
func (sv *Server) Serve(ctx context.Context, c transport.Conn) {
	ctx, cancel := context.WithCancel(ctx) // ends the notification writer
	defer cancel()
	proto := c.LocalService().Proto
	cn := &conn{sv: sv, c: c, codec: rpc.NewCodec(sv.MaxSend),
		log:   sv.Logger.With("peer", c.RemoteAddr().String(), "transport", proto),
		stats: newStats(c, proto)}
	cn.cond = sync.NewCond(&cn.mu)
	cn.allowed.Store(int32(max(1, sv.Concurrent)))
	if sv.Groups != nil {
		cn.meter = sv.Groups.Join(c.RemoteAddr().Addr())
		defer cn.meter.Leave()
		cn.stats.meter = cn.meter
		if g := cn.meter.Group(); g != "" {
			cn.log = cn.log.With("group", g)
		}
		cn.allowed.Store(int32(max(1, cn.meter.Throttle().Concurrent)))
	}
	if sv.Registry != nil {
		defer sv.Registry.add(cn.stats)()
	}
	if sv.Metrics != nil {
		sv.Metrics.sessionOpened(proto)
	}
	limit := sv.NotifyQueue
	if limit <= 0 {
		limit = sv.MaxSend
	}
	cn.out = newOutbox(limit)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); cn.writeOut(ctx) }()
	defer wg.Wait()
	defer cn.out.close()

	cn.sess = &Session{Remote: c.RemoteAddr(), meter: cn.meter}
	cn.sess.Subs = NewSubs(cn.notify, sv.MaxSubs)
	cn.sess.Subs.global = sv.AllSubs
	cn.sess.Subs.order = reserveReply(cn.out)
	cn.sess.Subs.onCount = func(n int) {
		cn.stats.subs.Store(int64(n))
		if cn.meter != nil {
			cn.meter.SetSubs(n)
		}
	}
	defer cn.sess.Subs.Release()
	defer c.Close()

	// live ends when a request ends the session (a disconnect, a failed
	// write); requests run under it. Reads also end at Stop, when
	// requests in hand are still answered.
	live, end := context.WithCancel(ctx)
	defer end()
	readCtx := live
	if sv.Stop != nil {
		var stopReads context.CancelFunc
		readCtx, stopReads = context.WithCancel(live)
		defer stopReads()
		go func() {
			select {
			case <-sv.Stop:
				stopReads()
			case <-readCtx.Done():
			}
		}()
	}
	context.AfterFunc(live, func() { cn.mu.Lock(); cn.cond.Broadcast(); cn.mu.Unlock() })
	cn.log.Debug("session opened")
	var reqs sync.WaitGroup
	stopping := cn.readLoop(ctx, live, readCtx, end, &reqs)
	if stopping {
		reqs.Wait() // answer what is in hand
		_ = c.CloseWith(transport.CloseGoingAway, "server shutting down")
	}
	end()
	reqs.Wait()
	cn.log.Debug("session closed")
}

// readLoop reads and dispatches messages until the session ends; it
// reports whether it ended for a server shutdown.
func (cn *conn) readLoop(ctx, live, readCtx context.Context, end context.CancelFunc, reqs *sync.WaitGroup) (stopping bool) {
	sv := cn.sv
	for {
		rctx, cancel := readCtx, context.CancelFunc(func() {})
		if sv.IdleTimeout > 0 {
			rctx, cancel = context.WithTimeout(readCtx, sv.IdleTimeout)
		}
		msg, err := cn.c.ReadMessage(rctx)
		idle := rctx.Err() != nil && readCtx.Err() == nil
		stopping := readCtx.Err() != nil && live.Err() == nil
		cancel()
		if stopping {
			return true
		}
		if live.Err() != nil {
			return false
		}
		var tooLarge *transport.MessageTooLargeError
		if errors.As(err, &tooLarge) {
			cn.received(int(tooLarge.Size))
			cn.charge(cost.ErrorReply)
			cn.log.Info("dropped an oversized message", "err", err)
			if cn.overLimit() {
				return false
			}
			continue
		}
		if err != nil {
			if idle {
				cn.log.Info("closing idle session", "idle", sv.IdleTimeout.String())
			}
			return false
		}
		cn.received(len(msg))
		if !cn.versioned.Load() {
			if err := cn.handle(live, msg); err != nil {
				cn.ended(err)
				return false
			}
			continue
		}
		if !cn.acquire(live) {
			return false
		}
		reqs.Add(1)
		requests.Go(&cn.queue, live, func(live context.Context) {
			defer reqs.Done()
			defer cn.release()
			if err := cn.handle(live, msg); err != nil {
				cn.ended(err)
				end()
			}
		})
	}
}

func (cn *conn) ended(err error) {
	if !errors.Is(err, errDisconnect) {
		cn.log.Debug("session ended", "err", err)
	}
}

// acquire waits for room for one more request; false once the session
// is over.
func (cn *conn) acquire(live context.Context) bool {
	cn.mu.Lock()
	defer cn.mu.Unlock()
	for live.Err() == nil && cn.inflight >= int(cn.allowed.Load()) {
		cn.cond.Wait()
	}
	if live.Err() != nil {
		return false
	}
	cn.inflight++
	return true
}

func (cn *conn) release() {
	cn.mu.Lock()
	cn.inflight--
	cn.cond.Signal()
	cn.mu.Unlock()
}

// replyOrder is the reply slot a message's requests reserved, if any:
// the place of their reply among the session's notifications.
type replyOrder struct{ slot *replySlot }

type replyOrderKey struct{}

// reserveReply returns the Subs.order hook: the first state a message's
// requests fix reserves the place of that message's reply.
func reserveReply(out *outbox) func(ctx context.Context) {
	return func(ctx context.Context) {
		if ro, ok := ctx.Value(replyOrderKey{}).(*replyOrder); ok && ro.slot == nil {
			ro.slot = out.reserve()
		}
	}
}

// send writes a reply: at once, or through its reserved place.
func (cn *conn) send(ctx context.Context, ro *replyOrder, msg []byte) error {
	if ro.slot == nil {
		return cn.write(ctx, msg)
	}
	s := ro.slot
	ro.slot = nil
	cn.out.fill(s, msg)
	defer workpool.Blocking(ctx)()
	select {
	case err := <-s.done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// notify queues a notification; the session's writer sends it, so a
// client that does not read never blocks a notification round.
func (cn *conn) notify(method string, params any) {
	msg, err := cn.codec.Notification(method, params)
	if err != nil {
		cn.log.Warn("encode notification", "method", method, "err", err)
		return
	}
	if !cn.out.push(msg) {
		cn.log.Warn("disconnecting a client that does not read its notifications", "queued_bytes", cn.out.limit)
		if cn.sv.Metrics != nil {
			cn.sv.Metrics.Disconnects.WithLabelValues("slow_reader").Inc()
		}
		_ = cn.c.CloseWith(transport.ClosePolicyViolation, "not reading notifications")
	}
}

// writeOut sends what the outbox holds: notifications, and replies
// whose place was reserved among them.
func (cn *conn) writeOut(ctx context.Context) {
	for {
		msg, slot, ok := cn.out.pop()
		if !ok {
			return
		}
		err := cn.write(ctx, msg)
		if slot != nil {
			slot.done <- err
		} else if err != nil {
			cn.log.Debug("notification not delivered", "err", err)
		}
	}
}

// write sends one message and charges its bandwidth.
func (cn *conn) write(ctx context.Context, msg []byte) error {
	cn.stats.sent(len(msg))
	if cn.meter != nil {
		cn.meter.ChargeBytes(len(msg))
	}
	if cn.sv.Metrics != nil {
		cn.sv.Metrics.bytesOut(cn.stats.Transport, len(msg))
	}
	defer workpool.Blocking(ctx)() // a client that reads slowly holds the write
	return cn.c.WriteMessage(ctx, msg)
}

func (cn *conn) received(n int) {
	cn.stats.received(n)
	if cn.meter != nil {
		cn.meter.ChargeBytes(n)
	}
	if cn.sv.Metrics != nil {
		cn.sv.Metrics.bytesIn(cn.stats.Transport, n)
	}
}

func (cn *conn) charge(c float64) {
	if cn.meter != nil {
		cn.meter.Charge(c)
	}
}

// overLimit reports a session past the hard limit, logging it once, so
// the caller disconnects it.
func (cn *conn) overLimit() bool {
	if cn.meter == nil {
		return false
	}
	t := cn.meter.Throttle()
	if t.Concurrent > 0 {
		return false
	}
	cn.disconnectForCost(t)
	return true
}

func (cn *conn) disconnectForCost(t cost.Throttle) {
	cn.log.Warn("disconnecting session over the cost hard limit", "cost", round2(t.Effective), "own_cost", round2(cn.meter.Cost()))
	if cn.sv.Metrics != nil {
		cn.sv.Metrics.Disconnects.WithLabelValues("excessive_usage").Inc()
	}
}

// subscribeHub registers the session for notifications once it has a
// protocol version.
func (cn *conn) subscribeHub(ctx context.Context) {
	remove := cn.sv.Hub.Add(cn.sess.Subs)
	context.AfterFunc(ctx, remove)
}

// handle answers one incoming message: a request, a notification or a
// batch (its requests one after the other, one reply array in order).
func (cn *conn) handle(ctx context.Context, msg []byte) error {
	ro := &replyOrder{}
	ctx = context.WithValue(ctx, replyOrderKey{}, ro)
	defer func() {
		if ro.slot != nil { // reserved but nothing to send
			cn.out.fill(ro.slot, nil)
		}
	}()
	m := cn.codec.Parse(msg)
	if n := len(m.Errors); n > 0 {
		cn.stats.errors.Add(int64(n))
		cn.charge(float64(n)*cost.ErrorReply + float64(m.ParseErrors())*cost.Unparsable)
		if cn.sv.Metrics != nil {
			cn.sv.Metrics.Errors.WithLabelValues("(invalid)").Add(float64(n))
		}
	}
	if !m.Batch {
		for _, e := range m.Errors {
			if err := cn.write(ctx, e); err != nil {
				return err
			}
		}
		if len(m.Requests) == 0 {
			if cn.overLimit() {
				return errDisconnect
			}
			return nil
		}
		req := m.Requests[0]
		result, err := cn.call(ctx, req)
		if req.IsNotification() {
			if errors.Is(err, errDisconnect) {
				return err
			}
			return nil
		}
		werr := cn.send(ctx, ro, cn.codec.Reply(req.ID, result, unwrapDisconnect(err)))
		if errors.Is(err, errDisconnect) {
			return err
		}
		return werr
	}
	b := cn.codec.NewBatch(m)
	var disconnect error
	for _, req := range m.Requests {
		if disconnect != nil {
			break
		}
		result, err := cn.call(ctx, req)
		if errors.Is(err, errDisconnect) {
			disconnect = err
		}
		if !req.IsNotification() {
			b.Add(req.ID, result, unwrapDisconnect(err))
		}
	}
	if out := b.Bytes(); out != nil {
		if err := cn.send(ctx, ro, out); err != nil {
			return err
		}
	}
	return disconnect
}

// disconnectErr carries the error to send before disconnecting.
type disconnectErr struct{ err error }

func (d disconnectErr) Error() string { return d.err.Error() }
func (d disconnectErr) Unwrap() []error {
	return []error{d.err, errDisconnect}
}

func unwrapDisconnect(err error) error {
	var d disconnectErr
	if errors.As(err, &d) {
		return d.err
	}
	return err
}

// call runs one request through throttling, version negotiation and the
// method table.
func (cn *conn) call(ctx context.Context, req *rpc.Request) (result any, err error) {
	start := time.Now()
	cn.stats.requests.Add(1)
	defer func() {
		var re *rpc.Error
		if err != nil && errors.As(err, &re) && re.Code != rpc.CodeExcessiveUsage {
			cn.stats.errors.Add(1)
			cn.charge(cost.ErrorReply)
		}
		if cn.sv.Metrics != nil {
			cn.sv.Metrics.observe(req.Method, time.Since(start), err)
		}
	}()
	rctx := ctx
	if cn.sv.RequestTimeout > 0 {
		var cancel context.CancelFunc
		rctx, cancel = context.WithTimeout(ctx, cn.sv.RequestTimeout)
		defer cancel()
	}
	if cn.meter != nil {
		cn.meter.Charge(cost.Of(req.Method))
		t := cn.meter.Throttle()
		cn.allowed.Store(int32(max(1, t.Concurrent)))
		if t.Concurrent == 0 {
			cn.disconnectForCost(t)
			return nil, disconnectErr{rpc.ErrExcessiveUsage()}
		}
		if t.Throttled() {
			if !cn.throttleLogged.Swap(true) {
				cn.log.Info("throttling session", "cost", round2(t.Effective), "delay", t.Sleep.Round(time.Millisecond).String())
			}
			if cn.sv.Metrics != nil {
				cn.sv.Metrics.Throttled.Inc()
			}
			cn.stats.throttled.Store(true)
			timer := time.NewTimer(t.Sleep)
			unblock := workpool.Blocking(ctx)
			select {
			case <-timer.C:
				unblock()
			case <-rctx.Done():
				unblock()
				timer.Stop()
				if ctx.Err() != nil {
					return nil, ctx.Err()
				}
				return nil, rpc.ErrServerBusy()
			}
		} else {
			cn.stats.throttled.Store(false)
		}
	}
	if req.Method == "server.version" {
		return cn.version(ctx, req)
	}
	if !cn.versioned.Load() {
		return nil, disconnectErr{rpc.BadRequest("use server.version to identify client")}
	}
	if req.IsNotification() {
		// Only server.ping (1.7) is a notification a client may send.
		return nil, nil
	}
	result, err = cn.sv.Table.Call(rctx, cn.sess, cn.sess.Proto, req)
	if err != nil && rctx.Err() == context.DeadlineExceeded && ctx.Err() == nil {
		return nil, rpc.ErrServerBusy()
	}
	if err != nil {
		var re *rpc.Error
		if !errors.As(err, &re) {
			cn.log.Warn("request failed", "method", req.Method, "err", err)
		}
	}
	if err == nil && (req.Method == "blockchain.transaction.broadcast" || req.Method == "blockchain.transaction.broadcast_package") {
		cn.stats.txsSent.Add(1)
	}
	return result, err
}

func (cn *conn) version(ctx context.Context, req *rpc.Request) (any, error) {
	if cn.versioned.Load() {
		return nil, rpc.BadRequest("server.version already sent")
	}
	args, perr := versionMethod.Bind(req.Params)
	if perr != nil {
		return nil, perr
	}
	name := ""
	if args[0] != nil {
		if json.Unmarshal(args[0], &name) != nil {
			name = string(args[0])
		}
	}
	if len(name) > 100 {
		name = name[:100]
	}
	cn.stats.setClient(name)
	if cn.sv.DropClient != nil && cn.sv.DropClient.MatchString(name) {
		return nil, disconnectErr{rpc.BadRequest("unsupported client: " + name)}
	}
	if cn.sv.DropClientUnknown && name == "" {
		return nil, disconnectErr{rpc.BadRequest("unsupported client: give a client name in server.version")}
	}
	v, text, verr := rpc.Negotiate(args[1], ProtocolMin, ProtocolMax)
	if verr != nil {
		return nil, disconnectErr{verr}
	}
	cn.sess.Proto = v
	cn.stats.setProto(text)
	cn.versioned.Store(true)
	cn.log = cn.log.With("client", name, "protocol", text)
	cn.subscribeHub(ctx)
	return []string{cn.sv.Software, text}, nil
}

func round2(x float64) float64 { return float64(int64(x*100)) / 100 }
