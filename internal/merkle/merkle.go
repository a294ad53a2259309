// Package merkle builds the proofs Electrum clients verify: the merkle
// branch of a transaction in its block (blockchain.transaction.get_merkle,
// id_from_pos) and the checkpoint proof of a header against the root of
// all block hashes up to cp_height (blockchain.block.header(s)).
//
// Both use Bitcoin's tree: leaves in natural byte order, an odd level
// duplicates its last node, parents are double SHA-256 of the two
// children. Branches list siblings deepest first.
package merkle

import (
	"fmt"

	"github.com/btcsuite/btcd/chainhash/v2"
)

// Branch returns the siblings of leaves[index] from the bottom of the tree
// up, and the root. A single leaf has an empty branch and is its own root.
func Branch(leaves []chainhash.Hash, index int) ([]chainhash.Hash, chainhash.Hash, error) {
	if index < 0 || index >= len(leaves) {
		return nil, chainhash.Hash{}, fmt.Errorf("merkle: index %d out of %d leaves", index, len(leaves))
	}
	level := append([]chainhash.Hash(nil), leaves...)
	var branch []chainhash.Hash
	for len(level) > 1 {
		if len(level)%2 == 1 {
			level = append(level, level[len(level)-1])
		}
		branch = append(branch, level[index^1])
		index >>= 1
		next := level[:len(level)/2]
		for i := range next {
			next[i] = parent(&level[2*i], &level[2*i+1])
		}
		level = next
	}
	return branch, level[0], nil
}

// Root returns the merkle root of leaves, which must not be empty.
func Root(leaves []chainhash.Hash) (chainhash.Hash, error) {
	_, root, err := Branch(leaves, 0)
	return root, err
}

// RootFromBranch walks a branch up from leaf at index: what a client does
// to verify a proof.
func RootFromBranch(leaf chainhash.Hash, branch []chainhash.Hash, index int) chainhash.Hash {
	h := leaf
	for _, s := range branch {
		if index&1 == 1 {
			h = parent(&s, &h)
		} else {
			h = parent(&h, &s)
		}
		index >>= 1
	}
	return h
}

func parent(a, b *chainhash.Hash) chainhash.Hash {
	var buf [64]byte
	copy(buf[:32], a[:])
	copy(buf[32:], b[:])
	return chainhash.DoubleHashH(buf[:])
}
