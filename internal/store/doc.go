// Package store is Amber's key/value storage: a small wrapper around Pebble
// (github.com/cockroachdb/pebble/v2), and the only package that imports it.
//
// It knows nothing of Bitcoin. The key schema lives in internal/index; this
// package offers what that schema needs and no more:
//
//   - Open a DB on disk or in memory (Options.InMemory, for unit tests),
//     read-write or read-only, with tuning for an append-heavy index:
//     bloom filters above the bottom level, zstd on the two bottom levels,
//     a large memtable and a lenient L0 so a bulk initial sync is not
//     throttled, and a pinned on-disk format (FormatVersion) that
//     snapshot manifests record. A bulk sync's batches
//     (DB.NewSortedBatch) reach Pebble as sorted tables it takes in whole
//     (those under half a memtable as a batch); rows appended past every
//     existing key go straight to the bottom level.
//   - Read through the Reader interface, implemented by *DB, by *Snapshot
//     (a consistent point-in-time view from DB.NewSnapshot) and by indexed
//     batches (which see their own uncommitted writes). Get returns a copy
//     and ErrNotFound for a missing key; Scan visits the keys with a prefix;
//     NewIter gives a bounded Iterator with First, Last, SeekGE, SeekLT,
//     Next and Prev; Last and ScanRange cover "last key with a prefix" and
//     "keys between a and b".
//   - Write through a Batch (DB.NewBatch, or DB.NewIndexedBatch when the
//     writer must read its own writes). Commit applies a batch atomically:
//     after a crash at any moment the DB holds every write of a committed
//     batch or none of it. That is how the index keeps a block's rows, its
//     undo record and the tip in one truth.
//   - Flush, Checkpoint (a consistent copy of the committed state in a new
//     directory, hard-linked where possible, for the snapshot publisher),
//     ListFiles (the files of such a directory), Compact, Metrics, Close.
//
// # Durability
//
// Commit(true) returns once the batch is in the write-ahead log and synced;
// Commit(false) returns once the batch is applied, and the WAL is synced
// later. With Options.DisableWAL (bulk initial sync) there is no WAL:
// committed batches live in the memtable until a flush, a crash loses
// everything since the last Flush, and Commit ignores its sync argument.
// Each batch is still all-or-nothing. Close flushes such a DB so that a
// clean shutdown loses nothing, and Checkpoint always flushes first. A
// sorted batch's Commit is durable, with every batch committed before it,
// with or without a WAL.
//
// # Concurrency
//
// A DB and a Snapshot are safe for concurrent use. A Batch and an Iterator
// are not: each belongs to one goroutine at a time. Iterators, snapshots
// and batches must be closed before the DB.
//
// # Logging
//
// Pebble's own log lines and its flush and compaction events go to the
// slog.Logger in Options at debug level, one summarised record per flush or
// compaction. Slow disks and low disk space are warnings; background
// errors and data corruption are errors.
package store
