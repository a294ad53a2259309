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

// txCache keeps raw transactions the daemon returned, least recently used
// first out, bounded in bytes. A reorg empties it: a transaction mined
// again in the other branch may carry another witness under the same
// txid. The reorg is seen through the index's reorg generation, which a
// fill that raced with the reorg also checks.
type txCache struct {
	mu    sync.Mutex
	max   int
	bytes int
	gen   uint64
	order *list.List // of *txItem, most recent first
	items map[chainhash.Hash]*list.Element

	hits, misses atomic.Uint64
}

type txItem struct {
	txid chainhash.Hash
	raw  []byte
}

func newTxCache(maxBytes int) *txCache {
	return &txCache{max: maxBytes, order: list.New(), items: map[chainhash.Hash]*list.Element{}}
}

// syncGen empties the cache when the reorg generation moved; c.mu held.
func (c *txCache) syncGen(gen uint64) {
	if gen != c.gen {
		c.gen = gen
		c.order.Init()
		clear(c.items)
		c.bytes = 0
	}
}

// get returns the cached raw tx (shared: not to be changed) at reorg
// generation gen.
func (c *txCache) get(txid chainhash.Hash, gen uint64) ([]byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.syncGen(gen)
	e, ok := c.items[txid]
	if !ok {
		c.misses.Add(1)
		return nil, false
	}
	c.hits.Add(1)
	c.order.MoveToFront(e)
	return e.Value.(*txItem).raw, true
}

// put caches raw, fetched when the reorg generation was gen.
func (c *txCache) put(txid chainhash.Hash, raw []byte, gen uint64) {
	size := len(raw) + txItemOverhead
	c.mu.Lock()
	defer c.mu.Unlock()
	if gen < c.gen || size > c.max {
		return // fetched before a reorg, or larger than the whole cache
	}
	c.syncGen(gen)
	if _, ok := c.items[txid]; ok {
		return
	}
	for c.bytes+size > c.max {
		last := c.order.Back()
		it := c.order.Remove(last).(*txItem)
		delete(c.items, it.txid)
		c.bytes -= len(it.raw) + txItemOverhead
	}
	c.items[txid] = c.order.PushFront(&txItem{txid: txid, raw: raw})
	c.bytes += size
}

// stats reports hits, misses and the bytes held.
func (c *txCache) stats() (hits, misses uint64, bytes int) {
	c.mu.Lock()
	bytes = c.bytes
	c.mu.Unlock()
	return c.hits.Load(), c.misses.Load(), bytes
}
