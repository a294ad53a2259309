package server_test

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"amber/internal/config"
	"amber/internal/telemetry"
	"amber/internal/testenv"
	"amber/server"
	"amber/server/peers"
)

// The admin RPC's peers and add_peer commands are served by the peer
// manager.
var _ server.PeerAdmin = (*peers.Manager)(nil)

// peerNode is an amber server taking part in peer discovery on
// loopback, with its Electrum TCP port and admin RPC address.
type peerNode struct {
	port int
	rpc  string
}

// startPeerNode runs an in-process amber server on r's btcd that
// reports itself at 127.0.0.1:port and starts discovery from seeds.
func startPeerNode(t *testing.T, r *testenv.Regtest, port int, seeds ...string) peerNode {
	t.Helper()
	return startPeerNodeEnv(t, r, port, nil, seeds...)
}

// startPeerNodeEnv is startPeerNode with more configuration.
func startPeerNodeEnv(t *testing.T, r *testenv.Regtest, port int, extra map[string]string, seeds ...string) peerNode {
	t.Helper()
	n := peerNode{port: port, rpc: fmt.Sprintf("127.0.0.1:%d", freePort(t))}
	env := map[string]string{
		"NET": "regtest", "DB_DIRECTORY": t.TempDir(), "DAEMON_URL": r.Btcd.URL(),
		"DAEMON_POLL_INTERVAL": "100ms",
		"SERVICES":             fmt.Sprintf("tcp://127.0.0.1:%d,rpc://%s", port, n.rpc),
		"REPORT_SERVICES":      fmt.Sprintf("tcp://127.0.0.1:%d", port),
		"PEER_DISCOVERY":       "on", "PEER_ALLOW_PRIVATE": "on",
		"PEER_SEEDS": strings.Join(seeds, ","),
		// Re-verified every 1.5 s, so peers learned late show up quickly;
		// an unreachable one is tried at 0, 2 and 6 s, then forgotten.
		"PEER_VERIFY_INTERVAL": "3s", "PEER_RETRY_INTERVAL": "1",
	}
	maps.Copy(env, extra)
	cfg, err := config.Load(config.Serve, nil, func(k string) string { return env[k] }, nil)
	if err != nil {
		t.Fatal(err)
	}
	srv := server.New(cfg, telemetry.Discard(), telemetry.NewRegistry(), telemetry.NewHealth("starting"))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	select {
	case <-srv.Ready():
	case err := <-done:
		t.Fatalf("server on port %d stopped: %v", port, err)
	case <-time.After(60 * time.Second):
		t.Fatalf("server on port %d not ready in 60 s", port)
	}
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("server on port %d returned %v", port, err)
			}
		case <-time.After(30 * time.Second):
			t.Errorf("server on port %d did not stop", port)
		}
	})
	return n
}

// subscribedPorts are the TCP ports of the 127.0.0.1 peers n lists in
// server.peers.subscribe.
func (n peerNode) subscribedPorts(t *testing.T) []int {
	t.Helper()
	c := dialTCP(t, fmt.Sprintf("127.0.0.1:%d", n.port))
	defer c.closeFn()
	c.version("1.4")
	var ports []int
	for _, e := range get[[][]json.RawMessage](c, "server.peers.subscribe") {
		var ip, host string
		var details []string
		if len(e) != 3 || json.Unmarshal(e[0], &ip) != nil || json.Unmarshal(e[1], &host) != nil || json.Unmarshal(e[2], &details) != nil {
			t.Fatalf("server.peers.subscribe entry %s", e)
		}
		if ip != "127.0.0.1" || host != "127.0.0.1" || len(details) == 0 || !strings.HasPrefix(details[0], "v1.") {
			t.Errorf("server.peers.subscribe entry %q %q %q", ip, host, details)
		}
		for _, d := range details {
			if p, err := strconv.Atoi(strings.TrimPrefix(d, "t")); strings.HasPrefix(d, "t") && err == nil {
				ports = append(ports, p)
			}
		}
	}
	slices.Sort(ports)
	return ports
}

