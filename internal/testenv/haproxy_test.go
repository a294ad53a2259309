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

// echoBackend is a server behind HAProxy: it reads the PROXY v2 header
// and answers each connection with its name and the client address the
// header carried; its /readyz answers 200 while ready is set.
type echoBackend struct {
	name  string
	ln    net.Listener
	ready atomic.Bool
	port  int // HTTP port
}

func startEchoBackend(t *testing.T, name string) *echoBackend {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &echoBackend{name: name, ln: ln}
	b.ready.Store(true)
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
					fmt.Fprintf(c, "%s no-proxy-header %v\n", name, err)
					return
				}
				fmt.Fprintf(c, "%s v%d %s\n", name, h.Version, h.SourceAddr)
			}()
		}
	}()
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
	t.Cleanup(func() { ln.Close(); hs.Close() })
	return b
}

// TestHAProxy puts HAProxy in front of two servers: each connection
// arrives with a PROXY v2 header naming the wallet's own loopback
// address, and a server whose /readyz turns red gets no new connections
// until it is green again.
func TestHAProxy(t *testing.T) {
	if testing.Short() {
		t.Skip("runs haproxy")
	}
	a, b := startEchoBackend(t, "a"), startEchoBackend(t, "b")
	h := StartHAProxy(t, HAProxyOptions{Backends: []HAProxyBackend{
		{Name: "a", Addr: a.ln.Addr().String(), CheckPort: a.port},
		{Name: "b", Addr: b.ln.Addr().String(), CheckPort: b.port},
	}})
	// dial connects from 127.0.0.src and returns the backend's line.
	dial := func(src int) (backend, line string) {
		t.Helper()
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(src))}, Timeout: 5 * time.Second}
		c, err := d.Dial("tcp", h.Addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		l, err := bufio.NewReader(c).ReadString('\n')
		if err != nil {
			t.Fatalf("read through haproxy: %v", err)
		}
		want := fmt.Sprintf(" v2 %s\n", c.LocalAddr())
		if !strings.HasSuffix(l, want) {
			t.Fatalf("backend saw %q, want the PROXY v2 source %s", l, c.LocalAddr())
		}
		return strings.Fields(l)[0], l
	}
	waitStatus := func(name, want string) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			st, err := h.Servers()
			if err != nil {
				t.Fatal(err)
			}
			if strings.HasPrefix(st[name].Status, want) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("server %s is %+v, want %s", name, st[name], want)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	waitStatus("a", "UP")
	waitStatus("b", "UP")
	seen := map[string]int{}
	for i := range 6 {
		be, _ := dial(2 + i)
		seen[be]++
	}
	if seen["a"] == 0 || seen["b"] == 0 {
		t.Fatalf("connections went to %v, want both servers", seen)
	}

	a.ready.Store(false)
	waitStatus("a", "DOWN")
	before, _ := h.Servers()
	for i := range 6 {
		if be, l := dial(10 + i); be != "b" {
			t.Fatalf("a server with a red /readyz got a connection: %q", l)
		}
	}
	after, _ := h.Servers()
	if after["a"].Total != before["a"].Total || after["b"].Total != before["b"].Total+6 {
		t.Errorf("stats: a %d→%d, b %d→%d sessions; want a unchanged, b +6", before["a"].Total, after["a"].Total, before["b"].Total, after["b"].Total)
	}
	a.ready.Store(true)
	waitStatus("a", "UP")
	back := 0
	for i := range 6 {
		if be, _ := dial(20 + i); be == "a" {
			back++
		}
	}
	if back == 0 {
		t.Error("a is green again but got none of 6 new connections")
	}
}
