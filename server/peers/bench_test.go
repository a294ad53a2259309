package peers

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"testing"
	"time"
)

// BenchmarkAddPeerLimited is the cost of a server.add_peer refused by
// the rate limit: what a flood of them costs the server.
func BenchmarkAddPeerLimited(b *testing.B) {
	o := Options{Network: regtestB(b), Chain: fakeChain{tip: 100}, Discovery: "on",
		Resolve: func(context.Context, string) ([]netip.Addr, error) { return nil, fmt.Errorf("no") }}
	m := New(o)
	caller := netip.MustParseAddrPort("203.0.113.5:1")
	feats := json.RawMessage(`{"hosts":{"h.spam.net":{"tcp_port":50001}},"genesis_hash":"00","protocol_max":"1.4"}`)
	m.AddPeer(context.Background(), caller, feats) // takes the bucket
	b.ReportAllocs()
	for b.Loop() {
		if ok, _ := m.AddPeer(context.Background(), caller, feats); ok {
			b.Fatal("accepted")
		}
	}
}

// BenchmarkSubscribe builds a server.peers.subscribe reply from 1000
// good peers, each in its own /16 network.
func BenchmarkSubscribe(b *testing.B) {
	m := New(Options{Network: regtestB(b), Chain: fakeChain{tip: 100}})
	now := time.Now()
	for i := range 1000 {
		host := fmt.Sprintf("p%d.example.org", i)
		m.peers[host] = &peer{key: host, host: host, ipAddr: fmt.Sprintf("%d.%d.0.%d", 11+i/250, i%250, 1+i%2),
			tcp: 50001, ssl: 50002, protocolMax: "1.4", lastGood: now}
	}
	b.ReportAllocs()
	for b.Loop() {
		if n := len(m.Subscribe()); n != 1000 {
			b.Fatalf("listed %d", n)
		}
	}
}
