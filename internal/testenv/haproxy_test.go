package testenv

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pires/go-proxyproto"
)

// echoBackend is a server behind HAProxy with two listeners, "tcp" and
// "ws" (standing for a node's Electrum TCP and WebSocket ports): each
// reads the PROXY v2 header and answers with the server's name, the
// listener's, and the client address the header carried. Its /readyz,
// shared by both, answers 200 while ready is set.
type echoBackend struct {
	name  string
	lns   map[string]net.Listener
	ready atomic.Bool
	port  int // HTTP port
}

func startEchoBackend(t *testing.T, name string) *echoBackend {
	t.Helper()
	b := &echoBackend{name: name, lns: map[string]net.Listener{}}
	b.ready.Store(true)
	for _, proto := range []string{"tcp", "ws"} {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		b.lns[proto] = ln
		t.Cleanup(func() { ln.Close() })
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				go func() {
					defer c.Close()
					c.SetDeadline(time.Now().Add(5 * time.Second))
					rd := bufio.NewReader(c)
					h, err := proxyproto.Read(rd)
					if err != nil {
						fmt.Fprintf(c, "%s %s no-proxy-header %v\n", name, proto, err)
						return
					}
					fmt.Fprintf(c, "%s %s v%d %s\n", name, proto, h.Version, h.SourceAddr)
				}()
			}
		}()
	}
	hl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b.port = hl.Addr().(*net.TCPAddr).Port
	hs := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/readyz" || !b.ready.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte("ready\n"))
	})}
	go hs.Serve(hl)
	t.Cleanup(func() { hs.Close() })
	return b
}

// backend returns b as a server of the frontend for proto.
func (b *echoBackend) backend(proto string) HAProxyBackend {
	return HAProxyBackend{Name: b.name, Addr: b.lns[proto].Addr().String(), CheckPort: b.port}
}

// TestHAProxy puts HAProxy in front of two servers, with a TCP frontend
// and a WebSocket one to each server's second port: each connection
// arrives at the frontend's port with a PROXY v2 header naming the
// wallet's own loopback address, and a server whose /readyz turns red
// gets no new connections on either frontend until it is green again.
func TestHAProxy(t *testing.T) {
	if testing.Short() {
		t.Skip("runs haproxy")
	}
	a, b := startEchoBackend(t, "a"), startEchoBackend(t, "b")
	h := StartHAProxy(t, HAProxyOptions{
		Backends: []HAProxyBackend{a.backend("tcp"), b.backend("tcp")},
		Frontends: []HAProxyFrontend{{Name: "ws",
			Backends: []HAProxyBackend{a.backend("ws"), b.backend("ws")}}},
	})
	if h.Addrs["tcp"] != h.Addr || h.Addrs["ws"] == "" || h.Addrs["ws"] == h.Addr {
		t.Fatalf("frontend addresses %v, TCP at %s", h.Addrs, h.Addr)
	}
	// dial connects to frontend fe from 127.0.0.src and returns the
	// server that answered.
	dial := func(fe string, src int) (backend, line string) {
		t.Helper()
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(src))}, Timeout: 5 * time.Second}
		c, err := d.Dial("tcp", h.Addrs[fe])
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		l, err := bufio.NewReader(c).ReadString('\n')
		if err != nil {
			t.Fatalf("read through haproxy's %s frontend: %v", fe, err)
		}
		want := fmt.Sprintf(" %s v2 %s\n", fe, c.LocalAddr())
		if !strings.HasSuffix(l, want) {
			t.Fatalf("%s frontend: backend saw %q, want its %s port and the PROXY v2 source %s", fe, l, fe, c.LocalAddr())
		}
		return strings.Fields(l)[0], l
	}
	servers := func(fe string) map[string]HAProxyServer {
		t.Helper()
		st, err := h.BackendServers(fe)
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	waitStatus := func(name, want string) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			tcp, err := h.Servers() // the TCP frontend's
			if err != nil {
				t.Fatal(err)
			}
			ws := servers("ws")
			if strings.HasPrefix(tcp[name].Status, want) && strings.HasPrefix(ws[name].Status, want) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("server %s is %+v behind tcp and %+v behind ws, want %s", name, tcp[name], ws[name], want)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	waitStatus("a", "UP")
	waitStatus("b", "UP")
	for _, fe := range []string{"tcp", "ws"} {
		seen := map[string]int{}
		for i := range 6 {
			be, _ := dial(fe, 2+i)
			seen[be]++
		}
		if seen["a"] == 0 || seen["b"] == 0 {
			t.Fatalf("%s frontend: connections went to %v, want both servers", fe, seen)
		}
	}

	a.ready.Store(false)
	waitStatus("a", "DOWN")
	for _, fe := range []string{"tcp", "ws"} {
		before := servers(fe)
		for i := range 6 {
			if be, l := dial(fe, 10+i); be != "b" {
				t.Fatalf("%s frontend: a server with a red /readyz got a connection: %q", fe, l)
			}
		}
		after := servers(fe)
		if after["a"].Total != before["a"].Total || after["b"].Total != before["b"].Total+6 {
			t.Errorf("%s stats: a %d→%d, b %d→%d sessions; want a unchanged, b +6", fe, before["a"].Total, after["a"].Total, before["b"].Total, after["b"].Total)
		}
	}
	a.ready.Store(true)
	waitStatus("a", "UP")
	for _, fe := range []string{"tcp", "ws"} {
		back := 0
		for i := range 6 {
			if be, _ := dial(fe, 20+i); be == "a" {
				back++
			}
		}
		if back == 0 {
			t.Errorf("%s frontend: a is green again but got none of 6 new connections", fe)
		}
	}
}
