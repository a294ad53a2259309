package server_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"

	"amber/internal/chain"
	"amber/internal/index"
	"amber/internal/testenv"
)

// rssBytes is a process's resident set size from /proc.
func rssBytes(t *testing.T, pid int) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatalf("read the process status from /proc (Linux only): %v", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb << 10
		}
	}
	t.Fatal("no VmRSS in /proc status")
	return 0
}

// TestIdleSessions holds 1,000 TCP and 1,000 WebSocket sessions open
// and idle on the real binary, checks that every one still answers, and
// reports the server's memory per session.
func TestIdleSessions(t *testing.T) {
	if testing.Short() {
		t.Skip("runs btcd and amber")
	}
	const perTransport = 1000
	r := testenv.StartRegtest(t, testenv.RegtestOptions{})
	r.Mine(3)
	s := startServed(t, r, "MAX_SESSIONS=3000")
	pid := s.cmd.Process.Pid
	before := rssBytes(t, pid)

	version := []byte(`{"jsonrpc":"2.0","id":1,"method":"server.version","params":["idle","1.4"]}`)
	ping := []byte(`{"jsonrpc":"2.0","id":2,"method":"server.ping","params":[]}`)
	ctx := context.Background()
	type tcpSess struct {
		conn net.Conn
		rd   *bufio.Reader
	}
	var tcps []tcpSess
	var wss []*websocket.Conn
	t.Cleanup(func() {
		for _, c := range tcps {
			c.conn.Close()
		}
		for _, c := range wss {
			c.CloseNow()
		}
	})
	answered := func(line []byte, err error, id string) error {
		if err != nil {
			return err
		}
		var m map[string]json.RawMessage
		if err := json.Unmarshal(line, &m); err != nil || string(m["id"]) != id || m["result"] == nil {
			return fmt.Errorf("reply %q", line)
		}
		return nil
	}
	for i := range perTransport {
		conn, err := net.Dial("tcp", s.tcp)
		if err != nil {
			t.Fatalf("tcp session %d: %v", i, err)
		}
		c := tcpSess{conn, bufio.NewReader(conn)}
		tcps = append(tcps, c)
		conn.Write(append(version, '\n'))
		line, err := c.rd.ReadBytes('\n')
		if err := answered(line, err, "1"); err != nil {
			t.Fatalf("tcp session %d: server.version: %v", i, err)
		}
		ws, _, err := websocket.Dial(ctx, "ws://"+s.ws+"/", nil)
		if err != nil {
			t.Fatalf("ws session %d: %v", i, err)
		}
		wss = append(wss, ws)
		if err := ws.Write(ctx, websocket.MessageText, version); err != nil {
			t.Fatal(err)
		}
		_, msg, err := ws.Read(ctx)
		if err := answered(msg, err, "1"); err != nil {
			t.Fatalf("ws session %d: server.version: %v", i, err)
		}
	}
	time.Sleep(3 * time.Second) // idle
	var info map[string]any
	s.admin(t, &info, "getinfo")
	if info["sessions"] != float64(2*perTransport) {
		t.Errorf("getinfo sessions = %v, want %d", info["sessions"], 2*perTransport)
	}
	var mem map[string]float64
	s.admin(t, &mem, "debug_memory")
	after := rssBytes(t, pid)
	for i, c := range tcps {
		c.conn.Write(append(ping, '\n'))
		line, err := c.rd.ReadBytes('\n')
		if err := answered(line, err, "2"); err != nil {
			t.Fatalf("idle tcp session %d no longer answers: %v", i, err)
		}
	}
	for i, c := range wss {
		if err := c.Write(ctx, websocket.MessageText, ping); err != nil {
			t.Fatalf("idle ws session %d: %v", i, err)
		}
		_, msg, err := c.Read(ctx)
		if err := answered(msg, err, "2"); err != nil {
			t.Fatalf("idle ws session %d no longer answers: %v", i, err)
		}
	}
	perSession := (after - before) / (2 * perTransport)
	t.Logf("%d idle sessions (%d tcp, %d ws): server RSS %.1f MiB before, %.1f MiB after: %.1f KiB per session; Go heap+stacks %.1f KiB per session, %v goroutines",
		2*perTransport, perTransport, perTransport, float64(before)/(1<<20), float64(after)/(1<<20), float64(perSession)/1024,
		mem["heap_and_stack_per_session_bytes"]/1024, mem["goroutines"])
	// A guard against a leak per session (a buffer of MAX_SEND each
	// would be a megabyte); real figures are a few tens of KiB.
	if perSession > 256<<10 {
		t.Errorf("%d KiB of RSS per idle session", perSession>>10)
	}
}

