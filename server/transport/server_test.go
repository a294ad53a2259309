package transport

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"

	"amber/internal/config"
)

func allServices(host string) []config.Service {
	return []config.Service{svc("tcp", host), svc("ssl", host), svc("ws", host), svc("wss", host)}
}

func TestEcho(t *testing.T) {
	checkGoroutines(t)
	cert := newCert(t, t.TempDir(), "a")
	ts := startServer(t, allServices("127.0.0.1"), echo, Options{CertFile: cert.certFile, KeyFile: cert.keyFile})
	for _, proto := range []string{"tcp", "ssl", "ws", "wss"} {
		c := dial(t, proto, ts.addrs[proto], cert.pool())
		for _, m := range []string{"hello " + proto, `{"id":1}`, ""} {
			c.send(t, message(c, m))
			if got := c.recv(t); got != m {
				t.Errorf("%s: got %q, want %q", proto, got, m)
			}
		}
	}
	want := map[string]int{"tcp": 1, "ssl": 1, "ws": 1, "wss": 1}
	if got := ts.Sessions(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("Sessions() = %v, want %v", got, want)
	}
}

// TestConn checks what a handler sees of its connection.
func TestConn(t *testing.T) {
	checkGoroutines(t)
	cert := newCert(t, t.TempDir(), "a")
	type seen struct {
		svc  config.Service
		peer netip.AddrPort
	}
	ch := make(chan seen, 4)
	h := func(ctx context.Context, c Conn) {
		ch <- seen{c.LocalService(), c.RemoteAddr()}
		_, _ = c.ReadMessage(ctx)
	}
	services := allServices("127.0.0.1")
	ts := startServer(t, services, h, Options{CertFile: cert.certFile, KeyFile: cert.keyFile})
	for _, s := range services {
		dial(t, s.Proto, ts.addrs[s.Proto], cert.pool())
		got := <-ch
		if got.svc != s {
			t.Errorf("LocalService() = %v, want %v", got.svc, s)
		}
		if !got.peer.Addr().Is4() || !got.peer.Addr().IsLoopback() || got.peer.Port() == 0 {
			t.Errorf("%s: RemoteAddr() = %v, want 127.0.0.1 and a port", s.Proto, got.peer)
		}
	}
}

func TestIPv6(t *testing.T) {
	checkGoroutines(t)
	if ln, err := net.Listen("tcp", "[::1]:0"); err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	} else {
		_ = ln.Close()
	}
	cert := newCert(t, t.TempDir(), "a")
	peers := make(chan netip.AddrPort, 4)
	h := func(ctx context.Context, c Conn) {
		peers <- c.RemoteAddr()
		echo(ctx, c)
	}
	ts := startServer(t, append(allServices("::1"), svc("tcp", "127.0.0.1")), h, Options{CertFile: cert.certFile, KeyFile: cert.keyFile})
	for _, a := range ts.Addrs()[:4] {
		if !a.Addr().Is6() || !a.Addr().IsLoopback() {
			t.Errorf("bound %v, want [::1]", a)
		}
	}
	for _, proto := range []string{"tcp", "ssl", "ws", "wss"} {
		t.Run(proto, func(t *testing.T) {
			c := dial(t, proto, ts.addrs[proto], cert.pool())
			c.send(t, message(c, "six"))
			if got := c.recv(t); got != "six" {
				t.Errorf("got %q", got)
			}
			if p := <-peers; p.Addr() != netip.IPv6Loopback() {
				t.Errorf("RemoteAddr() = %v, want [::1]", p)
			}
		})
	}
}

