package chainsync

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/btcsuite/btcd/chainhash/v2"
	"github.com/btcsuite/btcd/wire/v2"

	"amber/internal/chain"
	"amber/internal/index"
	"amber/internal/store"
)

// fakeSource serves an in-memory chain that a test can replace (a reorg)
// or make fail.
type fakeSource struct {
	mu     sync.Mutex
	blocks [][]byte
	hashes []chainhash.Hash
	fail   error
	delay  time.Duration
	counts []int // the blocks of each RawBlocks request
}

func (f *fakeSource) set(blocks [][]byte) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.blocks = blocks
	f.hashes = nil
	for _, b := range blocks {
		f.hashes = append(f.hashes, chain.HeaderHash(b[:80]))
	}
}

func (f *fakeSource) BestBlock(context.Context) (int32, chainhash.Hash, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail != nil {
		return 0, chainhash.Hash{}, f.fail
	}
	return int32(len(f.blocks) - 1), f.hashes[len(f.hashes)-1], nil
}

func (f *fakeSource) BlockHashes(_ context.Context, start int32, count int) ([]chainhash.Hash, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail != nil {
		return nil, f.fail
	}
	if int(start)+count > len(f.hashes) {
		return nil, errors.New("fake: no such height")
	}

	return append([]chainhash.Hash(nil), f.hashes[start:int(start)+count]...), nil
}

