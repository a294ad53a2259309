package server_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/btcsuite/btcd/wire/v2"

	"amber/internal/config"
	"amber/internal/telemetry"
	"amber/internal/testenv"
	"amber/server"
)

// inproc is an in-process server with its log and readiness.
type inproc struct {
	srv    *server.Server
	health *telemetry.Health
	log    *testenv.Buffer
	dbDir  string
	stop   func()
}

// runInproc starts server.Run with env (NET, DAEMON_URL, ...) on a fresh
// DB_DIRECTORY and waits until it serves and reports ready.
func runInproc(t *testing.T, env map[string]string) *inproc {
	t.Helper()
	p := &inproc{health: telemetry.NewHealth("starting"), log: &testenv.Buffer{}, dbDir: t.TempDir()}
	full := map[string]string{"DB_DIRECTORY": p.dbDir, "SERVICES": "tcp://127.0.0.1:0", "PEER_DISCOVERY": "off",
		"DAEMON_POLL_INTERVAL": "100ms"}
	for k, v := range env {
		full[k] = v
	}
	cfg, err := config.Load(config.Serve, nil, func(k string) string { return full[k] }, nil)
	if err != nil {
		t.Fatal(err)
	}
	logger := slog.New(slog.NewTextHandler(p.log, &slog.HandlerOptions{Level: slog.LevelInfo}))
	p.srv = server.New(cfg, logger, telemetry.NewRegistry(), p.health)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.srv.Run(ctx) }()
	var once sync.Once
	p.stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("server: %v", err)
			}
		})
	}
	t.Cleanup(func() {
		p.stop()
		if t.Failed() {
			t.Logf("server log:\n%s", tailLines(p.log.String(), 60))
		}
	})
	select {
	case <-p.srv.Ready():
	case err := <-done:
		t.Fatalf("server stopped: %v", err)
	case <-time.After(3 * time.Minute):
		t.Fatal("server not serving after 3 minutes")
	}
	waitFor(t, "the server to be ready", 2*time.Minute, func() bool { ok, _ := p.health.Ready(); return ok },
		func() any { _, why := p.health.Ready(); return why })
	return p
}

// headerWatch subscribes to headers and keeps every notified height.
type headerWatch struct {
	mu      sync.Mutex
	heights []int32
}

func watchHeaders(t *testing.T, addr string) *headerWatch {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	fmt.Fprintf(conn, "%s\n%s\n", `{"jsonrpc":"2.0","id":1,"method":"server.version","params":["core-test","1.4"]}`,
		`{"jsonrpc":"2.0","id":2,"method":"blockchain.headers.subscribe","params":[]}`)
	lines := bufio.NewScanner(conn)
	lines.Buffer(nil, 1<<20)
	for i := 0; i < 2; i++ {
		if !lines.Scan() {
			t.Fatalf("no reply to the subscription: %v", lines.Err())
		}
	}
	w := &headerWatch{}
	go func() {
		for lines.Scan() {
			var n struct {
				Method string `json:"method"`
				Params []struct {
					Height int32 `json:"height"`
				} `json:"params"`
			}
			if json.Unmarshal(lines.Bytes(), &n) == nil && n.Method == "blockchain.headers.subscribe" && len(n.Params) == 1 {
				w.mu.Lock()
				w.heights = append(w.heights, n.Params[0].Height)
				w.mu.Unlock()
			}
		}
	}()
	return w
}

func (w *headerWatch) seen() []int32 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]int32(nil), w.heights...)
}

