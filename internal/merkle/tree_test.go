package merkle

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/btcsuite/btcd/chainhash/v2"
)

func leafHashes(seed uint64, n int) []chainhash.Hash {
	out := make([]chainhash.Hash, n)
	for i := range out {
		var b [16]byte
		binary.LittleEndian.PutUint64(b[:], seed)
		binary.LittleEndian.PutUint64(b[8:], uint64(i))
		out[i] = chainhash.DoubleHashH(b[:])
	}
	return out
}

// reader serves leaves from a slice and counts what it reads.
type reader struct {
	ls   []chainhash.Hash
	read int
}

func (r *reader) leaves(lo, hi int) ([]chainhash.Hash, error) {
	if lo < 0 || hi > len(r.ls) || lo > hi {
		return nil, fmt.Errorf("leaves [%d, %d) of %d", lo, hi, len(r.ls))
	}
	r.read += hi - lo
	return slices.Clone(r.ls[lo:hi]), nil
}

// TestTreeMatchesBranch checks the kept tree against the naive Branch for
// every size and index of small trees, through growth and reorgs that
// replace the last leaves, for several Base levels.
func TestTreeMatchesBranch(t *testing.T) {
	for base := range 4 {
		t.Run(fmt.Sprint("base", base), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(uint64(base), 9))
			r := &reader{ls: leafHashes(1, 40)}
			tr := NewTree(base)
			check := func(step string) {
				t.Helper()
				for size := 1; size <= len(r.ls); size++ {
					for index := range size {
						want, wantRoot, err := Branch(r.ls[:size], index)
						if err != nil {
							t.Fatal(err)
						}
						got, root, err := tr.Branch(index, size, r.leaves)
						if err != nil {
							t.Fatalf("%s: size %d index %d: %v", step, size, index, err)
						}
						if root != wantRoot || !slices.Equal(got, want) {
							t.Fatalf("%s: size %d index %d: branch or root differs from the naive tree", step, size, index)
						}
					}
				}
			}
			check("empty tree")
			if err := tr.Extend(len(r.ls), r.leaves); err != nil {
				t.Fatal(err)
			}
			check("extended")
			for round := range 6 {
				// A reorg: the last k leaves are replaced, maybe by more.
				k := 1 + rng.IntN(12)
				fork := len(r.ls) - k
				tr.Truncate(fork)
				r.ls = append(r.ls[:fork], leafHashes(uint64(100+round), k+rng.IntN(5))...)
				if err := tr.Extend(len(r.ls), r.leaves); err != nil {
					t.Fatal(err)
				}
				check(fmt.Sprint("reorg ", round))
			}
		})
	}
}

// TestTreeBranchReadsFewLeaves: a proof at the tip of a kept tree reads
// at most two groups of leaves, not the whole chain.
func TestTreeBranchReadsFewLeaves(t *testing.T) {
	r := &reader{ls: leafHashes(2, 100_003)}
	tr := NewTree(2)
	if err := tr.Extend(len(r.ls), r.leaves); err != nil {
		t.Fatal(err)
	}
	r.read = 0
	for _, size := range []int{100_003, 99_999, 65_536, 50_001} {
		for _, index := range []int{0, size / 3, size - 1} {
			if _, _, err := tr.Branch(index, size, r.leaves); err != nil {
				t.Fatal(err)
			}
		}
	}
	if r.read > 12*2*4 {
		t.Fatalf("12 proofs read %d leaves, want at most two groups of 4 each", r.read)
	}
	if got, want := tr.Nodes(), 100_003/4*2; got > want {
		t.Fatalf("base 2 keeps %d nodes for 100,003 leaves, want at most %d", got, want)
	}
}

func BenchmarkTreeBranchAtTip(b *testing.B) {
	r := &reader{ls: leafHashes(3, 900_000)}
	tr := NewTree(2)
	if err := tr.Extend(len(r.ls), r.leaves); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, _, err := tr.Branch(len(r.ls)-1-b.N%100, len(r.ls), r.leaves); err != nil {
			b.Fatal(err)
		}
	}
}

// TestBlockTreeMatchesBranch: every branch of a block tree equals the
// hashing Branch, for every block size up to 70 leaves.
func TestBlockTreeMatchesBranch(t *testing.T) {
	for n := 1; n <= 70; n++ {
		ls := leafHashes(uint64(n), n)
		bt := NewBlockTree(slices.Clone(ls))
		for i := range n {
			want, root, _ := Branch(ls, i)
			got, err := bt.Branch(i)
			if err != nil || !slices.Equal(got, want) || bt.Root() != root {
				t.Fatalf("%d leaves, index %d: branch or root differs (%v)", n, i, err)
			}
		}
		if _, err := bt.Branch(n); err == nil {
			t.Fatalf("%d leaves: a branch past the end succeeded", n)
		}
	}
	if _, err := NewBlockTree(nil).Branch(0); err == nil {
		t.Fatal("a tree of no leaves gave a branch")
	}
}
