package builder_test

import (
	"bytes"
	"fmt"
	"math/rand/v2"
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
)

// generated starts a regtest btcd holding the Small generated chain: 2,000
// blocks and about 20,000 transactions of every script kind, with busy
// reused scripts.
func generated(t *testing.T) (*testenv.Btcd, *chaingen.Chain) {
	t.Helper()
	c := chaingen.Load(t, chaingen.Small)
	b := testenv.StartBtcd(t, testenv.BtcdOptions{})
	c.Submit(t, b, c.Height())
	return b, c
}

// daemons are the daemons the main suites run on.
var daemons = []string{"btcd", "core"}

// generatedOn is generated on the named daemon: "btcd", or "core" for
// Bitcoin Core without -txindex, with REST.
func generatedOn(t *testing.T, daemon string) (testenv.Node, *chaingen.Chain) {
	t.Helper()
	if daemon == "btcd" {
		return generated(t)
	}
	c := chaingen.Load(t, chaingen.Small)
	n := testenv.StartBitcoind(t, testenv.BitcoindOptions{OldTip: true})
	c.Submit(t, n, c.Height())
	return n, c
}

// parsed returns the generated chain as parsed blocks, genesis first,
// straight from the generator rather than through the daemon.
func parsed(t *testing.T, c *chaingen.Chain) []*chain.Block {
	t.Helper()
	net, _ := chain.Lookup("Bitcoin", "regtest")
	var buf bytes.Buffer
	if err := net.Params.GenesisBlock.Serialize(&buf); err != nil {
		t.Fatal(err)
	}
	g, err := chain.ParseBlock(buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	blocks := []*chain.Block{g}
	for _, raw := range c.Blocks {
		b, err := chain.ParseBlock(raw)
		if err != nil {
			t.Fatal(err)
		}
		blocks = append(blocks, b)
	}
	return blocks
}

// TestBuildGeneratedChain builds the generated chain from btcd and from
// Bitcoin Core, compares each index with a naive recomputation, and the
// two with each other: the same chain gives the same index digest.
func TestBuildGeneratedChain(t *testing.T) {
	if testing.Short() {
		t.Skip("runs btcd and Bitcoin Core")
	}
	digests := map[string]string{}
	for _, d := range daemons {
		t.Run(d, func(t *testing.T) {
			b, c := generatedOn(t, d)
			dir := t.TempDir()
			start := time.Now()
			out := mustBuild(t, dir, []string{b.URL()})
			t.Logf("indexed %d blocks, %d txs from %s in %v", c.Height(), c.Txs(), d, time.Since(start))
			if !strings.Contains(out, "sync progress") {
				t.Errorf("no progress lines in the build log:\n%s", tail(out, 10))
			}
			digests[d] = testenv.DigestDir(t, dir)
			_, ix := openIndex(t, dir)
			compareWithChain(t, ix, parsed(t, c))
			if d != "core" {
				return
			}
			// Core is on this host: its block files are read, not
			// fetched, and give the same index as REST does.
			want := fmt.Sprintf("blocks_from_files=%d", c.Height()+1)
			if !strings.Contains(out, "reading blocks from the daemon's block files") || !strings.Contains(out, want) {
				t.Errorf("the build did not read Core's block files (want %s):\n%s", want, tail(out, 10))
			}
			rest := t.TempDir()
			out = mustBuild(t, rest, []string{b.URL()}, "DAEMON_BLOCKS_DIR=off")
			if !strings.Contains(out, "blocks_from_files=0") {
				t.Errorf("DAEMON_BLOCKS_DIR=off read block files:\n%s", tail(out, 10))
			}
			if got := testenv.DigestDir(t, rest); got != digests[d] {
				t.Errorf("from Core's block files, index digest %s; over REST %s", digests[d], got)
			}
		})
	}
	if len(digests) == len(daemons) && digests["btcd"] != digests["core"] {
		t.Fatalf("the same chain gives index digest %s from btcd, %s from Bitcoin Core", digests["btcd"], digests["core"])
	}
}

// TestBuildKill9Resumes kills `amber build` with SIGKILL at random moments
// of its sync (and of following the tip); every restart must reopen at a
// consistent tip, and the final state must equal an uninterrupted build's,
// row for row.
func TestBuildKill9Resumes(t *testing.T) {
	if testing.Short() {
		t.Skip("runs btcd")
	}
	b, c := generated(t)
	env := []string{"CACHE_MB=16"} // small batches: many commits to land between
	ref := t.TempDir()
	start := time.Now()
	mustBuild(t, ref, []string{b.URL()}, env...)
	full := time.Since(start)
	want := testenv.DigestDir(t, ref)

	dir := t.TempDir()
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 7))
	last := int32(-1)
	midSync := 0
	for i := range 6 {
		cmd := exec.Command(amberBin, "build")
		cmd.Env = append(os.Environ(), "NET=regtest", "DB_DIRECTORY="+dir, "DAEMON_URL="+b.URL(), "HTTP_ADDR=off", "CACHE_MB=16")
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// Early in the run for the first kills, so that some surely land
		// mid-sync even when this run syncs faster than the reference.
		hi := 0.3 + 0.1*float64(i)
		wait := time.Duration(float64(full) * (0.05 + hi*rng.Float64()))
		if i == 5 {
			wait = full * 2 // once more at the tip, while following
		}
		time.Sleep(wait)
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Wait()
		tip := tipOf(t, dir)
		t.Logf("kill %d after %v: tip %d", i+1, wait.Round(time.Millisecond), tip.Height)
		if tip.Height < last {
			t.Fatalf("tip went back from %d to %d", last, tip.Height)
		}
		if tip.Height < int32(c.Height()) {
			midSync++
		}
		last = tip.Height
	}
	if midSync == 0 {
		t.Fatalf("no kill landed mid-sync (an uninterrupted sync took %v)", full)
	}
	mustBuild(t, dir, []string{b.URL()}, env...)
	if got := testenv.DigestDir(t, dir); got != want {
		t.Fatalf("after 6 kills the index digest is %s, an uninterrupted build gives %s", got, want)
	}
}

