package query

import (
	"testing"

	"github.com/btcsuite/btcd/chainhash/v2"

	"amber/internal/chain"
)

func TestHistoryCache(t *testing.T) {
	tip := chainhash.Hash{7}
	hist := []HistoryEntry{{TxID: chainhash.Hash{9}, Height: 5}}
	c := newHistoryCache(2*itemSize(hist), tip) // room for two
	a, b, d := chain.HashX{1}, chain.HashX{2}, chain.HashX{3}
	_, ok, gen, _, _ := c.get(a, tip)
	if ok {
		t.Fatal("empty cache hit")
	}
	c.put(a, hist, nil, gen)
	if h, ok, _, _, _ := c.get(a, tip); !ok || len(h) != 1 {
		t.Fatal("miss after put")
	}
	// A fill that started before a block touched anything is dropped.
	_, _, stale, _, _ := c.get(b, tip)
	c.invalidate(tip, map[chain.HashX]struct{}{d: {}})
	c.put(b, hist, nil, stale)
	if _, ok, _, _, _ := c.get(b, tip); ok {
		t.Error("stale fill kept")
	}
	// Touched scripts are dropped; the least recently used goes first.
	_, _, gen, _, _ = c.get(b, tip)
	c.put(b, hist, nil, gen)
	c.put(d, hist, nil, gen)
	if _, ok, _, _, _ := c.get(a, tip); ok {
		t.Error("over capacity, the oldest entry was kept")
	}
	c.invalidate(tip, map[chain.HashX]struct{}{b: {}})
	if _, ok, _, _, _ := c.get(b, tip); ok {
		t.Error("touched script still cached")
	}
	if _, ok, _, _, _ := c.get(d, tip); !ok {
		t.Error("untouched script dropped")
	}
	// A block was committed and its invalidation has not come yet:
	// nothing cached is served at the new tip, and nothing is stored.
	next := chainhash.Hash{8}
	if _, ok, _, current, _ := c.get(d, next); ok || current {
		t.Error("served from the cache at a tip it has not seen")
	}
	c.invalidate(next, nil)
	if _, ok, _, current, _ := c.get(d, next); !ok || !current {
		t.Error("an untouched script is gone once the cache saw the tip")
	}
}

// TestHistoryCacheBytes fills the cache with huge histories: it stays
// under its byte bound, keeps the most recent, drops the least recently
// used, and does not keep a history larger than the whole cache.
func TestHistoryCacheBytes(t *testing.T) {
	tip := chainhash.Hash{7}
	const bound = 32 << 20
	c := newHistoryCache(bound, tip)
	huge := func(n int) []HistoryEntry { return make([]HistoryEntry, n) }
	var last chain.HashX
	for i := range 40 {
		hx := chain.HashX{byte(i), byte(i >> 8)}
		_, _, gen, _, _ := c.get(hx, tip)
		c.put(hx, huge(100_000+i*1000), nil, gen) // 4.8 to 6.7 MB each
		if b, _ := c.size(); b > bound {
			t.Fatalf("after %d histories the cache holds %d bytes, over its %d bound", i+1, b, bound)
		}
		if _, ok, _, _, _ := c.get(hx, tip); !ok {
			t.Fatalf("history %d not kept right after put", i)
		}
		last = hx
	}
	b, n := c.size()
	if n < 3 || n > 7 || b < bound/2 {
		t.Errorf("%d histories in %d bytes: the bound is not used as it should", n, b)
	}
	if _, ok, _, _, _ := c.get(chain.HashX{0}, tip); ok {
		t.Error("the first history is still cached after 40 huge ones")
	}
	// Recently used ones survive newer puts.
	_, _, gen, _, _ := c.get(last, tip)
	c.put(chain.HashX{0xee}, huge(100_000), nil, gen)
	if _, ok, _, _, _ := c.get(last, tip); !ok {
		t.Error("the most recently used history was dropped")
	}
	// Larger than the whole cache: not kept, and nothing else lost.
	_, before := c.size()
	_, _, gen, _, _ = c.get(chain.HashX{0xff}, tip)
	c.put(chain.HashX{0xff}, huge(bound/int(historyEntrySize)+1), nil, gen)
	if _, ok, _, _, _ := c.get(chain.HashX{0xff}, tip); ok {
		t.Error("a history larger than the cache was kept")
	}
	if b, after := c.size(); after != before || b > bound {
		t.Errorf("caching an oversized history changed the cache: %d -> %d scripts, %d bytes", before, after, b)
	}
}
