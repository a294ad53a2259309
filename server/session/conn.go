package session

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"regexp"
	"time"

	"amber/server/rpc"
	"amber/server/transport"
)

// Server serves Electrum sessions over transport connections.
type Server struct {
	Backend *Backend
	Info    *ServerInfo
	Table   *rpc.Table[*Session]
	Hub     *Hub
	Logger  *slog.Logger

	// MaxSend is MAX_SEND: the largest response.
	MaxSend int
	// RequestTimeout bounds one request (-102 "server busy" after it).
	RequestTimeout time.Duration
	// IdleTimeout closes a session that sent nothing for this long.
	IdleTimeout time.Duration
	// DropClient disconnects clients whose name matches.
	DropClient *regexp.Regexp
	// MaxSubs caps one session's subscriptions; 0 means no cap.
	MaxSubs int
	// Peers serves server.peers.subscribe and server.add_peer; nil
	// serves an empty list.
	Peers Peers
}

var versionMethod = rpc.Method[*Session]{Name: "server.version", Params: []string{"client_name", "protocol_version"}, IgnoreExtra: true}

// conn is the state of one connection.
type conn struct {
	sv         *Server
	c          transport.Conn
	codec      *rpc.Codec
	sess       *Session
	versioned  bool
	clientName string
	log        *slog.Logger
}

// errDisconnect ends a session after its reply is sent.
var errDisconnect = errors.New("session: disconnect")

// Serve runs one session until the client goes away or ctx ends. It is a
// transport.Handler.
func (sv *Server) Serve(ctx context.Context, c transport.Conn) {
	ctx, cancel := context.WithCancel(ctx) // ends the session's hub entry
	defer cancel()
	cn := &conn{sv: sv, c: c, codec: rpc.NewCodec(sv.MaxSend),
		log: sv.Logger.With("peer", c.RemoteAddr().String(), "transport", c.LocalService().Proto)}
	cn.sess = &Session{Backend: sv.Backend, Info: sv.Info, Remote: c.RemoteAddr(), Peers: sv.Peers}
	cn.sess.Subs = NewSubs(func(method string, params any) {
		msg, err := cn.codec.Notification(method, params)
		if err != nil {
			cn.log.Warn("encode notification", "method", method, "err", err)
			return
		}
		if err := c.WriteMessage(ctx, msg); err != nil {
			cn.log.Debug("notification not delivered", "method", method, "err", err)
		}
	}, sv.MaxSubs)
	defer c.Close()
	cn.log.Debug("session opened")
	for {
		rctx, cancel := ctx, context.CancelFunc(func() {})
		if sv.IdleTimeout > 0 {
			rctx, cancel = context.WithTimeout(ctx, sv.IdleTimeout)
		}
		msg, err := c.ReadMessage(rctx)
		idle := rctx.Err() != nil && ctx.Err() == nil
		cancel()
		if errors.Is(err, transport.ErrMessageTooLarge) {
			cn.log.Info("dropped an oversized message", "err", err)
			continue
		}
		if err != nil {
			if idle {
				cn.log.Info("closing idle session", "idle", sv.IdleTimeout.String())
			}
			break
		}
		if err := cn.handle(ctx, msg); err != nil {
			if !errors.Is(err, errDisconnect) {
				cn.log.Debug("session ended", "err", err)
			}
			break
		}
	}
	cn.log.Debug("session closed")
}

// subscribeHub registers the session for notifications once it has a
// protocol version.
func (cn *conn) subscribeHub(ctx context.Context) {
	remove := cn.sv.Hub.Add(cn.sess.Subs)
	context.AfterFunc(ctx, remove)
}

// handle answers one incoming message: a request, a notification or a
// batch.
func (cn *conn) handle(ctx context.Context, msg []byte) error {
	m := cn.codec.Parse(msg)
	if !m.Batch {
		for _, e := range m.Errors {
			if err := cn.c.WriteMessage(ctx, e); err != nil {
				return err
			}
		}
		if len(m.Requests) == 0 {
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
		werr := cn.c.WriteMessage(ctx, cn.codec.Reply(req.ID, result, unwrapDisconnect(err)))
		if errors.Is(err, errDisconnect) {
			return err
		}
		return werr
	}
	b := cn.codec.NewBatch(m)
	var disconnect error
	for _, req := range m.Requests {
		result, err := cn.call(ctx, req)
		if errors.Is(err, errDisconnect) {
			disconnect = err
		}
		if !req.IsNotification() {
			b.Add(req.ID, result, unwrapDisconnect(err))
		}
	}
	if out := b.Bytes(); out != nil {
		if err := cn.c.WriteMessage(ctx, out); err != nil {
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

// call runs one request through version negotiation and the method table.
func (cn *conn) call(ctx context.Context, req *rpc.Request) (any, error) {
	if req.Method == "server.version" {
		return cn.version(ctx, req)
	}
	if !cn.versioned {
		return nil, disconnectErr{rpc.BadRequest("use server.version to identify client")}
	}
	if req.IsNotification() {
		// Only server.ping (1.7) is a notification a client may send.
		return nil, nil
	}
	rctx := ctx
	if cn.sv.RequestTimeout > 0 {
		var cancel context.CancelFunc
		rctx, cancel = context.WithTimeout(ctx, cn.sv.RequestTimeout)
		defer cancel()
	}
	result, err := cn.sv.Table.Call(rctx, cn.sess, cn.sess.Proto, req)
	if err != nil && rctx.Err() == context.DeadlineExceeded && ctx.Err() == nil {
		return nil, rpc.ErrServerBusy()
	}
	if err != nil {
		var re *rpc.Error
		if !errors.As(err, &re) {
			cn.log.Warn("request failed", "method", req.Method, "err", err)
		}
	}
	return result, err
}

func (cn *conn) version(ctx context.Context, req *rpc.Request) (any, error) {
	if cn.versioned {
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
	cn.clientName = name
	if cn.sv.DropClient != nil && cn.sv.DropClient.MatchString(name) {
		return nil, disconnectErr{rpc.BadRequest("unsupported client: " + name)}
	}
	v, text, verr := rpc.Negotiate(args[1], ProtocolMin, ProtocolMax)
	if verr != nil {
		return nil, disconnectErr{verr}
	}
	cn.sess.Proto = v
	cn.versioned = true
	cn.log = cn.log.With("client", name, "protocol", text)
	cn.subscribeHub(ctx)
	return []string{cn.sv.Info.Software, text}, nil
}
