package store

import (
	"bytes"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/cockroachdb/pebble/v2"
)

// changeLog records the keys that committed batches wrote, so that a
// Mirror can later apply exactly what changed instead of copying the DB.
type changeLog struct {
	mu       sync.Mutex
	on       atomic.Bool // read without mu, so commits of an untracked DB never wait
	keys     []byte      // the keys, one after another
	ends     []int       // end offset of each key in keys
	limit    int         // bytes of keys kept before giving up
	complete bool        // nothing was missed since the last take
}

// TrackChanges starts recording the keys of every batch committed from now
// on, up to limit bytes of memory between two TakeChanges; past that, or at
// a range deletion, the record is marked incomplete and recording pauses
// until the next TakeChanges. Writes that Compact makes are not recorded:
// they write values back unchanged.
func (d *DB) TrackChanges(limit int) {
	c := &d.changes
	c.mu.Lock()
	defer c.mu.Unlock()
	c.on.Store(true)
	c.limit, c.complete = limit, true
	c.keys, c.ends = c.keys[:0], c.ends[:0]
}

// TakeChanges returns the keys written since TrackChanges or the previous
// TakeChanges, sorted and without duplicates, and a snapshot of the DB
// taken at the same moment, so the snapshot holds every write those keys
// stand for and nothing newer. complete is false when some write was not
// recorded (too many keys, a range deletion, or tracking was never
// started): the keys then do not describe every change. The caller closes
// the snapshot.
func (d *DB) TakeChanges() (keys [][]byte, complete bool, snap *Snapshot) {
	c := &d.changes
	c.mu.Lock()
	defer c.mu.Unlock()
	snap = d.NewSnapshot()
	complete = c.on.Load() && c.complete
	if complete {
		keys = make([][]byte, len(c.ends))
		start := 0
		buf := slices.Clone(c.keys)
		for i, end := range c.ends {
			keys[i] = buf[start:end:end]
			start = end
		}
		slices.SortFunc(keys, bytes.Compare)
		keys = slices.CompactFunc(keys, bytes.Equal)
	}
	c.keys, c.ends, c.complete = c.keys[:0], c.ends[:0], true
	return keys, complete, snap
}

// commit applies b through apply with the change log locked, recording
// its keys: TakeChanges therefore never sees a batch applied but not yet
// recorded, or the reverse. The keys are read before the batch is applied,
// since Pebble empties a large batch when it commits it, and dropped again
// if the commit fails.
func (c *changeLog) commit(b *pebble.Batch, apply func() error) error {
	return c.commitRecorded(func() { c.record(b) }, apply)
}

// record appends the keys of b, or drops the record when it would hold
// too much or b writes something that names no single key.
func (c *changeLog) record(b *pebble.Batch) {
	// The batch's encoded size bounds its key bytes: check before reading.
	if c.size()+int(b.Len()) > c.limit && c.size()+keyBytes(b) > c.limit {
		c.drop()
		return
	}
	r := b.Reader()
	for {
		kind, key, _, ok, err := r.Next()
		if err != nil || !ok {
			if err != nil {
				c.drop()
			}
			return
		}
		switch kind {
		case pebble.InternalKeyKindSet, pebble.InternalKeyKindDelete,
			pebble.InternalKeyKindSingleDelete, pebble.InternalKeyKindDeleteSized:
			if !c.add(key) {
				return
			}
		case pebble.InternalKeyKindLogData:
		default:
			// Range deletions, merges and range keys name no single key.
			c.drop()
			return
		}
	}
}

// add appends one key, or drops the record and reports false when it
// would hold too much.
func (c *changeLog) add(key []byte) bool {
	c.keys = append(c.keys, key...)
	c.ends = append(c.ends, len(c.keys))
	if c.size() > c.limit {
		c.drop()
		return false
	}
	return true
}

// commitKeys is commit for writes that are not a Pebble batch (a sorted
// batch's tables): keys calls add with each key written.
func (c *changeLog) commitKeys(keys func(add func([]byte) bool), apply func() error) error {
	return c.commitRecorded(func() { keys(c.add) }, apply)
}

// commitRecorded is commit with record adding the keys to the log.
func (c *changeLog) commitRecorded(record func(), apply func() error) error {
	if !c.on.Load() {
		return apply()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.complete {
		return apply()
	}
	nkeys, nends := len(c.keys), len(c.ends)
	record()
	if err := apply(); err != nil {
		if c.complete {
			c.keys, c.ends = c.keys[:nkeys], c.ends[:nends]
		}
		return err
	}
	return nil
}

// size is the memory the record holds.
func (c *changeLog) size() int { return len(c.keys) + 8*len(c.ends) }

// keyBytes is the bytes of keys in b, read only when the batch's encoded
// size alone would break the limit.
func keyBytes(b *pebble.Batch) int {
	n := 0
	r := b.Reader()
	for {
		_, key, _, ok, err := r.Next()
		if err != nil || !ok {
			return n
		}
		n += len(key) + 8
	}
}

// drop gives up on the current record, and frees it.
func (c *changeLog) drop() {
	c.complete = false
	c.keys, c.ends = nil, nil
}