// TestConcurrentWrites writes from many goroutines at once: every
// message must arrive whole, long ones (several write chunks) included.
func TestConcurrentWrites(t *testing.T) {
	checkGoroutines(t)
	const writers, each = 16, 8
	body := func(g, i int) string {
		n := 10 + (g*each+i)*997%(200<<10) // up to 200 KiB, across chunk sizes
		return fmt.Sprintf("%02d-%02d:", g, i) + strings.Repeat(string(rune('a'+g)), n)
	}
	h := func(ctx context.Context, c Conn) {
		var wg sync.WaitGroup
		for g := range writers {
			wg.Go(func() {
				for i := range each {
					if err := c.WriteMessage(ctx, []byte(body(g, i))); err != nil {
						return
					}
				}
			})
		}
		wg.Wait()
		_, _ = c.ReadMessage(ctx)
	}
	ts := startServer(t, []config.Service{svc("tcp", "127.0.0.1"), svc("ws", "127.0.0.1")}, h, Options{})
	for _, proto := range []string{"tcp", "ws"} {
		t.Run(proto, func(t *testing.T) {
			c := dial(t, proto, ts.addrs[proto], nil)
			seen := map[string]bool{}
			for range writers * each {
				m := c.recv(t)
				var g, i int
				if _, err := fmt.Sscanf(m, "%02d-%02d:", &g, &i); err != nil {
					t.Fatalf("message %.20q...: %v", m, err)
				}
				if m != body(g, i) {
					t.Fatalf("message %d-%d mangled (%d bytes)", g, i, len(m))
				}
				seen[m[:5]] = true
			}
			if len(seen) != writers*each {
				t.Errorf("%d distinct messages, want %d", len(seen), writers*each)
			}
		})
	}
}

// TestWriteStall: a client that never reads makes the server's write fail
// by the write timeout, and the connection closes.
func TestWriteStall(t *testing.T) {
	checkGoroutines(t)
	cert := newCert(t, t.TempDir(), "a")
	type result struct {
		err       error
		took      time.Duration
		readErr   error
		ctxClosed bool
	}
	ch := make(chan result, 1)
	big := []byte(strings.Repeat("s", 256<<10))
	h := func(ctx context.Context, c Conn) {
		var err error
		for err == nil {
			start := time.Now()
			err = c.WriteMessage(ctx, big)
			if err != nil {
				_, rerr := c.ReadMessage(context.Background())
				ch <- result{err, time.Since(start), rerr, ctx.Err() != nil}
			}
		}
	}
	const timeout = 300 * time.Millisecond
	services := []config.Service{svc("tcp", "127.0.0.1"), svc("ssl", "127.0.0.1"), svc("ws", "127.0.0.1"), svc("wss", "127.0.0.1")}
	ts := startServer(t, services, h, Options{WriteTimeout: timeout, CertFile: cert.certFile, KeyFile: cert.keyFile})
	for _, proto := range []string{"tcp", "ssl", "ws", "wss"} {
		t.Run(proto, func(t *testing.T) {
			var raw *rawClient
			if proto == "tcp" || proto == "ssl" {
				raw = dialRaw(t, proto, ts.addrs[proto], cert.pool())
			} else {
				dialWS(t, proto, ts.addrs[proto], cert.pool())
			}
			var r result
			select {
			case r = <-ch:
			case <-time.After(10 * time.Second):
				t.Fatal("write did not fail within 10s")
			}
			if !errors.Is(r.err, ErrWriteTimeout) {
				t.Errorf("write error %v, want ErrWriteTimeout", r.err)
			}
			if r.took < timeout || r.took > timeout+2*time.Second {
				t.Errorf("write failed after %v, want about %v", r.took, timeout)
			}
			if !errors.Is(r.readErr, ErrClosed) || !errors.Is(r.readErr, ErrWriteTimeout) {
				t.Errorf("read after the stall: %v, want ErrClosed wrapping ErrWriteTimeout", r.readErr)
			}
			if !r.ctxClosed {
				t.Error("handler context not done after the stall")
			}
			if raw != nil {
				if err := raw.readErr(t); errors.Is(err, os.ErrDeadlineExceeded) {
					t.Errorf("client read: %v, want the connection closed", err)
				}
			}
		})
	}
}

