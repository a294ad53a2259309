package transport

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	"github.com/pires/go-proxyproto"
	"golang.org/x/sync/errgroup"

	"amber/internal/config"
)

// Handler serves one connection. It runs in a goroutine of its own and
// must return once ctx is done (the connection was closed) or a read
// fails with anything but ErrMessageTooLarge or a context error; the
// connection is closed when it returns.
type Handler func(ctx context.Context, c Conn)

// Defaults for the zero fields of Options.
const (
	DefaultMaxRecv          = 1_000_000        // MAX_RECV, spec §1.2
	DefaultWSReadLimit      = 1 << 20          // the websockets library's default, spec §1.3
	DefaultWriteTimeout     = 20 * time.Second // ElectrumX's max_send_delay, spec §1.4
	DefaultHandshakeTimeout = 10 * time.Second
	DefaultCloseTimeout     = 3 * time.Second
)

// Options tunes a Server. Zero fields take the defaults above.
type Options struct {
	Logger *slog.Logger

	// CertFile and KeyFile are SSL_CERTFILE and SSL_KEYFILE, PEM files
	// required when a service is ssl or wss.
	CertFile, KeyFile string

	// MaxRecv is the longest line accepted on raw sockets, in bytes
	// without the newline.
	MaxRecv int
	// WSReadLimit is the longest WebSocket message accepted.
	WSReadLimit int64
	// WriteTimeout is how long a write may make no progress before the
	// connection is aborted; negative disables it.
	WriteTimeout time.Duration
	// HandshakeTimeout bounds the TLS handshake and the WebSocket
	// upgrade request.
	HandshakeTimeout time.Duration
	// CloseTimeout bounds a close: the TLS close_notify, the WebSocket
	// close handshake. The socket is torn down after it.
	CloseTimeout time.Duration
	// GracePeriod is how long shutdown keeps serving open connections
	// after the listeners close (DRAIN_DELAY), so load balancers move new
	// clients elsewhere first; handlers returning on their own end it
	// early.
	GracePeriod time.Duration
	// StopGrace is how long handlers get, once Stopping is closed, to
	// finish their requests and close before their connections are
	// closed for them (SHUTDOWN_GRACE); zero closes them at once.
	StopGrace time.Duration

	// MaxConns caps client connections (all but rpc); zero is no cap.
	// At the cap new connections are refused, until the count falls to
	// 95% of it, as ElectrumX does with MAX_SESSIONS.
	MaxConns int

	// ProxyProtocol reads a PROXY protocol v1 or v2 header on every
	// service but rpc from connections whose source is in ProxyTrusted;
	// the address in the header becomes the connection's RemoteAddr.
	// Connections from other sources are taken as they are, so a client
	// cannot forge its address.
	ProxyProtocol bool
	ProxyTrusted  []netip.Prefix
	// Allow, when set, is asked about each client's address (after any
	// PROXY header); false refuses the connection (the ban list).
	Allow func(netip.Addr) bool
}

// serverConn is what the server needs of a connection besides Conn.
type serverConn interface {
	Conn
	context() context.Context
	cause() error                               // why it closed; nil while open
	start(handshakeTimeout time.Duration) error // TLS handshake, reader
	finish()                                    // wait for the connection's goroutines, once closed
	abort(err error)                            // close at once
}

// Server listens on the configured services and runs a Handler for each
// connection. Create it with New and call Run once.
type Server struct {
	services []config.Service
	handler  Handler
	opts     Options
	log      *slog.Logger
	certs    *certStore // nil without ssl or wss

	base     context.Context // parent of the connections' contexts, set by Run
	started  atomic.Bool
	paused   atomic.Bool
	full     atomic.Bool // at MaxConns, until the count falls to 95%
	ready    chan struct{}
	draining chan struct{}
	stopping chan struct{}

	mu       sync.Mutex
	closing  bool
	addrs    []netip.AddrPort
	conns    map[serverConn]struct{}
	counts   map[string]int // live connections by Proto
	clients  int            // live connections on services other than rpc
	handlers sync.WaitGroup // handler goroutines and WebSocket upgrades in flight
}

