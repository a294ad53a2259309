package index

import (
	"errors"
	"testing"

	"amber/internal/chain"
	"amber/internal/testenv/naive"
)

// openCached is openIndex with a UTXO cache of cacheBytes.
func openCached(t *testing.T, reorgLimit int, cacheBytes int64) (*Index, func() string) {
	t.Helper()
	net := regtest(t)
	db, ix := openIndex(t, net, reorgLimit)
	ix.utxos = newUTXOCache(cacheBytes)
	return ix, func() string { return digest(t, db) }
}

// bulkConnect connects blocks in bulk writers of perCommit blocks.
func bulkConnect(t *testing.T, ix *Index, blocks []*chain.Block, perCommit int) {
	t.Helper()
	for i := 0; i < len(blocks); i += perCommit {
		w, err := ix.NewBulkWriter()
		if err != nil {
			t.Fatal(err)
		}
		for _, b := range blocks[i:min(i+perCommit, len(blocks))] {
			if err := w.Connect(b); err != nil {
				t.Fatalf("connect block %d: %v", w.Tip().Height+1, err)
			}
		}
		if err := w.Commit(false); err != nil {
			t.Fatal(err)
		}
	}
}

// TestUTXOCache indexes one chain with the cache off, large, and so small
// that it evicts all the time: the rows must be the same, and a cache
// that holds the outputs must answer the spends of committed outputs.
func TestUTXOCache(t *testing.T) {
	net := regtest(t)
	blocks := makeChain(net, 7, 400)
	refIx, refDigest := openCached(t, 100, 0)
	bulkConnect(t, refIx, blocks, 37)
	for _, tc := range []struct {
		name      string
		bytes     int64
		wantHits  bool
		maxCached int
	}{
		{"large", 64 << 20, true, 1 << 30},
		{"evicting", 40 * cacheEntryBytes, true, 40},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ix, d := openCached(t, 100, tc.bytes)
			bulkConnect(t, ix, blocks, 37)
			if d() != refDigest() {
				t.Fatal("rows differ from an index built without the cache")
			}
			checkAgainstOracle(t, ix, naive.Build(blocks))
			st := ix.CacheStats()
			if tc.wantHits && st.Hits == 0 {
				t.Errorf("no spend was answered by the cache: %+v", st)
			}
			if st.Entries > tc.maxCached {
				t.Errorf("cache holds %d outputs, bound is %d", st.Entries, tc.maxCached)
			}
			t.Logf("%s: %+v", tc.name, st)
		})
	}
}

// TestUTXOCacheDiscardAndReorg checks that the cache follows only what is
// committed: a discarded batch leaves it as it was, and after a reorg
// the branch's spends of the same coins are indexed as from scratch.
func TestUTXOCacheDiscardAndReorg(t *testing.T) {
	net := regtest(t)
	a := makeChain(net, 5, 200)
	b := competingBranch(a)
	ix, d := openCached(t, 100, 64<<20)
	bulkConnect(t, ix, a[:150], 30)

	// A batch that spends cached outputs, then is thrown away.
	w, err := ix.NewBulkWriter()
	if err != nil {
		t.Fatal(err)
	}
	for _, blk := range a[150:180] {
		if err := w.Connect(blk); err != nil {
			t.Fatal(err)
		}
	}
	w.Close()
	bulkConnect(t, ix, a[150:], 25)

	w, err = ix.NewWriter()
	if err != nil {
		t.Fatal(err)
	}
	for w.Tip().Hash != b[w.Tip().Height].Hash {
		if err := w.Disconnect(); err != nil {
			t.Fatal(err)
		}
	}
	fork := w.Tip().Height
	if err := w.Commit(true); err != nil {
		t.Fatal(err)
	}
	if n := ix.CacheStats().Entries; n != 0 {
		t.Fatalf("the cache holds %d outputs after a reorg, want it cleared", n)
	}
	bulkConnect(t, ix, b[fork+1:], 4)

	ref, refDigest := openCached(t, 100, 0)
	bulkConnect(t, ref, b, 1000)
	if d() != refDigest() {
		t.Fatal("state after reorg with the cache differs from indexing the winning branch from scratch")
	}
	checkAgainstOracle(t, ix, naive.Build(b))
}

// TestNoUndoFarFromTip: blocks REORG_LIMIT or more below the daemon's tip
// get no undo record, the rows are otherwise the same, and a reorg that
// would need them is refused as too deep.
func TestNoUndoFarFromTip(t *testing.T) {
	net := regtest(t)
	blocks := makeChain(net, 3, 120)
	ix, d := openCached(t, 10, 64<<20)
	w, err := ix.NewBulkWriter()
	if err != nil {
		t.Fatal(err)
	}
	w.SetDaemonTip(119)
	for _, blk := range blocks {
		if err := w.Connect(blk); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Commit(true); err != nil {
		t.Fatal(err)
	}
	undos := 0
	if err := ix.db.Scan([]byte{prefixUndo}, func(k, v []byte) error { undos++; return nil }); err != nil {
		t.Fatal(err)
	}
	if undos != 10 {
		t.Errorf("%d undo records, want the last 10 blocks' only", undos)
	}
	ref, refDigest := openCached(t, 10, 0)
	bulkConnect(t, ref, blocks, 1000)
	if d() != refDigest() {
		t.Fatal("rows differ from an index that wrote every undo record")
	}
	w, err = ix.NewWriter()
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	n := 0
	for err == nil {
		err = w.Disconnect()
		n++
	}
	if !errors.Is(err, ErrReorgTooDeep) || n != 11 {
		t.Fatalf("disconnect %d: %v, want ErrReorgTooDeep after 10", n, err)
	}
}