func TestCertificateReload(t *testing.T) {
	checkGoroutines(t)
	dir := t.TempDir()
	a, b, c := newCert(t, dir, "a"), newCert(t, dir, "b"), newCert(t, dir, "c")
	certFile, keyFile := dir+"/server.crt", dir+"/server.key"
	a.writeTo(t, certFile, keyFile)
	ts := startServer(t, []config.Service{svc("ssl", "127.0.0.1"), svc("wss", "127.0.0.1")}, echo,
		Options{CertFile: certFile, KeyFile: keyFile})
	pool := a.pool()
	pool.AddCert(b.cert)
	served := func() string {
		t.Helper()
		conn, err := tls.Dial("tcp", ts.addrs["ssl"].String(), &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"})
		if err != nil {
			t.Fatalf("dial: %v", err)
		}
		defer conn.Close()
		if v := conn.ConnectionState().Version; v < tls.VersionTLS12 {
			t.Errorf("TLS version %x", v)
		}
		return conn.ConnectionState().PeerCertificates[0].Subject.CommonName
	}
	if got := served(); got != "amber test a" {
		t.Fatalf("served %q, want a", got)
	}
	old := dialRaw(t, "ssl", ts.addrs["ssl"], a.pool()) // established before the reload

	b.writeTo(t, certFile, keyFile)
	if err := ts.ReloadCertificate(); err != nil {
		t.Fatalf("reload: %v", err)
	}
	if got := served(); got != "amber test b" {
		t.Errorf("after reload served %q, want b", got)
	}
	dialWS(t, "wss", ts.addrs["wss"], b.pool()) // wss shares the certificate

	tests := []struct {
		name       string
		cert, key  []byte
		wantErrSub string
	}{
		{"garbage certificate", []byte("not a certificate"), b.keyPEM, "load certificate"},
		{"key of another certificate", c.certPEM, b.keyPEM, "private key does not match"},
		{"empty files", nil, nil, "load certificate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := os.WriteFile(certFile, tt.cert, 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(keyFile, tt.key, 0o600); err != nil {
				t.Fatal(err)
			}
			err := ts.ReloadCertificate()
			if err == nil || !strings.Contains(err.Error(), tt.wantErrSub) {
				t.Errorf("reload error %v, want one containing %q", err, tt.wantErrSub)
			}
			if got := served(); got != "amber test b" {
				t.Errorf("after a failed reload served %q, want b still", got)
			}
		})
	}
	old.send(t, "still here\n")
	if got := old.line(t); got != "still here" {
		t.Errorf("old connection: got %q", got)
	}
}

// TestShutdown cancels Run with a connection of each kind open: Run
// returns, handlers see their reads fail and their context done, clients
// see the connection end (WebSocket with "going away"), no goroutine is
// left.
func TestShutdown(t *testing.T) {
	checkGoroutines(t)
	cert := newCert(t, t.TempDir(), "a")
	type result struct {
		proto  string
		err    error
		ctxErr error
	}
	started := make(chan string, 8)
	results := make(chan result, 8)
	h := func(ctx context.Context, c Conn) {
		started <- c.LocalService().Proto
		var err error
		for err == nil {
			_, err = c.ReadMessage(ctx)
		}
		results <- result{c.LocalService().Proto, err, ctx.Err()}
	}
	services := append(allServices("127.0.0.1"), svc("rpc", "127.0.0.1"))
	ts := startServer(t, services, h, Options{CertFile: cert.certFile, KeyFile: cert.keyFile, CloseTimeout: 500 * time.Millisecond})

	var raws []*rawClient
	for _, p := range []string{"tcp", "ssl", "rpc"} {
		raws = append(raws, dialRaw(t, p, ts.addrs[p], cert.pool()))
	}
	wsReading := dialWS(t, "ws", ts.addrs["ws"], nil)
	wssReading := dialWS(t, "wss", ts.addrs["wss"], cert.pool())
	dialWS(t, "ws", ts.addrs["ws"], nil) // never reads: its close handshake times out
	for range 6 {
		<-started
	}
	wsErrs := make(chan error, 2)
	for _, c := range []*websocket.Conn{wsReading, wssReading} {
		go func() {
			_, _, err := c.Read(context.Background())
			wsErrs <- err
		}()
	}

	begin := time.Now()
	if err := ts.stopAndWait(5 * time.Second); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if took := time.Since(begin); took > 2*time.Second {
		t.Errorf("shutdown took %v; want about the 500ms close timeout", took)
	}
	for range 6 {
		r := <-results
		if !errors.Is(r.err, ErrClosed) {
			t.Errorf("%s: handler read error %v, want ErrClosed", r.proto, r.err)
		}
		if r.ctxErr == nil {
			t.Errorf("%s: handler context not done", r.proto)
		}
	}
	for range 2 {
		if err := <-wsErrs; websocket.CloseStatus(err) != websocket.StatusGoingAway {
			t.Errorf("ws client read: %v, want close status going away", err)
		}
	}
	for _, c := range raws {
		if err := c.readErr(t); !errors.Is(err, io.EOF) {
			t.Errorf("raw client read: %v, want EOF", err)
		}
	}
	select {
	case <-ts.Draining():
	default:
		t.Error("Draining not closed")
	}
	if got := ts.Sessions(); got["tcp"]+got["ssl"]+got["ws"]+got["wss"]+got["rpc"] != 0 {
		t.Errorf("Sessions() = %v after shutdown", got)
	}
}