// New checks the services and loads the certificate if one is needed.
// It does not listen; Run does.
func New(services []config.Service, handler Handler, opts Options) (*Server, error) {
	if handler == nil {
		return nil, errors.New("transport: nil handler")
	}
	if len(services) == 0 {
		return nil, errors.New("transport: no services")
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.MaxRecv <= 0 {
		opts.MaxRecv = DefaultMaxRecv
	}
	if opts.WSReadLimit <= 0 {
		opts.WSReadLimit = DefaultWSReadLimit
	}
	switch {
	case opts.WriteTimeout == 0:
		opts.WriteTimeout = DefaultWriteTimeout
	case opts.WriteTimeout < 0:
		opts.WriteTimeout = 0
	}
	if opts.HandshakeTimeout <= 0 {
		opts.HandshakeTimeout = DefaultHandshakeTimeout
	}
	if opts.CloseTimeout <= 0 {
		opts.CloseTimeout = DefaultCloseTimeout
	}
	s := &Server{
		services: append([]config.Service(nil), services...),
		handler:  handler,
		opts:     opts,
		log:      opts.Logger,
		ready:    make(chan struct{}),
		draining: make(chan struct{}),
		stopping: make(chan struct{}),
		conns:    map[serverConn]struct{}{},
		counts:   map[string]int{},
	}
	needTLS := false
	for _, svc := range services {
		switch svc.Proto {
		case "tcp", "ws", "rpc":
		case "ssl", "wss":
			needTLS = true
		default:
			return nil, fmt.Errorf("transport: service %s: unknown protocol %q; want tcp, ssl, ws, wss or rpc", svc, svc.Proto)
		}
		s.counts[svc.Proto] = 0
	}
	if needTLS {
		if opts.CertFile == "" || opts.KeyFile == "" {
			return nil, errors.New("transport: ssl and wss services need a certificate and key (SSL_CERTFILE, SSL_KEYFILE)")
		}
		s.certs = &certStore{certFile: opts.CertFile, keyFile: opts.KeyFile}
		if _, err := s.certs.load(); err != nil {
			return nil, fmt.Errorf("transport: %w", err)
		}
	}
	return s, nil
}

// Run listens on every service and serves until ctx ends, then shuts
// down (see the package documentation) and returns once every handler
// has returned. It returns nil after a shutdown caused by ctx, and an
// error naming the service if a listener cannot be opened or fails.
func (s *Server) Run(ctx context.Context) error {
	if !s.started.CompareAndSwap(false, true) {
		return errors.New("transport: Server.Run called twice")
	}
	lns, err := s.listen(ctx)
	if err != nil {
		return err
	}
	s.base = context.WithoutCancel(ctx)
	addrs := make([]netip.AddrPort, len(lns))
	for i, ln := range lns {
		addrs[i] = addrPort(ln.Addr())
		s.log.Info("listening", "service", s.services[i].String(), "addr", addrs[i].String())
	}
	s.mu.Lock()
	s.addrs = addrs
	s.mu.Unlock()
	close(s.ready)

	g, gctx := errgroup.WithContext(ctx)
	var webs []*http.Server
	for i, svc := range s.services {
		var ln net.Listener = lns[i]
		if svc.Proto != "rpc" {
			if s.opts.ProxyProtocol {
				ln = &proxyproto.Listener{Listener: ln, ConnPolicy: s.proxyPolicy, ReadHeaderTimeout: s.opts.HandshakeTimeout}
			}
			ln = &gateListener{Listener: ln, s: s}
		}
		switch svc.Proto {
		case "ws", "wss":
			if svc.Proto == "wss" {
				ln = tls.NewListener(ln, s.tlsConfig(true))
			}
			hs := s.httpServer(svc)
			webs = append(webs, hs)
			g.Go(func() error {
				if err := hs.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) && !s.isClosing() {
					return fmt.Errorf("serve %s: %w", svc, err)
				}
				return nil
			})
		default:
			g.Go(func() error { return s.acceptLoop(ln, svc) })
		}
	}
	g.Go(func() error {
		<-gctx.Done()
		s.stopAccepting(lns, webs)
		return nil
	})
	err = g.Wait()
	s.drain()
	return err
}

// listen binds every service, or none.
func (s *Server) listen(ctx context.Context) ([]net.Listener, error) {
	var lc net.ListenConfig
	lns := make([]net.Listener, 0, len(s.services))
	for _, svc := range s.services {
		ln, err := lc.Listen(ctx, "tcp", svc.Addr())
		if err != nil {
			for _, l := range lns {
				_ = l.Close()
			}
			return nil, fmt.Errorf("listen %s: %w", svc, listenError(err))
		}
		lns = append(lns, ln)
	}
	return lns, nil
}

