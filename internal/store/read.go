package store

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/cockroachdb/pebble/v2"
)

// Reader is a readable view of the key space. It is implemented by *DB (the
// latest committed state at each call), *Snapshot (one fixed moment) and
// *Batch from NewIndexedBatch (the DB overlaid with the batch's own writes),
// so query code can be written once and run on whichever view it is given.
//
// Keys and values passed to Scan's callback, and those of an Iterator, are
// only valid until the callback returns or the iterator moves; copy them to
// keep them. Get always returns a fresh copy.
type Reader interface {
	// Get returns a copy of the value stored under key, or ErrNotFound.
	Get(key []byte) ([]byte, error)

	// NewIter returns an unpositioned iterator over the keys within opts'
	// bounds (all keys when opts is nil). It must be closed.
	NewIter(opts *IterOptions) (*Iterator, error)

	// Scan calls fn for each key with the given prefix (every key for an
	// empty prefix), in ascending order. If fn returns ErrStop the scan ends
	// and Scan returns nil; any other error ends it and is returned as is.
	Scan(prefix []byte, fn func(key, value []byte) error) error
}

// IterOptions bounds an Iterator to the keys k with Lower <= k < Upper. A
// nil bound is open. The slices are copied; the caller may reuse them.
type IterOptions struct {
	// Lower is the inclusive lower bound, or nil for none.
	Lower []byte
	// Upper is the exclusive upper bound, or nil for none.
	Upper []byte
}

// PrefixOptions returns the bounds of the keys that start with prefix.
func PrefixOptions(prefix []byte) *IterOptions {
	return &IterOptions{Lower: prefix, Upper: PrefixEnd(prefix)}
}

// PrefixEnd returns the smallest key greater than every key that starts
// with prefix: the exclusive upper bound of a prefix scan. It is nil (no
// bound) when no such key exists, that is for an empty prefix or one made
// only of 0xff bytes. For example PrefixEnd("ab") is "ac" and
// PrefixEnd("a\xff") is "b".
func PrefixEnd(prefix []byte) []byte {
	for i := len(prefix) - 1; i >= 0; i-- {
		if prefix[i] != 0xff {
			end := bytes.Clone(prefix[:i+1])
			end[i]++
			return end
		}
	}
	return nil
}

// ScanRange calls fn for each key k of r with lower <= k < upper (a nil
// bound is open), in ascending order, with the semantics of Reader.Scan.
func ScanRange(r Reader, lower, upper []byte, fn func(key, value []byte) error) error {
	it, err := r.NewIter(&IterOptions{Lower: lower, Upper: upper})
	if err != nil {
		return err
	}
	var ferr error
	for ok := it.First(); ok; ok = it.Next() {
		v := it.Value()
		if it.Error() != nil {
			break
		}
		if ferr = fn(it.Key(), v); ferr != nil {
			break
		}
	}
	if errors.Is(ferr, ErrStop) {
		ferr = nil
	}
	if err := it.Close(); err != nil {
		return errors.Join(ferr, fmt.Errorf("scan [%x, %x): %w", lower, upper, err))
	}
	return ferr
}

// Last returns copies of the greatest key with the given prefix and of its
// value, or ErrNotFound when no key has the prefix.
func Last(r Reader, prefix []byte) (key, value []byte, err error) {
	it, err := r.NewIter(PrefixOptions(prefix))
	if err != nil {
		return nil, nil, err
	}
	found := it.Last()
	if found {
		key = append([]byte{}, it.Key()...)
		value = append([]byte{}, it.Value()...)
	}
	if err := it.Close(); err != nil {
		return nil, nil, fmt.Errorf("last with prefix %x: %w", prefix, err)
	}
	if !found {
		return nil, nil, ErrNotFound
	}
	return key, value, nil
}

// Iterator walks the keys of a Reader within bounds, forwards or
// backwards. A positioning method (First, Last, SeekGE, SeekLT, Next,
// Prev) returns whether the iterator is now at a key; when it returns false
// check Error to tell the end of the range from a failure. Key and Value
// are only valid until the iterator moves. An Iterator is not safe for
// concurrent use, and must be closed before its Reader.
type Iterator struct {
	it *pebble.Iterator
}

// newIter opens an iterator over any of Pebble's readers.
func newIter(r pebble.Reader, opts *IterOptions) (*Iterator, error) {
	var po *pebble.IterOptions
	if opts != nil {
		po = &pebble.IterOptions{
			LowerBound: nonEmpty(opts.Lower),
			UpperBound: nonEmpty(opts.Upper),
		}
		if opts.Upper != nil && len(opts.Upper) == 0 {
			// k < "" holds for no key: give Pebble an empty range it can
			// seek in, rather than an empty bound.
			po.LowerBound, po.UpperBound = []byte{0}, []byte{0}
		}
	}
	it, err := r.NewIter(po)
	if err != nil {
		return nil, fmt.Errorf("new iterator: %w", err)
	}
	return &Iterator{it: it}, nil
}