// TestGracePeriod: handlers that finish when Draining closes are not cut
// short, and Run does not wait out the whole grace period.
func TestGracePeriod(t *testing.T) {
	checkGoroutines(t)
	var srv atomic.Pointer[Server]
	started := make(chan struct{}, 2)
	h := func(ctx context.Context, c Conn) {
		started <- struct{}{}
		<-srv.Load().Draining()
		_ = c.WriteMessage(ctx, []byte("bye"))
	}
	ts := startServer(t, []config.Service{svc("tcp", "127.0.0.1"), svc("ws", "127.0.0.1")}, h, Options{GracePeriod: 5 * time.Second})
	srv.Store(ts.Server)
	raw := dialRaw(t, "tcp", ts.addrs["tcp"], nil)
	ws := dialWS(t, "ws", ts.addrs["ws"], nil)
	<-started
	<-started
	wsGot := make(chan string, 1)
	go func() {
		_, b, err := ws.Read(context.Background())
		if err != nil {
			wsGot <- err.Error()
			return
		}
		wsGot <- string(b)
		for err == nil { // answer the close frame
			_, _, err = ws.Read(context.Background())
		}
	}()
	begin := time.Now()
	if err := ts.stopAndWait(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(begin); took > 2*time.Second {
		t.Errorf("shutdown took %v, want well under the 5s grace period", took)
	}
	if got := raw.line(t); got != "bye" {
		t.Errorf("tcp got %q", got)
	}
	if got := <-wsGot; got != "bye" {
		t.Errorf("ws got %q", got)
	}
}

// TestCloseWith: a handler closing its connection with a reason.
func TestCloseWith(t *testing.T) {
	checkGoroutines(t)
	h := func(ctx context.Context, c Conn) {
		_, _ = c.ReadMessage(ctx)
		_ = c.CloseWith(ClosePolicyViolation, "excessive resource usage")
		_, err := c.ReadMessage(ctx)
		if !errors.Is(err, ErrClosed) || !strings.Contains(err.Error(), "excessive resource usage") || ctx.Err() == nil {
			_ = c.WriteMessage(context.Background(), []byte("bad: "+fmt.Sprint(err)))
		}
	}
	ts := startServer(t, []config.Service{svc("tcp", "127.0.0.1"), svc("ws", "127.0.0.1")}, h, Options{})
	raw := dialRaw(t, "tcp", ts.addrs["tcp"], nil)
	raw.send(t, "x\n")
	if err := raw.readErr(t); !errors.Is(err, io.EOF) {
		t.Errorf("tcp client: %v, want EOF", err)
	}
	ws := dialWS(t, "ws", ts.addrs["ws"], nil)
	wsSend(t, ws, "x")
	_, _, err := ws.Read(context.Background())
	var ce websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != websocket.StatusPolicyViolation || ce.Reason != "excessive resource usage" {
		t.Errorf("ws client: %v, want policy violation with the reason", err)
	}
}

// TestWSReadLimit: a WebSocket message over the limit is reported and
// closes the connection with 1009.
func TestWSReadLimit(t *testing.T) {
	checkGoroutines(t)
	ch := make(chan string, 10)
	ts := startServer(t, []config.Service{svc("ws", "127.0.0.1")}, events(ch), Options{WSReadLimit: 1000})
	ws := dialWS(t, "ws", ts.addrs["ws"], nil)
	wsSend(t, ws, strings.Repeat("a", 1000))
	if got := next(t, ch); got != "msg:"+strings.Repeat("a", 1000) {
		t.Errorf("message at the limit: got %.20q", got)
	}
	wsSend(t, ws, strings.Repeat("a", 1001))
	if got := next(t, ch); got != "big:0" {
		t.Errorf("got %q, want big:0", got)
	}
	if got := next(t, ch); got != "err" {
		t.Errorf("got %q, want err (closed)", got)
	}
	_, _, err := ws.Read(context.Background())
	if websocket.CloseStatus(err) != websocket.StatusMessageTooBig {
		t.Errorf("client: %v, want status 1009", err)
	}
}

// TestClientGone: handlers see io.EOF when the client disconnects.
func TestClientGone(t *testing.T) {
	checkGoroutines(t)
	errs := make(chan error, 2)
	h := func(ctx context.Context, c Conn) {
		_, err := c.ReadMessage(ctx)
		errs <- err
	}
	ts := startServer(t, []config.Service{svc("tcp", "127.0.0.1"), svc("ws", "127.0.0.1")}, h, Options{})
	raw := dialRaw(t, "tcp", ts.addrs["tcp"], nil)
	_ = raw.Close()
	if err := <-errs; !errors.Is(err, io.EOF) {
		t.Errorf("tcp: %v, want io.EOF", err)
	}
	ws := dialWS(t, "ws", ts.addrs["ws"], nil)
	_ = ws.Close(websocket.StatusNormalClosure, "")
	if err := <-errs; !errors.Is(err, io.EOF) {
		t.Errorf("ws: %v, want io.EOF", err)
	}
	waitFor(t, "sessions to end", func() bool { s := ts.Sessions(); return s["tcp"]+s["ws"] == 0 })
}

func TestAddressInUse(t *testing.T) {
	checkGoroutines(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	services := []config.Service{svc("tcp", "127.0.0.1"), {Proto: "ws", Host: "127.0.0.1", Port: port}}
	s, err := New(services, echo, Options{Logger: testLogger()})
	if err != nil {
		t.Fatal(err)
	}
	err = s.Run(context.Background())
	want := fmt.Sprintf("listen ws://127.0.0.1:%d: address already in use", port)
	if err == nil || err.Error() != want {
		t.Errorf("Run: %v, want %q", err, want)
	}
	if !errors.Is(err, syscall.EADDRINUSE) {
		t.Errorf("error %v is not EADDRINUSE", err)
	}
	select {
	case <-s.Ready():
		t.Error("Ready closed though a listener failed")
	default:
	}
}

func TestNew(t *testing.T) {
	dir := t.TempDir()
	cert := newCert(t, dir, "a")
	tcp := []config.Service{svc("tcp", "127.0.0.1")}
	tests := []struct {
		name     string
		services []config.Service
		handler  Handler
		opts     Options
		wantErr  string
	}{
		{"ok", tcp, echo, Options{}, ""},
		{"tls ok", []config.Service{svc("wss", "")}, echo, Options{CertFile: cert.certFile, KeyFile: cert.keyFile}, ""},
		{"nil handler", tcp, nil, Options{}, "nil handler"},
		{"no services", nil, echo, Options{}, "no services"},
		{"unknown protocol", []config.Service{svc("udp", "")}, echo, Options{}, `unknown protocol "udp"`},
		{"ssl without certificate", []config.Service{svc("ssl", "")}, echo, Options{}, "SSL_CERTFILE"},
		{"missing certificate file", []config.Service{svc("ssl", "")}, echo,
			Options{CertFile: dir + "/nope.crt", KeyFile: cert.keyFile}, "load certificate " + dir + "/nope.crt"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(tt.services, tt.handler, tt.opts)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("New: %v", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Errorf("New: %v, want an error containing %q", err, tt.wantErr)
			}
		})
	}
}

// refused reports whether the server closed a new connection without
// serving it.
func refused(t *testing.T, addr netip.AddrPort) bool {
	t.Helper()
	c := dialRaw(t, "tcp", addr, nil)
	defer c.Close()
	_, _ = c.Write([]byte("ping\n"))
	_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
	s, err := c.r.ReadString('\n')
	if err == nil && s == "ping\n" {
		return false
	}
	if errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatal("neither served nor closed")
	}
	return true
}

