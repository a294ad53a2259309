package transport

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"amber/internal/config"
)

// testLogger discards, unless AMBER_TEST_LOG is set.
func testLogger() *slog.Logger {
	if os.Getenv("AMBER_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// checkGoroutines fails the test if, once its cleanups have run, more
// goroutines are left than when it started. Register it first so that
// it runs last. Tests in this package do not run in parallel.
func checkGoroutines(t *testing.T) {
	t.Helper()
	before := runtime.NumGoroutine()
	t.Cleanup(func() {
		deadline := time.Now().Add(5 * time.Second)
		for {
			n := runtime.NumGoroutine()
			if n <= before {
				return
			}
			if time.Now().After(deadline) {
				buf := make([]byte, 1<<20)
				buf = buf[:runtime.Stack(buf, true)]
				t.Errorf("%d goroutines left, %d before the test:\n%s", n, before, buf)
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	})
}

// svc is a service on a loopback address with a port the system picks.
func svc(proto, host string) config.Service { return config.Service{Proto: proto, Host: host, Port: 0} }

// testCert is a self-signed certificate written to files.
type testCert struct {
	certFile, keyFile string
	cert              *x509.Certificate
	certPEM, keyPEM   []byte
}

// newCert makes a self-signed certificate for the loopback addresses and
// writes it to dir/name.crt and dir/name.key.
func newCert(t *testing.T, dir, name string) testCert {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: "amber test " + name},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		DNSNames:     []string{"localhost"},
		IsCA:         true,

		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	tc := testCert{
		certFile: filepath.Join(dir, name+".crt"),
		keyFile:  filepath.Join(dir, name+".key"),
		cert:     cert,
		certPEM:  pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		keyPEM:   pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}),
	}
	tc.writeTo(t, tc.certFile, tc.keyFile)
	return tc
}

func (tc testCert) writeTo(t *testing.T, certFile, keyFile string) {
	t.Helper()
	if err := os.WriteFile(certFile, tc.certPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, tc.keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
}

func (tc testCert) pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(tc.cert)
	return p
}

// testServer is a running Server.
type testServer struct {
	*Server
	addrs map[string]netip.AddrPort // by Proto; the first service of each
	done  chan error                // Run's result
	stop  context.CancelFunc
}

// startServer runs a server until the test ends (or stopAndWait).
func startServer(t *testing.T, services []config.Service, h Handler, opts Options) *testServer {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = testLogger()
	}
	s, err := New(services, h, opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ts := &testServer{Server: s, addrs: map[string]netip.AddrPort{}, done: make(chan error, 1), stop: cancel}
	go func() { ts.done <- s.Run(ctx) }()
	select {
	case <-s.Ready():
	case err := <-ts.done:
		cancel()
		t.Fatalf("Run: %v", err)
	case <-time.After(5 * time.Second):
		cancel()
		t.Fatal("server not ready after 5s")
	}
	for i, a := range s.Addrs() {
		if _, ok := ts.addrs[services[i].Proto]; !ok {
			ts.addrs[services[i].Proto] = a
		}
	}
	t.Cleanup(func() {
		if err := ts.stopAndWait(10 * time.Second); err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return ts
}

// stopAndWait cancels Run and waits for it to return.
func (ts *testServer) stopAndWait(limit time.Duration) error {
	ts.stop()
	select {
	case err, ok := <-ts.done:
		if !ok {
			return nil
		}
		close(ts.done)
		return err
	case <-time.After(limit):
		return errors.New("Run did not return")
	}
}

// rawClient is a client of a tcp, ssl or rpc service.
type rawClient struct {
	net.Conn
	r *bufio.Reader
}

func dialRaw(t *testing.T, proto string, addr netip.AddrPort, pool *x509.CertPool) *rawClient {
	t.Helper()
	d := net.Dialer{Timeout: 5 * time.Second}
	var nc net.Conn
	var err error
	if proto == "ssl" {
		nc, err = tls.DialWithDialer(&d, "tcp", addr.String(), &tls.Config{RootCAs: pool, ServerName: addr.Addr().String()})
	} else {
		nc, err = d.Dial("tcp", addr.String())
	}
	if err != nil {
		t.Fatalf("dial %s %s: %v", proto, addr, err)
	}
	t.Cleanup(func() { _ = nc.Close() })
	return &rawClient{Conn: nc, r: bufio.NewReaderSize(nc, 1<<20)}
}

func (c *rawClient) send(t *testing.T, s string) {
	t.Helper()
	_ = c.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write([]byte(s)); err != nil {
		t.Fatalf("write: %v", err)
	}
}

// line reads one line, without its newline.
func (c *rawClient) line(t *testing.T) string {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	s, err := c.r.ReadString('\n')
	if err != nil {
		t.Fatalf("read: %v (got %q)", err, s)
	}
	return strings.TrimSuffix(s, "\n")
}

// readErr reads until an error and returns it.
func (c *rawClient) readErr(t *testing.T) error {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		if _, err := c.r.ReadString('\n'); err != nil {
			return err
		}
	}
}

// dialWS dials a ws or wss service.
func dialWS(t *testing.T, proto string, addr netip.AddrPort, pool *x509.CertPool) *websocket.Conn {
	t.Helper()
	scheme := "ws"
	hc := &http.Client{Transport: &http.Transport{}}
	if proto == "wss" {
		scheme = "wss"
		hc.Transport = &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, scheme+"://"+addr.String()+"/", &websocket.DialOptions{HTTPClient: hc})
	if err != nil {
		t.Fatalf("dial %s %s: %v", proto, addr, err)
	}
	c.SetReadLimit(-1)
	t.Cleanup(func() {
		_ = c.CloseNow()
		hc.CloseIdleConnections()
	})
	return c
}

func wsSend(t *testing.T, c *websocket.Conn, s string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.Write(ctx, websocket.MessageText, []byte(s)); err != nil {
		t.Fatalf("ws write: %v", err)
	}
}

func wsRecv(t *testing.T, c *websocket.Conn) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	typ, b, err := c.Read(ctx)
	if err != nil {
		t.Fatalf("ws read: %v", err)
	}
	if typ != websocket.MessageText {
		t.Errorf("ws message type %v, want text", typ)
	}
	return string(b)
}

// client is a raw or WebSocket client behind one face.
type client interface {
	send(t *testing.T, s string)
	recv(t *testing.T) string
}

type wsClient struct{ c *websocket.Conn }

func (w wsClient) send(t *testing.T, s string) { t.Helper(); wsSend(t, w.c, s) }
func (w wsClient) recv(t *testing.T) string    { t.Helper(); return wsRecv(t, w.c) }

func (c *rawClient) recv(t *testing.T) string { t.Helper(); return c.line(t) }

// message sends s as one message of the client's framing.
func message(c client, s string) string {
	if _, ok := c.(*rawClient); ok {
		return s + "\n"
	}
	return s
}

func dial(t *testing.T, proto string, addr netip.AddrPort, pool *x509.CertPool) client {
	t.Helper()
	if proto == "ws" || proto == "wss" {
		return wsClient{dialWS(t, proto, addr, pool)}
	}
	return dialRaw(t, proto, addr, pool)
}

// echo answers each message with itself, and an over-long one with
// "too large N".
func echo(ctx context.Context, c Conn) {
	for {
		msg, err := c.ReadMessage(ctx)
		var tooLarge *MessageTooLargeError
		switch {
		case errors.As(err, &tooLarge):
			msg = []byte("too large " + strconv.FormatInt(tooLarge.Size, 10))
		case err != nil:
			return
		}
		if err := c.WriteMessage(ctx, msg); err != nil {
			return
		}
	}
}

// waitFor polls cond for up to 5 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
