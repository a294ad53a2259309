package chainsync_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"amber/internal/chain"
	"amber/internal/chainsync"
	"amber/internal/index"
	"amber/internal/testenv"
	"amber/internal/testenv/chaingen"
)

// crashChildEnv, when set, makes the test binary sync the Tiny chain into
// the directory it names instead of running the tests (see crashChild).
const crashChildEnv = "AMBER_CHAINSYNC_CRASH_CHILD_DIR"

func TestMain(m *testing.M) {
	if dir := os.Getenv(crashChildEnv); dir != "" {
		if err := crashChild(dir); err != nil {
			fmt.Fprintln(os.Stderr, "error:", err)
			os.Exit(2)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// tinyBlocks returns the Tiny generated chain's raw blocks, genesis first.
func tinyBlocks(logf func(string, ...any)) ([][]byte, error) {
	root, err := testenv.RepoRoot()
	if err != nil {
		return nil, err
	}
	c, err := chaingen.LoadDir(filepath.Join(root, chaingen.CacheDir), chaingen.Tiny, logf)
	if err != nil {
		return nil, err
	}
	net, _ := chain.Lookup("Bitcoin", "regtest")
	var g bytes.Buffer
	if err := net.Params.GenesisBlock.Serialize(&g); err != nil {
		return nil, err
	}
	return append([][]byte{g.Bytes()}, c.Blocks...), nil
}

// crashChild syncs the Tiny chain with a batch budget so small that it
// commits about every block, and a UTXO cache so small that it evicts:
// the process spends most of its time flushing batches (the outputs
// created in them, spends, the tip), which is where the kills land. Each
// commit is reported on stderr.
func crashChild(dir string) error {
	blocks, err := tinyBlocks(nil)
	if err != nil {
		return err
	}
	net, _ := chain.Lookup("Bitcoin", "regtest")
	db, ix, err := index.OpenDir(dir, 8<<20, net, index.Options{ReorgLimit: 50, UTXOCacheBytes: 16 << 10})
	if err != nil {
		return err
	}
	defer db.Close()
	src, err := chainsync.NewMemorySource(blocks)
	if err != nil {
		return err
	}
	_, err = chainsync.New(ix, src, chainsync.Options{BatchBytes: 4 << 10, FetchChunk: 5, Progress: func(p chainsync.Progress) {
		if p.Committed {
			fmt.Fprintf(os.Stderr, "commit %d\n", p.Height)
		}
	}}).SyncToTip(context.Background())
	return err
}

// TestKillDuringFlush kills a sync with SIGKILL while it flushes batches
// with the UTXO cache on: after each kill the index must reopen at a
// consistent tip no lower than after the previous kill, and the sync
// resumed from there must end with exactly the rows of an uninterrupted
// sync.
func TestKillDuringFlush(t *testing.T) {
	blocks, err := tinyBlocks(t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	net, _ := chain.Lookup("Bitcoin", "regtest")
	digestOf := func(dir string) (string, index.Tip) {
		t.Helper()
		db, ix, err := index.OpenDir(dir, 8<<20, net, index.Options{ReorgLimit: 50})
		if err != nil {
			t.Fatalf("reopen after a kill: %v", err)
		}
		defer db.Close()
		d, err := index.Digest(db)
		if err != nil {
			t.Fatal(err)
		}
		return d, ix.Tip()
	}

	// The reference: one uninterrupted sync, cache off, one batch.
	ref := t.TempDir()
	db, ix, err := index.OpenDir(ref, 8<<20, net, index.Options{ReorgLimit: 50})
	if err != nil {
		t.Fatal(err)
	}
	src, err := chainsync.NewMemorySource(blocks)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := chainsync.New(ix, src, chainsync.Options{}).SyncToTip(context.Background()); err != nil {
		t.Fatal(err)
	}
	db.Close()
	want, _ := digestOf(ref)

	dir := t.TempDir()
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 19))
	last := int32(-1)
	kills := 0
	for round := 0; round < 12; round++ {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), crashChildEnv+"="+dir)
		stderr, err := cmd.StderrPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// Kill after a random number of commits and a random instant
		// within the next ones.
		after := 1 + rng.IntN(20)
		sc := bufio.NewScanner(stderr)
		var out strings.Builder
		seen := 0
		for sc.Scan() {
			out.WriteString(sc.Text() + "\n")
			if strings.HasPrefix(sc.Text(), "commit ") {
				if seen++; seen == after {
					time.Sleep(time.Duration(rng.IntN(3000)) * time.Microsecond)
					if cmd.Process.Kill() == nil {
						kills++
					}
					break
				}
			}
		}
		err = cmd.Wait()
		if seen < after {
			if err != nil {
				t.Fatalf("sync child: %v\n%s", err, out.String())
			}
			break // it finished first
		}
		_, tip := digestOf(dir)
		if tip.Height < last {
			t.Fatalf("round %d: tip went back from %d to %d", round, last, tip.Height)
		}
		last = tip.Height
	}
	if kills == 0 {
		t.Fatal("no kill landed")
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), crashChildEnv+"="+dir)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("final sync: %v\n%s", err, out)
	}
	if got, tip := digestOf(dir); got != want {
		t.Fatalf("after %d kills the index (tip %d) differs from an uninterrupted sync's", kills, tip.Height)
	}
	t.Logf("%d kills during flushes, last tip after a kill %d", kills, last)
}
