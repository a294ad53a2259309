package server_test

import (
	"bufio"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"amber/internal/testenv"
)

// metricSum adds up the samples of a metric family whose labels include
// every name=value pair of want.
func metricSum(t *testing.T, reg *prometheus.Registry, name string, want ...string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			for i := 0; i+1 < len(want); i += 2 {
				found := false
				for _, l := range m.GetLabel() {
					found = found || (l.GetName() == want[i] && l.GetValue() == want[i+1])
				}
				if !found {
					continue next
				}
			}
			switch {
			case m.Counter != nil:
				sum += m.Counter.GetValue()
			case m.Gauge != nil:
				sum += m.Gauge.GetValue()
			}
		}
	}
	return sum
}

// dialFrom connects to addr from a given loopback source address.
func dialFrom(t *testing.T, src, addr string) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}
	conn, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// p50 is the median of ds.
func p50(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

// TestFlooderThrottledThenDropped runs a flooder that pipelines history
// requests as fast as it can beside a polite wallet on another loopback
// address: the flooder is throttled, then answered -101 and
// disconnected, each logged once, while the polite session's median
// latency stays within twice what it was on the idle server.
func TestFlooderThrottledThenDropped(t *testing.T) {
	if testing.Short() {
		t.Skip("runs btcd")
	}
	log := &testenv.Buffer{}
	n := startNode(t, nodeOptions{log: log, env: map[string]string{
		// Low limits so the flooder crosses them in seconds; a short
		// sleep so the throttled phase is seconds, not minutes.
		"COST_SOFT_LIMIT": "300", "COST_HARD_LIMIT": "1500", "REQUEST_SLEEP": "40",
		// A wallet's few requests a second decay away; a flood does not.
		"COST_DECAY_PER_SEC": "20",
	}})
	mining := shOf(n.r.MiningScript.PkScript)

	polite := lineClient(t, dialFrom(t, "127.0.1.1", n.tcp))
	polite.call("server.version", "polite", "1.4")
	sample := func(k int) []time.Duration {
		var out []time.Duration
		for range k {
			began := time.Now()
			polite.call("blockchain.scripthash.get_balance", mining)
			out = append(out, time.Since(began))
			time.Sleep(100 * time.Millisecond)
		}
		return out
	}
	idle := p50(sample(30))

	conn := dialFrom(t, "127.0.0.1", n.tcp)
	fmt.Fprintf(conn, `{"jsonrpc":"2.0","id":0,"method":"server.version","params":["flooder","1.4"]}`+"\n")
	var (
		mu      sync.Mutex
		replies int
		last    map[string]json.RawMessage
	)
	readerDone := make(chan struct{})
	go func() {
		defer close(readerDone)
		sc := bufio.NewScanner(conn)
		sc.Buffer(nil, 16<<20)
		for sc.Scan() {
			var m map[string]json.RawMessage
			json.Unmarshal(sc.Bytes(), &m)
			mu.Lock()
			replies++
			last = m
			mu.Unlock()
		}
	}()
	go func() {
		req := fmt.Sprintf(`{"jsonrpc":"2.0","id":1,"method":"blockchain.scripthash.get_history","params":["%s"]}`+"\n", mining)
		for i := 0; i < 20_000; i++ {
			if _, err := conn.Write([]byte(req)); err != nil {
				return
			}
		}
	}()

	var loaded []time.Duration
	deadline := time.Now().Add(90 * time.Second)
	for {
		select {
		case <-readerDone:
		default:
			if time.Now().Before(deadline) {
				loaded = append(loaded, sample(1)...)
				continue
			}
			t.Fatalf("the flooder was not disconnected in 90 s (%d replies)", replies)
		}
		break
	}
	mu.Lock()
	defer mu.Unlock()
	var e struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	}
	json.Unmarshal(last["error"], &e)
	if e.Code != -101 || e.Message != "excessive resource usage" {
		t.Errorf("the flooder's last reply: %s, want error -101 excessive resource usage", last["error"])
	}
	logs := log.String()
	if c := strings.Count(logs, "throttling session"); c != 1 {
		t.Errorf("throttling logged %d times, want once", c)
	}
	if c := strings.Count(logs, "disconnecting session over the cost hard limit"); c != 1 {
		t.Errorf("the disconnect logged %d times, want once", c)
	}
	if v := metricSum(t, n.reg, "amber_throttled_requests_total"); v < 1 {
		t.Errorf("amber_throttled_requests_total = %v", v)
	}
	if v := metricSum(t, n.reg, "amber_session_disconnects_total", "reason", "excessive_usage"); v != 1 {
		t.Errorf("excessive_usage disconnects = %v, want 1", v)
	}
	// The polite wallet is unaffected: its median latency stays within
	// twice the idle server's, measured before and after the flood (the
	// larger, as other work on the machine comes and goes), or within
	// 1 ms, below which the figure is scheduler noise.
	idle = max(idle, p50(sample(30)))
	loadedP50 := p50(loaded)
	t.Logf("flooder: %d replies before the disconnect; polite p50 idle %v, during the flood %v (%d samples)", replies, idle, loadedP50, len(loaded))
	if loadedP50 > max(2*idle, time.Millisecond) {
		t.Errorf("polite p50 rose from %v idle to %v during the flood", idle, loadedP50)
	}
	if _, e := polite.raw("server.ping"); e != nil {
		t.Errorf("the polite session failed after the flood: %v", e)
	}
}