func (f *fakeSource) RawBlocks(ctx context.Context, hashes []chainhash.Hash) ([][]byte, error) {
	f.mu.Lock()
	f.counts = append(f.counts, len(hashes))
	delay := f.delay
	f.mu.Unlock()
	if delay > 0 {
		select {
		case <-time.After(delay):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	var out [][]byte
	for _, h := range hashes {
		found := false
		for i, have := range f.hashes {
			if have == h {
				out = append(out, f.blocks[i])
				found = true
				break
			}
		}
		if !found {
			return nil, errors.New("fake: unknown block")
		}
	}
	return out, nil
}

// makeChain builds n blocks after genesis whose coinbases pay one of a few
// scripts; tag makes branches differ.
func makeChain(t testing.TB, net *chain.Network, from [][]byte, n int, tag byte) [][]byte {
	t.Helper()
	blocks := append([][]byte(nil), from...)
	if len(blocks) == 0 {
		var buf bytes.Buffer
		if err := net.Params.GenesisBlock.Serialize(&buf); err != nil {
			t.Fatal(err)
		}
		blocks = append(blocks, buf.Bytes())
	}
	for i := 0; i < n; i++ {
		h := len(blocks)
		cb := wire.NewMsgTx(1)
		var hb [4]byte
		binary.LittleEndian.PutUint32(hb[:], uint32(h))
		cb.AddTxIn(&wire.TxIn{PreviousOutPoint: wire.OutPoint{Index: wire.MaxPrevOutIndex}, SignatureScript: append([]byte{4}, hb[:]...)})
		cb.AddTxOut(wire.NewTxOut(50e8, []byte{0x51, tag, byte(h % 7)}))
		msg := wire.MsgBlock{Header: wire.BlockHeader{
			Version: 4, PrevBlock: chain.HeaderHash(blocks[h-1][:80]), MerkleRoot: cb.TxHash(),
			Timestamp: time.Unix(1_600_000_000+int64(h)*600, 0), Bits: 0x207fffff, Nonce: uint32(tag),
		}}
		msg.AddTransaction(cb)
		var buf bytes.Buffer
		if err := msg.Serialize(&buf); err != nil {
			t.Fatal(err)
		}
		blocks = append(blocks, buf.Bytes())
	}
	return blocks
}

func newIndex(t testing.TB) (*store.DB, *index.Index, *chain.Network) {
	t.Helper()
	net, _ := chain.Lookup("Bitcoin", "regtest")
	db, err := store.Open("", store.Options{InMemory: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	ix, err := index.Open(db, net, index.Options{ReorgLimit: 100})
	if err != nil {
		t.Fatal(err)
	}
	return db, ix, net
}

func TestSyncAndReorg(t *testing.T) {
	db, ix, net := newIndex(t)
	a := makeChain(t, net, nil, 500, 'a')
	src := &fakeSource{}
	src.set(a)
	var commits int
	s := New(ix, src, Options{BatchBytes: 4 << 10, FetchChunk: 16, OnCommit: func(index.Tip, *index.Touched) { commits++ }})
	tip, err := s.SyncToTip(context.Background())
	if err != nil || tip.Height != 500 || tip.Hash != chain.HeaderHash(a[500][:80]) {
		t.Fatalf("sync: tip %d err %v", tip.Height, err)
	}
	if commits < 10 {
		t.Errorf("%d commits with a 4 KiB batch budget; want many", commits)
	}

	// Same height, other branch: the tip check must notice.
	b := makeChain(t, net, a[:481], 20, 'b')
	src.set(b)
	if tip, err = s.SyncToTip(context.Background()); err != nil || tip.Hash != chain.HeaderHash(b[500][:80]) {
		t.Fatalf("reorg at equal height: tip %d %s err %v", tip.Height, tip.Hash, err)
	}
	// Longer branch from lower down: found by a prev-hash mismatch.
	c := makeChain(t, net, b[:451], 60, 'c')
	src.set(c)
	if tip, err = s.SyncToTip(context.Background()); err != nil || tip.Height != 510 {
		t.Fatalf("reorg to a longer branch: tip %d err %v", tip.Height, err)
	}
	if s.prog.Reorgs != 2 {
		t.Errorf("%d reorgs counted, want 2", s.prog.Reorgs)
	}
	refDB, ref, _ := newIndex(t)
	if _, err := New(ref, &fakeSource{blocks: c, hashes: src.hashes}, Options{}).SyncToTip(context.Background()); err != nil {
		t.Fatal(err)
	}
	got, _ := index.Digest(db)
	want, _ := index.Digest(refDB)
	// Undo rows match too: nothing here is older than the reorg limit.
	if got != want {
		t.Fatalf("after reorgs digest %s, from scratch %s", got, want)
	}
}

// TestCancelCommits: a cancelled sync commits what it applied and a new
// Syncer resumes from there.
func TestCancelCommits(t *testing.T) {
	_, ix, net := newIndex(t)
	blocks := makeChain(t, net, nil, 400, 'a')
	src := &fakeSource{delay: 5 * time.Millisecond}
	src.set(blocks)
	ctx, cancel := context.WithCancel(context.Background())
	s := New(ix, src, Options{FetchChunk: 10, BatchBytes: 1 << 30, Progress: func(p Progress) {
		if p.Height >= 100 {
			cancel()
		}
	}})
	tip, err := s.SyncToTip(ctx)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled sync returned %v", err)
	}
	if tip.Height < 100 || tip.Height >= 400 || ix.Tip() != tip {
		t.Fatalf("cancelled at %d, index tip %d", tip.Height, ix.Tip().Height)
	}
	src.delay = 0
	if tip, err = New(ix, src, Options{}).SyncToTip(context.Background()); err != nil || tip.Height != 400 {
		t.Fatalf("resume: %d %v", tip.Height, err)
	}
}

// TestChunkBytes: large blocks are fetched in smaller chunks, so the
// blocks held ahead of the writer stay bounded in bytes, and every block
// is still applied once, in order.
func TestChunkBytes(t *testing.T) {
	_, ix, net := newIndex(t)
	blocks := makeChain(t, net, nil, 200, 'a')
	src := &fakeSource{}
	src.set(blocks)
	per := len(blocks[100])
	tip, err := New(ix, src, Options{FetchChunk: 50, ChunkBytes: 3 * per, BatchBytes: 1 << 30}).SyncToTip(context.Background())
	if err != nil || tip.Height != 200 || tip.Hash != src.hashes[200] {
		t.Fatalf("sync: tip %d %s, %v", tip.Height, tip.Hash, err)
	}
	total := 0
	for i, n := range src.counts {
		total += n
		if i > 0 && (n < 1 || n > 4) {
			t.Errorf("request %d asked for %d blocks of about %d bytes with ChunkBytes %d", i, n, per, 3*per)
		}
	}
	if src.counts[0] != 50 || total != len(blocks) {
		t.Errorf("requests %v: want a first chunk of FetchChunk and every block once", src.counts)
	}
}

// TestFirstChunkSmall: a sync asks for at most 50 blocks before it knows
// their size (50 mainnet blocks can be 200 MB), then twice as many each
// time, up to FetchChunk of small ones.
func TestFirstChunkSmall(t *testing.T) {
	_, ix, net := newIndex(t)
	blocks := makeChain(t, net, nil, 1800, 'a')
	src := &fakeSource{}
	src.set(blocks)
	tip, err := New(ix, src, Options{}).SyncToTip(context.Background())
	if err != nil || tip.Height != 1800 {
		t.Fatalf("sync: tip %d, %v", tip.Height, err)
	}
	want := []int{firstChunk, 2 * firstChunk, 4 * firstChunk, 8 * firstChunk, 500}
	if len(src.counts) < len(want) || !slices.Equal(src.counts[:len(want)], want) {
		t.Errorf("requests %v: want %v first", src.counts, want)
	}
}

func TestSourceErrorsKeepIndex(t *testing.T) {
	_, ix, net := newIndex(t)
	src := &fakeSource{}
	src.set(makeChain(t, net, nil, 50, 'a'))
	s := New(ix, src, Options{})
	if _, err := s.SyncToTip(context.Background()); err != nil {
		t.Fatal(err)
	}
	src.fail = errors.New("daemon down")
	if _, err := s.SyncToTip(context.Background()); err == nil || ix.Tip().Height != 50 {
		t.Fatalf("source failure: err %v, tip %d", err, ix.Tip().Height)
	}
	// A block that does not match its hash is refused.
	src.fail = nil
	bad := makeChain(t, net, nil, 60, 'a')
	bad[55] = bad[54]
	src.blocks = bad
	src.hashes = nil
	for _, b := range makeChain(t, net, nil, 60, 'a') {
		src.hashes = append(src.hashes, chain.HeaderHash(b[:80]))
	}
	if _, err := s.SyncToTip(context.Background()); err == nil {
		t.Fatal("a block that does not hash to its height's hash was accepted")
	}
	// The chunk holding it is dropped whole; the index stays at its tip.
	if h := ix.Tip().Height; h != 50 {
		t.Errorf("tip after a bad block = %d, want 50", h)
	}
}

func TestMemorySource(t *testing.T) {
	_, ix, net := newIndex(t)
	blocks := makeChain(t, net, nil, 120, 'm')
	src, err := NewMemorySource(blocks)
	if err != nil {
		t.Fatal(err)
	}
	tip, err := New(ix, src, Options{FetchChunk: 7}).SyncToTip(context.Background())
	if err != nil || tip.Height != 120 || tip.Hash != chain.HeaderHash(blocks[120][:80]) {
		t.Fatalf("tip %d %s err %v", tip.Height, tip.Hash, err)
	}
	if _, err := src.BlockHashes(context.Background(), 100, 30); err == nil {
		t.Error("hashes past the end were served")
	}
}

// TestCollectTouched: in follow mode every commit, the reorg's included,
// says which scripts it touched.
func TestCollectTouched(t *testing.T) {
	_, ix, net := newIndex(t)
	a := makeChain(t, net, nil, 30, 'a')
	src := &fakeSource{}
	src.set(a)
	seen := map[chain.HashX]bool{}
	s := New(ix, src, Options{CollectTouched: true, OnCommit: func(_ index.Tip, tc *index.Touched) {
		for hx := range tc.Scripts {
			seen[hx] = true
		}
	}})
	if _, err := s.SyncToTip(context.Background()); err != nil {
		t.Fatal(err)
	}
	// Coinbases pay 7 scripts tagged 'a'.
	if len(seen) != 7 {
		t.Fatalf("%d scripts touched, want 7", len(seen))
	}
	clear(seen)
	src.set(makeChain(t, net, a[:25], 10, 'b'))
	if _, err := s.SyncToTip(context.Background()); err != nil {
		t.Fatal(err)
	}
	// The reorg removes 'a' coinbases of 25..30 and adds 7 'b' scripts.
	if !seen[chain.HashXOf([]byte{0x51, 'a', 25 % 7})] || !seen[chain.HashXOf([]byte{0x51, 'b', 30 % 7})] {
		t.Errorf("reorg touched %d scripts, missing the disconnected or the new ones", len(seen))
	}
}

// TestCommitPolicy: catching up commits by batch budget only (one commit
// here), not block by block near the tip; following commits each block.
func TestCommitPolicy(t *testing.T) {
	_, ix, net := newIndex(t)
	blocks := makeChain(t, net, nil, 300, 'a')
	src := &fakeSource{}
	src.set(blocks)
	var heights []int32
	s := New(ix, src, Options{BatchBytes: 1 << 30, FetchChunk: 7, OnCommit: func(tip index.Tip, _ *index.Touched) {
		heights = append(heights, tip.Height)
	}})
	if _, err := s.SyncToTip(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(heights) != 1 || heights[0] != 300 {
		t.Fatalf("catching up 300 blocks committed at %v, want once at 300", heights)
	}
	heights = nil
	src.set(makeChain(t, net, blocks, 3, 'a'))
	if _, err := s.SyncToTip(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(heights) != 3 || heights[0] != 301 || heights[2] != 303 {
		t.Fatalf("following 3 new blocks committed at %v, want each", heights)
	}
}

// unverifiedSource is a fakeSource whose blocks may be torn, as Core's
// block files can be.
type unverifiedSource struct{ *fakeSource }

func (unverifiedSource) Unverified() bool { return true }

// TestTornBlockRefused: a block whose header is whole but whose
// transactions are not (read from a file while Core writes it) is refused
// by its merkle root, and the index keeps the blocks before its chunk.
func TestTornBlockRefused(t *testing.T) {
	_, ix, net := newIndex(t)
	blocks := makeChain(t, net, nil, 120, 'a')
	src := &fakeSource{}
	src.set(blocks)
	torn := append([]byte(nil), blocks[100]...)
	torn[len(torn)-1] ^= 1 // the last transaction's lock time
	src.blocks = append(append(append([][]byte(nil), blocks[:100]...), torn), blocks[101:]...)
	_, err := New(ix, unverifiedSource{src}, Options{}).SyncToTip(context.Background())
	if err == nil || !strings.Contains(err.Error(), "merkle root") {
		t.Fatalf("sync with a torn block 100: %v", err)
	}
	if h := ix.Tip().Height; h >= 100 {
		t.Fatalf("the index reached %d past the torn block", h)
	}
	src.blocks = blocks
	if tip, err := New(ix, unverifiedSource{src}, Options{}).SyncToTip(context.Background()); err != nil || tip.Height != 120 {
		t.Fatalf("sync once the block is whole: %d, %v", tip.Height, err)
	}
}
