package server_test

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/btcsuite/btcd/chaincfg/v2"
	"github.com/btcsuite/btcd/txscript/v2"
	"github.com/btcsuite/btcd/wire/v2"
	"github.com/coder/websocket"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"amber/internal/chain"
	"amber/internal/testenv"
	"amber/internal/testenv/chaingen"
)

// The wallet load benchmarks run the real `amber serve` binary in its own
// process, so that its memory can be read from /proc, against btcd
// holding a generated chain, and drive it with simulated wallets over
// loopback. Every figure comes with a baseline measured in the same run:
// requests/s of the wallet mix against server.ping from the same
// sessions, notification delay with N wallets against one wallet, server
// memory with N sessions against none.
//
// AMBER_BENCH_WORKLOAD picks the chain ("small" by default, or "large")
// and AMBER_BENCH_WALLETS the number of wallets (default 1,000).
// AMBER_BENCH_FLAT_ONLY=1 runs the Electrum-like load flat out only, not
// at the fractions of it: enough to compare two builds.
// AMBER_BENCH_DAEMON=core runs the Electrum-like load against Bitcoin
// Core (with the chain submitted to it too) instead of btcd.

const (
	// walletScripts is how many scripts every simulated wallet watches:
	// walletUnused of them never used, as a wallet's gap limit keeps.
	walletScripts = 20
	walletUnused  = 5
	// walletTxsPerScript bounds the transactions a wallet fetches per
	// script, so a wallet that drew a long history stays bounded.
	walletTxsPerScript = 10
	// benchRounds is the number of mempool-then-block rounds while the
	// wallets idle.
	benchRounds = 2
	// roundPayments is the number of transactions broadcast per round,
	// each paying two watched scripts.
	roundPayments = 40
	// benchPings is the number of server.ping calls per wallet for the
	// baseline request rate.
	benchPings = 10
)

// benchWallets returns AMBER_BENCH_WALLETS, default 1,000.
func benchWallets(b *testing.B) int {
	s := os.Getenv("AMBER_BENCH_WALLETS")
	if s == "" {
		return 1000
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 {
		b.Fatalf("AMBER_BENCH_WALLETS=%q: want a positive number", s)
	}
	return n
}

// raiseFDLimit raises the soft open-file limit to need (bounded by the
// hard limit): every wallet holds a socket here and one in the server.
func raiseFDLimit(b *testing.B, need uint64) {
	var r syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &r); err != nil {
		b.Fatal(err)
	}
	if r.Cur < need {
		r.Cur = min(need, r.Max)
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &r); err != nil {
			b.Fatalf("raise the open file limit to %d: %v", need, err)
		}
	}
	if r.Cur < need {
		b.Fatalf("open file limit %d (hard %d), need %d: raise it (ulimit -n) or set fewer AMBER_BENCH_WALLETS", r.Cur, r.Max, need)
	}
}

// buildAmber builds the amber binary once for a benchmark.
func buildAmber(b *testing.B) string {
	b.Helper()
	bin := filepath.Join(b.TempDir(), "amber")
	if out, err := exec.Command("go", "build", "-o", bin, "amber/cmd/amber").CombinedOutput(); err != nil {
		b.Fatalf("build amber: %v\n%s", err, out)
	}
	return bin
}

// amberProc is a running `amber serve`.
type amberProc struct {
	cmd          *exec.Cmd
	log          *testenv.Buffer
	tcp, ws, web string
	once         sync.Once
	exit         chan struct{} // closed when the process has exited
}

