package query

import (
	"container/list"
	"sync"
	"sync/atomic"

	"github.com/btcsuite/btcd/chainhash/v2"
)

// DefaultTxCacheBytes bounds the raw transaction cache: some 100,000
// typical transactions, the ones wallets ask for again and again (their
// own recent payments, every wallet's view of a popular one).
const DefaultTxCacheBytes = 32 << 20

// txItemOverhead is the map, list and item bookkeeping of one entry.
const txItemOverhead = 128

// txCache keeps raw transactions the daemon returned. A reorg empties
// it: a transaction mined again in the other branch may carry another
// witness under the same txid.
type txCache = lruCache[chainhash.Hash, []byte]

func newTxCache(maxBytes int) *txCache {
	return newLRU[chainhash.Hash](maxBytes, func(raw []byte) int { return len(raw) + txItemOverhead })
}

// lruCache keeps values least recently used first out, bounded in bytes
// as size counts them, and is emptied by a reorg. The reorg is seen
// through the index's reorg generation, which a fill that raced with the
// reorg also checks.
type lruCache[K comparable, V any] struct {
	mu    sync.Mutex
	max   int
	size  func(V) int
	bytes int
	gen   uint64
	order *list.List // of *lruItem, most recent first
	items map[K]*list.Element

	hits, misses atomic.Uint64
}

type lruItem[K comparable, V any] struct {
	key K
	val V
}

func newLRU[K comparable, V any](maxBytes int, size func(V) int) *lruCache[K, V] {
	return &lruCache[K, V]{max: maxBytes, size: size, order: list.New(), items: map[K]*list.Element{}}
}

// syncGen empties the cache when the reorg generation moved; c.mu held.
func (c *lruCache[K, V]) syncGen(gen uint64) {
	if gen != c.gen {
		c.gen = gen
		c.order.Init()
		clear(c.items)
		c.bytes = 0
	}
}

// get returns the cached value (shared: not to be changed) at reorg
// generation gen.
func (c *lruCache[K, V]) get(key K, gen uint64) (V, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.syncGen(gen)
	e, ok := c.items[key]
	if !ok {
		c.misses.Add(1)
		var zero V
		return zero, false
	}
	c.hits.Add(1)
	c.order.MoveToFront(e)
	return e.Value.(*lruItem[K, V]).val, true
}

// put caches val, read when the reorg generation was gen.
func (c *lruCache[K, V]) put(key K, val V, gen uint64) {
	size := c.size(val)
	c.mu.Lock()
	defer c.mu.Unlock()
	if gen < c.gen || size > c.max {
		return // read before a reorg, or larger than the whole cache
	}
	c.syncGen(gen)
	if _, ok := c.items[key]; ok {
		return
	}
	for c.bytes+size > c.max {
		last := c.order.Back()
		it := c.order.Remove(last).(*lruItem[K, V])
		delete(c.items, it.key)
		c.bytes -= c.size(it.val)
	}
	c.items[key] = c.order.PushFront(&lruItem[K, V]{key: key, val: val})
	c.bytes += size
}

// stats reports hits, misses and the bytes held.
func (c *lruCache[K, V]) stats() (hits, misses uint64, bytes int) {
	c.mu.Lock()
	bytes = c.bytes
	c.mu.Unlock()
	return c.hits.Load(), c.misses.Load(), bytes
}
