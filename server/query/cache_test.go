package query

import (
	"testing"

	"github.com/btcsuite/btcd/chainhash/v2"

	"amber/internal/chain"
)

func TestHistoryCache(t *testing.T) {
	c := newHistoryCache(2)
	a, b, d := chain.HashX{1}, chain.HashX{2}, chain.HashX{3}
	hist := []HistoryEntry{{TxID: chainhash.Hash{9}, Height: 5}}
	_, ok, gen, _ := c.get(a)
	if ok {
		t.Fatal("empty cache hit")
	}
	c.put(a, hist, nil, gen)
	if h, ok, _, _ := c.get(a); !ok || len(h) != 1 {
		t.Fatal("miss after put")
	}
	// A fill that started before a block touched anything is dropped.
	_, _, stale, _ := c.get(b)
	c.invalidate(map[chain.HashX]struct{}{d: {}})
	c.put(b, hist, nil, stale)
	if _, ok, _, _ := c.get(b); ok {
		t.Error("stale fill kept")
	}
	// Touched scripts are dropped; the least recently used goes first.
	_, _, gen, _ = c.get(b)
	c.put(b, hist, nil, gen)
	c.put(d, hist, nil, gen)
	if _, ok, _, _ := c.get(a); ok {
		t.Error("over capacity, the oldest entry was kept")
	}
	c.invalidate(map[chain.HashX]struct{}{b: {}})
	if _, ok, _, _ := c.get(b); ok {
		t.Error("touched script still cached")
	}
	if _, ok, _, _ := c.get(d); !ok {
		t.Error("untouched script dropped")
	}
}