// TestBuildFailover stops the first of two daemons mid-sync; the build
// fails over to the second and ends in the same state.
func TestBuildFailover(t *testing.T) {
	if testing.Short() {
		t.Skip("runs btcd")
	}
	first, c := generated(t)
	second := testenv.StartBtcd(t, testenv.BtcdOptions{})
	c.Submit(t, second, c.Height())

	ref := t.TempDir()
	mustBuild(t, ref, []string{second.URL()}, "CACHE_MB=16")

	dir := t.TempDir()
	cmd := exec.Command(amberBin, "build", "--once")
	cmd.Env = append(os.Environ(), "NET=regtest", "DB_DIRECTORY="+dir, "DAEMON_URL="+first.URL()+","+second.URL(), "HTTP_ADDR=off", "CACHE_MB=16", "LOG_LEVEL=debug")
	var stderr testenv.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for !strings.Contains(stderr.String(), "done=99 ") && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	first.Crash()
	if err := cmd.Wait(); err != nil {
		t.Fatalf("build with a dead first daemon: %v\n%s", err, tail(stderr.String(), 20))
	}
	log := stderr.String()
	if !strings.Contains(log, "daemon failover") {
		t.Errorf("no failover logged:\n%s", tail(log, 20))
	}
	if got, want := testenv.DigestDir(t, dir), testenv.DigestDir(t, ref); got != want {
		t.Fatalf("after failover digest %s, want %s", got, want)
	}
}

// tipOf opens the index at dir just long enough to read its tip.
func tipOf(t *testing.T, dir string) index.Tip {
	t.Helper()
	db, err := store.Open(dir, store.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	net, _ := chain.Lookup("Bitcoin", "regtest")
	ix, err := index.Open(db, net, index.Options{})
	if err != nil {
		t.Fatalf("reopen after kill: %v", err)
	}
	return ix.Tip()
}