// TestSubscriptionLimits checks MAX_SESSION_SUBS and MAX_SUBS: excess
// subscriptions are refused with -101 while the session goes on, and
// subscriptions freed by a session leaving are available again.
func TestSubscriptionLimits(t *testing.T) {
	if testing.Short() {
		t.Skip("runs btcd")
	}
	n := startNode(t, nodeOptions{env: map[string]string{"MAX_SESSION_SUBS": "3", "MAX_SUBS": "5"}})
	script := func(i int) string {
		// The hex is byte-reversed: the last byte leads the hashX.
		b := make([]byte, 32)
		b[31] = byte(i)
		return hex.EncodeToString(b)
	}
	a := dialTCP(t, n.tcp)
	a.version("1.4.2")
	for i := range 3 {
		a.call("blockchain.scripthash.subscribe", script(i))
	}
	// Subscribing again to one it has costs nothing.
	a.call("blockchain.scripthash.subscribe", script(0))
	a.fails(-101, "excessive resource usage: over 3 subscriptions in one session", "blockchain.scripthash.subscribe", script(3))

	b := dialTCP(t, n.tcp)
	b.version("1.4.2")
	b.call("blockchain.scripthash.subscribe", script(10))
	b.call("blockchain.scripthash.subscribe", script(11))
	b.fails(-101, "excessive resource usage: server subscription limit 5 reached", "blockchain.scripthash.subscribe", script(12))
	if v := metricSum(t, n.reg, "amber_subscriptions"); v != 5 {
		t.Errorf("amber_subscriptions = %v, want 5", v)
	}

	// Unsubscribing frees one; a session leaving frees all of its own.
	a.call("blockchain.scripthash.unsubscribe", script(0))
	b.call("blockchain.scripthash.subscribe", script(12))
	a.closeFn()
	eventually(t, "a's subscriptions freed", 10*time.Second, func() bool { return metricSum(t, n.reg, "amber_subscriptions") == 3 })
	c := dialTCP(t, n.tcp)
	c.version("1.4")
	c.call("blockchain.scripthash.subscribe", script(20))
	c.call("blockchain.scripthash.subscribe", script(21))
	c.fails(-101, "excessive resource usage: server subscription limit 5 reached", "blockchain.scripthash.subscribe", script(22))
	// A refused session still works.
	c.call("server.ping")
}

// TestDropUnknownAndBanList checks DROP_CLIENT_UNKNOWN and a BAN_LIST
// given at start.
func TestDropUnknownAndBanList(t *testing.T) {
	if testing.Short() {
		t.Skip("runs btcd")
	}
	n := startNode(t, nodeOptions{env: map[string]string{"DROP_CLIENT_UNKNOWN": "on", "BAN_LIST": "127.0.2.0/24"}})
	l := dialLine(t, n.tcp)
	if e := errorOf(t, l.call(0, "server.version", "", "1.4")); e.Code != 1 || !strings.Contains(e.Message, "give a client name") {
		t.Errorf("server.version with no name: %+v", e)
	}
	l.closed()
	named := dialTCP(t, n.tcp)
	named.call("server.version", "Electrum 4.3.4", "1.4")

	// 127.0.2.1 is banned: refused at once; 127.0.3.1 is not.
	banned := dialFrom(t, "127.0.2.1", n.tcp)
	fmt.Fprintf(banned, `{"jsonrpc":"2.0","id":1,"method":"server.version","params":["x","1.4"]}`+"\n")
	banned.SetReadDeadline(time.Now().Add(10 * time.Second))
	if b, err := bufio.NewReader(banned).ReadBytes('\n'); err == nil {
		t.Errorf("a banned address was answered %s", b)
	}
	fine := lineClient(t, dialFrom(t, "127.0.3.1", n.tcp))
	fine.call("server.version", "fine", "1.4")
}

// TestReadinessFollowsLag runs `amber serve` with a slow poll: blocks
// mined past READY_MAX_LAG turn /readyz red before the node has synced
// them, and green again once it has.
func TestReadinessFollowsLag(t *testing.T) {
	if testing.Short() {
		t.Skip("runs btcd and amber")
	}
	r := testenv.StartRegtest(t, testenv.RegtestOptions{})
	r.Mine(3)
	s := startServed(t, r, "DAEMON_POLL_INTERVAL=20s", "READY_MAX_LAG=1")
	r.Btcd.Generate(3)
	waitFor(t, "/readyz red 3 blocks behind", 15*time.Second, func() bool { return s.readyz() == 503 })
	var info map[string]any
	s.admin(t, &info, "getinfo")
	if reason, _ := info["ready_reason"].(string); !strings.Contains(reason, "3 blocks behind the daemon (READY_MAX_LAG 1)") {
		t.Errorf("not ready because %q", info["ready_reason"])
	}
	waitFor(t, "/readyz green after the next poll", 40*time.Second, func() bool { return s.readyz() == 200 })
}
