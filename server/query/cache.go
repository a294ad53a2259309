package query

import (
	"container/list"
	"sync"
	"unsafe"

	"github.com/btcsuite/btcd/chainhash/v2"

	"amber/internal/chain"
)

// DefaultHistoryCacheBytes bounds the history cache: about 1.4 million
// history entries, or a dozen histories as long as MAX_SEND allows at
// 100 MB.
const DefaultHistoryCacheBytes = 64 << 20

// historyEntrySize is what one cached history entry holds in memory;
// cacheItemOverhead is the map, list and item bookkeeping of one script.
const (
	historyEntrySize  = int64(unsafe.Sizeof(HistoryEntry{}))
	cacheItemOverhead = 160
)

// historyCache keeps the confirmed history of recently asked scripts, so a
// busy script's status is not rebuilt from its whole history on every
// call. It is bounded in bytes, least recently used first out, since one
// busy script's history can weigh as much as thousands of others. Entries
// are dropped when a block touches their script; a fill that raced with
// such a drop is discarded by the generation check.
type historyCache struct {
	mu    sync.Mutex
	max   int64 // bytes
	bytes int64
	gen   uint64
	tip   chainhash.Hash // the index tip the last invalidation brought it to
	order *list.List     // of chain.HashX, most recent first
	items map[chain.HashX]*cacheItem
}

type cacheItem struct {
	elem *list.Element
	hist []HistoryEntry
	err  error // history too large is cached too
	size int64
}

func newHistoryCache(maxBytes int64, tip chainhash.Hash) *historyCache {
	return &historyCache{max: maxBytes, tip: tip, order: list.New(), items: map[chain.HashX]*cacheItem{}}
}

func itemSize(hist []HistoryEntry) int64 {
	return int64(cap(hist))*historyEntrySize + cacheItemOverhead
}

// get returns a cached history and the generation to pass to put. While
// the cache has not seen the index tip tip (current false), nothing is
// returned and nothing may be put.
func (c *historyCache) get(hx chain.HashX, tip chainhash.Hash) (hist []HistoryEntry, ok bool, gen uint64, current bool, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if tip != c.tip {
		return nil, false, c.gen, false, nil
	}
	it, ok := c.items[hx]
	if !ok {
		return nil, false, c.gen, true, nil
	}
	c.order.MoveToFront(it.elem)
	return it.hist, true, c.gen, true, it.err
}

// put caches a history; one larger than the whole cache is not kept.
func (c *historyCache) put(hx chain.HashX, hist []HistoryEntry, err error, gen uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if gen != c.gen {
		return
	}
	if it, ok := c.items[hx]; ok {
		c.remove(hx, it)
	}
	size := itemSize(hist)
	if size > c.max {
		return
	}
	c.items[hx] = &cacheItem{elem: c.order.PushFront(hx), hist: hist, err: err, size: size}
	c.bytes += size
	for c.bytes > c.max {
		old := c.order.Back().Value.(chain.HashX)
		c.remove(old, c.items[old])
	}
}

func (c *historyCache) remove(hx chain.HashX, it *cacheItem) {
	c.order.Remove(it.elem)
	delete(c.items, hx)
	c.bytes -= it.size
}

// invalidate drops the scripts the blocks up to tip touched.
func (c *historyCache) invalidate(tip chainhash.Hash, scripts map[chain.HashX]struct{}) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	c.tip = tip
	for hx := range scripts {
		if it, ok := c.items[hx]; ok {
			c.remove(hx, it)
		}
	}
}

// size is the bytes and number of scripts cached.
func (c *historyCache) size() (bytes int64, scripts int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.bytes, len(c.items)
}