// TestCoreFailoverNeverRewinds indexes the real mainnet blocks 0..14,131
// from Bitcoin Core A, then loses A and fails over to B, 20 blocks behind,
// and then, losing B, to C, restarted with -reindex. Neither is a reorg:
// no block is disconnected, no headers notification goes backwards,
// readiness is red while no daemon is at the index's tip and green once C
// is, and the index equals an uninterrupted run's.
func TestCoreFailoverNeverRewinds(t *testing.T) {
	if testing.Short() {
		t.Skip("runs Bitcoin Core and amber")
	}
	const tip = testenv.MainnetBlocksTip
	blocks := testenv.MainnetBlocksFile(t)
	opts := testenv.BitcoindOptions{Network: "mainnet", OldTip: true, LoadBlocks: []string{blocks}}
	a := testenv.StartBitcoind(t, opts)
	b := testenv.StartBitcoind(t, opts)
	c := testenv.StartBitcoind(t, opts)
	for _, n := range []*testenv.Bitcoind{a, b, c} {
		n.WaitHeight(tip, 2*time.Minute)
	}
	var hash string
	b.MustCall(&hash, "getblockhash", tip-19)
	b.MustCall(nil, "invalidateblock", hash)
	if h := b.Height(); h != tip-20 {
		t.Fatalf("B at %d, want %d", h, tip-20)
	}

	p := runInproc(t, map[string]string{"NET": "mainnet", "DAEMON_URL": a.URL() + "," + b.URL() + "," + c.URL(),
		"DAEMON_RETRY_MAX": "250ms", "READY_MAX_LAG": "2"})
	watch := watchHeaders(t, p.srv.Addrs()[0])

	// Sample readiness throughout; a green sample must come when C (the
	// only daemon that can reach the tip once A is gone) is at it.
	var (
		mu        sync.Mutex
		reasons   = map[string]bool{}
		badGreens []string
		sampling  = make(chan struct{})
		sampled   = make(chan struct{})
		redSeen   = make(chan struct{})
		redOnce   sync.Once
	)
	go func() {
		defer close(sampled)
		for {
			select {
			case <-sampling:
				return
			case <-time.After(20 * time.Millisecond):
			}
			ok, why := p.health.Ready()
			if !ok {
				mu.Lock()
				reasons[why] = true
				mu.Unlock()
				redOnce.Do(func() { close(redSeen) })
				continue
			}
			select {
			case <-redSeen:
			default:
				continue // still green from A: its loss is not yet seen
			}
			var h int32
			if err := c.CallInto(&h, "getblockcount"); err != nil || h < tip-2 {
				mu.Lock()
				badGreens = append(badGreens, fmt.Sprintf("ready while C is at %d (%v)", h, err))
				mu.Unlock()
			}
		}
	}()

	a.Kill()
	select {
	case <-redSeen:
	case <-time.After(30 * time.Second):
		t.Fatal("still ready 30 s after losing A, with only B (20 behind) left")
	}
	waitFor(t, "the server to wait for B", 20*time.Second, func() bool {
		return strings.Contains(p.log.String(), "daemon is behind the index")
	})
	c.Reindex()
	reindexing := c.Height()
	b.Kill()
	c.WaitHeight(tip, 2*time.Minute)
	waitFor(t, "ready again once C has reindexed", time.Minute, func() bool { ok, _ := p.health.Ready(); return ok },
		func() any { _, why := p.health.Ready(); return why })
	close(sampling)
	<-sampled

	log := p.log.String()
	if strings.Contains(log, "chain reorganised") {
		t.Error("blocks were disconnected")
	}
	if !strings.Contains(log, c.RPCAddr()) {
		t.Error("the server never failed over to C")
	}
	last := int32(tip)
	for _, h := range watch.seen() {
		if h < last {
			t.Errorf("headers notification went back to %d (after %d)", h, last)
		}
		last = h
	}
	mu.Lock()
	for _, g := range badGreens {
		t.Error(g)
	}
	t.Logf("C was at %d when its -reindex restart answered; not-ready reasons seen: %v", reindexing, reasons)
	sawC := false
	for why := range reasons {
		sawC = sawC || strings.Contains(why, c.RPCAddr())
	}
	if !sawC {
		t.Error("readiness never named C while it reindexed: the failover did not reach it in time")
	}
	mu.Unlock()
	if got := p.srv.Addrs(); len(got) == 0 {
		t.Fatal("server stopped serving")
	}
	p.stop()

	ref := runInproc(t, map[string]string{"NET": "mainnet", "DAEMON_URL": c.URL()})
	ref.stop()
	if got, want := testenv.DigestDir(t, p.dbDir), testenv.DigestDir(t, ref.dbDir); got != want {
		t.Fatalf("index digest %s after the failovers, %s from an uninterrupted run", got, want)
	}
}

