package peers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	stdnet "net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"amber/internal/chain"
	"amber/internal/config"
)

// testOptions verify quickly: a verification is good for 2 s; a failed
// peer is retried after 0.5 s, doubling; a bad one is kept 7 s.
func testOptions(t *testing.T, c fakeChain, seeds ...string) Options {
	return Options{
		Network: regtest(t), Chain: c,
		Software: "amber-test", ProtocolMin: "1.4", ProtocolMax: "1.4.2",
		Discovery: "on", Seeds: seeds, AllowPrivate: true,
		VerifyInterval: 2 * time.Second, RetryInterval: 500 * time.Millisecond,
		RequestTimeout: 3 * time.Second,
	}
}

func listed(m *Manager, host string, port int) bool {
	for _, e := range m.Subscribe() {
		entry := e.([]any)
		if entry[1] == host && slices.Contains(entry[2].([]string), "t"+strconv.Itoa(port)) {
			return true
		}
	}
	return false
}

func TestVerify(t *testing.T) {
	ours := fakeChain{tip: 100, salt: "ours"}
	cases := []struct {
		name   string
		setup  func(f *fakePeer)
		reason string // "" for a good peer
	}{
		{name: "good", setup: func(*fakePeer) {}},
		{name: "tip a little behind", setup: func(f *fakePeer) { f.chain.tip = 96 }},
		{name: "other genesis", reason: "incorrect genesis hash",
			setup: func(f *fakePeer) { f.genesis = regtestOther }},
		{name: "other network, far other height", reason: "incorrect genesis hash",
			setup: func(f *fakePeer) { f.genesis, f.chain.tip = regtestOther, 2_500_000 }},
		{name: "other header at the checked height", reason: "differ at height 90",
			setup: func(f *fakePeer) { f.chain.salt = "theirs" }},
		{name: "tip too far ahead", reason: "bad height 106",
			setup: func(f *fakePeer) { f.chain.tip = 106 }},
		{name: "does not list its own host", reason: "not listed in its own hosts",
			setup: func(f *fakePeer) { f.host = "elsewhere.example.org" }},
		{name: "malformed server.version", reason: "bad server.version result",
			setup: func(f *fakePeer) { f.version = []any{"FakeX", 1.4} }},
		{name: "malformed peer list", reason: "bad server.peers.subscribe",
			setup: func(f *fakePeer) { f.peers = []any{[]any{"1.2.3.4", "x.example.org"}} }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := startFakePeer(t, regtest(t), fakeChain{tip: 100, salt: "ours"})
			f.set(tc.setup)
			m := New(testOptions(t, ours, f.name()))
			runManager(t, m)
			p := waitPeer(t, m, f.port, 10*time.Second, func(p PeerInfo) bool { return p.Status != StatusNever })
			if tc.reason == "" {
				if p.Status != StatusGood || p.IPAddr != "127.0.0.1" || p.ServerVersion != "FakeX 1.0" || p.ProtocolMax != "1.4.2" {
					t.Fatalf("peer %+v, want good, 127.0.0.1, FakeX 1.0, 1.4.2", p)
				}
				if !listed(m, "127.0.0.1", f.port) {
					t.Errorf("good peer not in server.peers.subscribe %v", m.Subscribe())
				}
				return
			}
			if p.Status != StatusBad || !strings.Contains(p.Reason, tc.reason) {
				t.Fatalf("peer %+v, want bad for %q", p, tc.reason)
			}
			if listed(m, "127.0.0.1", f.port) {
				t.Errorf("bad peer listed: %v", m.Subscribe())
			}
			// A bad peer is not tried again while remembered.
			f.mu.Lock()
			conns := f.conns
			f.mu.Unlock()
			time.Sleep(150 * time.Millisecond)
			f.mu.Lock()
			defer f.mu.Unlock()
			if f.conns != conns {
				t.Errorf("bad peer reconnected: %d connections, then %d", conns, f.conns)
			}
		})
	}

	t.Run("header checked below the lower tip", func(t *testing.T) {
		f := startFakePeer(t, regtest(t), fakeChain{tip: 97, salt: "ours"})
		m := New(testOptions(t, ours, f.name()))
		runManager(t, m)
		waitPeer(t, m, f.port, 10*time.Second, func(p PeerInfo) bool { return p.Status == StatusGood })
		f.mu.Lock()
		defer f.mu.Unlock()
		if len(f.asked) == 0 || f.asked[0] != 87 {
			t.Errorf("asked for headers at %v, want 87 (min(100, 97) - 10)", f.asked)
		}
	})
}

