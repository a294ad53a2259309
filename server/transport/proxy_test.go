package transport

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	proxyproto "github.com/pires/go-proxyproto"

	"amber/internal/config"
)

// whoami answers each message with the client address the server sees.
func whoami(ctx context.Context, c Conn) {
	for {
		if _, err := c.ReadMessage(ctx); err != nil {
			return
		}
		if err := c.WriteMessage(ctx, []byte(c.RemoteAddr().String())); err != nil {
			return
		}
	}
}

// withHeader dials addr and sends a PROXY header of version v claiming
// the connection comes from src; version 0 sends none.
func withHeader(t *testing.T, addr netip.AddrPort, v byte, src string) *rawClient {
	t.Helper()
	c := dialRaw(t, "tcp", addr, nil)
	if v > 0 {
		h := proxyproto.HeaderProxyFromAddrs(v, net.TCPAddrFromAddrPort(netip.MustParseAddrPort(src)), c.RemoteAddr())
		if _, err := h.WriteTo(c); err != nil {
			t.Fatal(err)
		}
	}
	return c
}

func TestProxyProtocol(t *testing.T) {
	loopback := []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
	elsewhere := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	banned := netip.MustParsePrefix("203.0.113.0/24")
	allow := func(a netip.Addr) bool { return !banned.Contains(a) }

	on := startServer(t, []config.Service{svc("tcp", "127.0.0.1"), svc("ws", "127.0.0.1"), svc("rpc", "127.0.0.1")}, whoami,
		Options{ProxyProtocol: true, ProxyTrusted: loopback, Allow: allow})
	untrusted := startServer(t, []config.Service{svc("tcp", "127.0.0.1")}, whoami, Options{ProxyProtocol: true, ProxyTrusted: elsewhere})
	off := startServer(t, []config.Service{svc("tcp", "127.0.0.1")}, whoami, Options{})

	for _, tc := range []struct {
		name string
		srv  *testServer
		v    byte
		src  string
		want string // the address the server sees; "" for 127.0.0.1:*
	}{
		{"v1 from a trusted balancer", on, 1, "198.51.100.7:40000", "198.51.100.7:40000"},
		{"v2 from a trusted balancer", on, 2, "198.51.100.8:40001", "198.51.100.8:40001"},
		{"v2 IPv6 from a trusted balancer", on, 2, "[2001:db8::5]:40002", "[2001:db8::5]:40002"},
		{"no header from a trusted balancer", on, 0, "", ""},
		{"a header from an untrusted source is not believed", untrusted, 2, "198.51.100.9:40003", ""},
		{"a header with PROXY_PROTOCOL off is not believed", off, 1, "198.51.100.9:40004", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := withHeader(t, tc.srv.addrs["tcp"], tc.v, tc.src)
			c.send(t, "who\n")
			got := c.line(t)
			if tc.v == 1 && tc.want == "" {
				// The v1 header is a line of its own: the server sees it as
				// a message from the real address first.
				if !strings.HasPrefix(got, "127.0.0.1:") {
					t.Fatalf("sees %q", got)
				}
				got = c.line(t)
			}
			if tc.want == "" && !strings.HasPrefix(got, "127.0.0.1:") || tc.want != "" && got != tc.want {
				t.Errorf("server sees %q, want %q", got, tc.want)
			}
		})
	}

	t.Run("WebSocket behind a balancer", func(t *testing.T) {
		nc, err := net.Dial("tcp", on.addrs["ws"].String())
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		src := net.TCPAddrFromAddrPort(netip.MustParseAddrPort("192.0.2.44:5555"))
		if _, err := proxyproto.HeaderProxyFromAddrs(2, src, nc.RemoteAddr()).WriteTo(nc); err != nil {
			t.Fatal(err)
		}
		ws := dialWSOver(t, nc, on.addrs["ws"])
		wsSend(t, ws, "who")
		if got := wsRecv(t, ws); got != "192.0.2.44:5555" {
			t.Errorf("server sees %q", got)
		}
	})

	t.Run("rpc never reads a header", func(t *testing.T) {
		c := withHeader(t, on.addrs["rpc"], 1, "198.51.100.10:1")
		c.send(t, "who\n")
		if got := c.line(t); !strings.HasPrefix(got, "127.0.0.1:") {
			t.Errorf("rpc sees %q for the header line", got)
		}
	})

	t.Run("a banned forwarded address is refused", func(t *testing.T) {
		c := withHeader(t, on.addrs["tcp"], 2, "203.0.113.5:1")
		c.send(t, "who\n")
		if err := c.readErr(t); err == nil {
			t.Error("a banned client was served")
		}
		ok := withHeader(t, on.addrs["tcp"], 2, "203.0.114.5:1")
		ok.send(t, "who\n")
		if got := ok.line(t); got != "203.0.114.5:1" {
			t.Errorf("the next subnet sees %q", got)
		}
	})
}

