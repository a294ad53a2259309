package query

import (
	"container/list"
	"sync"

	"amber/internal/chain"
)

// historyCache keeps the confirmed history of recently asked scripts, so a
// busy script's status is not rebuilt from its whole history on every
// call. Entries are dropped when a block touches their script; a fill that
// raced with such a drop is discarded by the generation check.
type historyCache struct {
	mu    sync.Mutex
	max   int
	gen   uint64
	order *list.List // of chain.HashX, most recent first
	items map[chain.HashX]*cacheItem
}

type cacheItem struct {
	elem *list.Element
	hist []HistoryEntry
	err  error // history too large is cached too
}

func newHistoryCache(max int) *historyCache {
	return &historyCache{max: max, order: list.New(), items: map[chain.HashX]*cacheItem{}}
}

// get returns a cached history and the generation to pass to put.
func (c *historyCache) get(hx chain.HashX) (hist []HistoryEntry, ok bool, gen uint64, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	it, ok := c.items[hx]
	if !ok {
		return nil, false, c.gen, nil
	}
	c.order.MoveToFront(it.elem)
	return it.hist, true, c.gen, it.err
}

func (c *historyCache) put(hx chain.HashX, hist []HistoryEntry, err error, gen uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if gen != c.gen {
		return
	}
	if it, ok := c.items[hx]; ok {
		it.hist, it.err = hist, err
		c.order.MoveToFront(it.elem)
		return
	}
	c.items[hx] = &cacheItem{elem: c.order.PushFront(hx), hist: hist, err: err}
	for c.order.Len() > c.max {
		old := c.order.Remove(c.order.Back()).(chain.HashX)
		delete(c.items, old)
	}
}

// invalidate drops the scripts a block touched.
func (c *historyCache) invalidate(scripts map[chain.HashX]struct{}) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	for hx := range scripts {
		if it, ok := c.items[hx]; ok {
			c.order.Remove(it.elem)
			delete(c.items, hx)
		}
	}
}
