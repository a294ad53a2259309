package store

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"runtime"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/sstable"
	"golang.org/x/sync/errgroup"
)

// stageDir is the subdirectory of the DB's directory where a sorted
// batch's tables are written before Pebble takes them in. It exists only
// during a commit; Open removes one a crash left behind.
const stageDir = "ingest"

// ingest commits a sorted batch as tables that Pebble takes into the LSM
// whole (DB.Ingest), instead of as a batch: the writes are not copied into
// a Pebble batch, sorted again and flushed from a memtable, and the
// tables of rows appended past every existing key of their kind (txids
// and headers by number, undo by height) go straight to the bottom level
// and are never rewritten by a compaction. Ingestion is atomic like a
// batch's commit: after a crash the DB holds all of the tables or none.
func (s *sortedWrites) ingest(d *DB) error {
	ents := s.sorted()
	if len(ents) == 0 {
		return nil
	}
	stage := filepath.Join(d.dir, stageDir)
	if err := d.fs.MkdirAll(stage, 0o755); err != nil {
		return fmt.Errorf("make %s: %w", stage, err)
	}
	var paths []string
	defer func() {
		for _, p := range paths {
			_ = d.fs.Remove(p)
		}
		_ = d.fs.Remove(stage) // unless another commit is using it
	}()
	// Two writers, each on its own run of keys, when there are enough:
	// the table writer is a third of a commit's CPU, and the goroutine
	// indexing the next batch leaves a core partly idle.
	parts := 1
	if len(ents) >= parallelTables && runtime.GOMAXPROCS(0) > 1 {
		parts = 2
	}
	var (
		g       errgroup.Group
		files   = make([][]string, parts)
		touched = make([]byte, parts)
	)
	for p := range parts {
		part := ents[p*len(ents)/parts : (p+1)*len(ents)/parts]
		g.Go(func() (err error) {
			files[p], touched[p], err = s.writeTables(d, stage, part)
			return err
		})
	}
	err := g.Wait()
	for p, f := range files {
		paths = append(paths, f...)
		s.touched ^= touched[p]
	}
	if err != nil {
		return err
	}
	// Tables are durable once ingested; the batches committed before this
	// one must be too, though they may not yet be synced to the log.
	if d.disableWAL {
		if err := d.db.Flush(); err != nil {
			return fmt.Errorf("flush: %w", err)
		}
	} else if err := d.db.LogData(nil, pebble.Sync); err != nil {
		return fmt.Errorf("sync log: %w", err)
	}
	return d.changes.commitKeys(func(add func([]byte) bool) {
		for i := range ents {
			if !add(s.key(&ents[i])) {
				return
			}
		}
	}, func() error {
		return d.db.Ingest(context.Background(), paths)
	})
}

// small reports whether the batch is better committed as a Pebble batch
// than as tables: below half a memtable, where Pebble itself stops
// copying a batch into the memtable. A table costs a sync of its own and
// an ingestion, which waits for the memtable to flush when it overlaps
// it; a few MB through the memtable are cheaper, and their flush comes
// later, merged with others'.
func (s *sortedWrites) small(d *DB) bool {
	return !d.disableWAL && uint64(s.size()) < d.po.MemTableSize/2
}

// commitBatch commits a small sorted batch through a synced Pebble batch,
// its writes in key order.
func (s *sortedWrites) commitBatch(d *DB) error {
	ents := s.sorted()
	if len(ents) == 0 {
		return nil
	}
	// Pebble's encoding adds a kind byte and two uvarints to each write.
	pb := d.db.NewBatch(pebble.WithInitialSizeBytes(s.bytes + len(ents)*8 + 12))
	defer pb.Close()
	for i := range ents {
		e := &ents[i]
		var err error
		if e.del {
			err = pb.Delete(s.key(e), nil)
		} else {
			err = pb.Set(s.key(e), s.value(e), nil)
		}
		if err != nil {
			return err
		}
	}
	return d.changes.commit(pb, func() error { return pb.Commit(pebble.Sync) })
}