// dialWSOver upgrades an open connection to addr to a WebSocket.
func dialWSOver(t *testing.T, nc net.Conn, addr netip.AddrPort) *websocket.Conn {
	t.Helper()
	hc := &http.Client{Transport: &http.Transport{DialContext: func(context.Context, string, string) (net.Conn, error) { return nc, nil }}}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, "ws://"+addr.String()+"/", &websocket.DialOptions{HTTPClient: hc})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ws.CloseNow() })
	return ws
}

// FuzzProxyHeader feeds arbitrary bytes to a listener with PROXY
// protocol on, as a trusted balancer would send them: the server never
// crashes, closes or serves each connection, and keeps serving others.
func FuzzProxyHeader(f *testing.F) {
	for _, seed := range []string{
		"PROXY TCP4 198.51.100.7 127.0.0.1 40000 50001\r\n",
		"PROXY TCP6 2001:db8::1 ::1 40000 50001\r\n",
		"PROXY UNKNOWN\r\n",
		"PROXY TCP4 999.1.1.1 127.0.0.1 1 2\r\n",
		"PROXY TCP4 198.51.100.7 127.0.0.1 40000\r\n",
		"\r\n\r\n\x00\r\nQUIT\n\x21\x11\x00\x0c\xc6\x33\x64\x07\x7f\x00\x00\x01\x9c\x40\xc3\x51",
		"\r\n\r\n\x00\r\nQUIT\n\x21\x11\xff\xff",
		"\r\n\r\n\x00\r\nQUIT\n\x20\x00\x00\x00",
		"GET / HTTP/1.1\r\n\r\n",
		"who\n",
	} {
		f.Add([]byte(seed))
	}
	s, err := New([]config.Service{svc("tcp", "127.0.0.1")}, whoami, Options{Logger: testLogger(), ProxyProtocol: true,
		ProxyTrusted: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}, HandshakeTimeout: 500 * time.Millisecond})
	if err != nil {
		f.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	<-s.Ready()
	addr := s.Addrs()[0].String()
	f.Cleanup(func() { cancel(); <-done })
	f.Fuzz(func(t *testing.T, in []byte) {
		nc, err := net.DialTimeout("tcp", addr, 2*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		_ = nc.SetDeadline(time.Now().Add(2 * time.Second))
		_, _ = nc.Write(in)
		_, _ = nc.Write([]byte("\nwho\n"))
		buf := make([]byte, 4096)
		n, _ := nc.Read(buf)
		// Whatever it answers is an address, never something else.
		lines := bytes.Split(buf[:n], []byte("\n"))
		for _, line := range lines[:len(lines)-1] { // the last may be cut
			if len(line) > 0 {
				if _, err := netip.ParseAddrPort(string(line)); err != nil {
					t.Fatalf("answered %q", line)
				}
			}
		}
		// The server still serves a plain client.
		plain, err := net.DialTimeout("tcp", addr, 2*time.Second)
		if err != nil {
			t.Fatalf("server gone after %q: %v", in, err)
		}
		defer plain.Close()
		_ = plain.SetDeadline(time.Now().Add(2 * time.Second))
		_, _ = plain.Write([]byte("who\n"))
		n, err = plain.Read(buf)
		if err != nil || !bytes.HasPrefix(buf[:n], []byte("127.0.0.1:")) {
			t.Fatalf("a plain client after %q got %q, %v", in, buf[:n], err)
		}
	})
}
