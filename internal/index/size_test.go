package index

import (
	"context"
	"testing"

	"amber/internal/store"
)

// TestPrefixSizes indexes a chain on disk, compacts it and checks that
// PrefixSizes counts the rows a user of the index would expect (one
// header per block, one lookup row per transaction, txid rows of 16, no empty prefix where
// the chain has rows), and that the SST bytes it attributes add up to the
// live tables within the table metadata it cannot attribute.
func TestPrefixSizes(t *testing.T) {
	net := regtest(t)
	blocks := makeChain(net, 3, 300)
	db, err := store.Open(t.TempDir(), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ix, err := Open(db, net, Options{ReorgLimit: 100})
	if err != nil {
		t.Fatal(err)
	}
	connectAll(t, ix, blocks, 50)
	if err := db.Compact(context.Background()); err != nil {
		t.Fatal(err)
	}
	sizes, err := PrefixSizes(db)
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]PrefixSize{}
	var sst int64
	for _, p := range sizes {
		byName[p.Name] = p
		sst += p.SSTBytes
	}
	tip := ix.Tip()
	if got := byName["headers"].Rows; got != int64(tip.Height)+1 {
		t.Errorf("%d header rows, want %d", got, tip.Height+1)
	}
	// Txids come in rows of up to 16 per block.
	var chunks int64
	for h := int32(1); h <= tip.Height; h++ {
		_, n, _ := ix.BlockTxRange(h)
		chunks += int64(n+txidChunk-1) / txidChunk
	}
	if txids := byName["txids"]; txids.Rows != chunks || txids.ValueBytes != int64(tip.TxCount)*txidLen {
		t.Errorf("%d txid rows of %d bytes, want %d rows of %d", txids.Rows, txids.ValueBytes, chunks, tip.TxCount*txidLen)
	}
	if got := byName["tx lookup"].Rows; got != int64(tip.TxCount) {
		t.Errorf("%d tx lookup rows, want %d", got, tip.TxCount)
	}
	if got := byName["undo"].Rows; got != 100 {
		t.Errorf("%d undo rows, want REORG_LIMIT's 100", got)
	}
	for _, name := range []string{"history", "utxo", "outpoint lookup", "spend index", "txids"} {
		if p := byName[name]; p.Rows == 0 || p.SSTBytes == 0 || p.KeyBytes == 0 {
			t.Errorf("%s: %+v, want rows and bytes", name, p)
		}
	}
	// Each shared table's index and properties are not attributed; a data
	// block (4 KiB at most before compression) across a prefix boundary
	// counts on both sides.
	live := db.Metrics().TableBytes
	if sst < live*7/10 || sst > live+int64(len(sizes))*4096 {
		t.Errorf("prefixes add up to %d SST bytes, the live tables hold %d", sst, live)
	}
}
