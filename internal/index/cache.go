package index

import (
	"github.com/btcsuite/btcd/wire/v2"
)

// cacheEntryBytes is what one cached output costs in memory: the map
// slot (36-byte outpoint, 32-byte freshOut, control byte) at the map's
// load factor, with room for a generation being built beside a full one.
const cacheEntryBytes = 128

// utxoCache holds unspent outputs whose rows are committed, so the writer
// resolves a spend of a recent output without reading Pebble (a prefix
// scan of the outpoint rows plus two point reads). It is only a read
// cache: every row it describes is in the DB, so a crash loses nothing
// but the cache. Entries enter when the batch that created them commits
// and leave when the batch that spends them commits; a commit that took
// blocks out clears it.
//
// It is bounded by two generations: new entries go to cur, and when cur
// is full it becomes old and the previous old is dropped whole. Outputs
// are mostly spent young, so dropping the oldest generation loses few
// hits, and eviction costs nothing per entry.
//
// Only the Index's one Writer uses it, so it needs no lock: NewWriter and
// the Writer's release order the accesses through Index.mu.
type utxoCache struct {
	perGen   int // entries in one generation; 0 disables the cache
	cur, old map[wire.OutPoint]freshOut
	hits     uint64
	misses   uint64
}

func newUTXOCache(bytes int64) *utxoCache {
	return &utxoCache{perGen: int(bytes / cacheEntryBytes / 2)}
}

func (c *utxoCache) get(op wire.OutPoint) (freshOut, bool) {
	if f, ok := c.cur[op]; ok {
		c.hits++
		return f, true
	}
	if f, ok := c.old[op]; ok {
		c.hits++
		return f, true
	}
	c.misses++
	return freshOut{}, false
}

func (c *utxoCache) put(op wire.OutPoint, f freshOut) {
	if c.perGen <= 0 {
		return
	}
	if c.cur == nil {
		c.cur = make(map[wire.OutPoint]freshOut, min(c.perGen, 1<<16))
	}
	c.cur[op] = f
	if len(c.cur) >= c.perGen {
		c.old, c.cur = c.cur, nil
	}
}

func (c *utxoCache) del(op wire.OutPoint) {
	delete(c.cur, op)
	delete(c.old, op)
}

func (c *utxoCache) clear() { c.cur, c.old = nil, nil }

func (c *utxoCache) len() int { return len(c.cur) + len(c.old) }

// CacheStats reports the UTXO cache's size in entries and its hits and
// misses since the index was opened; misses are spends looked up in the
// DB.
type CacheStats struct {
	Entries      int
	Hits, Misses uint64
}

// CacheStats returns the UTXO cache's figures. Call it between writers.
func (ix *Index) CacheStats() CacheStats {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	return CacheStats{Entries: ix.utxos.len(), Hits: ix.utxos.hits, Misses: ix.utxos.misses}
}
