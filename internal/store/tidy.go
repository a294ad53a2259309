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

// Garbage estimates the bytes of SST files that compacting the whole DB
// would reclaim: values deleted or overwritten by newer point and range
// tombstones. Pebble computes it from table statistics in the background,
// so it may lag the last flush a little.
func (d *DB) Garbage() uint64 {
	if d.closed.Load() {
		return 0
	}
	m := d.db.Metrics()
	return m.Table.Garbage.PointDeletionsBytesEstimate + m.Table.Garbage.RangeDeletionsBytesEstimate
}
