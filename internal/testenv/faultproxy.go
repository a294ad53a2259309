package testenv

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// FaultProxy is an HTTP reverse proxy in front of a daemon's JSON-RPC
// server (or an S3 endpoint: the Host header is passed on unchanged, so
// signed requests verify) that injects faults on demand: it can go away (Stop, then Start
// on the same port), answer slowly (SetDelay), or answer with HTTP errors
// instead of forwarding (FailNext, FailAll). Point DAEMON_URL at URL().
//
// Its methods may be called from any goroutine.
type FaultProxy struct {
	t        testing.TB
	addr     string // the loopback host:port it listens on, kept across Stop
	upstream *url.URL
	userinfo *url.Userinfo
	proxy    *httputil.ReverseProxy

	mu     sync.Mutex
	srv    *http.Server // nil while stopped
	delay  time.Duration
	fails  int // requests still to fail; -1 fails all
	status int // the HTTP status failed requests get
	hook   func(*http.Request)
	// slow delays requests calling one JSON-RPC method.
	slowMethod string
	slowDelay  time.Duration

	requests atomic.Int64
	faults   atomic.Int64
}

// StartFaultProxy starts a proxy on a free loopback port forwarding to
// upstream, a URL such as Btcd.URL() (credentials in it are kept for
// URL(), and the client's own Authorization header is forwarded). The
// proxy is closed when the test ends.
func StartFaultProxy(t testing.TB, upstream string) *FaultProxy {
	t.Helper()
	u, err := url.Parse(upstream)
	if err != nil {
		t.Fatalf("testenv: fault proxy upstream %q: %v", upstream, err)
	}
	target := &url.URL{Scheme: u.Scheme, Host: u.Host}
	p := &FaultProxy{t: t, upstream: target, userinfo: u.User, status: http.StatusServiceUnavailable}
	p.proxy = &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(target)
			// Keep the client's Host: S3 signatures cover it.
			r.Out.Host = r.In.Host
		},
		// An unreachable upstream is a 502, as a load balancer would say.
		// Clients killed mid-request are the point; their errors are noise.
		ErrorLog: slog.NewLogLogger(slog.DiscardHandler, slog.LevelError),
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			http.Error(w, "fault proxy: upstream: "+err.Error(), http.StatusBadGateway)
		},
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("testenv: fault proxy listen: %v", err)
	}
	p.addr = ln.Addr().String()
	p.serve(ln)
	t.Cleanup(p.Stop)
	return p
}

// URL is the proxy's URL with the upstream's credentials, the form
// DAEMON_URL takes.
func (p *FaultProxy) URL() string {
	u := url.URL{Scheme: p.upstream.Scheme, Host: p.addr, User: p.userinfo, Path: "/"}
	return u.String()
}

// Addr is the proxy's host:port.
func (p *FaultProxy) Addr() string { return p.addr }

func (p *FaultProxy) serve(ln net.Listener) {
	srv := &http.Server{Handler: http.HandlerFunc(p.handle), ReadHeaderTimeout: 10 * time.Second,
		ErrorLog: slog.NewLogLogger(slog.DiscardHandler, slog.LevelError)}
	p.mu.Lock()
	p.srv = srv
	p.mu.Unlock()
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			p.t.Logf("testenv: fault proxy: %v", err)
		}
	}()
}

func (p *FaultProxy) handle(w http.ResponseWriter, r *http.Request) {
	p.requests.Add(1)
	p.mu.Lock()
	delay, fail, status, hook := p.delay, p.fails != 0, p.status, p.hook
	slowMethod, slowDelay := p.slowMethod, p.slowDelay
	if p.fails > 0 {
		p.fails--
	}
	p.mu.Unlock()
	if hook != nil {
		hook(r)
	}
	if slowMethod != "" && callsMethod(r, slowMethod) {
		delay += slowDelay
	}
	if delay > 0 {
		p.faults.Add(1)
		select {
		case <-time.After(delay):
		case <-r.Context().Done():
			return
		}
	}
	if fail {
		p.faults.Add(1)
		http.Error(w, "fault proxy: injected failure", status)
		return
	}
	p.proxy.ServeHTTP(w, r)
}