// TestCoreNoTxIndex serves transaction.get (raw and verbose) and
// get_merkle for confirmed and mempool transactions from a Bitcoin Core
// without -txindex: the index names each confirmed transaction's block.
func TestCoreNoTxIndex(t *testing.T) {
	if testing.Short() {
		t.Skip("runs Bitcoin Core and amber")
	}
	r := testenv.StartRegtest(t, testenv.RegtestOptions{Core: true})
	r.Mine(101)
	confirmed := r.Pay(r.Wallet.NewScript(testenv.P2WPKH).TxOut(1e8), testenv.NullDataOutput([]byte("no txindex")))
	r.Mine(1)
	unconfirmed := r.Pay(r.Wallet.NewScript(testenv.P2TR).TxOut(2e8))
	// Core itself cannot find the confirmed one without its block.
	if _, err := r.Core.Call("getrawtransaction", confirmed.TxHash().String(), 0); err == nil {
		t.Fatal("Core found a confirmed transaction without -txindex and a block hash; the test proves nothing")
	}

	p := runInproc(t, map[string]string{"NET": "regtest", "DAEMON_URL": r.URL()})
	c := dialTCP(t, p.srv.Addrs()[0])
	c.version("1.4")
	waitFor(t, "the mempool view to have the payment", 20*time.Second, func() bool {
		return len(get[[]map[string]any](c, "blockchain.scripthash.get_mempool", shOf(unconfirmed.TxOut[0].PkScript))) == 1
	})
	for _, tx := range []*wire.MsgTx{confirmed, unconfirmed} {
		if got := get[string](c, "blockchain.transaction.get", tx.TxHash().String()); got != txHex(t, tx) {
			t.Errorf("transaction.get %s: %.60s..., want the transaction", tx.TxHash(), got)
		}
		v := get[map[string]any](c, "blockchain.transaction.get", tx.TxHash().String(), true)
		if v["txid"] != tx.TxHash().String() || v["hex"] != txHex(t, tx) {
			t.Errorf("verbose transaction.get %s: %v", tx.TxHash(), v)
		}
	}
	m := get[map[string]any](c, "blockchain.transaction.get_merkle", confirmed.TxHash().String(), 102)
	if pos, _ := m["pos"].(float64); pos != 1 {
		t.Errorf("get_merkle: %v", m)
	}
	if strings.Contains(p.log.String(), "--txindex") {
		t.Error("the server asked Bitcoin Core for a transaction index")
	}
	// Core runs on this host: the catch-up read its block files.
	if !strings.Contains(p.log.String(), "reading blocks from the daemon's block files") {
		t.Error("the server did not read Core's block files on this host")
	}
}

// TestBtcdWithoutTxIndexSaysSo: btcd has no block-hash form of
// getrawtransaction, so the server says in one line at start that it
// needs --txindex.
func TestBtcdWithoutTxIndexSaysSo(t *testing.T) {
	if testing.Short() {
		t.Skip("runs btcd and amber")
	}
	r := testenv.StartRegtest(t, testenv.RegtestOptions{Btcd: testenv.BtcdOptions{NoTxIndex: true}})
	r.Mine(2)
	p := runInproc(t, map[string]string{"NET": "regtest", "DAEMON_URL": r.URL()})
	if n := strings.Count(p.log.String(), "restart btcd with --txindex"); n != 1 {
		t.Fatalf("%d lines naming --txindex, want 1:\n%s", n, p.log.String())
	}
}