// benchPort returns a free loopback port.
func benchPort(b *testing.B) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// startAmber runs `amber serve` on node (btcd or Bitcoin Core) with an empty database, with
// session cost limits off (every wallet comes from 127.0.0.1, so they
// would share one budget), room for many sessions and subscriptions, and
// replies large enough for the busy script, and waits until it is ready. It stops the server when the benchmark ends.
func startAmber(b *testing.B, bin string, node testenv.Node, extra ...string) *amberProc {
	b.Helper()
	tcp, ws, web := benchPort(b), benchPort(b), benchPort(b)
	p := &amberProc{log: &testenv.Buffer{}, tcp: fmt.Sprintf("127.0.0.1:%d", tcp), ws: fmt.Sprintf("127.0.0.1:%d", ws),
		web: fmt.Sprintf("127.0.0.1:%d", web)}
	p.cmd = exec.Command(bin, "serve")
	p.cmd.Env = append(os.Environ(), "NET=regtest", "DB_DIRECTORY="+b.TempDir(), "DAEMON_URL="+node.URL(),
		"SERVICES=tcp://"+p.tcp+",ws://"+p.ws, fmt.Sprintf("HTTP_ADDR=127.0.0.1:%d", web),
		"DAEMON_POLL_INTERVAL=100ms", "PEER_DISCOVERY=off", "LOG_LEVEL=warn",
		"COST_SOFT_LIMIT=0", "COST_HARD_LIMIT=0", "MAX_SESSIONS=1000000", "MAX_SUBS=100000000",
		"MAX_SESSION_SUBS=100000", "MAX_SEND=100000000", "SESSION_TIMEOUT=3600")
	// PPROF lets the benchmark force a GC before reading memory, and
	// take profiles; the HTTP listener is on loopback.
	p.cmd.Env = append(p.cmd.Env, "PPROF=on")
	p.cmd.Env = append(p.cmd.Env, extra...)
	p.cmd.Stderr = p.log
	if err := p.cmd.Start(); err != nil {
		b.Fatal(err)
	}
	p.exit = make(chan struct{})
	go func() {
		p.cmd.Wait()
		close(p.exit)
	}()
	b.Cleanup(func() {
		p.stop()
		if b.Failed() {
			b.Logf("amber serve log:\n%s", tailLines(p.log.String(), 40))
		}
	})
	ready := "http://" + p.web + "/readyz"
	deadline := time.Now().Add(10 * time.Minute)
	for {
		if resp, err := http.Get(ready); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		select {
		case <-p.exit:
			b.Fatalf("amber serve exited: %v; log:\n%s", p.cmd.ProcessState, tailLines(p.log.String(), 40))
		default:
		}
		if time.Now().After(deadline) {
			b.Fatalf("amber serve not ready within 10 minutes; log:\n%s", tailLines(p.log.String(), 40))
		}
		time.Sleep(100 * time.Millisecond)
	}
	return p
}

// stop interrupts the server and waits for it to exit.
func (p *amberProc) stop() {
	p.once.Do(func() {
		p.cmd.Process.Signal(os.Interrupt)
		select {
		case <-p.exit:
		case <-time.After(30 * time.Second):
			p.cmd.Process.Kill()
			<-p.exit
		}
	})
}

// profileDir returns AMBER_BENCH_PROFILE: a directory to write CPU
// profiles of the server into, taken while the wallets sync.
func profileDir() string { return os.Getenv("AMBER_BENCH_PROFILE") }

// profile fetches a CPU profile of the server over the next seconds into
// the profile directory as name, in the background; wait for it with the
// returned function.
func (p *amberProc) profile(b *testing.B, name string, seconds int) (wait func()) {
	done := make(chan error, 1)
	go func() {
		resp, err := http.Get(fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", p.web, seconds))
		if err != nil {
			done <- err
			return
		}
		defer resp.Body.Close()
		f, err := os.Create(filepath.Join(profileDir(), name))
		if err != nil {
			done <- err
			return
		}
		_, err = io.Copy(f, resp.Body)
		done <- errors.Join(err, f.Close())
	}()
	return func() {
		if err := <-done; err != nil {
			b.Errorf("server profile %s: %v", name, err)
		}
	}
}

// heapAfterGC makes the server collect garbage (the heap profile with
// gc=1) and returns its heap in use after it, from the profile's MemStats.
func (p *amberProc) heapAfterGC(b *testing.B) float64 {
	b.Helper()
	resp, err := http.Get("http://" + p.web + "/debug/pprof/heap?gc=1&debug=1")
	if err != nil {
		b.Fatalf("force a GC in the server: %v", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		b.Fatal(err)
	}
	for line := range strings.Lines(string(body)) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "# HeapInuse = "); ok {
			n, err := strconv.ParseFloat(v, 64)
			if err != nil {
				b.Fatalf("HeapInuse line %q: %v", line, err)
			}
			return n
		}
	}
	b.Fatalf("no HeapInuse in the server's heap profile (status %s)", resp.Status)
	return 0
}