func TestMaxConnsAndPause(t *testing.T) {
	checkGoroutines(t)
	ts := startServer(t, []config.Service{svc("tcp", "127.0.0.1"), svc("rpc", "127.0.0.1")}, echo, Options{MaxConns: 2})
	tcp, rpc := ts.addrs["tcp"], ts.addrs["rpc"]
	ping := func(c *rawClient) {
		t.Helper()
		c.send(t, "ping\n")
		if got := c.line(t); got != "ping" {
			t.Fatalf("got %q", got)
		}
	}
	c1, c2 := dialRaw(t, "tcp", tcp, nil), dialRaw(t, "tcp", tcp, nil)
	ping(c1)
	ping(c2)
	if !refused(t, tcp) {
		t.Error("third connection served over MaxConns 2")
	}
	ping(dialRaw(t, "rpc", rpc, nil)) // rpc is exempt
	_ = c1.Close()
	waitFor(t, "a session to end", func() bool { return ts.Sessions()["tcp"] == 1 })
	c3 := dialRaw(t, "tcp", tcp, nil)
	ping(c3)
	_ = c3.Close()
	waitFor(t, "a session to end", func() bool { return ts.Sessions()["tcp"] == 1 })

	ts.Pause()
	if !refused(t, tcp) {
		t.Error("connection served while paused")
	}
	ping(dialRaw(t, "rpc", rpc, nil))
	ts.Resume()
	ping(dialRaw(t, "tcp", tcp, nil))
}

