package query

import (
	"context"
	"encoding/hex"
	"testing"

	"github.com/btcsuite/btcd/chainhash/v2"
	"github.com/btcsuite/btcd/wire/v2"

	"amber/internal/chain"
	"amber/internal/testenv"
)

func txid(i byte) chainhash.Hash { return chainhash.Hash{i} }

// TestTxCacheBytes: the cache stays under its byte bound, drops the least
// recently used first, and counts hits and misses.
func TestTxCacheBytes(t *testing.T) {
	raw := make([]byte, 1000)
	c := newTxCache(10 * (1000 + txItemOverhead))
	for i := range byte(30) {
		if _, ok := c.get(txid(i), 0); ok {
			t.Fatalf("tx %d cached before it was put", i)
		}
		c.put(txid(i), raw, 0)
		if i == 5 {
			c.get(txid(0), 0) // keeps 0 recent
		}
		if _, _, b := c.stats(); b > c.max {
			t.Fatalf("after %d puts the cache holds %d bytes, over its bound %d", i+1, b, c.max)
		}
	}
	for i, want := range map[byte]bool{29: true, 20: true, 19: false, 1: false} {
		if _, ok := c.get(txid(i), 0); ok != want {
			t.Errorf("tx %d cached %v, want %v", i, ok, want)
		}
	}
	if hits, misses, _ := c.stats(); hits != 3 || misses != 32 {
		t.Errorf("%d hits and %d misses, want 3 and 32", hits, misses)
	}
	c.put(txid(99), make([]byte, c.max), 0)
	if _, ok := c.get(txid(99), 0); ok {
		t.Error("a tx larger than the whole cache was kept")
	}
}

// rawDaemon serves raw transactions from a map and counts the calls.
type rawDaemon struct {
	Daemon
	txs   map[chainhash.Hash][]byte
	calls int
}

func (d *rawDaemon) RawTransaction(_ context.Context, id chainhash.Hash) ([]byte, error) {
	d.calls++
	return d.txs[id], nil
}

// TestTransactionGetAfterReorg: transaction.get is answered from the
// cache until a reorg, which may have changed the transaction's witness;
// then the daemon is asked again.
func TestTransactionGetAfterReorg(t *testing.T) {
	ix, genesis := memIndex(t)
	b1 := testenv.Block(t, genesis.Hash, 1)
	w, _ := ix.NewWriter()
	w.Connect(genesis)
	w.Connect(b1)
	w.Connect(testenv.Block(t, b1.Hash, 2))
	if err := w.Commit(true); err != nil {
		t.Fatal(err)
	}
	id := txid(7)
	d := &rawDaemon{txs: map[chainhash.Hash][]byte{id: {1, 2, 3}}}
	b := NewBackend(ix, nil, d, 8_100_000)
	get := func() string {
		t.Helper()
		res, err := b.GetTransaction(context.Background(), id, false)
		if err != nil {
			t.Fatal(err)
		}
		return res.(string)
	}
	first, second := get(), get()
	if first != "010203" || second != "010203" || d.calls != 1 {
		t.Fatalf("two gets returned %s and %s with %d daemon calls, want 010203 twice from 1 call", first, second, d.calls)
	}
	// The tx is mined again with another witness in a competing block 2.
	d.txs[id] = []byte{1, 2, 4}
	w, _ = ix.NewWriter()
	if err := w.Disconnect(); err != nil {
		t.Fatal(err)
	}
	if err := w.Connect(testenv.Block(t, b1.Hash, 3)); err != nil {
		t.Fatal(err)
	}
	if err := w.Commit(true); err != nil {
		t.Fatal(err)
	}
	if got := get(); got != hex.EncodeToString([]byte{1, 2, 4}) || d.calls != 2 {
		t.Fatalf("after the reorg: %s with %d daemon calls, want 010204 from a second call", got, d.calls)
	}
	st := b.CacheStats()
	if st[0].Name != "raw_tx" || st[0].Hits != 1 || st[0].Misses != 2 {
		t.Errorf("raw tx cache stats %+v, want 1 hit and 2 misses", st[0])
	}
}