// parallelTables is the fewest writes a sorted batch splits between two
// table writers.
const parallelTables = 1 << 16

// writeTables writes ents, sorted, as tables in stage and returns their
// paths, also those of a failed call (for the caller to remove).
func (s *sortedWrites) writeTables(d *DB, stage string, ents []sortedEnt) (paths []string, touched byte, err error) {
	// Which tables land below every other key is known before they are
	// written: those go out as the bottom level writes its tables.
	it, err := d.db.NewIter(nil)
	if err != nil {
		return nil, 0, fmt.Errorf("open iterator: %w", err)
	}
	defer it.Close()
	var (
		w      *sstable.Writer
		target int64
	)
	finish := func() error {
		if w == nil {
			return nil
		}
		err := w.Close()
		w = nil
		return err
	}
	for i := 0; i < len(ents); i++ {
		if i%touchAhead == 0 {
			touched ^= s.touch(ents[i:min(i+touchAhead, len(ents))])
		}
		e := &ents[i]
		k := s.key(e)
		if w != nil && (firstByte(k) != firstByte(s.key(&ents[i-1])) || int64(w.Raw().EstimatedSize()) >= target) {
			if err := finish(); err != nil {
				return paths, touched, fmt.Errorf("write table: %w", err)
			}
		}
		if w == nil {
			level := 0
			if last := s.runEnd(ents, i); !overlaps(it, k, last) {
				level = numLevels - 1
			}
			path := filepath.Join(stage, fmt.Sprintf("%06d.sst", d.stageSeq.Add(1)))
			if w, err = createTable(d.fs, path, d.po, level, d.db); err != nil {
				return paths, touched, fmt.Errorf("create table: %w", err)
			}
			paths = append(paths, path)
			target = d.po.TargetFileSizes[level]
		}
		if e.del {
			err = w.Delete(k)
		} else {
			err = w.Set(k, s.value(e))
		}
		if err != nil {
			_ = w.Close()
			return paths, touched, fmt.Errorf("write table: %w", err)
		}
	}
	if err := finish(); err != nil {
		return paths, touched, fmt.Errorf("write table: %w", err)
	}
	return paths, touched, nil
}

// touchAhead is how many entries' keys touch brings into the cache at a
// time: their lines (128 KiB) fit in the core's L2.
const touchAhead = 2048

// touch reads the first byte of each entry's key. Sorted, the entries
// point all over the batch's chunks and each key is a cache miss; read in
// a loop that does nothing else, the misses overlap, where the table
// writer, between one key and the next, would wait for each in turn
// (that wait was a third of a commit's time).
// It returns the bytes XORed, which the caller keeps (in touched) so that
// the loads are not optimised away.
func (s *sortedWrites) touch(ents []sortedEnt) byte {
	var x byte
	for i := range ents {
		x ^= s.chunks[ents[i].at>>chunkBits][ents[i].at&(1<<chunkBits-1)]
	}
	return x
}

// runEnd is the last key of the run of ents from i on that shares its
// first byte: the most one table started at i can hold.
func (s *sortedWrites) runEnd(ents []sortedEnt, i int) []byte {
	b := firstByte(s.key(&ents[i]))
	lo, hi := i, len(ents)-1
	for lo < hi { // the last entry whose first byte is b
		mid := hi - (hi-lo)/2
		if firstByte(s.key(&ents[mid])) == b {
			lo = mid
		} else {
			hi = mid - 1
		}
	}
	return s.key(&ents[lo])
}

// overlaps reports whether the DB holds a key from first to last, both
// inclusive.
func overlaps(it *pebble.Iterator, first, last []byte) bool {
	if !it.SeekGE(first) {
		return false
	}
	return bytes.Compare(it.Key(), last) <= 0
}

// firstByte is a key's first byte, or -1 for the empty key: tables are
// cut where it changes, so rows of different kinds never share one.
func firstByte(k []byte) int {
	if len(k) == 0 {
		return -1
	}
	return int(k[0])
}
