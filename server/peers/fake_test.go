package peers

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"amber/internal/chain"
	"amber/internal/index"
)

// Test doubles: a chain of made-up headers, a small Electrum server
// that answers the verification sequence from settings, and a SOCKS5
// proxy that records what it was asked to reach.

// fakeChain is an index with a tip and a header per height.
type fakeChain struct {
	tip  int32
	salt string // a different salt is a different chain
}

func (c fakeChain) Tip() index.Tip { return index.Tip{Height: c.tip} }

func (c fakeChain) Header(h int32) ([]byte, error) {
	if h < 0 || h > c.tip {
		return nil, fmt.Errorf("no header at %d", h)
	}
	return makeHeader(c.salt, h), nil
}

// makeHeader is an 80-byte header unique to salt and height.
func makeHeader(salt string, h int32) []byte {
	var out []byte
	for i := byte(0); len(out) < 80; i++ {
		sum := sha256.Sum256(binary.BigEndian.AppendUint32([]byte(salt+string(i)), uint32(h)))
		out = append(out, sum[:]...)
	}
	return out[:80]
}

func regtest(t *testing.T) *chain.Network { return regtestB(t) }

func regtestB(t testing.TB) *chain.Network {
	t.Helper()
	n, err := chain.Lookup("bitcoin", "regtest")
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// fakePeer is an Electrum server on loopback that a Manager verifies.
type fakePeer struct {
	t    *testing.T
	addr string
	port int
	tls  bool // it listens on TLS: its port is an ssl_port

	mu       sync.Mutex
	genesis  string
	chain    fakeChain
	host     string // the host it lists itself as; "127.0.0.1" by default
	version  any    // the server.version result
	peers    []any  // its server.peers.subscribe result
	asked    []int  // heights asked with blockchain.block.header
	addPeers []json.RawMessage
	conns    int
	remotes  []string // remote address of each connection
}

func startFakePeer(t *testing.T, net_ *chain.Network, c fakeChain) *fakePeer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return serveFakePeer(t, ln, net_, c)
}

// startTLSFakePeer is a fake peer on TLS only, with a new self-signed
// certificate.
func startTLSFakePeer(t *testing.T, net_ *chain.Network, c fakeChain) *fakePeer {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "fake peer"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}})
	if err != nil {
		t.Fatal(err)
	}
	f := serveFakePeer(t, ln, net_, c)
	f.tls = true
	return f
}

func serveFakePeer(t *testing.T, ln net.Listener, net_ *chain.Network, c fakeChain) *fakePeer {
	f := &fakePeer{t: t, addr: ln.Addr().String(), port: ln.Addr().(*net.TCPAddr).Port,
		genesis: net_.Genesis.String(), chain: c, host: "127.0.0.1",
		version: []string{"FakeX 1.0", "1.4"}, peers: []any{}}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Go(func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() { f.serve(conn) })
		}
	})
	return f
}

// name is its real name for seeding.
func (f *fakePeer) name() string {
	if f.tls {
		return "127.0.0.1 s" + strconv.Itoa(f.port)
	}
	return "127.0.0.1 t" + strconv.Itoa(f.port)
}

func (f *fakePeer) set(fn func(f *fakePeer)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(f)
}

func (f *fakePeer) serve(conn net.Conn) {
	defer conn.Close()
	f.mu.Lock()
	f.conns++
	f.remotes = append(f.remotes, conn.RemoteAddr().String())
	f.mu.Unlock()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	sc := bufio.NewScanner(conn)
	for sc.Scan() {
		var req struct {
			ID     json.RawMessage `json:"id"`
			Method string          `json:"method"`
			Params []json.RawMessage
		}
		if err := json.Unmarshal(sc.Bytes(), &req); err != nil {
			return
		}
		result := f.answer(req.Method, req.Params)
		b, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": req.ID, "result": result})
		if _, err := conn.Write(append(b, '\n')); err != nil {
			return
		}
	}
}

// ports is its entry in features hosts. Call with mu held.
func (f *fakePeer) ports() map[string]any {
	if f.tls {
		return map[string]any{"ssl_port": f.port, "tcp_port": nil}
	}
	return map[string]any{"tcp_port": f.port, "ssl_port": nil}
}