// TestTxMerkleCost: get_merkle's cost grows with the block, and a block
// whose tree is cached costs less than reading and hashing it again.
func TestTxMerkleCost(t *testing.T) {
	ix, genesis := memIndex(t)
	b1 := testenv.Block(t, genesis.Hash, 1)
	// Block 2: a chain of 300 payments, each spending the one before.
	var txs []*wire.MsgTx
	prev := wire.OutPoint{Hash: b1.Txs[0].TxID}
	for range 300 {
		tx := wire.NewMsgTx(2)
		tx.AddTxIn(&wire.TxIn{PreviousOutPoint: prev})
		tx.AddTxOut(wire.NewTxOut(1e8, []byte{0x52}))
		txs = append(txs, tx)
		prev = wire.OutPoint{Hash: tx.TxHash()}
	}
	b2 := testenv.Block(t, b1.Hash, 2, txs...)
	w, _ := ix.NewWriter()
	for _, blk := range []*chain.Block{genesis, b1, b2} {
		if err := w.Connect(blk); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Commit(true); err != nil {
		t.Fatal(err)
	}
	b := NewBackend(ix, nil, nil, 8_100_000)
	_, _, small, err := b.TxMerkle(b1.Txs[0].TxID, 1)
	if err != nil {
		t.Fatal(err)
	}
	id := txs[150].TxHash()
	_, pos, miss, err := b.TxMerkle(id, 2)
	if err != nil || pos != 151 {
		t.Fatalf("tx 151 of block 2: pos %d (%v)", pos, err)
	}
	_, _, hit, _ := b.TxMerkle(id, 2)
	if !(small < miss && hit < miss && hit > 0) {
		t.Errorf("costs: one-tx block %g; 301-tx block %g on a miss, %g on a hit; want the big block dearer, and cheaper once cached", small, miss, hit)
	}
}

// TestHeaderChunkCache: a chunk of headers is read once and then served
// from the cache, an unaligned range is not cached, and a reorg inside a
// cached chunk makes the next answer carry the new headers.
func TestHeaderChunkCache(t *testing.T) {
	ix, genesis := memIndex(t)
	w, _ := ix.NewWriter()
	if err := w.Connect(genesis); err != nil {
		t.Fatal(err)
	}
	blocks := []*chain.Block{genesis}
	for h := 1; h <= HeaderChunk+4; h++ {
		blocks = append(blocks, testenv.Block(t, blocks[h-1].Hash, h))
		if err := w.Connect(blocks[h]); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Commit(true); err != nil {
		t.Fatal(err)
	}
	b := NewBackend(ix, nil, nil, 8_100_000)
	want := func() string {
		raw, err := ix.Headers(0, HeaderChunk)
		if err != nil {
			t.Fatal(err)
		}
		return hex.EncodeToString(raw)
	}
	get := func(start int32, count int) string {
		t.Helper()
		s, err := b.HeadersHex(start, count)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	stats := func() CacheStats { return b.CacheStats()[2] }
	if first, second := get(0, HeaderChunk), get(0, HeaderChunk); first != want() || second != want() {
		t.Fatal("a whole chunk differs from the headers in the index")
	}
	if st := stats(); st.Name != "header_chunk" || st.Hits != 1 || st.Misses != 1 || st.Bytes < 2*80*HeaderChunk {
		t.Errorf("after two reads of chunk 0: %+v, want 1 hit, 1 miss and the chunk's bytes", st)
	}
	get(5, 100)
	get(7, HeaderChunk-10)
	if st := stats(); st.Misses != 1 || st.Hits != 1 {
		t.Errorf("unaligned ranges went through the cache: %+v", st)
	}
	// The chunk at the tip, as long as it is.
	tipChunk := func() string {
		raw, err := ix.Headers(HeaderChunk, 5)
		if err != nil {
			t.Fatal(err)
		}
		return hex.EncodeToString(raw)
	}
	if first, second := get(HeaderChunk, 5), get(HeaderChunk, 5); first != tipChunk() || second != tipChunk() {
		t.Fatal("the chunk at the tip differs from the headers in the index")
	}
	if st := stats(); st.Misses != 2 || st.Hits != 2 {
		t.Errorf("after two reads of the chunk at the tip: %+v, want a second hit", st)
	}

	// Blocks 2,011 and up are replaced by another branch.
	const fork = HeaderChunk - 5
	before := get(0, HeaderChunk)
	w, _ = ix.NewWriter()
	for range len(blocks) - fork {
		if err := w.Disconnect(); err != nil {
			t.Fatal(err)
		}
	}
	prev := blocks[fork-1].Hash
	for h := fork; h < len(blocks); h++ {
		blk := testenv.Block(t, prev, h+100_000)
		if err := w.Connect(blk); err != nil {
			t.Fatal(err)
		}
		prev = blk.Hash
	}
	if err := w.Commit(true); err != nil {
		t.Fatal(err)
	}
	after := get(0, HeaderChunk)
	if after == before || after != want() {
		t.Error("after a reorg inside chunk 0 the cached chunk was served")
	}
}