// regtestOther is testnet3's genesis: a real hash, not ours.
const regtestOther = "000000000933ea01ad0ee984209779baaec3ced90fa3f408719526f8d77f4943"

func TestUnreachablePeerForgotten(t *testing.T) {
	ln, err := stdnet.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*stdnet.TCPAddr).Port
	ln.Close() // nothing listens there now
	o := testOptions(t, fakeChain{tip: 100, salt: "ours"}, "127.0.0.1 t"+strconv.Itoa(port))
	o.RetryInterval = 20 * time.Millisecond
	m := New(o)
	runManager(t, m)
	waitPeer(t, m, port, 5*time.Second, func(p PeerInfo) bool { return p.Failures >= 1 && p.Status == StatusNever })
	// Back-off 40, 80 ms: forgotten after the third failure.
	deadline := time.Now().Add(10 * time.Second)
	for len(m.List()) > 0 {
		if p := m.List()[0]; p.Status == StatusBad {
			t.Fatalf("unreachable peer marked bad: %+v", p)
		}
		if time.Now().After(deadline) {
			t.Fatalf("unreachable peer not forgotten after 3 tries: %+v", m.List())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestLearnAndAnnounce(t *testing.T) {
	net := regtest(t)
	ours := fakeChain{tip: 100, salt: "ours"}
	a := startFakePeer(t, net, ours)
	others := []*fakePeer{startFakePeer(t, net, ours), startFakePeer(t, net, ours), startFakePeer(t, net, ours)}
	var list []any
	for _, o := range others {
		list = append(list, []any{"127.0.0.1", "127.0.0.1", []string{"v1.4", "t" + strconv.Itoa(o.port)}})
	}
	a.set(func(f *fakePeer) { f.peers = list })

	o := testOptions(t, ours, a.name())
	o.Announce = true
	o.VerifyInterval = time.Hour // one verification of a
	myPort := 1 + others[2].port // nothing listens there: we are not verified
	const myOnion = "ourhiddenserviceaddressxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx.onion"
	o.ReportServices = []config.Service{{Proto: "tcp", Host: myOnion, Port: 50001}, {Proto: "tcp", Host: "127.0.0.1", Port: myPort}}
	m := New(o)
	runManager(t, m)

	waitPeer(t, m, a.port, 10*time.Second, func(p PeerInfo) bool { return p.Status == StatusGood })
	// At most two unknown peers are taken from one list.
	time.Sleep(300 * time.Millisecond)
	learned := 0
	for _, o := range others {
		for _, p := range m.List() {
			if p.TCPPort == o.port {
				learned++
				if p.Status != StatusGood || p.Source != "peer 127.0.0.1 t"+strconv.Itoa(a.port) {
					t.Errorf("learned peer %v, want good with source the peer that listed it", p)
				}
			}
		}
	}
	if learned != 2 {
		t.Errorf("learned %d of the 3 peers a listed, want 2; have %+v", learned, m.List())
	}

	a.mu.Lock()
	adds := slices.Clone(a.addPeers)
	a.mu.Unlock()
	if len(adds) != 1 {
		t.Fatalf("got %d server.add_peer calls, want 1", len(adds))
	}
	var feats struct {
		Hosts       map[string]map[string]int `json:"hosts"`
		GenesisHash string                    `json:"genesis_hash"`
	}
	if err := json.Unmarshal(adds[0], &feats); err != nil {
		t.Fatal(err)
	}
	if feats.Hosts["127.0.0.1"]["tcp_port"] != myPort || feats.Hosts[myOnion]["tcp_port"] != 50001 || feats.GenesisHash != net.Genesis.String() {
		t.Errorf("announced %s, want our hosts 127.0.0.1 tcp %d and the onion, and regtest's genesis", adds[0], myPort)
	}
	// Peers look only at the first host: the clearnet one comes first.
	var raw struct{ Hosts json.RawMessage }
	json.Unmarshal(adds[0], &raw)
	if hosts, err := orderedHosts(raw.Hosts); err != nil || len(hosts) != 2 || hosts[0].name != "127.0.0.1" {
		t.Errorf("announced hosts %s in this order, want 127.0.0.1 first", raw.Hosts)
	}

	// Our own identity is never reached, so never listed; it is not
	// forgotten either.
	for _, e := range m.Subscribe() {
		if slices.Contains(e.([]any)[2].([]string), "t"+strconv.Itoa(myPort)) {
			t.Errorf("unverified self listed: %v", e)
		}
	}
	if !slices.ContainsFunc(m.List(), func(p PeerInfo) bool { return p.Source == "self" && p.TCPPort == myPort }) {
		t.Errorf("own identity not among the peers: %+v", m.List())
	}
}

func TestAddPeerRateLimit(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	lookups := map[string]int{}
	zone := map[string][]netip.Addr{
		"a.example.com":   {netip.MustParseAddr("203.0.113.5")},
		"b.example.com":   {netip.MustParseAddr("203.0.113.5")},
		"c.example.com":   {netip.MustParseAddr("203.0.113.5")},
		"elsewhere.org":   {netip.MustParseAddr("198.51.100.1")},
		"electrum.dev":    {netip.MustParseAddr("203.0.113.5"), netip.MustParseAddr("2001:db8::5")},
		"ipv6.electrum.x": {netip.MustParseAddr("2001:db8::5")},
	}
	o := testOptions(t, fakeChain{tip: 100})
	o.AllowPrivate = false
	o.Now = func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	o.Resolve = func(_ context.Context, host string) ([]netip.Addr, error) {
		mu.Lock()
		defer mu.Unlock()
		lookups[host]++
		if a, ok := zone[host]; ok {
			return a, nil
		}
		if a, err := netip.ParseAddr(host); err == nil {
			return []netip.Addr{a}, nil
		}
		return nil, errors.New("no such host")
	}
	m := New(o) // not running: add_peer only queues
	caller := netip.MustParseAddrPort("203.0.113.5:40000")
	add := func(from netip.AddrPort, host string) bool {
		t.Helper()
		feats := fmt.Sprintf(`{"hosts":{%q:{"tcp_port":50001,"ssl_port":50002}},"protocol_max":"1.4.2","genesis_hash":%q}`, host, regtest(t).Genesis)
		ok, err := m.AddPeer(context.Background(), from, json.RawMessage(feats))
		if err != nil {
			t.Fatalf("AddPeer(%s): %v", host, err)
		}
		return ok
	}
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }

	if !add(caller, "a.example.com") {
		t.Fatal("a host resolving to the caller was refused")
	}
	if add(caller, "b.example.com") {
		t.Error("a second host of example.com within 10 minutes was accepted")
	}
	if add(caller, "elsewhere.org") {
		t.Error("a host resolving to another address was accepted")
	}

	// Abuse: many calls with made-up hosts under one domain and as IP
	// literals. Each bucket costs at most one DNS lookup per pause.
	for i := range 500 {
		if add(caller, fmt.Sprintf("h%d.spam.net", i)) {
			t.Fatalf("made-up host h%d.spam.net accepted", i)
		}
		if add(caller, fmt.Sprintf("198.18.%d.%d", i/250, i%250+1)) {
			t.Fatalf("IP literal 198.18.%d.%d of another machine accepted", i/250, i%250+1)
		}
	}
	mu.Lock()
	spamLookups, ipLookups := 0, 0
	for h, n := range lookups {
		if strings.HasSuffix(h, ".spam.net") {
			spamLookups += n
		}
		if strings.HasPrefix(h, "198.18.") {
			ipLookups += n
		}
	}
	mu.Unlock()
	if spamLookups > 1 || ipLookups > 1 {
		t.Errorf("abuse caused %d lookups under spam.net and %d for IP literals, want at most 1 each", spamLookups, ipLookups)
	}
	// The caller's own address as an IP literal shares the IP bucket,
	// which the abuse above keeps busy.
	if add(caller, "203.0.113.5") {
		t.Error("an IP literal was accepted while the IP bucket was limited")
	}
	// Private hosts are never taken from add_peer here.
	advance(11 * time.Minute)
	if add(netip.MustParseAddrPort("10.0.0.7:1"), "10.0.0.7") {
		t.Error("a private address was accepted without PEER_ALLOW_PRIVATE")
	}

	// After the pause each bucket takes one again; the timestamp was
	// refreshed by the rejected attempts, so wait from the last one.
	advance(11 * time.Minute)
	if !add(caller, "c.example.com") {
		t.Error("example.com refused after the pause")
	}
	if !add(netip.MustParseAddrPort("[2001:db8::5]:1"), "ipv6.electrum.x") {
		t.Error("an IPv6 caller whose host resolves to it was refused")
	}
	if add(caller, "c.example.com") {
		t.Error("example.com accepted twice within the pause")
	}

	var sources []string
	for _, p := range m.List() {
		if p.Status != StatusNever || p.TCPPort != 50001 || p.SSLPort != 50002 {
			t.Errorf("queued peer %+v, want never verified with ports 50001/50002", p)
		}
		sources = append(sources, p.Host+" from "+p.Source)
	}
	slices.Sort(sources)
	want := []string{"a.example.com from 203.0.113.5", "c.example.com from 203.0.113.5", "ipv6.electrum.x from 2001:db8::5"}
	if !slices.Equal(sources, want) {
		t.Errorf("peers %v, want %v", sources, want)
	}

	// With discovery not on, add_peer is refused outright.
	o.Discovery = "self"
	if ok, _ := New(o).AddPeer(context.Background(), caller, json.RawMessage(`{"hosts":{"a.example.com":{"tcp_port":1}}}`)); ok {
		t.Error("add_peer accepted with PEER_DISCOVERY=self")
	}
}

func TestAddByOperator(t *testing.T) {
	f := startFakePeer(t, regtest(t), fakeChain{tip: 100, salt: "ours"})
	o := testOptions(t, fakeChain{tip: 100, salt: "ours"})
	m := New(o)
	runManager(t, m)
	for _, bad := range []string{"", "127.0.0.1", "not_a host!", "localhost t50001"} {
		if err := m.AdminAdd(context.Background(), bad); err == nil {
			t.Errorf("AdminAdd(%q) accepted", bad)
		}
	}
	// No rate limit: several in a row, then each is verified.
	g := startFakePeer(t, regtest(t), fakeChain{tip: 100, salt: "ours"})
	for _, name := range []string{f.name(), g.name()} {
		if err := m.AdminAdd(context.Background(), name); err != nil {
			t.Fatalf("AdminAdd(%q): %v", name, err)
		}
	}
	for _, port := range []int{f.port, g.port} {
		p := waitPeer(t, m, port, 10*time.Second, func(p PeerInfo) bool { return p.Status == StatusGood })
		if p.Source != "operator" {
			t.Errorf("source %q, want operator", p.Source)
		}
	}
	b, err := json.Marshal(m.AdminList())
	if err != nil {
		t.Fatal(err)
	}
	var list []map[string]any
	if err := json.Unmarshal(b, &list); err != nil || len(list) != 2 {
		t.Fatalf("AdminList JSON %s: %v", b, err)
	}
	for _, p := range list {
		if p["status"] != "good" || p["last_good"].(float64) < float64(time.Now().Add(-time.Minute).Unix()) || p["features"] == nil {
			t.Errorf("admin entry %v, want good with a recent last_good and features", p)
		}
	}

	o.Discovery = "off"
	if err := New(o).AdminAdd(context.Background(), f.name()); !errors.Is(err, ErrDiscoveryOff) {
		t.Errorf("with discovery off: %v, want ErrDiscoveryOff", err)
	}
}

func TestSOCKS5(t *testing.T) {
	ours := fakeChain{tip: 100, salt: "ours"}
	const onion = "expyuzz4wqqyqhjn2mtyxhvwwlnzhw2slnlq6vrsh3hvsbd4sduvxayd.onion"

	t.Run("all peers with TOR_PROXY_PORT", func(t *testing.T) {
		f := startFakePeer(t, regtest(t), ours)
		s := startSOCKS5(t, nil)
		o := testOptions(t, ours, f.name())
		o.ProxyHost, o.ProxyPort = "127.0.0.1", s.port
		m := New(o)
		runManager(t, m)
		p := waitPeer(t, m, f.port, 10*time.Second, func(p PeerInfo) bool { return p.Status != StatusNever })
		if p.Status != StatusGood {
			t.Fatalf("peer through the proxy: %+v", p)
		}
		if got := s.seen(); len(got) == 0 || got[0] != f.addr {
			t.Errorf("proxy asked for %v, want %s", got, f.addr)
		}
		// The fake saw the proxy connect, not us: every connection it
		// got came from the proxy's relay.
		f.mu.Lock()
		conns := f.conns
		f.mu.Unlock()
		if n := len(s.seen()); conns != n {
			t.Errorf("fake peer got %d connections, the proxy relayed %d", conns, n)
		}
	})

	t.Run("onion peer through the proxy, by name", func(t *testing.T) {
		f := startFakePeer(t, regtest(t), ours)
		f.set(func(f *fakePeer) { f.host = onion })
		s := startSOCKS5(t, func(string) string { return f.addr })
		o := testOptions(t, ours, onion+" t50001")
		o.ProxyHost, o.ProxyPort = "127.0.0.1", s.port
		m := New(o)
		runManager(t, m)
		deadline := time.Now().Add(10 * time.Second)
		for !slices.ContainsFunc(m.List(), func(p PeerInfo) bool { return p.Host == onion && p.Status == StatusGood }) {
			if time.Now().After(deadline) {
				t.Fatalf("onion peer not verified: %+v", m.List())
			}
			time.Sleep(20 * time.Millisecond)
		}
		if got := s.seen(); len(got) == 0 || got[0] != onion+":50001" {
			t.Errorf("proxy asked for %v, want the onion name %s:50001 (resolved by the proxy)", got, onion)
		}
		sub := m.Subscribe()
		if len(sub) != 1 || sub[0].([]any)[0] != onion || sub[0].([]any)[1] != onion {
			t.Errorf("server.peers.subscribe %v, want the onion peer listed by name", sub)
		}
	})

	t.Run("proxy found on a usual port for onion peers only", func(t *testing.T) {
		f := startFakePeer(t, regtest(t), ours)
		f.set(func(f *fakePeer) { f.host = onion })
		g := startFakePeer(t, regtest(t), ours)
		s := startSOCKS5(t, func(string) string { return f.addr })
		saved := proxyPorts
		proxyPorts = []int{g.port + 1, s.port} // the first has no proxy
		t.Cleanup(func() { proxyPorts = saved })
		o := testOptions(t, ours, onion+" t50001", g.name())
		o.ProxyHost = "127.0.0.1"
		m := New(o)
		runManager(t, m)
		waitPeer(t, m, g.port, 10*time.Second, func(p PeerInfo) bool { return p.Status == StatusGood })
		deadline := time.Now().Add(10 * time.Second)
		for !slices.ContainsFunc(m.List(), func(p PeerInfo) bool { return p.Host == onion && p.Status == StatusGood }) {
			if time.Now().After(deadline) {
				t.Fatalf("onion peer not verified through the detected proxy: %v", m.List())
			}
			time.Sleep(20 * time.Millisecond)
		}
		// The detection probe is a bare greeting; then one CONNECT, to
		// the onion only.
		if got := s.seen(); !slices.Equal(got, []string{onion + ":50001"}) {
			t.Errorf("proxy asked for %v, want only %s:50001", got, onion)
		}
	})

	t.Run("clearnet direct without TOR_PROXY_PORT", func(t *testing.T) {
		f := startFakePeer(t, regtest(t), ours)
		s := startSOCKS5(t, nil)
		o := testOptions(t, ours, f.name())
		o.ProxyHost = "127.0.0.1" // no port: only onion peers would use a proxy
		m := New(o)
		runManager(t, m)
		waitPeer(t, m, f.port, 10*time.Second, func(p PeerInfo) bool { return p.Status == StatusGood })
		if got := s.seen(); len(got) != 0 {
			t.Errorf("clearnet peer went through the proxy: %v", got)
		}
	})
}

func TestRealName(t *testing.T) {
	net := regtest(t)
	cases := []struct {
		in   string
		want realName
		err  bool
	}{
		{in: "Electrum.Example.org v1.4 s t50001", want: realName{host: "electrum.example.org", protocolMax: "1.4", ssl: net.SSLPort, tcp: 50001}},
		{in: "1.2.3.4 p1000 s443 x9 tbad", want: realName{host: "1.2.3.4", protocolMax: "0.0", pruning: 1000, ssl: 443}},
		{in: "[::1] t1", err: true},
		{in: "0.0.0.0 t1", err: true},
		{in: "", err: true},
		{in: "123.45 t1", err: true},
	}
	for _, tc := range cases {
		got, err := parseRealName(tc.in, net)
		if (err != nil) != tc.err || !tc.err && got != tc.want {
			t.Errorf("parseRealName(%q) = %+v, %v; want %+v, error %v", tc.in, got, err, tc.want, tc.err)
		}
	}
	if got := details("1.4.2", 0, 50002, 50001); !slices.Equal(got, []string{"v1.4.2", "s50002", "t50001"}) {
		t.Errorf("details = %v", got)
	}
	for in, want := range map[string]string{"1.4": "1.4", "1": "1.0", "01.4.0": "1.4.0", "1.x": "0.0", "": "0.0"} {
		if got := normVersion(in); got != want {
			t.Errorf("normVersion(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestSubscribeBuckets(t *testing.T) {
	o := testOptions(t, fakeChain{tip: 100})
	o.AllowPrivate = false
	m := New(o)
	now := time.Now()
	add := func(host, ip string, good time.Time, isBad bool) {
		m.peers[host] = &peer{key: host, host: host, ipAddr: ip, tcp: 50001, protocolMax: "1.4", lastGood: good, bad: isBad}
	}
	add("a.example.org", "8.8.1.1", now, false)
	add("b.example.org", "8.8.2.2", now, false)
	add("c.example.org", "8.8.3.3", now, false) // third in 8.8.0.0/16
	add("d.example.net", "9.9.9.9", now, false)
	add("stale.example.net", "7.7.7.7", now.Add(-time.Hour), false)
	add("bad.example.net", "6.6.6.6", now, true)
	add("never.example.net", "", time.Time{}, false)
	sub := m.Subscribe()
	var in16 int
	hosts := map[string]bool{}
	for _, e := range sub {
		entry := e.([]any)
		hosts[entry[1].(string)] = true
		if strings.HasPrefix(entry[0].(string), "8.8.") {
			in16++
		}
	}
	if in16 != 2 || !hosts["d.example.net"] || len(sub) != 3 {
		t.Errorf("server.peers.subscribe %v: want 2 of the three in 8.8.0.0/16 and d.example.net only", sub)
	}
}

func TestHostNamePeer(t *testing.T) {
	ours := fakeChain{tip: 100, salt: "ours"}
	f := startFakePeer(t, regtest(t), ours)
	f.set(func(f *fakePeer) { f.host = "electrum.peer.test" })
	o := testOptions(t, ours, "Electrum.Peer.Test t"+strconv.Itoa(f.port))
	o.AllowPrivate = false // a name is public whatever it resolves to
	var lookups []string
	var mu sync.Mutex
	o.Resolve = func(_ context.Context, host string) ([]netip.Addr, error) {
		mu.Lock()
		defer mu.Unlock()
		lookups = append(lookups, host)
		if host == "electrum.peer.test" {
			return []netip.Addr{netip.MustParseAddr("::ffff:127.0.0.1")}, nil
		}
		return nil, errors.New("no such host")
	}
	m := New(o)
	runManager(t, m)
	deadline := time.Now().Add(10 * time.Second)
	for !slices.ContainsFunc(m.List(), func(p PeerInfo) bool { return p.Status == StatusGood }) {
		if time.Now().After(deadline) {
			t.Fatalf("named peer not verified: %v", m.List())
		}
		time.Sleep(20 * time.Millisecond)
	}
	p := m.List()[0]
	if p.Host != "electrum.peer.test" || p.IPAddr != "127.0.0.1" {
		t.Errorf("peer %v with address %q, want electrum.peer.test at 127.0.0.1", p, p.IPAddr)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(lookups) == 0 || lookups[0] != "electrum.peer.test" {
		t.Errorf("resolved %v", lookups)
	}
}

func TestLocalAddr(t *testing.T) {
	m := New(Options{Services: []config.Service{
		{Proto: "rpc", Host: "10.0.0.9", Port: 8000},
		{Proto: "tcp", Host: "127.0.0.1", Port: 50001},
		{Proto: "tcp", Host: "203.0.113.7", Port: 50001},
		{Proto: "ssl", Host: "2001:db8::7", Port: 50002},
		{Proto: "tcp", Host: "electrum.example.org", Port: 50001},
	}})
	for target, want := range map[string]string{
		"198.51.100.1": "203.0.113.7",
		"127.0.0.1":    "127.0.0.1",
		"2001:db8::1":  "2001:db8::7",
		"::1":          "", // no IPv6 loopback listener
	} {
		got := m.localAddr(netip.MustParseAddr(target))
		if (got == nil) != (want == "") || got != nil && got.IP.String() != want {
			t.Errorf("localAddr(%s) = %v, want %q", target, got, want)
		}
	}
}

func TestBuiltinSeeds(t *testing.T) {
	for name, list := range seeds {
		coin, netName, _ := strings.Cut(name, "/")
		n, err := chain.Lookup(coin, netName)
		if err != nil || n.String() != name {
			t.Errorf("seed list %q names no network: %v", name, err)
			continue
		}
		m := New(Options{Network: n})
		for _, s := range list {
			r, err := parseRealName(s, n)
			if err != nil || r.tcp == 0 && r.ssl == 0 || !m.allowed(r.host) {
				t.Errorf("%s seed %q: %+v, %v; want a public host with a port", name, s, r, err)
			}
		}
	}
	for _, net := range []string{"mainnet", "testnet", "testnet4"} {
		n, _ := chain.Lookup("bitcoin", net)
		if len(seeds[n.String()]) == 0 {
			t.Errorf("no built-in seeds for %s", net)
		}
	}
}

func TestTLSPeer(t *testing.T) {
	ours := fakeChain{tip: 100, salt: "ours"}
	f := startTLSFakePeer(t, regtest(t), ours)
	m := New(testOptions(t, ours, f.name()))
	runManager(t, m)
	deadline := time.Now().Add(10 * time.Second)
	for {
		l := m.List()
		if len(l) == 1 && l[0].Status == StatusGood {
			if l[0].SSLPort != f.port || l[0].TCPPort != 0 {
				t.Errorf("peer %v, want ssl port %d only", l[0], f.port)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("self-signed TLS peer not verified: %v", l)
		}
		time.Sleep(20 * time.Millisecond)
	}
	sub := m.Subscribe()
	if len(sub) != 1 || !slices.Equal(sub[0].([]any)[2].([]string), []string{"v1.4.2", "s" + strconv.Itoa(f.port)}) {
		t.Errorf("server.peers.subscribe %v, want the peer with its ssl port", sub)
	}
}

func TestDiscoveryModes(t *testing.T) {
	ours := fakeChain{tip: 100, salt: "ours"}
	me := startFakePeer(t, regtest(t), ours)    // stands in for our own listener
	other := startFakePeer(t, regtest(t), ours) // a seed, ignored unless on
	self := []config.Service{{Proto: "tcp", Host: "127.0.0.1", Port: me.port}}

	t.Run("self", func(t *testing.T) {
		o := testOptions(t, ours, other.name())
		o.Discovery, o.ReportServices, o.Announce = "self", self, true
		m := New(o)
		runManager(t, m)
		p := waitPeer(t, m, me.port, 10*time.Second, func(p PeerInfo) bool { return p.Status == StatusGood })
		if p.Source != "self" {
			t.Errorf("own identity %v, want source self", p)
		}
		time.Sleep(100 * time.Millisecond)
		if l := m.List(); len(l) != 1 {
			t.Errorf("peers %v, want only ourselves", l)
		}
		if sub := m.Subscribe(); len(sub) != 1 || !listed(m, "127.0.0.1", me.port) {
			t.Errorf("server.peers.subscribe %v, want only ourselves", sub)
		}
		me.mu.Lock()
		defer me.mu.Unlock()
		if len(me.addPeers) != 0 {
			t.Errorf("announced ourselves to ourselves: %s", me.addPeers)
		}
		other.mu.Lock()
		defer other.mu.Unlock()
		if other.conns != 0 {
			t.Errorf("seed contacted in self mode")
		}
	})

	t.Run("off", func(t *testing.T) {
		o := testOptions(t, ours, other.name())
		o.Discovery, o.ReportServices = "off", self
		m := New(o)
		done := make(chan error)
		go func() { done <- m.Run(context.Background()) }()
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("Run with discovery off did not return")
		}
		if sub := m.Subscribe(); len(sub) != 0 || len(m.List()) != 0 {
			t.Errorf("discovery off: subscribe %v, peers %v", sub, m.List())
		}
	})
}

func TestMetrics(t *testing.T) {
	ours := fakeChain{tip: 100, salt: "ours"}
	good := startFakePeer(t, regtest(t), ours)
	bad := startFakePeer(t, regtest(t), ours)
	bad.set(func(f *fakePeer) { f.genesis = regtestOther })
	m := New(testOptions(t, ours, good.name(), bad.name()))
	reg := prometheus.NewRegistry()
	reg.MustRegister(m.Collector())
	runManager(t, m)
	waitPeer(t, m, good.port, 10*time.Second, func(p PeerInfo) bool { return p.Status == StatusGood })
	waitPeer(t, m, bad.port, 10*time.Second, func(p PeerInfo) bool { return p.Status == StatusBad })
	families, err := reg.Gather()
	if err != nil || len(families) != 1 {
		t.Fatalf("gathered %v, %v", families, err)
	}
	got := map[string]float64{}
	for _, mt := range families[0].GetMetric() {
		got[mt.GetLabel()[0].GetValue()] = mt.GetGauge().GetValue()
	}
	if families[0].GetName() != "amber_peers" || got["good"] != 1 || got["bad"] != 1 || got["never"] != 0 || got["stale"] != 0 {
		t.Errorf("%s = %v, want good 1, bad 1, never 0, stale 0", families[0].GetName(), got)
	}
}

func TestBlacklist(t *testing.T) {
	ours := fakeChain{tip: 100, salt: "ours"}
	byIP := startFakePeer(t, regtest(t), ours) // a name at a listed address
	byIP.set(func(f *fakePeer) { f.host = "ok.name.test" })
	byName := startFakePeer(t, regtest(t), ours)
	byName.set(func(f *fakePeer) { f.host = "x.evil.test" })
	var mu sync.Mutex
	list := `["*.EVIL.test", "127.0.0.1"]`
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		io.WriteString(w, list)
	}))
	t.Cleanup(hs.Close)

	o := testOptions(t, ours, "ok.name.test t"+strconv.Itoa(byIP.port), "x.evil.test t"+strconv.Itoa(byName.port), byName.name())
	o.BlacklistURL = hs.URL
	o.Resolve = func(context.Context, string) ([]netip.Addr, error) {
		return []netip.Addr{netip.MustParseAddr("127.0.0.1")}, nil
	}
	m := New(o)
	runManager(t, m)
	p := waitPeer(t, m, byIP.port, 10*time.Second, func(p PeerInfo) bool { return p.Status != StatusNever })
	if p.Status != StatusBad || p.Reason != "blacklisted" {
		t.Errorf("peer at a listed address: %v, want bad, blacklisted", p)
	}
	if l := m.List(); len(l) != 1 {
		t.Errorf("peers %v: want neither the one under a listed domain nor a listed address taken", l)
	}
	byName.mu.Lock()
	defer byName.mu.Unlock()
	if byName.conns != 0 {
		t.Errorf("peer listed by name or address was contacted")
	}
	if len(m.Subscribe()) != 0 {
		t.Errorf("server.peers.subscribe %v, want nothing listed", m.Subscribe())
	}

	// A fetch that fails keeps the list we have.
	mu.Lock()
	list = `not json`
	mu.Unlock()
	m.updateBlacklist(context.Background())
	m.mu.Lock()
	still := m.blacklisted("a.evil.test", "")
	m.mu.Unlock()
	if !still {
		t.Error("a failed fetch dropped the blacklist")
	}
}

func TestFromConfig(t *testing.T) {
	env := map[string]string{
		"NET": "testnet4", "DAEMON_URL": "http://u:p@127.0.0.1:1/", "DB_DIRECTORY": t.TempDir(),
		"SERVICES": "tcp://0.0.0.0:51001", "REPORT_SERVICES": "tcp://electrum.example.org:51001",
		"PEER_DISCOVERY": "self", "PEER_ANNOUNCE": "off", "PEER_SEEDS": " a.example.org s, b.example.org t1 ",
		"PEER_ALLOW_PRIVATE": "on", "PEER_VERIFY_INTERVAL": "90s", "PEER_RETRY_INTERVAL": "7",
		"TOR_PROXY_HOST": "tor.internal", "TOR_PROXY_PORT": "9999", "BLACKLIST_URL": "https://lists.example.org/b.json",
	}
	cfg, err := config.Load(config.Serve, nil, func(k string) string { return env[k] }, nil)
	if err != nil {
		t.Fatal(err)
	}
	ready := make(chan struct{})
	o := FromConfig(cfg, "Amber 9", "1.4", "1.7.0", fakeChain{}, ready, nil)
	if o.Network.Name != "testnet4" || o.Discovery != "self" || o.Announce || !o.AllowPrivate ||
		!slices.Equal(o.Seeds, []string{"a.example.org s", "b.example.org t1"}) ||
		o.VerifyInterval != 90*time.Second || o.RetryInterval != 7*time.Second ||
		o.ProxyHost != "tor.internal" || o.ProxyPort != 9999 || o.BlacklistURL != env["BLACKLIST_URL"] ||
		o.Software != "Amber 9" || o.ProtocolMax != "1.7.0" || len(o.ReportServices) != 1 || o.Ready == nil {
		t.Errorf("options %+v from %v", o, env)
	}
	for _, bad := range []map[string]string{
		{"PEER_DISCOVERY": "sometimes"}, {"PEER_VERIFY_INTERVAL": "1ms"}, {"TOR_PROXY_PORT": "70000"}, {"BLACKLIST_URL": "ftp://x/y"},
	} {
		e := maps.Clone(env)
		maps.Copy(e, bad)
		if _, err := config.Load(config.Serve, nil, func(k string) string { return e[k] }, nil); err == nil {
			t.Errorf("%v accepted", bad)
		}
	}
}
