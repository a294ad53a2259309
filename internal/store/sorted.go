package store

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"

	"github.com/cockroachdb/pebble/v2"
)

// sortedWrites holds a sorted batch's writes until Commit (NewSortedBatch),
// which sorts them and writes them as tables for Pebble to take in whole
// (ingest.go).
//
// Pebble commits a large batch as a memtable of its own and sorts its
// writes on the committing goroutine, comparing whole keys; in a bulk
// sync's random keys (txids, script hashes) that sort was a third of the
// CPU time of indexing (profile of amber build against Bitcoin Core,
// 1 M transactions). A radix sort on each key's first 8 bytes costs a
// fraction of it.
type sortedWrites struct {
	chunks [][]byte      // each write's key, value length and value
	ents   [][]sortedEnt // one per write, in the order made, in blocks of entBlock
	n      int           // writes
	bytes  int           // of keys and values

	touched byte // see touch
}

// entBlock is how many entries a block holds (1 MiB of them). Growing one
// slice of millions of entries by append cost 100 ns an entry here, in
// fresh pages for every doubling; blocks are filled once and copied once,
// into the sort's buffer.
const entBlock = 1 << 16

// sortedEnt is one write: 16 bytes, which the radix sort moves.
type sortedEnt struct {
	abbrev uint64 // the key's first 8 bytes, big-endian, zero-padded
	at     uint32 // chunk<<chunkBits | offset of the key in the chunk
	klen   uint16
	del    bool
}

// Writes go to chunks of 1 MiB, so a batch holds little more than its
// writes and nothing is copied as it grows; a larger write gets a chunk
// of its own.
const chunkBits = 20

// sortedEntryBytes is what a write costs beyond its key and value: its
// sortedEnt twice (the sort's second buffer) and its value's length.
const sortedEntryBytes = 2*16 + 4

// errSortedRange: a sorted batch holds point writes only.
var errSortedRange = errors.New("store: a sorted batch cannot delete a range")

// NewSortedBatch returns a write-only batch for a bulk load: its writes
// are held in memory and handed to Pebble at Commit as sorted tables
// (or, under half a memtable, as a synced batch in key order).
// Writing one key twice keeps the later write, as in any batch. Keys are
// at most 65,535 bytes. Its Commit is durable whatever its sync argument,
// and costs a sync of the log and of each table: use it for batches of
// many writes.
func (d *DB) NewSortedBatch() *Batch {
	if d.closed.Load() {
		return &Batch{db: d, state: batchClosed}
	}
	return &Batch{db: d, sorted: &sortedWrites{}}
}

func (s *sortedWrites) add(key, value []byte, del bool) error {
	if len(key) > 0xffff {
		return fmt.Errorf("store: a key of %d bytes: a sorted batch takes keys of up to 65,535", len(key))
	}
	need := len(key) + binary.MaxVarintLen32 + len(value)
	n := len(s.chunks)
	if n == 0 || len(s.chunks[n-1])+need > cap(s.chunks[n-1]) {
		if n >= 1<<(32-chunkBits) || uint64(len(value)) >= 1<<32 {
			return pebble.ErrBatchTooLarge
		}
		s.chunks = append(s.chunks, make([]byte, 0, max(1<<chunkBits, need)))
		n++
	}
	c := s.chunks[n-1]
	var a [8]byte
	copy(a[:], key)
	if s.n%entBlock == 0 {
		s.ents = append(s.ents, make([]sortedEnt, 0, entBlock))
	}
	blk := &s.ents[len(s.ents)-1]
	*blk = append(*blk, sortedEnt{abbrev: binary.BigEndian.Uint64(a[:]),
		at: uint32(n-1)<<chunkBits | uint32(len(c)), klen: uint16(len(key)), del: del})
	s.n++
	c = append(c, key...)
	c = binary.AppendUvarint(c, uint64(len(value)))
	s.chunks[n-1] = append(c, value...)
	s.bytes += len(key) + len(value)
	return nil
}

func (s *sortedWrites) key(e *sortedEnt) []byte {
	off := int(e.at & (1<<chunkBits - 1))
	return s.chunks[e.at>>chunkBits][off : off+int(e.klen)]
}

func (s *sortedWrites) value(e *sortedEnt) []byte {
	c := s.chunks[e.at>>chunkBits][int(e.at&(1<<chunkBits-1))+int(e.klen):]
	n, k := binary.Uvarint(c)
	return c[k : k+int(n)]
}

// size is the memory the writes hold.
func (s *sortedWrites) size() int { return s.bytes + s.n*sortedEntryBytes }

// sorted sorts the writes by key and drops every write that a later
// write to the same key replaces: what is left is what a table holds.
func (s *sortedWrites) sorted() []sortedEnt {
	ents := make([]sortedEnt, 0, s.n)
	for _, blk := range s.ents {
		ents = append(ents, blk...)
	}
	s.ents = nil
	ents = radixSort(ents)
	// Keys sharing their first 8 bytes (one script's rows, one
	// transaction's outputs; a busy script's arrive in map order and can
	// run to thousands): order by the whole key, then by when the write
	// was made (at grows with it), so that of writes to one key the last
	// comes last.
	out := ents[:0]
	for i := 0; i < len(ents); {
		j := i + 1
		for j < len(ents) && ents[j].abbrev == ents[i].abbrev {
			j++
		}
		if j-i == 1 {
			out = append(out, ents[i])
			i = j
			continue
		}
		grp := ents[i:j]
		s.touched ^= s.touch(grp)
		slices.SortFunc(grp, func(a, b sortedEnt) int {
			if c := bytes.Compare(s.key(&a), s.key(&b)); c != 0 {
				return c
			}
			return cmp.Compare(a.at, b.at)
		})
		for g := range grp {
			if g+1 < len(grp) && grp[g+1].klen == grp[g].klen && bytes.Equal(s.key(&grp[g]), s.key(&grp[g+1])) {
				continue // a later write to this key follows
			}
			out = append(out, grp[g])
		}
		i = j
	}
	return out
}

// radixSort sorts ents by abbrev, stably: least significant byte first,
// skipping the bytes on which all entries agree. It may return a new
// slice.
func radixSort(ents []sortedEnt) []sortedEnt {
	if len(ents) < 2 {
		return ents
	}
	tmp := make([]sortedEnt, len(ents))
	for shift := uint(0); shift < 64; shift += 8 {
		var count [256]int
		for i := range ents {
			count[byte(ents[i].abbrev>>shift)]++
		}
		if count[byte(ents[0].abbrev>>shift)] == len(ents) {
			continue
		}
		pos := 0
		for b, c := range count {
			count[b] = pos
			pos += c
		}
		for i := range ents {
			b := byte(ents[i].abbrev >> shift)
			tmp[count[b]] = ents[i]
			count[b]++
		}
		ents, tmp = tmp, ents
	}
	return ents
}