func (f *fakePeer) answer(method string, params []json.RawMessage) any {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch method {
	case "server.version":
		return f.version
	case "blockchain.headers.subscribe":
		return map[string]any{"height": f.chain.tip, "hex": hex.EncodeToString(makeHeader(f.chain.salt, f.chain.tip))}
	case "blockchain.block.header":
		var h int32
		if len(params) > 0 {
			json.Unmarshal(params[0], &h)
		}
		f.asked = append(f.asked, int(h))
		return hex.EncodeToString(makeHeader(f.chain.salt, h))
	case "server.features":
		return map[string]any{
			"hosts":          map[string]any{f.host: f.ports()},
			"genesis_hash":   f.genesis,
			"server_version": "FakeX 1.0", "protocol_min": "1.4", "protocol_max": "1.4.2",
			"pruning": nil, "hash_function": "sha256",
		}
	case "server.peers.subscribe":
		return f.peers
	case "server.add_peer":
		if len(params) > 0 {
			f.addPeers = append(f.addPeers, params[0])
		}
		return true
	}
	return nil
}

// socks5 is a SOCKS5 proxy (no authentication, CONNECT only) that
// records each target and, through route, may send it elsewhere.
type socks5 struct {
	addr  string
	port  int
	route func(target string) string

	mu      sync.Mutex
	targets []string
}

func startSOCKS5(t *testing.T, route func(string) string) *socks5 {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &socks5{addr: ln.Addr().String(), port: ln.Addr().(*net.TCPAddr).Port, route: route}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer c.Close()
				if err := s.serve(c); err != nil {
					t.Logf("socks5: %v", err)
				}
			})
		}
	})
	return s
}

func (s *socks5) seen() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.targets...)
}

// serve handles one client (RFC 1928): greeting, CONNECT, then relay.
func (s *socks5) serve(c net.Conn) error {
	c.SetDeadline(time.Now().Add(10 * time.Second))
	var hdr [2]byte
	if _, err := io.ReadFull(c, hdr[:]); err != nil || hdr[0] != 5 {
		return fmt.Errorf("greeting %v: %v", hdr, err)
	}
	methods := make([]byte, hdr[1])
	if _, err := io.ReadFull(c, methods); err != nil {
		return err
	}
	if _, err := c.Write([]byte{5, 0}); err != nil {
		return err
	}
	var req [4]byte
	if _, err := io.ReadFull(c, req[:]); errors.Is(err, io.EOF) {
		return nil // a probe: greeting only
	} else if err != nil || req[1] != 1 {
		return fmt.Errorf("request %v: %v", req, err)
	}
	var host string
	switch req[3] {
	case 1, 4:
		ip := make([]byte, map[byte]int{1: 4, 4: 16}[req[3]])
		if _, err := io.ReadFull(c, ip); err != nil {
			return err
		}
		host = net.IP(ip).String()
	case 3:
		var n [1]byte
		if _, err := io.ReadFull(c, n[:]); err != nil {
			return err
		}
		name := make([]byte, n[0])
		if _, err := io.ReadFull(c, name); err != nil {
			return err
		}
		host = string(name)
	default:
		return errors.New("unknown address type")
	}
	var port [2]byte
	if _, err := io.ReadFull(c, port[:]); err != nil {
		return err
	}
	target := net.JoinHostPort(host, strconv.Itoa(int(binary.BigEndian.Uint16(port[:]))))
	s.mu.Lock()
	s.targets = append(s.targets, target)
	s.mu.Unlock()
	dest := target
	if s.route != nil {
		dest = s.route(target)
	}
	up, err := net.DialTimeout("tcp", dest, 5*time.Second)
	if err != nil {
		c.Write([]byte{5, 5, 0, 1, 0, 0, 0, 0, 0, 0}) // connection refused
		return err
	}
	defer up.Close()
	if _, err := c.Write([]byte{5, 0, 0, 1, 127, 0, 0, 1, 0, 0}); err != nil {
		return err
	}
	c.SetDeadline(time.Time{})
	done := make(chan struct{})
	go func() { io.Copy(up, c); up.Close(); close(done) }()
	io.Copy(c, up)
	c.Close()
	<-done
	return nil
}

// runManager starts m and stops it when the test ends.
func runManager(t *testing.T, m *Manager) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("Run did not return")
		}
	})
}

// waitPeer waits until m knows a peer on host with tcp port and cond
// holds for it, and returns it.
func waitPeer(t *testing.T, m *Manager, port int, within time.Duration, cond func(PeerInfo) bool) PeerInfo {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		for _, p := range m.List() {
			if p.TCPPort == port && cond(p) {
				return p
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no peer with tcp port %d in the wanted state within %v; have %+v", port, within, m.List())
		}
		time.Sleep(20 * time.Millisecond)
	}
}
