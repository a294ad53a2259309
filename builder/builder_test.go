package builder_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/btcsuite/btcd/wire/v2"

	"amber/internal/chain"
	"amber/internal/index"
	"amber/internal/store"
	"amber/internal/testenv"
	"amber/internal/testenv/naive"
)

var amberBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "amber-builder-test")
	if err != nil {
		panic(err)
	}
	amberBin = filepath.Join(dir, "amber")
	if out, err := exec.Command("go", "build", "-o", amberBin, "amber/cmd/amber").CombinedOutput(); err != nil {
		os.Stderr.Write(out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// build runs `amber build` against the daemons and returns its stderr.
func build(t *testing.T, dbDir string, daemons []string, extraEnv ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(amberBin, "build", "--once")
	cmd.Env = append(os.Environ(), "NET=regtest", "DB_DIRECTORY="+dbDir, "DAEMON_URL="+strings.Join(daemons, ","), "HTTP_ADDR=off", "LOG_LEVEL=debug")
	cmd.Env = append(cmd.Env, extraEnv...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	return stderr.String(), err
}

func mustBuild(t *testing.T, dbDir string, daemons []string, extraEnv ...string) string {
	t.Helper()
	out, err := build(t, dbDir, daemons, extraEnv...)
	if err != nil {
		t.Fatalf("amber build: %v\n%s", err, tail(out, 30))
	}
	return out
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// activity gives the regtest chain transactions of every script kind,
// reused scripts and spends inside blocks.
func activity(t *testing.T, r *testenv.Regtest, rounds int) {
	t.Helper()
	kinds := testenv.AllKinds()
	busy := r.Wallet.NewScript(testenv.P2WPKH)
	var scripts []*testenv.Script
	for _, k := range kinds {
		scripts = append(scripts, r.Wallet.NewScript(k))
	}
	for i := range rounds {
		outs := []*wire.TxOut{busy.TxOut(100_000 + int64(i))}
		for j, s := range scripts {
			outs = append(outs, s.TxOut(int64(50_000+1000*j)))
		}
		if i%3 == 0 {
			outs = append(outs, testenv.NullDataOutput([]byte("amber test")))
		}
		r.Pay(outs...)
		// Spend some of what was just paid, unconfirmed.
		if i%2 == 1 {
			var ins []*testenv.UTXO
			for _, u := range r.Wallet.UTXOs() {
				if u.Height == 0 && !u.Coinbase && len(ins) < 3 {
					ins = append(ins, u)
				}
			}
			if len(ins) > 0 {
				r.Send(testenv.TxRequest{Inputs: ins, NoSelect: true, Outputs: []*wire.TxOut{busy.TxOut(20_000)}})
			}
		}
		if i%2 == 1 {
			r.Mine(1)
		}
	}
	r.Mine(1)
}

// chainBlocks fetches the daemon's best chain as parsed blocks.
func chainBlocks(t *testing.T, b *testenv.Btcd) []*chain.Block {
	t.Helper()
	var blocks []*chain.Block
	for h := int32(0); h <= b.Height(); h++ {
		raw, err := b.Call("getblockhash", h)
		if err != nil {
			t.Fatal(err)
		}
		var hash string
		json.Unmarshal(raw, &hash)
		raw, err = b.Call("getblock", hash, 0)
		if err != nil {
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
		blocks = append(blocks, blk)
	}
	return blocks
}

func openIndex(t *testing.T, dir string) (*store.DB, *index.Index) {
	t.Helper()
	db, err := store.Open(dir, store.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	net, _ := chain.Lookup("Bitcoin", "regtest")
	ix, err := index.Open(db, net, index.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return db, ix
}

// compareWithChain checks every script's history, UTXOs and balance
// against a naive recomputation from the daemon's raw blocks.
func compareWithChain(t *testing.T, ix *index.Index, blocks []*chain.Block) {
	t.Helper()
	want := naive.Build(blocks)
	tip := ix.Tip()
	if tip.Height != want.Height || tip.Hash != blocks[len(blocks)-1].Hash {
		t.Fatalf("index tip %d %s, daemon tip %d %s", tip.Height, tip.Hash, want.Height, blocks[len(blocks)-1].Hash)
	}
	for _, hx := range want.Scripts() {
		hist, _, err := ix.History(hx, 0)
		if err != nil {
			t.Fatal(err)
		}
		wh := want.History(hx)
		if len(hist) != len(wh) {
			t.Fatalf("script %s: %d history items, want %d", hx, len(hist), len(wh))
		}
		for i := range hist {
			if hist[i].TxID != wh[i].TxID || hist[i].Height != wh[i].Height {
				t.Fatalf("script %s item %d: %s@%d, want %s@%d", hx, i, hist[i].TxID, hist[i].Height, wh[i].TxID, wh[i].Height)
			}
		}
		utxos, _, err := ix.UTXOs(hx, 0)
		if err != nil {
			t.Fatal(err)
		}
		wu := want.UTXOs(hx)
		if len(utxos) != len(wu) {
			t.Fatalf("script %s: %d utxos, want %d", hx, len(utxos), len(wu))
		}
		for _, u := range utxos {
			if v, ok := wu[wire.OutPoint{Hash: u.TxID, Index: u.Vout}]; !ok || uint64(v) != u.Value {
				t.Fatalf("script %s: unexpected utxo %s:%d = %d", hx, u.TxID, u.Vout, u.Value)
			}
		}
		if bal, _, _, _ := ix.Balance(hx, 0); bal != uint64(want.Balance(hx)) {
			t.Fatalf("script %s: balance %d, want %d", hx, bal, want.Balance(hx))
		}
	}
	n, total, err := ix.UTXOStats()
	wn, wtotal := want.UTXOStats()
	if err != nil || n != wn || total != wtotal {
		t.Fatalf("utxo set %d / %d sat, want %d / %d", n, total, wn, wtotal)
	}
}

func TestBuildOnceMatchesChain(t *testing.T) {
	if testing.Short() {
		t.Skip("runs btcd")
	}
	r := testenv.StartRegtest(t, testenv.RegtestOptions{})
	r.Mine(110)
	activity(t, r, 30)
	dir := t.TempDir()
	out := mustBuild(t, dir, []string{r.Btcd.URL()}, "BUILD_VERIFY=1")
	if !strings.Contains(out, "index at daemon tip") || !strings.Contains(out, "no gettxoutsetinfo") {
		t.Errorf("build log lacks the tip or verify lines:\n%s", tail(out, 20))
	}
	_, ix := openIndex(t, dir)
	compareWithChain(t, ix, chainBlocks(t, r.Btcd))
}

// TestBuildReorgs reorganises the chain under a built index by 1, 6 and 50
// blocks; each time the resumed build must end in the same state as a
// build of the winning chain from scratch.
func TestBuildReorgs(t *testing.T) {
	if testing.Short() {
		t.Skip("runs btcd")
	}
	r := testenv.StartRegtest(t, testenv.RegtestOptions{})
	r.Mine(110)
	activity(t, r, 10)
	r.Mine(60)
	dir := t.TempDir()
	mustBuild(t, dir, []string{r.Btcd.URL()})
	for _, depth := range []int{1, 6, 50} {
		t.Run(fmt.Sprint(depth), func(t *testing.T) {
			activity(t, r, 4)
			mustBuild(t, dir, []string{r.Btcd.URL()})
			r.Reorg(depth, depth+2)
			out := mustBuild(t, dir, []string{r.Btcd.URL()})
			if !strings.Contains(out, "chain reorganised") || !strings.Contains(out, fmt.Sprintf("depth=%d", depth)) {
				t.Errorf("no reorg of depth %d logged:\n%s", depth, tail(out, 15))
			}
			fresh := t.TempDir()
			mustBuild(t, fresh, []string{r.Btcd.URL()})
			if got, want := testenv.DigestDir(t, dir), testenv.DigestDir(t, fresh); got != want {
				t.Fatalf("after a reorg of %d: digest %s, from scratch %s", depth, got, want)
			}
			_, ix := openIndex(t, dir)
			compareWithChain(t, ix, chainBlocks(t, r.Btcd))
		})
	}
}

// TestBuildRefusesWrongNetwork: a daemon of another network is refused
// with a clear message before anything is written. (A DB of another
// network is refused by index.Open; see the index tests.)
func TestBuildRefusesWrongNetwork(t *testing.T) {
	if testing.Short() {
		t.Skip("runs btcd")
	}
	r := testenv.StartRegtest(t, testenv.RegtestOptions{})
	r.Mine(5)
	dir := filepath.Join(t.TempDir(), "db")
	out, err := build(t, dir, []string{r.Btcd.URL()}, "NET=mainnet")
	if err == nil || !strings.Contains(out, "genesis") || !strings.Contains(out, "NET=mainnet") {
		t.Fatalf("mainnet build against a regtest daemon: %v\n%s", err, out)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("refused build created %s (%v)", dir, err)
	}
}

// TestBuildSIGTERM: a build interrupted by SIGTERM commits and exits 0,
// and the next run resumes from there.
func TestBuildSIGTERM(t *testing.T) {
	if testing.Short() {
		t.Skip("runs btcd")
	}
	r := testenv.StartRegtest(t, testenv.RegtestOptions{})
	r.Mine(300)
	dir := t.TempDir()
	cmd := exec.Command(amberBin, "build")
	cmd.Env = append(os.Environ(), "NET=regtest", "DB_DIRECTORY="+dir, "DAEMON_URL="+r.Btcd.URL(), "HTTP_ADDR=off", "DAEMON_POLL_INTERVAL=50ms")
	var stderr testenv.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for !strings.Contains(stderr.String(), "index at daemon tip") {
		if ctx.Err() != nil {
			cmd.Process.Kill()
			t.Fatalf("build never reached the tip:\n%s", stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	r.Mine(2) // followed while running
	time.Sleep(500 * time.Millisecond)
	cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("exit after SIGTERM: %v\n%s", err, tail(stderr.String(), 60))
	}
	_, ix := openIndex(t, dir)
	if got := ix.Tip().Height; got != 302 {
		t.Errorf("tip after following and SIGTERM = %d, want 302", got)
	}
}
