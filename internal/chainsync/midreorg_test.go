package chainsync

import (
	"context"
	"testing"

	"github.com/btcsuite/btcd/chainhash/v2"

	"amber/internal/chain"
	"amber/internal/index"
)

// staleBest is a source whose first BestBlock answer predates a reorg the
// daemon is in the middle of, as btcd answers between the blocks it
// disconnects.
type staleBest struct {
	*fakeSource
	height int32
	hash   chainhash.Hash
	used   bool
}

func (s *staleBest) BestBlock(ctx context.Context) (int32, chainhash.Hash, error) {
	if !s.used {
		s.used = true
		return s.height, s.hash, nil
	}
	return s.fakeSource.BestBlock(ctx)
}

// TestDaemonMidReorg: the daemon said its tip was our tip, 500, but by the
// time we ask for the hash at 500 it has disconnected down to 490 on its
// way to another branch. That is neither a failure nor yet a reorg: its
// block 490 is ours, so the index waits; once the daemon is on the new
// branch the index unwinds and ends where a sync of that branch from
// scratch ends.
func TestDaemonMidReorg(t *testing.T) {
	db, ix, net := newIndex(t)
	a := makeChain(t, net, nil, 500, 'a')
	src := &fakeSource{}
	src.set(a)
	s := New(ix, src, Options{})
	if _, err := s.SyncToTip(context.Background()); err != nil {
		t.Fatal(err)
	}
	src.set(a[:491])
	s.src = &staleBest{fakeSource: src, height: 500, hash: chain.HeaderHash(a[500][:80])}
	tip, err := s.SyncToTip(context.Background())
	if err != nil {
		t.Fatalf("sync while the daemon is mid-reorg: %v", err)
	}
	if tip.Height != 500 {
		t.Fatalf("tip %d mid-reorg, want 500: nothing disconnected while the daemon is below us on our chain", tip.Height)
	}
	if tip, err = s.SyncToTip(context.Background()); err != nil || tip.Height != 500 {
		t.Fatalf("daemon still at 490: tip %d, %v", tip.Height, err)
	}
	if h, ok := s.Behind(); !ok || h != 490 {
		t.Fatalf("Behind() = %d, %v; want 490, true", h, ok)
	}
	b := makeChain(t, net, a[:491], 20, 'b')
	src.set(b)
	if tip, err = s.SyncToTip(context.Background()); err != nil || tip.Height != 510 {
		t.Fatalf("after the reorg: tip %d, %v", tip.Height, err)
	}
	refDB, ref, _ := newIndex(t)
	if _, err := New(ref, &fakeSource{blocks: b, hashes: src.hashes}, Options{}).SyncToTip(context.Background()); err != nil {
		t.Fatal(err)
	}
	got, _ := index.Digest(db)
	want, _ := index.Digest(refDB)
	if got != want {
		t.Fatalf("digest %s, from scratch %s", got, want)
	}
}
