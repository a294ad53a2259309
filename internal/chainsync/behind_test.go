package chainsync

import (
	"context"
	"testing"

	"amber/internal/chain"
	"amber/internal/index"
)

// TestDaemonBehindIsNotReorg: a source below our tip on our chain (a daemon
// in initial block download, reindexing, or a failover target that lags)
// disconnects nothing, however far behind, even beyond the reorg limit;
// one whose block at its own tip differs from ours is a real reorg.
func TestDaemonBehindIsNotReorg(t *testing.T) {
	db, ix, net := newIndex(t)
	a := makeChain(t, net, nil, 300, 'a')
	src := &fakeSource{}
	src.set(a)
	s := New(ix, src, Options{})
	if _, err := s.SyncToTip(context.Background()); err != nil {
		t.Fatal(err)
	}
	before, _ := index.Digest(db)
	// 280 and 10 blocks (the latter 290 behind, beyond REORG_LIMIT 100).
	for _, h := range []int{280, 10, 0} {
		src.set(a[:h+1])
		tip, err := s.SyncToTip(context.Background())
		if err != nil || tip.Height != 300 {
			t.Fatalf("daemon at %d: tip %d, %v; want 300 kept", h, tip.Height, err)
		}
		if got, ok := s.Behind(); !ok || got != int32(h) {
			t.Fatalf("daemon at %d: Behind() = %d, %v", h, got, ok)
		}
	}
	if after, _ := index.Digest(db); after != before || s.prog.Reorgs != 0 {
		t.Fatalf("the index changed while the daemon was behind (%d reorgs)", s.prog.Reorgs)
	}
	// The daemon catches up on the same chain and goes on.
	a = makeChain(t, net, a, 5, 'a')
	src.set(a)
	if tip, err := s.SyncToTip(context.Background()); err != nil || tip.Height != 305 {
		t.Fatalf("after catching up: tip %d, %v", tip.Height, err)
	}
	if _, ok := s.Behind(); ok {
		t.Fatal("still behind after catching up")
	}

	// Behind and on another branch from 250: the blocks above the fork go.
	b := makeChain(t, net, a[:251], 40, 'b')
	src.set(b)
	tip, err := s.SyncToTip(context.Background())
	if err != nil || tip.Height != 290 || tip.Hash != chain.HeaderHash(b[290][:80]) {
		t.Fatalf("behind on another branch: tip %d, %v; want the branch's 290", tip.Height, err)
	}
	// Once more, the fork further below the daemon's tip.
	b2 := makeChain(t, net, a[:231], 30, 'c')
	src.set(b2)
	if tip, err = s.SyncToTip(context.Background()); err != nil || tip.Height != 260 || tip.Hash != chain.HeaderHash(b2[260][:80]) {
		t.Fatalf("behind on another branch: tip %d %s, %v; want the branch's 260", tip.Height, tip.Hash, err)
	}
	if s.prog.Reorgs != 2 {
		t.Fatalf("%d reorgs, want 2", s.prog.Reorgs)
	}
	// Undo rows differ with the path taken, so compare the coins.
	_, ref, _ := newIndex(t)
	if _, err := New(ref, &fakeSource{blocks: b2, hashes: src.hashes}, Options{}).SyncToTip(context.Background()); err != nil {
		t.Fatal(err)
	}
	n, sum, err := ix.UTXOStats()
	wn, wsum, werr := ref.UTXOStats()
	if err != nil || werr != nil || n != wn || sum != wsum {
		t.Fatalf("UTXO set %d/%d, from scratch %d/%d (%v %v)", n, sum, wn, wsum, err, werr)
	}
}
