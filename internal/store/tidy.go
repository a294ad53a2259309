package store

import (
	"fmt"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
)

// tidyCheckpoint drops what a node does not need from a fresh checkpoint
// in dir: Pebble copies every WAL it still lists, including logs already
// flushed but not yet deleted (hundreds of MB after a bulk sync with large
// batches), so the checkpoint is opened once, which replays the logs that
// matter and deletes the obsolete ones, and closed after a flush, which
// leaves only SSTs and an empty WAL.
func (d *DB) tidyCheckpoint(fs vfs.FS, dir string) error {
	po := &pebble.Options{
		FS:                          fs,
		ErrorIfNotExists:            true,
		FormatMajorVersion:          formatMajorVersion,
		DisableAutomaticCompactions: true,
		CacheSize:                   8 << 20,
		Logger:                      pebbleLogger{d.log},
	}
	db, err := pebble.Open(dir, po)
	if err != nil {
		return fmt.Errorf("tidy checkpoint %s: %w", dir, err)
	}
	if err := db.Flush(); err != nil {
		db.Close()
		return fmt.Errorf("tidy checkpoint %s: flush: %w", dir, err)
	}
	if err := db.Close(); err != nil {
		return fmt.Errorf("tidy checkpoint %s: %w", dir, err)
	}
	return nil
}

// Uncompacted returns the bytes of the live SST files above the bottom
// non-empty level below L0, and of all live SST files. What lies above
// the bottom is new data not yet merged down, overwritten values and
// tombstones; the data those tombstones delete is Garbage.
func (d *DB) Uncompacted() (upper, total int64) {
	if d.closed.Load() {
		return 0, 0
	}
	m := d.db.Metrics()
	bottom := bottomLevel(len(m.Levels), func(i int) bool { return m.Levels[i].TablesSize > 0 })
	for i, l := range m.Levels {
		total += l.TablesSize
		if i != bottom {
			upper += l.TablesSize
		}
	}
	return upper, total
}

// Garbage estimates the table bytes that compacting the DB's point
// deletions would reclaim: each tombstone above the bottom level is
// taken to delete one entry of the bottom level's average size. A few
// small tombstones can delete much data. (Pebble's own estimate comes
// from statistics gathered in the background, with no way to wait for
// them; table properties are exact and at hand.)
func (d *DB) Garbage() (int64, error) {
	if d.closed.Load() {
		return 0, ErrClosed
	}
	levels, err := d.db.SSTables(pebble.WithProperties())
	if err != nil {
		return 0, fmt.Errorf("table properties: %w", err)
	}
	bottom := bottomLevel(len(levels), func(i int) bool { return len(levels[i]) > 0 })
	if bottom < 0 {
		return 0, nil
	}
	var bytes, entries, deletions uint64
	for _, t := range levels[bottom] {
		bytes += t.Size
		entries += t.Properties.NumEntries
	}
	for _, level := range levels[:bottom] {
		for _, t := range level {
			deletions += t.Properties.NumDeletions - t.Properties.NumRangeDeletions
		}
	}
	if entries == 0 {
		return 0, nil
	}
	return int64(min(bytes, deletions*bytes/entries)), nil
}

// bottomLevel is the lowest of n levels that nonEmpty holds tables, or -1.
// L0's files overlap each other, so L0 is never the bottom: a DB that
// never compacted (a fresh bulk sync) is all upper bytes.
func bottomLevel(n int, nonEmpty func(level int) bool) int {
	for i := n - 1; i > 0; i-- {
		if nonEmpty(i) {
			return i
		}
	}
	return -1
}
