package merkle

import (
	"fmt"

	"github.com/btcsuite/btcd/chainhash/v2"
)

// BlockTree is every level of the merkle tree of one block's txids, so
// the branches of many of its transactions cost a lookup each instead of
// hashing the whole block again. It is read-only once built.
type BlockTree struct {
	levels [][]chainhash.Hash // levels[0]: the leaves; the last: the root
}

// NewBlockTree builds the tree over leaves; it keeps leaves, which the
// caller must not change after. A tree of no leaves (the genesis block,
// whose coinbase the index leaves out) has no branches and a zero root.
func NewBlockTree(leaves []chainhash.Hash) *BlockTree {
	levels := [][]chainhash.Hash{leaves}
	for level := leaves; len(level) > 1; {
		next := make([]chainhash.Hash, (len(level)+1)/2)
		for i := range next {
			r := min(2*i+1, len(level)-1) // an odd level duplicates its last node
			next[i] = parent(&level[2*i], &level[r])
		}
		levels = append(levels, next)
		level = next
	}
	return &BlockTree{levels: levels}
}

// Leaves are the tree's leaves, which the caller must not change.
func (t *BlockTree) Leaves() []chainhash.Hash { return t.levels[0] }

// Root is the merkle root, zero for no leaves.
func (t *BlockTree) Root() chainhash.Hash {
	if len(t.levels[0]) == 0 {
		return chainhash.Hash{}
	}
	return t.levels[len(t.levels)-1][0]
}

// Branch is Branch(leaves, index) without hashing.
func (t *BlockTree) Branch(index int) ([]chainhash.Hash, error) {
	if index < 0 || index >= len(t.levels[0]) {
		return nil, fmt.Errorf("merkle: index %d out of %d leaves", index, len(t.levels[0]))
	}
	branch := make([]chainhash.Hash, 0, len(t.levels)-1)
	for _, level := range t.levels[:len(t.levels)-1] {
		s := index ^ 1
		if s >= len(level) {
			s = index
		}
		branch = append(branch, level[s])
		index >>= 1
	}
	return branch, nil
}

// Bytes is the memory the tree's hashes take.
func (t *BlockTree) Bytes() int {
	n := 0
	for _, l := range t.levels {
		n += len(l) * chainhash.HashSize
	}
	return n
}