// TestCoreCookieRestart: with a DAEMON_URL without a password the server
// authenticates with Core's cookie; Core restarts and writes a new cookie,
// and the server keeps serving (new blocks, transactions) without ever
// logging the cookie.
func TestCoreCookieRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("runs Bitcoin Core and amber")
	}
	r := testenv.StartRegtest(t, testenv.RegtestOptions{Core: true, Bitcoind: testenv.BitcoindOptions{Cookie: true}})
	r.Mine(101)
	_, before, err := r.Core.Cookie()
	if err != nil {
		t.Fatal(err)
	}
	p := runInproc(t, map[string]string{"NET": "regtest", "DAEMON_URL": r.URL(), "DAEMON_COOKIE_FILE": r.Core.CookiePath})
	c := dialTCP(t, p.srv.Addrs()[0])
	c.version("1.4")
	c.call("blockchain.headers.subscribe")

	r.Restart()
	_, after, err := r.Core.Cookie()
	if err != nil || after == before {
		t.Fatalf("Core kept its cookie across a restart (%v)", err)
	}
	r.Mine(1)
	c.waitHeader(102)
	tx := r.Pay(r.Wallet.NewScript(testenv.P2WPKH).TxOut(1e8))
	waitFor(t, "the payment in the mempool view", 20*time.Second, func() bool {
		return len(get[[]map[string]any](c, "blockchain.scripthash.get_mempool", shOf(tx.TxOut[0].PkScript))) == 1
	})
	if got := get[string](c, "blockchain.transaction.get", tx.TxHash().String()); got != txHex(t, tx) {
		t.Error("transaction.get after the restart did not return the payment")
	}
	log := p.log.String()
	for _, secret := range []string{before, after} {
		if strings.Contains(log, secret) {
			t.Fatal("the log shows a cookie")
		}
	}
	if n := strings.Count(log, "daemon warming up"); n > 1 {
		t.Errorf("%d warm-up lines for one restart, want at most 1", n)
	}
}

// TestCoreWarmUpWaited: Core restarting with a full check of its blocks
// answers RPC -28 for a while; the server waits it out with one log line
// and keeps serving.
func TestCoreWarmUpWaited(t *testing.T) {
	if testing.Short() {
		t.Skip("runs Bitcoin Core and amber")
	}
	const tip = testenv.MainnetBlocksTip
	core := testenv.StartBitcoind(t, testenv.BitcoindOptions{Network: "mainnet", OldTip: true,
		LoadBlocks: []string{testenv.MainnetBlocksFile(t)}, LoadHeight: tip})
	p := runInproc(t, map[string]string{"NET": "mainnet", "DAEMON_URL": core.URL()})
	core.Restart("-checkblocks=0", "-checklevel=4")
	waitFor(t, "the server to see Core warm up", 30*time.Second, func() bool {
		return strings.Contains(p.log.String(), "daemon warmed up")
	})
	if n := strings.Count(p.log.String(), "daemon warming up"); n != 1 {
		t.Errorf("%d warm-up lines, want 1", n)
	}
	c := dialTCP(t, p.srv.Addrs()[0])
	c.version("1.4")
	var hdr struct {
		Height int32 `json:"height"`
	}
	if err := json.Unmarshal(c.call("blockchain.headers.subscribe"), &hdr); err != nil || hdr.Height != tip {
		t.Fatalf("after the warm-up: tip %d (%v)", hdr.Height, err)
	}
	if ok, why := p.health.Ready(); !ok {
		waitFor(t, "ready after the warm-up", 10*time.Second, func() bool { ok, _ := p.health.Ready(); return ok }, func() any { return why })
	}
}