// adminPeer is an entry of the admin RPC's peers reply.
type adminPeer struct {
	Host    string `json:"host"`
	TCPPort int    `json:"tcp_port"`
	Status  string `json:"status"`
	Reason  string `json:"reason"`
	Source  string `json:"source"`
}

// admin runs an admin RPC command on n.
func (n peerNode) admin(t *testing.T, method string, params ...any) json.RawMessage {
	t.Helper()
	l := dialLine(t, n.rpc)
	defer l.c.Close()
	return resultOf(t, l.call(1, method, params...))
}

// TestPeerDiscovery runs three servers on one regtest chain, each
// seeded with the next: every one comes to list the other two. A fourth
// on another chain with the same genesis (another btcd) serves other
// headers and is rejected by the one it is shown to.
func TestPeerDiscovery(t *testing.T) {
	r := testenv.StartRegtest(t, testenv.RegtestOptions{})
	r.Mine(30)
	// Another wallet seed: its coinbases differ, so its blocks do even
	// when mined in the same second.
	other := testenv.StartRegtest(t, testenv.RegtestOptions{Seed: []byte("amber peers fork")})
	other.Mine(30)

	ports := []int{freePort(t), freePort(t), freePort(t)}
	slices.Sort(ports)
	forkPort := freePort(t)
	seed := func(p int) string { return fmt.Sprintf("127.0.0.1 t%d", p) }
	// Started so that each seed is up already, except c's (a), which c
	// learns about through b.
	startPeerNode(t, other, forkPort)
	c := startPeerNode(t, r, ports[2], seed(ports[0]))
	b := startPeerNode(t, r, ports[1], seed(ports[2]))
	a := startPeerNode(t, r, ports[0], seed(ports[1]), seed(forkPort))

	// a checks the fork at once and marks it bad, with the reason.
	var forkSeen adminPeer
	waitFor(t, "a to judge the fork", 20*time.Second, func() bool {
		var list []adminPeer
		if err := json.Unmarshal(a.admin(t, "peers"), &list); err != nil {
			t.Fatal(err)
		}
		i := slices.IndexFunc(list, func(p adminPeer) bool { return p.TCPPort == forkPort })
		if i >= 0 {
			forkSeen = list[i]
		}
		return forkSeen.Status == "bad" || forkSeen.Status == "good"
	}, func() any { return forkSeen })
	if forkSeen.Status != "bad" || !strings.Contains(forkSeen.Reason, "differ at height") {
		t.Errorf("a's view of the fork on %d: %+v, want bad for a different header", forkPort, forkSeen)
	}

	start := time.Now()
	for _, n := range []peerNode{a, b, c} {
		deadline := time.Now().Add(60 * time.Second)
		for {
			got := n.subscribedPorts(t)
			if slices.Equal(got, ports) { // the other two, and itself
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("server on %d lists ports %v after 60 s, want %v; its peers: %s", n.port, got, ports, n.admin(t, "peers"))
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	t.Logf("all three list each other after %v", time.Since(start).Round(time.Millisecond))

	// No one lists the fork.
	for _, n := range []peerNode{a, b, c} {
		if slices.Contains(n.subscribedPorts(t), forkPort) {
			t.Errorf("server on %d lists the fork", n.port)
		}
	}
	// add_peer abuse from a wallet connection: other machines' addresses
	// are never accepted nor queued (IP literals, so no DNS is asked).
	cl := dialTCP(t, fmt.Sprintf("127.0.0.1:%d", b.port))
	cl.version("1.4")
	for i := range 5 {
		host := fmt.Sprintf("198.18.0.%d", i+1)
		if get[bool](cl, "server.add_peer", map[string]any{"hosts": map[string]any{host: map[string]any{"tcp_port": 50001}}}) {
			t.Errorf("server.add_peer of %s accepted", host)
		}
	}
	cl.closeFn()
	if peers := string(b.admin(t, "peers")); strings.Contains(peers, "198.18.") {
		t.Errorf("other machines among b's peers: %s", peers)
	}

	// The operator can add a peer through the admin RPC; a malformed
	// one is refused with a reason.
	if msg := string(a.admin(t, "add_peer", seed(ports[2]))); !strings.Contains(msg, "added") {
		t.Errorf("add_peer: %s", msg)
	}
	l := dialLine(t, a.rpc)
	if e := errorOf(t, l.call(2, "add_peer", "bad!host t1")); !strings.Contains(e.Message, "valid host") {
		t.Errorf("add_peer of a bad name: %+v", e)
	}
}

// TestPeerDiscoveryThroughSOCKS5 runs one server with TOR_PROXY_PORT set
// and a SOCKS5 proxy in the test that relays and records what it is
// asked for: the server reaches its seed, and itself, only through it.
func TestPeerDiscoveryThroughSOCKS5(t *testing.T) {
	r := testenv.StartRegtest(t, testenv.RegtestOptions{})
	r.Mine(20)
	proxy := startSOCKS5(t)
	seedPort, torPort := freePort(t), freePort(t)
	startPeerNodeEnv(t, r, seedPort, map[string]string{"PEER_ANNOUNCE": "off"})
	tor := startPeerNodeEnv(t, r, torPort, map[string]string{
		"TOR_PROXY_HOST": "127.0.0.1", "TOR_PROXY_PORT": strconv.Itoa(proxy.port),
	}, fmt.Sprintf("127.0.0.1 t%d", seedPort))

	want := []int{min(seedPort, torPort), max(seedPort, torPort)}
	waitFor(t, "the proxied server to list its seed and itself", 60*time.Second, func() bool {
		return slices.Equal(tor.subscribedPorts(t), want)
	}, func() any { return string(tor.admin(t, "peers")) })
	got := proxy.seen()
	for _, p := range []int{seedPort, torPort} {
		if !slices.Contains(got, fmt.Sprintf("127.0.0.1:%d", p)) {
			t.Errorf("proxy relayed %v; nothing to port %d", got, p)
		}
	}
}

// socks5 is a SOCKS5 proxy (RFC 1928: no authentication, CONNECT to an
// IPv4 address or a name) that records each target and relays to it.
type socks5 struct {
	port    int
	mu      sync.Mutex
	targets []string
}

func startSOCKS5(t *testing.T) *socks5 {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &socks5{port: ln.Addr().(*net.TCPAddr).Port}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() { s.serve(c) })
		}
	})
	return s
}

