package store

import (
	"errors"
	"fmt"
	"syscall"

	"github.com/cockroachdb/pebble/v2"
)

// batchState is where a Batch is in its life.
type batchState uint8

const (
	batchOpen      batchState = iota // accepting writes
	batchCommitted                   // applied; only Close remains
	batchClosed                      // released; every method is an error
)

// Batch collects writes that Commit applies atomically: after Commit, and
// after a crash at any moment, either every write of the batch is in the DB
// or none is. Nothing is visible to other readers before Commit.
//
// A batch from NewIndexedBatch can also be read (it implements Reader): its
// reads see its own writes over the DB's current state, until Commit. A
// Batch is not safe for concurrent use. Close it when done, committed or
// not; iterators over it must be closed first.
type Batch struct {
	db     *DB
	b      *pebble.Batch
	sorted *sortedWrites // NewSortedBatch's writes until Commit; b is nil till then
	state  batchState
}

var _ Reader = (*Batch)(nil)

// writable reports ErrBatchDone unless the batch accepts writes.
func (b *Batch) writable() error {
	if b.state != batchOpen {
		return ErrBatchDone
	}
	return nil
}

// Set stores value under key, replacing any earlier value. Key and value
// are copied; the caller may reuse them.
func (b *Batch) Set(key, value []byte) error {
	if err := b.writable(); err != nil {
		return err
	}
	if b.sorted != nil {
		return b.sorted.add(key, value, false)
	}
	if err := b.b.Set(key, value, nil); err != nil {
		return fmt.Errorf("batch set %x: %w", key, err)
	}
	return nil
}

// Delete removes key. Deleting an absent key is not an error.
func (b *Batch) Delete(key []byte) error {
	if err := b.writable(); err != nil {
		return err
	}
	if b.sorted != nil {
		return b.sorted.add(key, nil, true)
	}
	if err := b.b.Delete(key, nil); err != nil {
		return fmt.Errorf("batch delete %x: %w", key, err)
	}
	return nil
}

// DeleteRange removes every key k with start <= k < end, including keys
// committed by other batches before this one.
func (b *Batch) DeleteRange(start, end []byte) error {
	if err := b.writable(); err != nil {
		return err
	}
	if b.sorted != nil {
		return errSortedRange
	}
	if err := b.b.DeleteRange(start, end, nil); err != nil {
		return fmt.Errorf("batch delete range [%x, %x): %w", start, end, err)
	}
	return nil
}

// Len is the number of writes (Set, Delete, DeleteRange) in the batch.
func (b *Batch) Len() int {
	if b.sorted != nil {
		return b.sorted.n
	}
	if b.b == nil {
		return 0
	}
	return int(b.b.Count())
}

// Size is the batch's encoded size in bytes, for callers that commit when
// a batch reaches a byte budget. An empty batch has a small fixed size.
func (b *Batch) Size() int {
	if b.sorted != nil {
		return b.sorted.bytes
	}
	if b.b == nil {
		return 0
	}
	return b.b.Len()
}

// CommitBytes is the memory the batch holds from its commit until Pebble
// has flushed it: its encoded writes, plus, for a batch large enough to
// be committed as its own memtable, Pebble's sorted index of them (16
// bytes a write).
func (b *Batch) CommitBytes() int {
	if b.sorted != nil {
		return b.sorted.size()
	}
	if b.b == nil {
		return 0
	}
	return b.b.Len() + int(b.b.Count())*flushableEntryBytes
}

// flushableEntryBytes is the size of Pebble's flushableBatchEntry.
const flushableEntryBytes = 16

// Indexed reports whether the batch can be read (it came from
// NewIndexedBatch).
func (b *Batch) Indexed() bool { return b.b != nil && b.b.Indexed() }

// Commit applies the batch atomically. With sync, it returns only once the
// batch is durable in the write-ahead log; without, a crash may lose it
// (whole) but it is visible at once. sync is ignored when the DB was opened
// with Options.DisableWAL. A sorted batch (NewSortedBatch) is durable when
// Commit returns, with every batch committed before it. The batch accepts
// no more writes after Commit, even a failed one; Close it.
func (b *Batch) Commit(sync bool) error {
	if err := b.writable(); err != nil {
		return err
	}
	switch {
	case b.db.closed.Load():
		return ErrClosed
	case b.db.readOnly:
		return ErrReadOnly
	}
	b.state = batchCommitted
	if b.sorted != nil {
		n := b.sorted.n
		var err error
		if b.sorted.small(b.db) {
			err = b.sorted.commitBatch(b.db)
		} else {
			err = b.sorted.ingest(b.db)
		}
		b.sorted = nil
		if err != nil {
			if errors.Is(err, syscall.ENOSPC) {
				logDiskFull(b.db.log, err)
			}
			return fmt.Errorf("commit sorted batch of %d writes: %w", n, err)
		}
		return nil
	}
	wo := pebble.NoSync
	if sync && !b.db.disableWAL {
		wo = pebble.Sync
	}
	if err := b.db.changes.commit(b.b, func() error { return b.b.Commit(wo) }); err != nil {
		return fmt.Errorf("commit batch of %d writes: %w", b.b.Count(), err)
	}
	return nil
}

// Close releases the batch, discarding its writes if it was not committed.
// Calling it again returns nil.
func (b *Batch) Close() error {
	if b.state == batchClosed {
		return nil
	}
	b.state = batchClosed
	b.sorted = nil
	if b.b == nil {
		return nil
	}
	err := b.b.Close()
	b.b = nil
	if err != nil {
		return fmt.Errorf("close batch: %w", err)
	}
	return nil
}

// readable reports why the batch cannot be read, or nil.
func (b *Batch) readable() error {
	switch {
	case b.state == batchClosed:
		return ErrClosed
	case b.state == batchCommitted:
		return ErrBatchDone
	case !b.Indexed():
		return ErrNotIndexed
	case b.db.closed.Load():
		return ErrClosed
	}
	return nil
}

// Get returns a copy of the value under key as the batch sees it: its own
// writes over the DB's current state. It returns ErrNotFound for an absent
// key, and ErrNotIndexed for a batch from NewBatch.
func (b *Batch) Get(key []byte) ([]byte, error) {
	if err := b.readable(); err != nil {
		return nil, err
	}
	return get(b.b, key)
}

// NewIter returns an unpositioned iterator over the batch's view (its
// writes as of this call over the DB's current state) within opts' bounds.
// It returns ErrNotIndexed for a batch from NewBatch.
func (b *Batch) NewIter(opts *IterOptions) (*Iterator, error) {
	if err := b.readable(); err != nil {
		return nil, err
	}
	return newIter(b.b, opts)
}

// Scan calls fn for each key with the given prefix in the batch's view.
// See Reader.
func (b *Batch) Scan(prefix []byte, fn func(key, value []byte) error) error {
	return ScanRange(b, prefix, PrefixEnd(prefix), fn)
}
