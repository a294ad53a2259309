package store

import (
	"fmt"
	"time"
)

// Metrics is a small summary of the DB's state, meant to feed Prometheus
// gauges and counters. Counters count since Open.
type Metrics struct {
	// DiskUsage is the bytes the DB occupies on disk: tables, WAL,
	// manifest, and obsolete files not yet deleted.
	DiskUsage uint64
	// Tables is the number of live SST files over all levels.
	Tables int64
	// TableBytes is the total size of the live SST files.
	TableBytes int64
	// MemTableSize is the bytes held by memtables (including queued ones).
	MemTableSize uint64
	// ReadAmp is the read amplification: L0 sublevels plus non-empty
	// levels below L0.
	ReadAmp int
	// CompactionDebt estimates the bytes compactions must still rewrite
	// for the LSM to reach its shape.
	CompactionDebt uint64
	// Flushes counts memtable flushes (counter).
	Flushes int64
	// Compactions counts compactions (counter).
	Compactions int64
	// WriteStalls counts write stalls: times writes had to wait for
	// flushes or compactions (counter).
	WriteStalls int64
	// CacheHits and CacheMisses count block cache lookups (counters).
	CacheHits, CacheMisses int64
	// FlushedBytes, IngestedBytes and CompactedBytes count the SST bytes
	// written by flushes, taken in whole (a sorted batch's tables) and
	// written by compactions (counters): the write amplification of the
	// LSM is (FlushedBytes+IngestedBytes+CompactedBytes) /
	// (FlushedBytes+IngestedBytes).
	FlushedBytes, IngestedBytes, CompactedBytes uint64
	// Uptime is the time since Open.
	Uptime time.Duration
}

// Metrics returns the current metrics, or the zero Metrics after Close.
func (d *DB) Metrics() Metrics {
	if d.closed.Load() {
		return Metrics{}
	}
	m := d.db.Metrics()
	out := Metrics{
		DiskUsage:      m.DiskSpaceUsage(),
		MemTableSize:   m.MemTable.Size,
		ReadAmp:        m.ReadAmp(),
		CompactionDebt: m.Compact.EstimatedDebt,
		Flushes:        m.Flush.Count,
		Compactions:    m.Compact.Count,
		WriteStalls:    d.stalls.Load(),
		CacheHits:      m.BlockCache.Hits,
		CacheMisses:    m.BlockCache.Misses,
		Uptime:         m.Uptime,
	}
	for _, l := range m.Levels {
		out.Tables += l.TablesCount
		out.TableBytes += l.TablesSize
		out.FlushedBytes += l.TableBytesFlushed
		out.IngestedBytes += l.TableBytesIngested
		out.CompactedBytes += l.TableBytesCompacted
	}
	return out
}

// RangeSize estimates the bytes of SST that hold the keys from start to
// end, both inclusive, as Pebble does: a table wholly inside the range
// counts whole; of a table that straddles a bound only the data blocks
// that overlap the range count (a block that straddles counts whole on
// each side; index, filter and property blocks count on neither). Keys
// still in memtables count nothing: Flush first.
func (d *DB) RangeSize(start, end []byte) (uint64, error) {
	if d.closed.Load() {
		return 0, ErrClosed
	}
	n, err := d.db.EstimateDiskUsage(start, end)
	if err != nil {
		return 0, fmt.Errorf("estimate disk usage of %x..%x in %s: %w", start, end, d.dir, err)
	}
	return n, nil
}