// awaitNoSessions waits until the server's amber_sessions gauges are all
// zero: every closed wallet's session has ended.
func (p *amberProc) awaitNoSessions(b *testing.B) {
	b.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		resp, err := http.Get("http://" + p.web + "/metrics")
		if err != nil {
			b.Fatalf("read the server's metrics: %v", err)
		}
		parser := expfmt.NewTextParser(model.UTF8Validation)
		families, err := parser.TextToMetricFamilies(resp.Body)
		resp.Body.Close()
		if err != nil {
			b.Fatalf("parse the server's metrics: %v", err)
		}
		open := 0.0
		for _, m := range families["amber_sessions"].GetMetric() {
			open += m.GetGauge().GetValue()
		}
		if open == 0 {
			return
		}
		if time.Now().After(deadline) {
			b.Fatalf("%v sessions still open a minute after every wallet closed", open)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// procUsage is the server process's CPU time and write syscalls so far.
type procUsage struct {
	cpu    time.Duration
	writes int64
}

// usage reads the server's CPU time (/proc/pid/stat) and write syscalls
// (/proc/pid/io): per request, they show what a change costs the server
// even where a shared machine makes requests/s noisy.
func (p *amberProc) usage(b *testing.B) procUsage {
	b.Helper()
	pid := p.cmd.Process.Pid
	st, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		b.Fatalf("read the server's CPU time: %v (the benchmark needs Linux /proc)", err)
	}
	// Fields after the command name, which is in parentheses: utime and
	// stime are the 12th and 13th, in clock ticks (100 a second on Linux).
	f := strings.Fields(string(st[bytes.LastIndexByte(st, ')')+1:]))
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		b.Fatalf("/proc/%d/stat: %v", pid, err)
	}
	u := procUsage{cpu: time.Duration(utime+stime) * 10 * time.Millisecond}
	io, err := os.ReadFile(fmt.Sprintf("/proc/%d/io", pid))
	if err != nil {
		b.Fatalf("read the server's syscall counts: %v", err)
	}
	for line := range strings.Lines(string(io)) {
		if rest, ok := strings.CutPrefix(line, "syscw:"); ok {
			if u.writes, err = strconv.ParseInt(strings.TrimSpace(rest), 10, 64); err != nil {
				b.Fatalf("/proc/%d/io: %v", pid, err)
			}
		}
	}
	return u
}

// rss returns the resident memory of the server process in bytes.
func (p *amberProc) rss(b *testing.B) float64 {
	b.Helper()
	st, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		b.Fatalf("read the server's memory: %v (the wallet benchmark needs Linux /proc)", err)
	}
	for line := range strings.Lines(string(st)) {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 64)
			if err != nil {
				b.Fatalf("VmRSS line %q: %v", line, err)
			}
			return kb * 1024
		}
	}
	b.Fatal("no VmRSS in /proc status")
	return 0
}

// heard is a notification as a wallet received it.
type heard struct {
	method string
	key    string // the script hash, or the height for headers
	at     time.Time
}

// benchConn is a lean Electrum client: many of them run at once, so it
// keeps only what the benchmark measures.
type benchConn struct {
	send    func([]byte) error
	closeFn func()
	done    chan struct{} // closed when the reader stops

	mu      sync.Mutex
	nextID  int
	waiting map[int]chan benchReply
	notes   []heard
	readErr error
}

type benchReply struct {
	result json.RawMessage
	err    json.RawMessage
	at     time.Time // when the reply was read
}

// dialBench connects over "tcp" or "ws".
func dialBench(transport, addr string) (*benchConn, error) {
	c := &benchConn{waiting: map[int]chan benchReply{}, done: make(chan struct{})}
	switch transport {
	case "tcp":
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			return nil, err
		}
		w := bufio.NewWriter(conn)
		var wmu sync.Mutex
		c.send = func(b []byte) error {
			wmu.Lock()
			defer wmu.Unlock()
			w.Write(b)
			w.WriteByte('\n')
			return w.Flush()
		}
		c.closeFn = func() { conn.Close() }
		go func() {
			r := bufio.NewReaderSize(conn, 64<<10)
			for {
				line, err := r.ReadSlice('\n')
				if errors.Is(err, bufio.ErrBufferFull) {
					// A long reply: gather the rest of it.
					full := bytes.Clone(line)
					for errors.Is(err, bufio.ErrBufferFull) {
						line, err = r.ReadSlice('\n')
						full = append(full, line...)
					}
					line = full
				}
				if err != nil {
					c.stop(err)
					return
				}
				c.dispatch(line)
			}
		}()
	case "ws":
		ctx := context.Background()
		ws, _, err := websocket.Dial(ctx, "ws://"+addr+"/", nil)
		if err != nil {
			return nil, err
		}
		ws.SetReadLimit(64 << 20)
		c.send = func(b []byte) error { return ws.Write(ctx, websocket.MessageText, b) }
		c.closeFn = func() { ws.CloseNow() }
		go func() {
			for {
				_, msg, err := ws.Read(ctx)
				if err != nil {
					c.stop(err)
					return
				}
				c.dispatch(msg)
			}
		}()
	default:
		return nil, fmt.Errorf("unknown transport %q", transport)
	}
	return c, nil
}

func (c *benchConn) stop(err error) {
	c.mu.Lock()
	c.readErr = err
	c.mu.Unlock()
	close(c.done)
}

func (c *benchConn) close() {
	c.closeFn()
	<-c.done
}

