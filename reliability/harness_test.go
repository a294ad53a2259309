package reliability

import (
	"bufio"
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"amber/internal/chain"
	"amber/internal/index"
	"amber/internal/store"
	"amber/internal/testenv"
	"amber/internal/testenv/chaingen"
	"amber/snapshot"
	"amber/snapshot/objstore"
	"amber/snapshot/objstore/open"
)

// proc is a running amber subcommand and its log.
type proc struct {
	t    *testing.T
	cmd  *exec.Cmd
	log  *testenv.Buffer
	done chan struct{}
	err  error
}

// baseEnv is the environment every amber process gets.
func baseEnv(daemonURL, dbDir string) []string {
	return []string{"NET=regtest", "HTTP_ADDR=off", "DAEMON_URL=" + daemonURL, "DB_DIRECTORY=" + dbDir}
}

// start runs amber with args and env (on top of this process's) until it
// exits or the test ends.
func start(t *testing.T, args []string, env ...string) *proc {
	t.Helper()
	return startBin(t, amberBin, args, env...)
}

// startBin is start with another amber binary (another release).
func startBin(t *testing.T, bin string, args []string, env ...string) *proc {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = dieWithTest()
	p := &proc{t: t, cmd: cmd, log: &testenv.Buffer{}, done: make(chan struct{})}
	cmd.Stderr = p.log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.err = cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		p.kill()
		if t.Failed() {
			t.Logf("amber %s log (end):\n%s", args[0], tail(p.log.String(), 25))
		}
	})
	return p
}

// exited reports whether the process has ended.
func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// kill ends the process with SIGKILL and reports whether it was still
// running, that is whether the kill interrupted something.
func (p *proc) kill() bool {
	alive := !p.exited()
	if alive {
		p.cmd.Process.Signal(syscall.SIGKILL)
	}
	<-p.done
	return alive
}

// stop asks the process to shut down (SIGINT) and waits for it.
func (p *proc) stop() error {
	if !p.exited() {
		p.cmd.Process.Signal(os.Interrupt)
	}
	select {
	case <-p.done:
		return p.err
	case <-time.After(60 * time.Second):
		p.kill()
		return fmt.Errorf("amber %s did not stop within 60s of SIGINT", p.cmd.Args[1])
	}
}

// wait waits for the process to exit by itself within d.
func (p *proc) wait(d time.Duration) error {
	select {
	case <-p.done:
		return p.err
	case <-time.After(d):
		p.kill()
		return fmt.Errorf("amber %s still running after %v", p.cmd.Args[1], d)
	}
}