// listenError drops the layers of a net.Listen error that repeat the
// address, leaving e.g. "address already in use" (still errors.Is
// syscall.EADDRINUSE).
func listenError(err error) error {
	var se *os.SyscallError
	if errors.As(err, &se) {
		return se.Err
	}
	var oe *net.OpError
	if errors.As(err, &oe) {
		return oe.Err
	}
	return err
}

// acceptLoop accepts raw-socket connections until the listener closes.
// Accept errors other than that (e.g. out of file descriptors) are
// retried with a backoff, as net/http does.
func (s *Server) acceptLoop(ln net.Listener, svc config.Service) error {
	var delay time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			if s.isClosing() {
				return nil
			}
			if errors.Is(err, net.ErrClosed) {
				return fmt.Errorf("accept %s: %w", svc, err)
			}
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			s.log.Warn("accept failed", "service", svc.String(), "err", err, "retry_in", delay)
			select {
			case <-time.After(delay):
			case <-s.draining:
				return nil
			}
			continue
		}
		delay = 0
		// newRawConn reads a PROXY header, if any, for the address: not
		// in the accept loop, where one slow client would stall it.
		go func() {
			c := newRawConn(s, nc, svc)
			if !s.track(c) {
				c.abort(errors.New("refused"))
				return
			}
			s.serve(c)
		}()
	}
}

// proxyPolicy believes PROXY headers from trusted sources only.
func (s *Server) proxyPolicy(o proxyproto.ConnPolicyOptions) (proxyproto.Policy, error) {
	a := addrPort(o.Upstream).Addr().Unmap()
	for _, p := range s.opts.ProxyTrusted {
		if p.Contains(a) {
			return proxyproto.USE, nil
		}
	}
	return proxyproto.SKIP, nil
}

type netConnKey struct{}

// httpServer serves WebSocket upgrades on every path of a ws or wss
// service.
func (s *Server) httpServer(svc config.Service) *http.Server {
	return &http.Server{
		Handler:           http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { s.upgrade(w, r, svc) }),
		ReadHeaderTimeout: s.opts.HandshakeTimeout,
		IdleTimeout:       s.opts.HandshakeTimeout,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			return context.WithValue(ctx, netConnKey{}, c)
		},
	}
}

// upgrade turns an HTTP request into a WebSocket connection. Origins are
// not checked (wallets connect from anywhere) and no subprotocol is
// required.
func (s *Server) upgrade(w http.ResponseWriter, r *http.Request, svc config.Service) {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		http.Error(w, "server shutting down", http.StatusServiceUnavailable)
		return
	}
	s.handlers.Add(1)
	s.mu.Unlock()
	defer s.handlers.Done()

	nc, ok := r.Context().Value(netConnKey{}).(net.Conn)
	if !ok {
		http.Error(w, "no connection", http.StatusInternalServerError)
		return
	}
	raw := nc
	if tc, ok := nc.(*tls.Conn); ok {
		raw = tc.NetConn()
	}
	ws, err := websocket.Accept(w, r, &websocket.AcceptOptions{InsecureSkipVerify: true})
	if err != nil {
		s.log.Debug("websocket upgrade failed", "peer", r.RemoteAddr, "service", svc.String(), "err", err)
		return
	}
	c := newWSConn(s, ws, raw, svc)
	if !s.track(c) {
		c.abort(errors.New("refused"))
		return
	}
	go s.serve(c)
}

// serve runs the handler of a tracked connection and closes it after.
func (s *Server) serve(c serverConn) {
	defer s.untrack(c)
	svc, peer := c.LocalService().String(), c.RemoteAddr().String()
	if s.opts.Allow != nil && c.LocalService().Proto != "rpc" && !s.opts.Allow(c.RemoteAddr().Addr().Unmap()) {
		s.log.Debug("refused a banned client", "service", svc, "peer", peer)
		c.abort(errors.New("banned"))
		c.finish()
		return
	}
	if err := c.start(s.opts.HandshakeTimeout); err != nil {
		s.log.Debug("connection failed", "service", svc, "peer", peer, "err", err)
		c.abort(err)
		c.finish()
		return
	}
	began := time.Now()
	s.log.Debug("connection opened", "service", svc, "peer", peer)
	s.handler(c.context(), c)
	_ = c.Close()
	c.finish()
	s.log.Debug("connection closed", "service", svc, "peer", peer, "took", time.Since(began),
		"reason", c.cause())
}