// TestCoreZMQ: with polling set to an hour, Bitcoin Core's ZMQ sequence
// feeds the mempool view and hashblock wakes the follower; after Core
// restarts, the subscriptions come back.
func TestCoreZMQ(t *testing.T) {
	if testing.Short() {
		t.Skip("runs Bitcoin Core and amber")
	}
	r := testenv.StartRegtest(t, testenv.RegtestOptions{Core: true})
	r.Mine(101)
	p := runInproc(t, map[string]string{"NET": "regtest", "DAEMON_URL": r.URL(), "DAEMON_POLL_INTERVAL": "1h",
		"ZMQ_HASHBLOCK": r.Core.ZMQHashBlock, "ZMQ_SEQUENCE": r.Core.ZMQSequence})
	c := dialTCP(t, p.srv.Addrs()[0])
	c.version("1.4")
	c.call("blockchain.headers.subscribe")
	round := func(what string, want int32) {
		t.Helper()
		s := r.Wallet.NewScript(testenv.P2WPKH)
		c.call("blockchain.scripthash.subscribe", shOf(s.PkScript))
		tx := r.Pay(s.TxOut(1e8))
		c.waitStatus("blockchain.scripthash.subscribe", shOf(s.PkScript), statusOf(entry{TxHash: tx.TxHash().String(), Height: 0}), 15*time.Second)
		r.Mine(1)
		c.waitHeader(want)
		t.Logf("%s: mempool and block notified through ZMQ", what)
	}
	time.Sleep(500 * time.Millisecond) // the subscriptions connect
	round("first", 102)
	r.Restart()
	time.Sleep(2 * time.Second) // backoff and redial
	round("after a Core restart", 103)
}

// TestCorePackageAndFees: broadcast_package goes to Core's submitpackage
// (a child paying for its parent), testmempoolaccept to Core's, and
// relayfee and estimatefee answer from Core.
func TestCorePackageAndFees(t *testing.T) {
	if testing.Short() {
		t.Skip("runs Bitcoin Core and amber")
	}
	r := testenv.StartRegtest(t, testenv.RegtestOptions{Core: true})
	r.Mine(101)
	p := runInproc(t, map[string]string{"NET": "regtest", "DAEMON_URL": r.URL()})
	c := dialTCP(t, p.srv.Addrs()[0])
	c.version("1.7")

	s := r.Wallet.NewScript(testenv.P2WPKH)
	parent, _ := build(t, r, testenv.TxRequest{Outputs: []*wire.TxOut{s.TxOut(1e8)}})
	r.Wallet.AddTx(parent) // not broadcast: the package carries it
	child, _ := build(t, r, testenv.TxRequest{Inputs: []*testenv.UTXO{walletUTXO(t, r, wire.OutPoint{Hash: parent.TxHash()})}, NoSelect: true,
		Outputs: []*wire.TxOut{r.Wallet.NewScript(testenv.P2TR).TxOut(9e7)}})

	accept := get[[]map[string]any](c, "blockchain.transaction.testmempoolaccept", []string{txHex(t, parent)})
	if len(accept) != 1 || accept[0]["allowed"] != true || accept[0]["txid"] != parent.TxHash().String() {
		t.Fatalf("testmempoolaccept: %v", accept)
	}
	if _, err := r.Core.Call("getmempoolentry", parent.TxHash().String()); err == nil {
		t.Fatal("testmempoolaccept put the transaction in the mempool")
	}
	res := get[map[string]any](c, "blockchain.transaction.broadcast_package", []string{txHex(t, parent), txHex(t, child)})
	if res["success"] != true {
		t.Fatalf("broadcast_package: %v", res)
	}
	for _, tx := range []*wire.MsgTx{parent, child} {
		if _, err := r.Core.Call("getmempoolentry", tx.TxHash().String()); err != nil {
			t.Fatalf("%s not in Core's mempool after broadcast_package: %v", tx.TxHash(), err)
		}
	}

	var netInfo struct {
		RelayFee float64 `json:"relayfee"`
	}
	r.Core.MustCall(&netInfo, "getnetworkinfo")
	old := dialTCP(t, p.srv.Addrs()[0])
	old.version("1.4") // relayfee is gone from 1.7
	if got := get[float64](old, "blockchain.relayfee"); got != netInfo.RelayFee {
		t.Errorf("relayfee %v, Core says %v", got, netInfo.RelayFee)
	}
	var est struct {
		FeeRate *float64 `json:"feerate"`
	}
	r.Core.MustCall(&est, "estimatesmartfee", 2)
	want := -1.0
	if est.FeeRate != nil {
		want = *est.FeeRate
	}
	if got := get[float64](c, "blockchain.estimatefee", 2); got != want {
		t.Errorf("estimatefee 2: %v, Core's estimatesmartfee says %v", got, want)
	}
}
