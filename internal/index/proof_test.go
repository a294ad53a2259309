package index

import (
	"slices"
	"testing"
	"time"

	"github.com/btcsuite/btcd/chainhash/v2"

	"amber/internal/chain"
	"amber/internal/merkle"
)

// naiveProof is the proof computed the way it was before the kept tree:
// every block hash up to cpHeight.
func naiveProof(t testing.TB, blocks []*chain.Block, height, cpHeight int32) ([]chainhash.Hash, chainhash.Hash) {
	t.Helper()
	var leaves []chainhash.Hash
	for _, b := range blocks[:cpHeight+1] {
		leaves = append(leaves, b.Hash)
	}
	br, root, err := merkle.Branch(leaves, int(height))
	if err != nil {
		t.Fatal(err)
	}
	return br, root
}

func checkProofs(t *testing.T, ix *Index, blocks []*chain.Block, step string) {
	t.Helper()
	tip := ix.Tip().Height
	for _, cp := range []int32{1, 2, 7, 8, 63, 64, 65, 150, tip - 1, tip} {
		if cp > tip {
			continue
		}
		for _, h := range []int32{0, 1, cp / 2, cp - 1, cp} {
			br, root, err := ix.CheckpointProof(h, cp)
			if err != nil {
				t.Fatalf("%s: proof of %d at cp %d: %v", step, h, cp, err)
			}
			wantBr, wantRoot := naiveProof(t, blocks, h, cp)
			if root != wantRoot || !slices.Equal(br, wantBr) {
				t.Fatalf("%s: proof of %d at cp %d differs from the naive one", step, h, cp)
			}
		}
	}
	if _, _, err := ix.CheckpointProof(3, tip+1); err == nil {
		t.Fatalf("%s: a proof past the tip succeeded", step)
	}
}

// TestCheckpointProofFollowsTheChain: proofs from the kept header tree
// equal the naive ones as blocks are connected and through a reorg that
// replaces the last blocks (the tree must forget nodes over them).
func TestCheckpointProofFollowsTheChain(t *testing.T) {
	net := regtest(t)
	a := makeChain(net, 5, 200)
	b := competingBranch(a)
	_, ix := openIndex(t, net, 100)
	connectAll(t, ix, a[:120], 50)
	checkProofs(t, ix, a, "120 blocks")
	connectAll(t, ix, a[120:], 7)
	checkProofs(t, ix, a, "200 blocks")

	w, err := ix.NewWriter()
	if err != nil {
		t.Fatal(err)
	}
	for w.Tip().Hash != b[w.Tip().Height].Hash {
		if err := w.Disconnect(); err != nil {
			t.Fatal(err)
		}
	}
	for _, blk := range b[w.Tip().Height+1:] {
		if err := w.Connect(blk); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Commit(false); err != nil {
		t.Fatal(err)
	}
	checkProofs(t, ix, b, "after the reorg")
}

// BenchmarkCheckpointProofAtTip is issue #20's target: 100 cp_height
// proofs at the tip of a 10,000-block chain (the size of the 310k-tx
// benchmark chain) in under 10 ms. The header tree is built before the
// timer starts, as a server that has answered one proof has it.
func BenchmarkCheckpointProofAtTip(b *testing.B) {
	net := regtest(b)
	_, ix := openIndex(b, net, 100)
	connectAll(b, ix, makeChain(net, 11, 10_000), 1000)
	tip := ix.Tip().Height
	if _, _, err := ix.CheckpointProof(0, tip); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		for i := range int32(100) {
			if _, _, err := ix.CheckpointProof(tip-i, tip); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N), "ms/100-proofs")
	// Baseline, same run: one proof the way it was made before the kept
	// tree, reading and hashing every header up to cp_height.
	start := time.Now()
	var leaves []chainhash.Hash
	for h := int32(0); h <= tip; h++ {
		raw, err := ix.Header(h)
		if err != nil {
			b.Fatal(err)
		}
		leaves = append(leaves, chain.HeaderHash(raw))
	}
	if _, _, err := merkle.Branch(leaves, int(tip)); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(time.Since(start).Microseconds())/1000, "naive-ms/proof")
}