// TestShutdownStalledWriters shuts down while every handler is blocked
// writing to a client that does not read: the closes must not wait for
// the writes (nor for the write timeout), only for the close timeout.
func TestShutdownStalledWriters(t *testing.T) {
	checkGoroutines(t)
	cert := newCert(t, t.TempDir(), "a")
	var lastWrite atomic.Int64
	errs := make(chan error, 4)
	big := []byte(strings.Repeat("w", 256<<10))
	h := func(ctx context.Context, c Conn) {
		for {
			if err := c.WriteMessage(ctx, big); err != nil {
				errs <- err
				return
			}
			lastWrite.Store(time.Now().UnixNano())
		}
	}
	ts := startServer(t, allServices("127.0.0.1"), h, Options{
		CertFile: cert.certFile, KeyFile: cert.keyFile, WriteTimeout: time.Minute, CloseTimeout: 300 * time.Millisecond,
	})
	for _, proto := range []string{"tcp", "ssl", "ws", "wss"} {
		if proto == "ws" || proto == "wss" {
			dialWS(t, proto, ts.addrs[proto], cert.pool())
		} else {
			dialRaw(t, proto, ts.addrs[proto], cert.pool())
		}
	}
	waitFor(t, "the writes to stall", func() bool {
		return lastWrite.Load() != 0 && time.Since(time.Unix(0, lastWrite.Load())) > 200*time.Millisecond
	})
	begin := time.Now()
	if err := ts.stopAndWait(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(begin); took > 1500*time.Millisecond {
		t.Errorf("shutdown took %v, want about the 300ms close timeout", took)
	}
	for range 4 {
		if err := <-errs; !errors.Is(err, ErrClosed) || errors.Is(err, ErrWriteTimeout) {
			t.Errorf("write error %v, want ErrClosed for the shutdown", err)
		}
	}
}

func TestWriteNewline(t *testing.T) {
	checkGoroutines(t)
	h := func(ctx context.Context, c Conn) {
		if err := c.WriteMessage(ctx, []byte("a\nb")); err == nil {
			return
		}
		echo(ctx, c)
	}
	ts := startServer(t, []config.Service{svc("tcp", "127.0.0.1")}, h, Options{})
	c := dialRaw(t, "tcp", ts.addrs["tcp"], nil)
	c.send(t, "still open\n")
	if got := c.line(t); got != "still open" {
		t.Errorf("got %q", got)
	}
}