// Stop closes the listener and every open connection: clients see
// connections reset and then refused, as when a daemon dies. It does
// nothing when already stopped.
func (p *FaultProxy) Stop() {
	p.mu.Lock()
	srv := p.srv
	p.srv = nil
	p.mu.Unlock()
	if srv == nil {
		return
	}
	p.faults.Add(1)
	srv.Close()
}

// Start listens again on the same port after Stop. It fails the test if
// the port was taken meanwhile, and does nothing when already running.
func (p *FaultProxy) Start() {
	p.t.Helper()
	p.mu.Lock()
	running := p.srv != nil
	p.mu.Unlock()
	if running {
		return
	}
	var ln net.Listener
	var err error
	// The old listener's port may take a moment to be free again.
	for deadline := time.Now().Add(10 * time.Second); ; {
		if ln, err = net.Listen("tcp", p.addr); err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		p.t.Fatalf("testenv: fault proxy listen again on %s: %v", p.addr, err)
	}
	p.serve(ln)
}

// Running reports whether the proxy accepts connections.
func (p *FaultProxy) Running() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.srv != nil
}

// SetDelay makes every request wait d before it is answered; zero
// removes the delay.
func (p *FaultProxy) SetDelay(d time.Duration) {
	p.mu.Lock()
	p.delay = d
	p.mu.Unlock()
}

// SetMethodDelay makes every request calling the JSON-RPC method (alone
// or in a batch) wait d more before it is answered; zero removes it.
func (p *FaultProxy) SetMethodDelay(method string, d time.Duration) {
	p.mu.Lock()
	p.slowMethod, p.slowDelay = method, d
	if d == 0 {
		p.slowMethod = ""
	}
	p.mu.Unlock()
}

// callsMethod reports whether the JSON-RPC request r calls method; it
// leaves r's body readable.
func callsMethod(r *http.Request, method string) bool {
	body, err := io.ReadAll(r.Body)
	r.Body.Close()
	r.Body = io.NopCloser(bytes.NewReader(body))
	if err != nil {
		return false
	}
	type call struct {
		Method string `json:"method"`
	}
	var batch []call
	if json.Unmarshal(body, &batch) != nil {
		var one call
		if json.Unmarshal(body, &one) != nil {
			return false
		}
		batch = []call{one}
	}
	for _, c := range batch {
		if c.Method == method {
			return true
		}
	}
	return false
}

// FailNext answers the next n requests with the HTTP status instead of
// forwarding them.
func (p *FaultProxy) FailNext(n, status int) {
	p.mu.Lock()
	p.fails, p.status = n, status
	p.mu.Unlock()
}

// FailAll answers every request with the HTTP status until Heal.
func (p *FaultProxy) FailAll(status int) { p.FailNext(-1, status) }

// Heal removes delays and failures (but does not Start a stopped proxy).
func (p *FaultProxy) Heal() {
	p.mu.Lock()
	p.delay, p.fails = 0, 0
	p.slowMethod, p.slowDelay = "", 0
	p.mu.Unlock()
}

// OnRequest calls hook with every request as it arrives, before any
// fault; nil removes it. The hook must not block.
func (p *FaultProxy) OnRequest(hook func(*http.Request)) {
	p.mu.Lock()
	p.hook = hook
	p.mu.Unlock()
}

// Requests is the number of requests the proxy has received.
func (p *FaultProxy) Requests() int64 { return p.requests.Load() }

// Faults is the number of faults injected so far: delayed and failed
// requests, and stops.
func (p *FaultProxy) Faults() int64 { return p.faults.Load() }

// WaitRequests waits until the proxy has received n requests in all, or
// ctx ends; it reports whether it got there.
func (p *FaultProxy) WaitRequests(ctx context.Context, n int64) bool {
	for p.requests.Load() < n {
		select {
		case <-ctx.Done():
			return false
		case <-time.After(5 * time.Millisecond):
		}
	}
	return true
}