// waitLog waits until the log contains want, failing the test after d or
// when the process exits first.
func (p *proc) waitLog(want string, d time.Duration) {
	p.t.Helper()
	deadline := time.Now().Add(d)
	for !strings.Contains(p.log.String(), want) {
		if p.exited() && !strings.Contains(p.log.String(), want) {
			p.t.Fatalf("amber %s exited (%v) before logging %q:\n%s", p.cmd.Args[1], p.err, want, tail(p.log.String(), 20))
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("amber %s did not log %q within %v:\n%s", p.cmd.Args[1], want, d, tail(p.log.String(), 20))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// mustRun runs amber to completion and returns its log.
func mustRun(t *testing.T, within time.Duration, args []string, env ...string) string {
	t.Helper()
	p := start(t, args, env...)
	if err := p.wait(within); err != nil {
		t.Fatalf("amber %v: %v\n%s", args, err, tail(p.log.String(), 25))
	}
	return p.log.String()
}

// rig is a btcd holding a generated chain, reached through a FaultProxy,
// and a MinIO bucket reached directly or through another FaultProxy.
type rig struct {
	t      *testing.T
	chain  *chaingen.Chain
	btcd   testenv.Node        // btcd, or Bitcoin Core (newRigOn)
	daemon *testenv.FaultProxy // in front of the node
	minio  *testenv.Minio
	bucket *testenv.FaultProxy // in front of MinIO
	prefix string
}

func newRig(t *testing.T, spec chaingen.Spec, upTo int) *rig {
	t.Helper()
	return newRigOn(t, spec, upTo, "btcd")
}

// relDaemons are the daemons the kill rounds alternate between.
var relDaemons = []string{"btcd", "core"}

// newRigOn is newRig on the named daemon: "btcd", or "core" for Bitcoin
// Core without -txindex.
func newRigOn(t *testing.T, spec chaingen.Spec, upTo int, daemon string) *rig {
	t.Helper()
	c := chaingen.Load(t, spec)
	var b testenv.Node
	if daemon == "core" {
		b = testenv.StartBitcoind(t, testenv.BitcoindOptions{OldTip: true})
	} else {
		b = testenv.StartBtcd(t, testenv.BtcdOptions{})
	}
	c.Submit(t, b, upTo)
	m := testenv.StartMinio(t, testenv.MinioOptions{})
	m.CreateBucket("amber")
	return &rig{t: t, chain: c, btcd: b, daemon: testenv.StartFaultProxy(t, b.URL()), minio: m,
		bucket: testenv.StartFaultProxy(t, m.URL()), prefix: "rel"}
}

// snapEnv points amber at the bucket, through the proxy when proxied.
func (r *rig) snapEnv(proxied bool) []string {
	endpoint := r.minio.Endpoint
	if proxied {
		endpoint = r.bucket.Addr()
	}
	return []string{"SNAPSHOT_URL=minio://" + endpoint + "/amber/" + r.prefix + "?secure=false",
		"MINIO_ACCESS_KEY=" + r.minio.AccessKey, "MINIO_SECRET_KEY=" + r.minio.SecretKey}
}

// objects opens the bucket directly, for checks.
func (r *rig) objects() objstore.Bucket {
	r.t.Helper()
	url := "minio://" + r.minio.Endpoint + "/amber/" + r.prefix + "?secure=false"
	b, err := open.Open(context.Background(), url, open.Options{Getenv: func(k string) string {
		return map[string]string{"MINIO_ACCESS_KEY": r.minio.AccessKey, "MINIO_SECRET_KEY": r.minio.SecretKey}[k]
	}})
	if err != nil {
		r.t.Fatal(err)
	}
	r.t.Cleanup(func() { b.Close() })
	return b
}

// latestComplete checks the bucket's invariant: LATEST is absent or names
// a manifest whose every file is there with the right size and hash. It
// returns the manifest LATEST names, or nil.
func latestComplete(t *testing.T, b objstore.Bucket) *snapshot.Manifest {
	t.Helper()
	// This build's schema publishes in its own part of the bucket; Verify
	// finds that part itself.
	whole := b
	b = snapshot.SchemaBucket(b, index.SchemaVersion)
	ctx := context.Background()
	rc, err := b.Get(ctx, snapshot.LatestKey)
	if objstore.IsNotFound(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	key, _ := io.ReadAll(rc)
	rc.Close()
	mr, err := b.Get(ctx, string(key))
	if err != nil {
		t.Fatalf("LATEST names %s, which cannot be read: %v", key, err)
	}
	body, _ := io.ReadAll(mr)
	mr.Close()
	m, err := snapshot.ParseManifest(body)
	if err != nil {
		t.Fatalf("LATEST names a broken manifest %s: %v", key, err)
	}
	if err := (&snapshot.Restorer{Bucket: whole}).Verify(ctx, m); err != nil {
		tally.compared(0, 0, 1)
		t.Fatalf("LATEST names an incomplete snapshot %s: %v", key, err)
	}
	return m
}

var regtest, _ = chain.Lookup("Bitcoin", "regtest")

// tipOf opens the index at dir (which must hold one) and returns its tip;
// opening checks that what a kill left is consistent.
func tipOf(t *testing.T, dir string) index.Tip {
	t.Helper()
	db, err := store.Open(dir, store.Options{ReadOnly: true})
	if err != nil {
		t.Fatalf("open the index a kill left: %v", err)
	}
	defer db.Close()
	ix, err := index.Open(db, regtest, index.Options{})
	if err != nil {
		t.Fatalf("reopen the index a kill left: %v", err)
	}
	return ix.Tip()
}

// hasIndex reports whether dir holds a DB (a kill may come before one).
func hasIndex(dir string) bool {
	_, err := os.Stat(dir + "/CURRENT")
	return err == nil
}

// sameDigest compares two indexes row for row and counts the comparison.
func sameDigest(t *testing.T, what, dir, refDir string) {
	t.Helper()
	got, want := testenv.DigestDir(t, dir), testenv.DigestDir(t, refDir)
	if got != want {
		tally.compared(0, 1, 1)
		t.Errorf("%s: index digest %s, an uninterrupted run gives %s", what, got, want)
		return
	}
	tally.compared(0, 1, 0)
}

// reference builds the daemon's current chain from scratch, without
// faults or kills, into a new directory.
func (r *rig) reference() string {
	r.t.Helper()
	dir := r.t.TempDir()
	mustRun(r.t, 5*time.Minute, []string{"build", "--once"}, baseEnv(r.btcd.URL(), dir)...)
	return dir
}

// randomAfter returns a request count between lo and hi (inclusive).
func randomAfter(rng *rand.Rand, lo, hi int64) int64 {
	if hi <= lo {
		return lo
	}
	return lo + rng.Int64N(hi-lo+1)
}

// killAfterRequests kills p once the proxy has seen n more requests than
// base, or when it exits first; it reports whether the kill interrupted
// the process at that point. A process that stops asking within a minute
// is killed anyway, but that kill does not count.
func killAfterRequests(p *proc, px *testenv.FaultProxy, base, n int64) bool {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	go func() {
		select {
		case <-p.done:
			cancel()
		case <-ctx.Done():
		}
	}()
	reached := px.WaitRequests(ctx, base+n)
	alive := p.kill()
	if !alive {
		p.t.Logf("amber %s exited (%v) before its kill point; its log ends:\n%s", p.cmd.Args[1], p.err, tail(p.log.String(), 5))
	}
	if !reached && alive {
		p.t.Logf("amber %s made fewer than %d requests in a minute; killed anyway, not counted; its log ends:\n%s", p.cmd.Args[1], n, tail(p.log.String(), 8))
	}
	return alive && reached
}

// query is one request of the fixed query set.
type query struct {
	Method string
	Params []any
}

// querySet is a fixed set of Electrum requests over the daemon's current
// chain: headers, the chain's busiest scripts and the transactions of a
// few blocks, with their merkle proofs.
func querySet(t *testing.T, r *rig) []query {
	t.Helper()
	raw, err := r.btcd.Call("getblockcount")
	if err != nil {
		t.Fatal(err)
	}
	var tip int
	json.Unmarshal(raw, &tip)
	qs := []query{
		{"blockchain.headers.subscribe", nil},
		{"blockchain.block.headers", []any{0, tip + 1}},
		{"blockchain.block.header", []any{tip / 2, tip}},
	}
	scripts, err := r.chain.Scripts()
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range scripts[:min(12, len(scripts))] {
		sh := chain.ScriptHashOf(s.PkScript).Hex()
		for _, m := range []string{"get_history", "get_balance", "listunspent"} {
			qs = append(qs, query{"blockchain.scripthash." + m, []any{sh}})
		}
	}
	for _, h := range []int{1, tip / 3, tip - 12, tip - 1, tip} {
		blk := btcdBlock(t, r.btcd, h)
		for i, tx := range blk.Txs[:min(4, len(blk.Txs))] {
			qs = append(qs,
				query{"blockchain.transaction.get_merkle", []any{tx.TxID.String(), h}},
				query{"blockchain.transaction.id_from_pos", []any{h, i, true}},
				query{"blockchain.transaction.get", []any{tx.TxID.String()}})
			for _, out := range tx.Outputs[:min(2, len(tx.Outputs))] {
				qs = append(qs, query{"blockchain.scripthash.get_history", []any{chain.ScriptHashOf(out.PkScript).Hex()}})
			}
		}
	}
	return qs
}

func btcdBlock(t *testing.T, b testenv.Node, h int) *chain.Block {
	t.Helper()
	raw, err := b.Call("getblockhash", h)
	if err != nil {
		t.Fatal(err)
	}
	var hash string
	json.Unmarshal(raw, &hash)
	if raw, err = b.Call("getblock", hash, 0); err != nil {
		t.Fatal(err)
	}
	var hexBlock string
	json.Unmarshal(raw, &hexBlock)
	bin, err := hex.DecodeString(hexBlock)
	if err != nil {
		t.Fatal(err)
	}
	blk, err := chain.ParseBlock(bin)
	if err != nil {
		t.Fatal(err)
	}
	return blk
}

// electrum is a line-delimited JSON-RPC client of an amber serve.
type electrum struct {
	conn net.Conn
	rd   *bufio.Reader
	id   int
}

func dialElectrum(t *testing.T, addr string) *electrum {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	e := &electrum{conn: conn, rd: bufio.NewReaderSize(conn, 1<<20)}
	if _, err := e.call("server.version", []any{"amber-reliability", "1.4"}); err != nil {
		t.Fatal(err)
	}
	return e
}

// call sends one request and returns its result, or the error member as
// the same raw JSON (an error is an answer too).
func (e *electrum) call(method string, params []any) (json.RawMessage, error) {
	e.id++
	if params == nil {
		params = []any{}
	}
	req, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": e.id, "method": method, "params": params})
	e.conn.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := e.conn.Write(append(req, '\n')); err != nil {
		return nil, err
	}
	for {
		line, err := e.rd.ReadBytes('\n')
		if err != nil {
			return nil, fmt.Errorf("%s: %w", method, err)
		}
		var reply struct {
			ID     *int            `json:"id"`
			Result json.RawMessage `json:"result"`
			Error  json.RawMessage `json:"error"`
		}
		if err := json.Unmarshal(line, &reply); err != nil {
			return nil, fmt.Errorf("%s: reply %q: %w", method, line, err)
		}
		if reply.ID == nil || *reply.ID != e.id {
			continue // a notification
		}
		if reply.Error != nil {
			return append(json.RawMessage(`{"error":`), append(reply.Error, '}')...), nil
		}
		return reply.Result, nil
	}
}

// answers runs the query set against the server at addr.
func answers(t *testing.T, addr string, qs []query) []string {
	t.Helper()
	e := dialElectrum(t, addr)
	out := make([]string, len(qs))
	for i, q := range qs {
		res, err := e.call(q.Method, q.Params)
		if err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		json.Compact(&buf, res)
		out[i] = buf.String()
	}
	return out
}

// sameAnswers compares the answers of two servers to the query set. The
// daemon's mempool (which a reorg refills) reaches the two servers at
// their own pace, so differences get 30 seconds to settle.
func sameAnswers(t *testing.T, what, addr, refAddr string, qs []query) {
	t.Helper()
	var got, want []string
	var diff []int
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(500 * time.Millisecond) {
		got, want = answers(t, addr, qs), answers(t, refAddr, qs)
		diff = diff[:0]
		for i := range qs {
			if got[i] != want[i] {
				diff = append(diff, i)
			}
		}
		if len(diff) == 0 || time.Now().After(deadline) {
			break
		}
	}
	for n, i := range diff {
		if n < 3 {
			t.Errorf("%s: %s %v answered\n%.300s\nan uninterrupted server answers\n%.300s", what, qs[i].Method, qs[i].Params, got[i], want[i])
		}
	}
	tally.compared(len(qs), 0, len(diff))
}

// serveEnv is the environment of an amber serve listening on addr.
func serveEnv(daemonURL, dbDir, addr string) []string {
	return append(baseEnv(daemonURL, dbDir), "SERVICES=tcp://"+addr, "DAEMON_POLL_INTERVAL=100ms")
}

// waitHeight waits until the server at addr reports height as its tip.
func waitHeight(t *testing.T, p *proc, addr string, height int, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		if p.exited() {
			t.Fatalf("amber serve exited (%v):\n%s", p.err, tail(p.log.String(), 20))
		}
		if conn, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			e := &electrum{conn: conn, rd: bufio.NewReader(conn)}
			_, err := e.call("server.version", []any{"amber-reliability", "1.4"})
			var res json.RawMessage
			if err == nil {
				res, err = e.call("blockchain.headers.subscribe", nil)
			}
			conn.Close()
			var hdr struct{ Height int }
			if err == nil && json.Unmarshal(res, &hdr) == nil && hdr.Height == height {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("amber serve not at height %d within %v:\n%s", height, within, tail(p.log.String(), 20))
		}
		time.Sleep(100 * time.Millisecond)
	}
}