// nonEmpty copies b, turning an empty key into nil. The two mean the same
// to a seek or a lower bound, but Pebble's invariant checks (on under the
// race detector) index into a non-nil key.
func nonEmpty(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return bytes.Clone(b)
}

// First moves to the smallest key within the bounds.
func (i *Iterator) First() bool { return i.it != nil && i.it.First() }

// Last moves to the greatest key within the bounds.
func (i *Iterator) Last() bool { return i.it != nil && i.it.Last() }

// SeekGE moves to the smallest key >= key (and within the bounds).
func (i *Iterator) SeekGE(key []byte) bool {
	if len(key) == 0 {
		key = nil // see nonEmpty
	}
	return i.it != nil && i.it.SeekGE(key)
}

// SeekLT moves to the greatest key < key (and within the bounds). With key
// set to a prefix's PrefixEnd it finds the last key with that prefix.
func (i *Iterator) SeekLT(key []byte) bool {
	if len(key) == 0 {
		key = nil // see nonEmpty
	}
	return i.it != nil && i.it.SeekLT(key)
}

// Next moves to the next greater key.
func (i *Iterator) Next() bool { return i.it != nil && i.it.Next() }

// Prev moves to the next smaller key.
func (i *Iterator) Prev() bool { return i.it != nil && i.it.Prev() }

// Valid reports whether the iterator is at a key.
func (i *Iterator) Valid() bool { return i.it != nil && i.it.Valid() }

// Key is the current key; it is only valid until the iterator moves.
func (i *Iterator) Key() []byte {
	if !i.Valid() {
		return nil
	}
	return i.it.Key()
}

// Value is the current value; it is only valid until the iterator moves.
// If reading it fails, Value returns nil, the iterator becomes invalid and
// Error reports the failure.
func (i *Iterator) Value() []byte {
	if !i.Valid() {
		return nil
	}
	v, err := i.it.ValueAndErr()
	if err != nil {
		return nil
	}
	return v
}

// Error is the first error the iterator met, or nil.
func (i *Iterator) Error() error {
	if i.it == nil {
		return ErrClosed
	}
	return i.it.Error()
}

// Close releases the iterator and returns the first error it met. Calling
// it again returns nil.
func (i *Iterator) Close() error {
	if i.it == nil {
		return nil
	}
	err := i.it.Close()
	i.it = nil
	if err != nil {
		return fmt.Errorf("close iterator: %w", err)
	}
	return nil
}

// get reads a copy of one value from any of Pebble's readers.
func get(r pebble.Reader, key []byte) ([]byte, error) {
	v, closer, err := r.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("get %x: %w", key, err)
	}
	out := make([]byte, len(v))
	copy(out, v)
	if err := closer.Close(); err != nil {
		return nil, fmt.Errorf("get %x: release: %w", key, err)
	}
	return out, nil
}

// Snapshot is a consistent point-in-time view of a DB, from NewSnapshot.
// Its reads are safe for concurrent use; Close is not, and must come after
// the last read and before the DB's Close.
type Snapshot struct {
	s *pebble.Snapshot
}

var _ Reader = (*Snapshot)(nil)

// Get returns a copy of the value stored under key at the snapshot's
// moment, or ErrNotFound.
func (s *Snapshot) Get(key []byte) ([]byte, error) {
	if s.s == nil {
		return nil, ErrClosed
	}
	return get(s.s, key)
}

// NewIter returns an unpositioned iterator over the snapshot's keys within
// opts' bounds (all keys when opts is nil).
func (s *Snapshot) NewIter(opts *IterOptions) (*Iterator, error) {
	if s.s == nil {
		return nil, ErrClosed
	}
	return newIter(s.s, opts)
}

// Scan calls fn for each key with the given prefix in the snapshot. See
// Reader.
func (s *Snapshot) Scan(prefix []byte, fn func(key, value []byte) error) error {
	return ScanRange(s, prefix, PrefixEnd(prefix), fn)
}

// Close releases the snapshot, letting the DB reclaim the versions it
// kept. Calling it again returns nil.
func (s *Snapshot) Close() error {
	if s.s == nil {
		return nil
	}
	err := s.s.Close()
	s.s = nil
	if err != nil {
		return fmt.Errorf("close snapshot: %w", err)
	}
	return nil
}