// TestSIGTERMUnderLoad sends SIGTERM to `amber serve` while wallets make
// requests and blocks arrive: /readyz turns red at once, WebSocket
// sessions are closed with "going away", the process exits 0 within
// DRAIN_DELAY + SHUTDOWN_GRACE, and every block a wallet was told about
// is in the DB it leaves behind.
func TestSIGTERMUnderLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("runs btcd and amber")
	}
	r := testenv.StartRegtest(t, testenv.RegtestOptions{})
	defaultActivity(r)
	const drain, grace = 1 * time.Second, 3 * time.Second
	dbDir := t.TempDir()
	s := startServed(t, r, "DB_DIRECTORY="+dbDir, "DRAIN_DELAY=1", "SHUTDOWN_GRACE=3")
	mining := shOf(r.MiningScript.PkScript)

	var (
		notified atomic.Int64 // highest header notified to any wallet
		requests atomic.Int64
		wg       sync.WaitGroup
	)
	stop := make(chan struct{})
	bump := func(h int64) {
		for {
			old := notified.Load()
			if h <= old || notified.CompareAndSwap(old, h) {
				return
			}
		}
	}
	noteHeight := func(b []byte) {
		var n struct {
			Method string `json:"method"`
			Params []struct {
				Height int64 `json:"height"`
			} `json:"params"`
		}
		if json.Unmarshal(b, &n) == nil && n.Method == "blockchain.headers.subscribe" && len(n.Params) == 1 {
			bump(n.Params[0].Height)
		}
	}
	reqs := func(id int) []string {
		return []string{
			`{"jsonrpc":"2.0","id":0,"method":"server.version","params":["load","1.4"]}`,
			`{"jsonrpc":"2.0","id":1,"method":"blockchain.headers.subscribe","params":[]}`,
			fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"blockchain.scripthash.get_history","params":["%s"]}`, id, mining),
		}
	}
	for i := range 8 {
		conn, err := net.Dial("tcp", s.tcp)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		wg.Add(2)
		go func() {
			defer wg.Done()
			sc := bufio.NewScanner(conn)
			sc.Buffer(nil, 16<<20)
			for sc.Scan() {
				noteHeight(sc.Bytes())
				requests.Add(1)
			}
		}()
		go func() {
			defer wg.Done()
			q := reqs(2 + i)
			conn.Write([]byte(q[0] + "\n" + q[1] + "\n"))
			for {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := conn.Write([]byte(q[2] + "\n")); err != nil {
					return
				}
				time.Sleep(5 * time.Millisecond)
			}
		}()
	}
	ctx := context.Background()
	type wsResult struct {
		status websocket.StatusCode
		err    error
	}
	wsDone := make(chan wsResult, 4)
	for range 4 {
		ws, _, err := websocket.Dial(ctx, "ws://"+s.ws+"/", nil)
		if err != nil {
			t.Fatal(err)
		}
		ws.SetReadLimit(16 << 20)
		t.Cleanup(func() { ws.CloseNow() })
		q := reqs(2)
		ws.Write(ctx, websocket.MessageText, []byte(q[0]))
		ws.Write(ctx, websocket.MessageText, []byte(q[1]))
		go func() {
			for {
				_, b, err := ws.Read(ctx)
				if err != nil {
					wsDone <- wsResult{websocket.CloseStatus(err), err}
					return
				}
				noteHeight(b)
			}
		}()
	}
	mined := make(chan struct{})
	go func() {
		defer close(mined)
		for {
			select {
			case <-stop:
				return
			case <-time.After(150 * time.Millisecond):
				r.Btcd.Generate(1)
			}
		}
	}()
	start := r.Btcd.Height()
	waitFor(t, "blocks notified under load", 30*time.Second, func() bool { return notified.Load() >= int64(start)+3 })

	exited := make(chan error, 1)
	termAt := time.Now()
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	go func() { exited <- s.cmd.Wait() }()
	waitFor(t, "/readyz red after SIGTERM", drain, func() bool { return s.readyz() == http.StatusServiceUnavailable })
	select {
	case err := <-exited:
		took := time.Since(termAt)
		if err != nil {
			t.Fatalf("amber serve exited with %v after SIGTERM", err)
		}
		if took > drain+grace+5*time.Second {
			t.Errorf("exit took %v, over DRAIN_DELAY %v + SHUTDOWN_GRACE %v", took, drain, grace)
		}
		t.Logf("exited 0 %v after SIGTERM, %d replies served under load", took.Round(time.Millisecond), requests.Load())
	case <-time.After(drain + grace + 20*time.Second):
		t.Fatal("amber serve still running after SIGTERM")
	}
	close(stop)
	<-mined
	wg.Wait()
	for range 4 {
		res := <-wsDone
		if res.status != websocket.StatusGoingAway {
			t.Errorf("a WebSocket session ended with %v, want status going away (1001)", res.err)
		}
	}

	// Every block a wallet heard of is committed.
	net, err := chain.Lookup("bitcoin", "regtest")
	if err != nil {
		t.Fatal(err)
	}
	db, ix, err := index.OpenDir(filepath.Clean(dbDir), 16<<20, net, index.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	tip := ix.Tip()
	if int64(tip.Height) < notified.Load() {
		t.Errorf("the DB's tip after shutdown is %d, but wallets were told of %d", tip.Height, notified.Load())
	}
	if !strings.Contains(s.log.String(), fmt.Sprintf("msg=stopped height=%d", tip.Height)) {
		t.Errorf("the log does not end at height %d:\n%s", tip.Height, tailLines(s.log.String(), 5))
	}
	hdr, _ := btcdHeader(t, r.Btcd, tip.Height)
	raw, err := ix.Header(tip.Height)
	if err != nil || fmt.Sprintf("%x", raw) != hdr {
		t.Errorf("the DB's header at its tip %d differs from btcd's: %v", tip.Height, err)
	}
}

// TestDrainKeepsFollowing sends SIGTERM to a node with wallets connected
// and a long DRAIN_DELAY: until their sessions close, the wallets still
// get each new block's headers notification and answers that include it,
// not the frozen state of the moment the signal came.
func TestDrainKeepsFollowing(t *testing.T) {
	if testing.Short() {
		t.Skip("runs btcd and amber")
	}
	r := testenv.StartRegtest(t, testenv.RegtestOptions{})
	r.Mine(101)
	s := startServed(t, r, "DRAIN_DELAY=6", "SHUTDOWN_GRACE=2")
	w := dialLine(t, s.tcp)
	w.call(1, "server.version", "drain", "1.4")
	w.call(2, "blockchain.headers.subscribe")
	paid := r.Wallet.NewScript(testenv.P2WPKH)

	termAt := time.Now()
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "/readyz red after SIGTERM", 2*time.Second, func() bool { return s.readyz() != http.StatusOK })
	tx := r.Pay(paid.TxOut(5e7))
	r.Mine(1)
	h := r.Btcd.Height()
	for {
		b, err := w.readLine(5 * time.Second)
		if err != nil {
			t.Fatalf("draining node: no headers notification for block %d within 5 s of it (%v after SIGTERM): %v", h, time.Since(termAt).Round(time.Millisecond), err)
		}
		var n struct {
			Method string `json:"method"`
			Params []struct {
				Height int32 `json:"height"`
			} `json:"params"`
		}
		if json.Unmarshal(b, &n) == nil && n.Method == "blockchain.headers.subscribe" && len(n.Params) == 1 && n.Params[0].Height == h {
			break
		}
	}
	hist := w.call(3, "blockchain.scripthash.get_history", shOf(paid.PkScript))
	want := fmt.Sprintf(`[{"tx_hash":"%s","height":%d}]`, tx.TxHash(), h)
	if got := string(hist["result"]); got != want {
		t.Errorf("draining node answers get_history %s after notifying block %d, want %s", got, h, want)
	}
	if d := time.Since(termAt); d >= 6*time.Second {
		t.Fatalf("checks ended %v after SIGTERM, past DRAIN_DELAY: they proved nothing", d)
	}
	w.closed()
	if d := time.Since(termAt); d < 6*time.Second {
		t.Errorf("session closed %v after SIGTERM, before DRAIN_DELAY 6s", d.Round(time.Millisecond))
	}
}