func (c *benchConn) dispatch(msg []byte) {
	at := time.Now()
	var m struct {
		ID     *int              `json:"id"`
		Method string            `json:"method"`
		Params []json.RawMessage `json:"params"`
		Result json.RawMessage   `json:"result"`
		Error  json.RawMessage   `json:"error"`
	}
	if json.Unmarshal(msg, &m) != nil {
		return
	}
	if m.Method != "" {
		h := heard{method: m.Method, at: at}
		if len(m.Params) > 0 {
			if m.Method == "blockchain.headers.subscribe" {
				var hdr struct {
					Height int `json:"height"`
				}
				json.Unmarshal(m.Params[0], &hdr)
				h.key = strconv.Itoa(hdr.Height)
			} else {
				json.Unmarshal(m.Params[0], &h.key)
			}
		}
		c.mu.Lock()
		c.notes = append(c.notes, h)
		c.mu.Unlock()
		return
	}
	if m.ID == nil {
		return
	}
	c.mu.Lock()
	ch := c.waiting[*m.ID]
	delete(c.waiting, *m.ID)
	c.mu.Unlock()
	if ch != nil {
		ch <- benchReply{result: m.Result, err: m.Error, at: at}
	}
}

// call sends one request and waits for its reply, returning the result
// and the round trip time.
func (c *benchConn) call(method string, params ...any) (json.RawMessage, time.Duration, error) {
	if params == nil {
		params = []any{}
	}
	ch := make(chan benchReply, 1)
	c.mu.Lock()
	c.nextID++
	id := c.nextID
	c.waiting[id] = ch
	c.mu.Unlock()
	req, err := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": id, "method": method, "params": params})
	if err != nil {
		return nil, 0, err
	}
	start := time.Now()
	if err := c.send(req); err != nil {
		return nil, 0, fmt.Errorf("%s: send: %w", method, err)
	}
	timer := time.NewTimer(2 * time.Minute)
	defer timer.Stop()
	select {
	case r := <-ch:
		took := time.Since(start)
		if r.err != nil {
			return nil, took, fmt.Errorf("%s%v: error %s", method, params, r.err)
		}
		return r.result, took, nil
	case <-c.done:
		return nil, 0, fmt.Errorf("%s: connection closed: %v", method, c.readErr)
	case <-timer.C:
		return nil, 0, fmt.Errorf("%s: no reply in 2 minutes", method)
	}
}

// heardSince returns the time of the first notification of method for
// key received at or after since.
func (c *benchConn) heardSince(method, key string, since time.Time) (time.Time, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, h := range c.notes {
		if h.method == method && h.key == key && !h.at.Before(since) {
			return h.at, true
		}
	}
	return time.Time{}, false
}

// simWallet is one simulated Electrum wallet.
type simWallet struct {
	c       *benchConn
	scripts []string // script hashes watched
	lat     []time.Duration
}

// do makes one timed call and keeps its latency.
func (w *simWallet) do(method string, params ...any) (json.RawMessage, error) {
	res, took, err := w.c.call(method, params...)
	if err == nil {
		w.lat = append(w.lat, took)
	}
	return res, err
}

