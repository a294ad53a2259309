package store

import "time"

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
	}
	return out
}
