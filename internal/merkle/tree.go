package merkle

import (
	"fmt"
	"math/bits"

	"github.com/btcsuite/btcd/chainhash/v2"
)

// Leaves reads leaves [lo, hi) of a Tree: the block hashes of those
// heights, for the header tree.
type Leaves func(lo, hi int) ([]chainhash.Hash, error)

// Tree keeps the complete nodes of the merkle tree over a list of leaves
// that grows and shrinks at its end (block hashes, as blocks are
// connected and disconnected), so that the branch of any leaf in the tree
// of the first size leaves (a cp_height proof) costs O(log n) instead of
// hashing every leaf.
//
// A node at level k, index j covers leaves [j·2^k, (j+1)·2^k). It is
// complete when all of them exist; a complete node is the same in every
// tree of at least (j+1)·2^k leaves, so it can be kept. The nodes on the
// right edge of a smaller tree (partial, built with the odd-level
// duplication) are computed on demand from complete ones: O(log n)
// hashes. Levels below Base are not kept: their nodes are computed from
// the 2^Base leaves of one group, which trades a few leaf reads per proof
// for 2^Base times less memory.
//
// A Tree is not safe for concurrent use; Branch only reads it, so callers
// guard it with a sync.RWMutex.
type Tree struct {
	base   int
	n      int                // leaves the kept nodes account for
	levels [][]chainhash.Hash // levels[i]: complete nodes of level base+i
}

// NewTree returns an empty tree that keeps levels base and up.
func NewTree(base int) *Tree {
	return &Tree{base: base}
}

// Len is the number of leaves the tree accounts for.
func (t *Tree) Len() int { return t.n }

// Nodes is the number of nodes kept, for memory accounting.
func (t *Tree) Nodes() int {
	n := 0
	for _, l := range t.levels {
		n += len(l)
	}
	return n
}

// Truncate forgets every node that covers a leaf at n or beyond: call it
// before the leaves from n on change (a reorg).
func (t *Tree) Truncate(n int) {
	if n >= t.n {
		return
	}
	n = max(n, 0)
	for i := range t.levels {
		t.levels[i] = t.levels[i][:n>>(t.base+i)]
	}
	t.n = n
}

// extendChunk bounds the leaves read at once when extending.
const extendChunk = 1 << 16

// Extend makes the tree account for the first n leaves, reading the new
// ones through leaves.
func (t *Tree) Extend(n int, leaves Leaves) error {
	if n <= t.n {
		return nil
	}
	if len(t.levels) == 0 {
		t.levels = append(t.levels, nil)
	}
	group := 1 << t.base
	// Level base: the root of each new complete group of leaves.
	for next := len(t.levels[0]); (next+1)*group <= n; {
		last := min(n/group, next+max(1, extendChunk/group))
		ls, err := leaves(next*group, last*group)
		if err != nil {
			return err
		}
		if len(ls) != (last-next)*group {
			return fmt.Errorf("merkle: read %d leaves from %d, want %d", len(ls), next*group, (last-next)*group)
		}
		for g := range last - next {
			t.levels[0] = append(t.levels[0], completeRoot(ls[g*group:(g+1)*group]))
		}
		next = last
	}
	// Higher levels from the level below.
	for i := 1; len(t.levels[i-1]) >= 2; i++ {
		if i == len(t.levels) {
			t.levels = append(t.levels, nil)
		}
		below := t.levels[i-1]
		for j := len(t.levels[i]); 2*j+1 < len(below); j++ {
			t.levels[i] = append(t.levels[i], parent(&below[2*j], &below[2*j+1]))
		}
	}
	t.n = n
	return nil
}

// completeRoot is the root of a power-of-two number of leaves.
func completeRoot(ls []chainhash.Hash) chainhash.Hash {
	level := append([]chainhash.Hash(nil), ls...)
	for len(level) > 1 {
		for i := range len(level) / 2 {
			level[i] = parent(&level[2*i], &level[2*i+1])
		}
		level = level[:len(level)/2]
	}
	return level[0]
}

// Branch returns the branch of leaf index in the tree of the first size
// leaves, and its root: what Branch(leaves[:size], index) returns. Nodes
// the tree does not keep are computed from leaves, so it is right for any
// size, and fast when size <= Len().
func (t *Tree) Branch(index, size int, leaves Leaves) ([]chainhash.Hash, chainhash.Hash, error) {
	if index < 0 || index >= size {
		return nil, chainhash.Hash{}, fmt.Errorf("merkle: index %d out of %d leaves", index, size)
	}
	p := proof{t: t, size: size, leaves: leaves, groups: map[int][]chainhash.Hash{}, computed: map[[2]int]chainhash.Hash{}}
	depth := bits.Len(uint(size - 1))
	branch := make([]chainhash.Hash, 0, depth)
	for k := range depth {
		j := index >> k
		s := j ^ 1
		if s > (size-1)>>k { // no right sibling: the level duplicates j
			s = j
		}
		h, err := p.node(k, s)
		if err != nil {
			return nil, chainhash.Hash{}, err
		}
		branch = append(branch, h)
	}
	// The root is the right edge's top: mostly computed already.
	root, err := p.node(depth, 0)
	if err != nil {
		return nil, chainhash.Hash{}, err
	}
	return branch, root, nil
}

// proof computes the nodes of one tree size, reading each group of leaves
// at most once.
type proof struct {
	t      *Tree
	size   int
	leaves Leaves
	groups map[int][]chainhash.Hash
	// computed memoises the nodes computed rather than kept: the right
	// edge is a sibling on many levels.
	computed map[[2]int]chainhash.Hash
}

func (p *proof) node(k, j int) (chainhash.Hash, error) {
	t := p.t
	if complete := (j+1)<<k <= p.size; complete && k >= t.base && k-t.base < len(t.levels) && j < len(t.levels[k-t.base]) {
		return t.levels[k-t.base][j], nil
	}
	if k == 0 {
		return p.leaf(j)
	}
	if h, ok := p.computed[[2]int{k, j}]; ok {
		return h, nil
	}
	left, err := p.node(k-1, 2*j)
	if err != nil {
		return chainhash.Hash{}, err
	}
	right := left
	if (2*j+1)<<(k-1) < p.size {
		if right, err = p.node(k-1, 2*j+1); err != nil {
			return chainhash.Hash{}, err
		}
	}
	h := parent(&left, &right)
	p.computed[[2]int{k, j}] = h
	return h, nil
}

func (p *proof) leaf(i int) (chainhash.Hash, error) {
	g := i >> p.t.base
	ls, ok := p.groups[g]
	if !ok {
		lo := g << p.t.base
		hi := min(lo+1<<p.t.base, p.size)
		var err error
		if ls, err = p.leaves(lo, hi); err != nil {
			return chainhash.Hash{}, err
		}
		if len(ls) != hi-lo {
			return chainhash.Hash{}, fmt.Errorf("merkle: read %d leaves from %d, want %d", len(ls), lo, hi-lo)
		}
		p.groups[g] = ls
	}
	return ls[i-g<<p.t.base], nil
}