// track registers a new connection; false means it must be refused
// because the server is shutting down or at MaxConns.
func (s *Server) track(c serverConn) bool {
	proto := c.LocalService().Proto
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return false
	}
	if proto != "rpc" {
		if s.opts.MaxConns > 0 && s.clients >= s.opts.MaxConns {
			return false
		}
		s.clients++
		if s.opts.MaxConns > 0 && s.clients >= s.opts.MaxConns && !s.full.Swap(true) {
			s.log.Info("connection limit reached; refusing new connections", "max_conns", s.opts.MaxConns)
		}
	}
	s.conns[c] = struct{}{}
	s.counts[proto]++
	s.handlers.Add(1)
	return true
}

func (s *Server) untrack(c serverConn) {
	proto := c.LocalService().Proto
	s.mu.Lock()
	delete(s.conns, c)
	s.counts[proto]--
	if proto != "rpc" {
		s.clients--
		if s.full.Load() && s.clients <= s.opts.MaxConns*19/20 {
			s.full.Store(false)
			s.log.Info("accepting connections again", "conns", s.clients, "max_conns", s.opts.MaxConns)
		}
	}
	s.mu.Unlock()
	s.handlers.Done()
}

func (s *Server) isClosing() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closing
}

// stopAccepting closes the listeners; connections accepted meanwhile are
// refused by track.
func (s *Server) stopAccepting(lns []net.Listener, webs []*http.Server) {
	s.mu.Lock()
	s.closing = true
	s.mu.Unlock()
	close(s.draining)
	for _, ln := range lns {
		_ = ln.Close()
	}
	// NOTE: Close, not Shutdown: it drops WebSocket upgrades still in
	// flight instead of waiting for them. Hijacked connections are ours
	// to close; http.Server does not track them.
	for _, hs := range webs {
		_ = hs.Close()
	}
}

// drain keeps serving for the grace period, asks the handlers to stop,
// waits StopGrace for them, then closes the connections left and waits
// for their handlers.
func (s *Server) drain() {
	done := make(chan struct{})
	go func() {
		s.handlers.Wait()
		close(done)
	}()
	wait := func(d time.Duration) {
		if d <= 0 {
			return
		}
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-done:
		case <-t.C:
		}
	}
	wait(s.opts.GracePeriod)
	close(s.stopping)
	wait(s.opts.StopGrace)
	s.mu.Lock()
	conns := make([]serverConn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	if len(conns) > 0 {
		s.log.Info("closing connections", "conns", len(conns))
	}
	var wg sync.WaitGroup
	for _, c := range conns {
		wg.Go(func() { _ = c.CloseWith(CloseGoingAway, "server shutting down") })
	}
	wg.Wait()
	s.handlers.Wait()
}

// Stopping is closed when handlers should finish the request in hand
// and close their connections: the grace period after Draining is over.
func (s *Server) Stopping() <-chan struct{} { return s.stopping }

// Ready is closed once Run has bound every listener.
func (s *Server) Ready() <-chan struct{} { return s.ready }

// Draining is closed when shutdown begins: listeners are closed, and
// connections will be closed after the grace period.
func (s *Server) Draining() <-chan struct{} { return s.draining }

// Addrs are the bound addresses, one per service in the order given to
// New; nil before Ready. A port of 0 in a service shows here as the port
// the system chose.
func (s *Server) Addrs() []netip.AddrPort {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]netip.AddrPort(nil), s.addrs...)
}

// Sessions counts the live connections by protocol (tcp, ssl, ws, wss,
// rpc), with a zero for every configured protocol that has none. TLS
// connections count from their accept, before the handshake ends.
func (s *Server) Sessions() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]int, len(s.counts))
	for k, v := range s.counts {
		out[k] = v
	}
	return out
}

// Pause refuses new client connections (rpc excepted) until Resume; the
// connections already open carry on.
func (s *Server) Pause() {
	if !s.paused.Swap(true) {
		s.log.Info("paused: refusing new connections")
	}
}

// Resume undoes Pause.
func (s *Server) Resume() {
	if s.paused.Swap(false) {
		s.log.Info("resumed: accepting connections")
	}
}

// accepting reports whether client connections are taken now.
func (s *Server) accepting() bool { return !s.paused.Load() && !s.full.Load() }

// gateListener refuses client connections while the server is paused or
// full: it accepts them and closes them at once, so the client fails
// fast.
type gateListener struct {
	net.Listener
	s *Server
}

func (l *gateListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil || l.s.accepting() {
			return c, err
		}
		_ = c.Close()
	}
}