// sync does what Electrum does on connecting: negotiate, subscribe to
// headers and to every script, and for each script with a history fetch
// the history, its transactions and their merkle proofs.
func (w *simWallet) sync() error {
	if _, err := w.do("server.version", "amber-bench", "1.4"); err != nil {
		return err
	}
	if _, err := w.do("blockchain.headers.subscribe"); err != nil {
		return err
	}
	seen := map[string]bool{}
	for _, sh := range w.scripts {
		status, err := w.do("blockchain.scripthash.subscribe", sh)
		if err != nil {
			return err
		}
		if string(status) == "null" {
			continue
		}
		raw, err := w.do("blockchain.scripthash.get_history", sh)
		if err != nil {
			return err
		}
		var hist []struct {
			TxHash string `json:"tx_hash"`
			Height int    `json:"height"`
		}
		if err := json.Unmarshal(raw, &hist); err != nil {
			return fmt.Errorf("get_history %s: %w", sh, err)
		}
		if len(hist) == 0 {
			return fmt.Errorf("script %s has status %s but an empty history", sh, status)
		}
		for _, e := range hist[:min(len(hist), walletTxsPerScript)] {
			if seen[e.TxHash] {
				continue
			}
			seen[e.TxHash] = true
			if _, err := w.do("blockchain.transaction.get", e.TxHash); err != nil {
				return err
			}
			if e.Height > 0 {
				if _, err := w.do("blockchain.transaction.get_merkle", e.TxHash, e.Height); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// loadScripts picks the scripts each of n wallets watches: used scripts
// of the chain drawn at random among those with short histories (busy
// and miner scripts are not anyone's wallet), and never-used ones.
func loadScripts(b *testing.B, c *chaingen.Chain, n int) (watch [][]string, pkOf map[string][]byte) {
	stats, err := c.Scripts()
	if err != nil {
		b.Fatal(err)
	}
	var pool [][]byte
	for _, s := range stats {
		if s.Class != txscript.NullDataTy && s.History <= 100 {
			pool = append(pool, s.PkScript)
		}
	}
	if len(pool) < walletScripts {
		b.Fatalf("the %s chain has %d usable scripts", c.Spec.Name, len(pool))
	}
	pkOf = map[string][]byte{}
	rng := rand.New(rand.NewPCG(uint64(n), 7))
	watch = make([][]string, n)
	for i := range watch {
		for range walletScripts - walletUnused {
			pk := pool[rng.IntN(len(pool))]
			sh := chain.ScriptHashOf(pk).Hex()
			pkOf[sh] = pk
			watch[i] = append(watch[i], sh)
		}
		for range walletUnused {
			var h [32]byte
			for k := range h {
				h[k] = byte(rng.Uint32())
			}
			watch[i] = append(watch[i], hex.EncodeToString(h[:]))
		}
	}
	return watch, pkOf
}

// loadRig is what every run of the wallet load shares: btcd with the
// chain, the wallet owning the chain's coins, and the amber binary.
type loadRig struct {
	node  *testenv.Btcd
	coins *testenv.Wallet
	watch [][]string
	pkOf  map[string][]byte
	bin   string
}

// payRound broadcasts payments from the chain's coins to scripts watched
// by the wallets given, and returns when each was sent by script hash
// paid.
func (r *loadRig) payRound(b *testing.B, wallets []*simWallet, rng *rand.Rand) map[string]time.Time {
	b.Helper()
	var targets []string
	for _, w := range wallets {
		for _, sh := range w.scripts {
			if r.pkOf[sh] != nil {
				targets = append(targets, sh)
			}
		}
	}
	sent := map[string]time.Time{}
	coins := r.coins.Spendable()
	slices.SortFunc(coins, func(x, y *testenv.UTXO) int { return cmp.Compare(y.Value, x.Value) })
	for i := 0; i < roundPayments && i < len(coins); i++ {
		a, c := targets[rng.IntN(len(targets))], targets[rng.IntN(len(targets))]
		tx, _, err := r.coins.BuildTx(testenv.TxRequest{
			Inputs:   []*testenv.UTXO{coins[i]},
			NoSelect: true,
			Outputs:  []*wire.TxOut{wire.NewTxOut(1_000, r.pkOf[a]), wire.NewTxOut(1_000, r.pkOf[c])},
			Change:   coins[i].Script,
		})
		if err != nil {
			b.Fatalf("build a payment: %v", err)
		}
		at := time.Now()
		if _, err := r.node.Client.SendRawTransaction(tx, true); err != nil {
			b.Fatalf("broadcast a payment: %v", err)
		}
		r.coins.AddTx(tx)
		for _, sh := range []string{a, c} {
			if _, ok := sent[sh]; !ok {
				sent[sh] = at
			}
		}
	}
	return sent
}

// mine mines one block, keeps the coin wallet in step and returns the
// new height and the time generate was called.
func (r *loadRig) mine(b *testing.B) (int, time.Time) {
	b.Helper()
	at := time.Now()
	hashes := r.node.Generate(1)
	blk, err := r.node.Client.GetBlock(&hashes[0])
	if err != nil {
		b.Fatal(err)
	}
	if err := r.coins.ConnectBlock(blk); err != nil {
		b.Fatal(err)
	}
	return int(r.coins.Height()), at
}

// awaitNotes waits until every wallet watching a script in sent has a
// notification for it sent after since, and returns the delays from
// sent; missing counts those that never came.
func awaitNotes(wallets []*simWallet, method string, sent map[string]time.Time, since time.Time, within time.Duration) (delays []time.Duration, missing int) {
	type want struct {
		w  *simWallet
		sh string
	}
	var pending []want
	for _, w := range wallets {
		for _, sh := range w.scripts {
			if _, ok := sent[sh]; ok {
				pending = append(pending, want{w, sh})
			}
		}
	}
	deadline := time.Now().Add(within)
	for {
		left := pending[:0]
		for _, p := range pending {
			if at, ok := p.w.c.heardSince(method, p.sh, since); ok {
				delays = append(delays, at.Sub(sent[p.sh]))
			} else {
				left = append(left, p)
			}
		}
		pending = left
		if len(pending) == 0 || time.Now().After(deadline) {
			return delays, len(pending)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// loadResult is what one transport's run measured.
type loadResult struct {
	reqs                 int
	reqRate, pingRate    float64
	lat, pingLat         []time.Duration
	lat1                 []time.Duration // the baseline wallet's sync, alone
	headerDelay          []time.Duration // N wallets, after a block
	headerDelay1         []time.Duration // one wallet, after a block
	mempoolDelay         []time.Duration // N wallets, after a broadcast
	mempoolDelay1        []time.Duration // one wallet
	rssIdle, rssSessions float64
	// Go heap in use right after a forced GC: RSS also holds memory the
	// GC freed but the runtime has not yet returned, like the garbage of
	// the initial sync on the Large chain. heapClosed is read after every
	// session has ended, with the caches the load filled still warm, so
	// heapSessions-heapClosed is what the sessions themselves hold.
	heapIdle, heapSessions, heapClosed float64
}

// connectWallets connects and syncs wallets for the given watch lists,
// all at once, and returns them with the wall time the syncs took.
func connectWallets(b *testing.B, transport, addr string, watch [][]string) ([]*simWallet, time.Duration) {
	b.Helper()
	wallets := make([]*simWallet, len(watch))
	errs := make([]error, len(watch))
	var wg sync.WaitGroup
	start := time.Now()
	for i := range watch {
		wg.Go(func() {
			c, err := dialBench(transport, addr)
			if err != nil {
				errs[i] = err
				return
			}
			wallets[i] = &simWallet{c: c, scripts: watch[i]}
			errs[i] = wallets[i].sync()
		})
	}
	wg.Wait()
	took := time.Since(start)
	b.Cleanup(func() {
		for _, w := range wallets {
			if w != nil {
				w.c.close()
			}
		}
	})
	failed := 0
	for i, err := range errs {
		if err != nil {
			if failed < 3 {
				b.Errorf("%s wallet %d: %v", transport, i, err)
			}
			failed++
		}
	}
	if failed > 0 {
		b.Fatalf("%d of %d %s wallets failed", failed, len(watch), transport)
	}
	return wallets, took
}

// runLoad starts a fresh server and measures one transport: a single
// wallet first (the baseline), then n wallets at once.
func (r *loadRig) runLoad(b *testing.B, transport string, n int) loadResult {
	b.Helper()
	srv := startAmber(b, r.bin, r.node)
	defer srv.stop()
	addr := map[string]string{"tcp": srv.tcp, "ws": srv.ws}[transport]
	var res loadResult
	res.heapIdle = srv.heapAfterGC(b)
	time.Sleep(time.Second) // let the scavenger return some of what the GC freed
	res.rssIdle = srv.rss(b)
	rng := rand.New(rand.NewPCG(uint64(n), 11))

	// Baseline: one wallet alone is notified.
	one, _ := connectWallets(b, transport, addr, [][]string{r.watch[len(r.watch)-1]})
	res.lat1 = slices.Clone(one[0].lat)
	since := time.Now()
	sent := r.payRound(b, one, rng)
	var missing int
	res.mempoolDelay1, missing = awaitNotes(one, "blockchain.scripthash.subscribe", sent, since, time.Minute)
	if missing > 0 {
		b.Fatalf("%s: one wallet missed %d mempool notifications", transport, missing)
	}
	height, at := r.mine(b)
	res.headerDelay1, missing = awaitNotesKey(one, "blockchain.headers.subscribe", strconv.Itoa(height), at, time.Minute)
	if missing > 0 {
		b.Fatalf("%s: one wallet missed the headers notification", transport)
	}
	one[0].c.close()

	// Load: n wallets connect and sync at once.
	stopProfile := func() {}
	if profileDir() != "" {
		stopProfile = srv.profile(b, transport+"-wallets.cpu", 10)
	}
	wallets, took := connectWallets(b, transport, addr, r.watch[:n])
	stopProfile()
	for _, w := range wallets {
		res.reqs += len(w.lat)
		res.lat = append(res.lat, w.lat...)
		w.lat = w.lat[:0]
	}
	res.reqRate = float64(res.reqs) / took.Seconds()
	res.heapSessions = srv.heapAfterGC(b)
	time.Sleep(time.Second)
	res.rssSessions = srv.rss(b)

	// Baseline rate: the same sessions send server.ping.
	var wg sync.WaitGroup
	errs := make([]error, len(wallets))
	start := time.Now()
	for i, w := range wallets {
		wg.Go(func() {
			for range benchPings {
				if _, err := w.do("server.ping"); err != nil {
					errs[i] = err
					return
				}
			}
		})
	}
	wg.Wait()
	res.pingRate = float64(len(wallets)*benchPings) / time.Since(start).Seconds()
	if err := errors.Join(errs...); err != nil {
		b.Fatalf("%s ping: %v", transport, err)
	}
	for _, w := range wallets {
		res.pingLat = append(res.pingLat, w.lat...)
	}

	// Idle: payments to watched scripts, then a block.
	for range benchRounds {
		since := time.Now()
		sent := r.payRound(b, wallets, rng)
		d, missing := awaitNotes(wallets, "blockchain.scripthash.subscribe", sent, since, 2*time.Minute)
		if missing > 0 {
			b.Errorf("%s: %d of %d script notifications missing after a broadcast", transport, missing, missing+len(d))
		}
		res.mempoolDelay = append(res.mempoolDelay, d...)
		height, at := r.mine(b)
		key := strconv.Itoa(height)
		hd, missing := awaitNotesKey(wallets, "blockchain.headers.subscribe", key, at, 2*time.Minute)
		if missing > 0 {
			b.Errorf("%s: %d of %d wallets got no headers notification for block %d", transport, missing, len(wallets), height)
		}
		res.headerDelay = append(res.headerDelay, hd...)
	}
	for _, w := range wallets {
		w.c.close()
	}
	srv.awaitNoSessions(b)
	res.heapClosed = srv.heapAfterGC(b)
	return res
}

// awaitNotesKey waits for a notification of method with key in every
// wallet and returns the delays from at.
func awaitNotesKey(wallets []*simWallet, method, key string, at time.Time, within time.Duration) ([]time.Duration, int) {
	var delays []time.Duration
	pending := slices.Clone(wallets)
	deadline := time.Now().Add(within)
	for {
		left := pending[:0]
		for _, w := range pending {
			if got, ok := w.c.heardSince(method, key, at); ok {
				delays = append(delays, got.Sub(at))
			} else {
				left = append(left, w)
			}
		}
		pending = left
		if len(pending) == 0 || time.Now().After(deadline) {
			return delays, len(pending)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// quantile returns the q-quantile of ds in milliseconds.
func quantile(ds []time.Duration, q float64) float64 {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(q * float64(len(s)-1))
	return float64(s[i]) / float64(time.Millisecond)
}

// BenchmarkServer runs the server's benchmarks on the chain
// AMBER_BENCH_WORKLOAD names (Small by default), replayed once into one
// btcd: replaying the Large chain takes minutes. The busy-script case
// runs on the Busy chain for the Small workload, where no script has
// 50,000 history entries, and on the Large chain itself otherwise.
func BenchmarkServer(b *testing.B) {
	spec, err := chaingen.Workload(os.Getenv)
	if err != nil {
		b.Fatal(err)
	}
	c := chaingen.Load(b, spec)
	miner := testenv.NewWallet(&chaincfg.RegressionNetParams, []byte("amber/bench/miner")).NewScript(testenv.P2WPKH)
	node := testenv.StartBtcd(b, testenv.BtcdOptions{MiningAddr: miner.Address.EncodeAddress()})
	c.Submit(b, node, c.Height())
	bin := buildAmber(b)
	b.Run("WalletLoad", func(b *testing.B) { benchWalletLoad(b, c, node, bin) })
	var daemon testenv.Node = node
	if os.Getenv("AMBER_BENCH_DAEMON") == "core" {
		// Bitcoin Core, which operators run, answers the Electrum
		// load's transaction.get instead of btcd.
		core := testenv.StartBitcoind(b, testenv.BitcoindOptions{OldTip: true, Args: []string{"-rpcthreads=16", "-rpcworkqueue=256"}})
		c.Submit(b, core, c.Height())
		daemon = core
	}
	b.Run("ElectrumLoad", func(b *testing.B) { benchElectrumLoad(b, c, daemon, bin) })
	if spec.Name != chaingen.Large.Name {
		c = chaingen.Load(b, chaingen.Busy)
		node = testenv.StartBtcd(b, testenv.BtcdOptions{})
		c.Submit(b, node, c.Height())
	}
	b.Run("BusyScript", func(b *testing.B) { benchBusyScript(b, c, node, bin) })
}

// benchWalletLoad runs N simulated wallets (AMBER_BENCH_WALLETS, default
// 1,000) over TCP and then over WebSocket against `amber serve`, each on
// a fresh server: every wallet watches 20 scripts, fetches histories,
// transactions and merkle proofs, then idles while payments to its
// scripts arrive in the mempool and get mined.
func benchWalletLoad(b *testing.B, c *chaingen.Chain, node *testenv.Btcd, bin string) {
	n := benchWallets(b)
	raiseFDLimit(b, uint64(2*n+512))
	coins, err := c.Wallet()
	if err != nil {
		b.Fatal(err)
	}
	// One more watch list than wallets, for the baseline wallet.
	watch, pkOf := loadScripts(b, c, n+1)
	rig := &loadRig{node: node, coins: coins, watch: watch, pkOf: pkOf, bin: bin}

	results := map[string]loadResult{}
	for b.Loop() {
		for _, tr := range []string{"tcp", "ws"} {
			results[tr] = rig.runLoad(b, tr, n)
		}
	}
	for _, tr := range []string{"tcp", "ws"} {
		r := results[tr]
		ms := func(ds []time.Duration, q float64) float64 { return quantile(ds, q) }
		b.ReportMetric(float64(n), "wallets")
		b.ReportMetric(r.reqRate, tr+"-req/s")
		b.ReportMetric(r.pingRate, tr+"-ping-req/s")
		b.ReportMetric(ms(r.lat, 0.5), tr+"-p50-ms")
		b.ReportMetric(ms(r.lat, 0.99), tr+"-p99-ms")
		b.ReportMetric(ms(r.lat1, 0.5), tr+"-alone-p50-ms")
		b.ReportMetric(ms(r.lat1, 0.99), tr+"-alone-p99-ms")
		b.ReportMetric(ms(r.pingLat, 0.5), tr+"-ping-p50-ms")
		b.ReportMetric(ms(r.pingLat, 0.99), tr+"-ping-p99-ms")
		b.ReportMetric(ms(r.headerDelay, 0.5), tr+"-block-notify-p50-ms")
		b.ReportMetric(ms(r.headerDelay, 0.99), tr+"-block-notify-p99-ms")
		b.ReportMetric(ms(r.headerDelay1, 0.5), tr+"-block-notify-1-ms")
		b.ReportMetric(ms(r.mempoolDelay, 0.5), tr+"-mempool-notify-p50-ms")
		b.ReportMetric(ms(r.mempoolDelay, 0.99), tr+"-mempool-notify-p99-ms")
		b.ReportMetric(ms(r.mempoolDelay1, 0.5), tr+"-mempool-notify-1-ms")
		b.ReportMetric(r.rssIdle/(1<<20), tr+"-rss-idle-MiB")
		b.ReportMetric(r.rssSessions/(1<<20), tr+"-rss-MiB")
		b.ReportMetric((r.rssSessions-r.rssIdle)/float64(n)/1024, tr+"-rss-KiB/session")
		b.ReportMetric(r.heapIdle/(1<<20), tr+"-heap-idle-MiB")
		b.ReportMetric(r.heapSessions/(1<<20), tr+"-heap-MiB")
		b.ReportMetric(r.heapClosed/(1<<20), tr+"-heap-closed-MiB")
		b.ReportMetric((r.heapSessions-r.heapClosed)/float64(n)/1024, tr+"-heap-KiB/session")
		b.ReportMetric(float64(r.reqs), tr+"-requests")
	}
}

// benchBusyScript measures blockchain.scripthash.get_history on a script
// with over 50,000 history entries, cold and then warm, against
// get_history of a one-entry script on the same server.
func benchBusyScript(b *testing.B, c *chaingen.Chain, node *testenv.Btcd, bin string) {
	stats, err := c.Scripts()
	if err != nil {
		b.Fatal(err)
	}
	// The least busy script above 50,000 entries: the busiest of the
	// Large chain has hundreds of thousands.
	busy := stats[0]
	for _, s := range stats {
		if s.History > 50_000 {
			busy = s
		}
	}
	if busy.History <= 50_000 {
		b.Fatalf("the busiest script of %s has %d history entries, want over 50,000", c.Spec.Name, busy.History)
	}
	var single []byte
	for _, s := range slices.Backward(stats) {
		if s.History == 1 && s.Class != txscript.NullDataTy {
			single = s.PkScript
			break
		}
	}
	srv := startAmber(b, bin, node)
	conn, err := dialBench("tcp", srv.tcp)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.close()
	if _, _, err := conn.call("server.version", "amber-bench", "1.4"); err != nil {
		b.Fatal(err)
	}
	busySH, singleSH := chain.ScriptHashOf(busy.PkScript).Hex(), chain.ScriptHashOf(single).Hex()
	get := func(sh string, want int) (time.Duration, int) {
		res, took, err := conn.call("blockchain.scripthash.get_history", sh)
		if err != nil {
			b.Fatal(err)
		}
		var hist []json.RawMessage
		if err := json.Unmarshal(res, &hist); err != nil {
			b.Fatal(err)
		}
		if len(hist) != want {
			b.Fatalf("get_history %s: %d entries, want %d", sh, len(hist), want)
		}
		return took, len(res)
	}
	var cold, single1 time.Duration
	var warm, singles []time.Duration
	var size int
	for b.Loop() {
		cold, size = get(busySH, busy.History)
		for range 10 {
			d, _ := get(busySH, busy.History)
			warm = append(warm, d)
		}
		single1, _ = get(singleSH, 1)
		for range 100 {
			d, _ := get(singleSH, 1)
			singles = append(singles, d)
		}
	}
	b.ReportMetric(float64(busy.History), "entries")
	b.ReportMetric(float64(size)/(1<<20), "reply-MiB")
	b.ReportMetric(cold.Seconds()*1000, "cold-ms")
	b.ReportMetric(quantile(warm, 0.5), "warm-p50-ms")
	b.ReportMetric(quantile(warm, 0.99), "warm-p99-ms")
	b.ReportMetric(float64(busy.History)/cold.Seconds(), "cold-entries/s")
	b.ReportMetric(single1.Seconds()*1000, "single-cold-ms")
	b.ReportMetric(quantile(singles, 0.5), "single-p50-ms")
}