func (s *socks5) seen() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.targets)
}

func (s *socks5) serve(c net.Conn) {
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 262)
	// Greeting: version, methods; we take "no authentication".
	if _, err := io.ReadFull(c, buf[:2]); err != nil || buf[0] != 5 {
		return
	}
	if _, err := io.ReadFull(c, buf[:buf[1]]); err != nil {
		return
	}
	if _, err := c.Write([]byte{5, 0}); err != nil {
		return
	}
	// Request: version, CONNECT, reserved, address type, address, port.
	if _, err := io.ReadFull(c, buf[:4]); err != nil || buf[1] != 1 {
		return
	}
	var host string
	switch buf[3] {
	case 1:
		if _, err := io.ReadFull(c, buf[:4]); err != nil {
			return
		}
		host = net.IP(buf[:4]).String()
	case 3:
		if _, err := io.ReadFull(c, buf[:1]); err != nil {
			return
		}
		n := int(buf[0])
		if _, err := io.ReadFull(c, buf[:n]); err != nil {
			return
		}
		host = string(buf[:n])
	default:
		return
	}
	if _, err := io.ReadFull(c, buf[:2]); err != nil {
		return
	}
	target := net.JoinHostPort(host, strconv.Itoa(int(binary.BigEndian.Uint16(buf[:2]))))
	s.mu.Lock()
	s.targets = append(s.targets, target)
	s.mu.Unlock()
	up, err := net.DialTimeout("tcp", target, 5*time.Second)
	if err != nil {
		c.Write([]byte{5, 5, 0, 1, 0, 0, 0, 0, 0, 0})
		return
	}
	defer up.Close()
	if _, err := c.Write([]byte{5, 0, 0, 1, 127, 0, 0, 1, 0, 0}); err != nil {
		return
	}
	c.SetDeadline(time.Time{})
	go func() { io.Copy(up, c); up.Close() }()
	io.Copy(c, up)
}
