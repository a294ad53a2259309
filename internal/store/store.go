package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"path/filepath"
	"runtime"
	"slices"
	"sync/atomic"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/bloom"
	"github.com/cockroachdb/pebble/v2/vfs"
)

// Sentinel errors. Callers branch on them with errors.Is; the errors this
// package returns for other failures wrap Pebble's or the OS's error with
// the operation and its inputs.
var (
	// ErrNotFound is returned by Get when the key is absent, and by Last
	// when no key has the prefix.
	ErrNotFound = errors.New("store: not found")

	// ErrClosed is returned by the methods of a DB, Snapshot, Batch or
	// Iterator used after its Close (or after its DB's Close).
	ErrClosed = errors.New("store: closed")

	// ErrReadOnly is returned by Commit, Flush, Compact and Checkpoint on a
	// DB opened with Options.ReadOnly.
	ErrReadOnly = errors.New("store: read-only")

	// ErrNotIndexed is returned by the reads of a batch made with NewBatch;
	// only batches from NewIndexedBatch can be read.
	ErrNotIndexed = errors.New("store: batch is not indexed")

	// ErrBatchDone is returned by a write to, or a Commit of, a batch that
	// was already committed or closed, and by the reads of a committed
	// batch.
	ErrBatchDone = errors.New("store: batch already committed or closed")

	// ErrStop may be returned by the callback of Scan or ScanRange to end the
	// scan early; the scan then returns nil.
	ErrStop = errors.New("store: stop scan")
)

// FormatVersion is the Pebble format major version that new databases are
// created with and older ones are ratcheted to on a read-write Open.
// Snapshot manifests record it: a node must not restore a snapshot whose
// format is newer than the one its own build writes.
//
// NOTE: it is pinned on purpose rather than following Pebble's newest
// format, so that upgrading the Pebble dependency never silently rewrites
// on-disk data; raising it is a deliberate change that also bumps snapshots.
const FormatVersion = uint64(formatMajorVersion)

const formatMajorVersion = pebble.FormatValueSeparation

// Defaults for the zero values of Options.
const (
	// DefaultCacheSize is the block cache size used when Options.CacheSize
	// is zero.
	DefaultCacheSize = 256 << 20

	// DefaultMemTableSize is the memtable size used when
	// Options.MemTableSize is zero.
	DefaultMemTableSize = 64 << 20
)

// memTableStopWrites is how many memtables may be queued before writes
// wait for flushes.
const memTableStopWrites = 4

// MaxMemTableBytes is the most memory memtables of the default size
// hold at once.
const MaxMemTableBytes = DefaultMemTableSize * memTableStopWrites

// maxMemTableSize is Pebble's limit on one memtable.
const maxMemTableSize = 4<<30 - 1

// Options configures Open. The zero value opens (creating if needed) a
// read-write DB on disk with the WAL on and the default sizes.
type Options struct {
	// CacheSize is the block cache size in bytes; zero means
	// DefaultCacheSize.
	CacheSize int64

	// MemTableSize is the size in bytes of one memtable, the unit of a
	// flush; zero means DefaultMemTableSize. Up to four may be queued
	// before writes wait for flushes.
	MemTableSize int64

	// DisableWAL turns the write-ahead log off, for a bulk initial sync.
	// Commits are then atomic but not durable: a crash loses everything
	// since the last Flush (or Checkpoint, or Close), and Commit ignores its
	// sync argument. Callers that rely on durability must Flush.
	DisableWAL bool

	// ReadOnly opens an existing DB without writing to it: no compactions,
	// no flush, and writes return ErrReadOnly. Open fails if the DB does not
	// exist.
	ReadOnly bool

	// InMemory keeps the whole DB in memory (Pebble's vfs.NewMem), for fast
	// unit tests. The data is gone when the DB is closed; dir only names it.
	InMemory bool

	// WriteMostly tunes the DB for a writer that few read (a builder):
	// L0 compacts from 8 sublevels instead of 4, so a bulk sync rewrites
	// the bottom level half as often, at the cost of up to 8 L0 seeks
	// per read. A server leaves it off; a node bootstrapped from a
	// snapshot compacts it fully first anyway.
	WriteMostly bool

	// Logger receives Pebble's log lines and event summaries; nil discards
	// them.
	Logger *slog.Logger

	// fs, when set by this package's tests, replaces the filesystem (for
	// instance with vfs.NewCrashableMem to simulate power loss).
	fs vfs.FS
}

// DB is an open Pebble database. Its methods are safe for concurrent use,
// except Close, which must not run concurrently with anything else.
type DB struct {
	db         *pebble.DB
	fs         vfs.FS
	dir        string
	log        *slog.Logger
	readOnly   bool
	disableWAL bool
	po         *pebble.Options // as opened: sorted batches write tables with its settings
	stageSeq   atomic.Uint64   // names sorted batches' tables in stageDir
	closed     atomic.Bool
	stalls     atomic.Int64
	changes    changeLog
}

var _ Reader = (*DB)(nil)

// Open opens the DB in dir, creating it (and dir) unless opts.ReadOnly.
func Open(dir string, opts Options) (*DB, error) {
	if opts.CacheSize < 0 || opts.MemTableSize < 0 || opts.MemTableSize > maxMemTableSize {
		return nil, fmt.Errorf("open store %s: cache size %d or memtable size %d out of range",
			dir, opts.CacheSize, opts.MemTableSize)
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	d := &DB{
		dir:        dir,
		log:        log,
		readOnly:   opts.ReadOnly,
		disableWAL: opts.DisableWAL,
	}
	po := d.pebbleOptions(opts)
	d.po = po.Clone()
	d.po.EnsureDefaults() // as Pebble completes its own copy
	if !opts.ReadOnly {
		// Tables a sorted batch was writing when the process died.
		fs := po.FS
		if fs == nil {
			fs = vfs.Default
		}
		if err := fs.RemoveAll(filepath.Join(dir, stageDir)); err != nil {
			return nil, fmt.Errorf("open store %s: %w", dir, err)
		}
	}
	pdb, err := pebble.Open(dir, po)
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", dir, err)
	}
	d.db = pdb
	d.fs = po.FS
	if d.fs == nil {
		// Pebble wraps the OS filesystem with disk-health checks only when
		// it picks the filesystem itself; our own Stat calls use it bare.
		d.fs = vfs.Default
	}
	log.Debug("store opened", slog.String("dir", dir), slog.Bool("read_only", opts.ReadOnly),
		slog.Bool("wal", !opts.DisableWAL), slog.Uint64("format", uint64(pdb.FormatMajorVersion())))
	return d, nil
}

// pebbleOptions translates opts into Pebble's options, with the tuning
// described in the package comment.
func (d *DB) pebbleOptions(opts Options) *pebble.Options {
	cacheSize := opts.CacheSize
	if cacheSize == 0 {
		cacheSize = DefaultCacheSize
	}
	memTableSize := opts.MemTableSize
	if memTableSize == 0 {
		memTableSize = DefaultMemTableSize
	}
	maxCompactions := max(2, runtime.GOMAXPROCS(0)/2)
	// A bulk sync's tables of history, UTXO and spend rows each span the
	// whole key space, so every L0 compaction rewrites the bottom level's
	// tables under them. A writer that few read merges twice as many per
	// rewrite: write amplification 2.71 against 2.80 to 5 M transactions,
	// and a 310k-transaction build ends with no compaction left to wait
	// for at Close (0.5 s of its 5).
	l0Compaction := 4
	if opts.WriteMostly {
		l0Compaction = 8
	}
	po := &pebble.Options{
		CacheSize:                   cacheSize,
		MemTableSize:                uint64(memTableSize),
		MemTableStopWritesThreshold: memTableStopWrites,
		DisableWAL:                  opts.DisableWAL,
		ReadOnly:                    opts.ReadOnly,
		ErrorIfNotExists:            opts.ReadOnly,
		FormatMajorVersion:          formatMajorVersion,

		// An append-heavy bulk load produces L0 files faster than one
		// compaction drains them. Start compacting L0 at the usual read
		// amplification (see WriteMostly), but let it grow far before
		// stopping writes: a temporarily higher read amplification is
		// cheaper than a stalled sync. Larger base level and files mean
		// fewer, bigger compactions.
		L0CompactionThreshold: l0Compaction,
		L0StopWritesThreshold: 1000,
		LBaseMaxBytes:         256 << 20,
		CompactionConcurrencyRange: func() (int, int) {
			return 1, maxCompactions
		},

		Logger:        pebbleLogger{d.log},
		EventListener: d.eventListener(),
	}
	setLevels(po)
	switch {
	case opts.fs != nil:
		po.FS = opts.fs
	case opts.InMemory:
		po.FS = vfs.NewMem()
	}
	return po
}

// setLevels applies the per-level settings: file sizes, filters and
// compression. The mirror (mirror.go) writes its tables with the same.
func setLevels(po *pebble.Options) {
	// TargetFileSizes[i>0] default to doubling from L0's.
	po.TargetFileSizes[0] = 4 << 20
	// Bloom filters let a Get skip the tables of upper levels that lack
	// its key. The bottom level holds nearly every key, so a Get that
	// reaches it mostly finds its key there and a filter would rarely
	// save a read: leaving it out (as RocksDB's
	// optimize_filters_for_hits does) saves about 1.25 bytes per key, 4%
	// of the index (BenchmarkIndexSize).
	for i := range po.Levels {
		po.Levels[i].FilterPolicy = bloom.FilterPolicy(10)
	}
	po.Levels[len(po.Levels)-1].FilterPolicy = pebble.NoFilterPolicy
	// Fast compression (MinLZ) where data is rewritten soon, zstd on the
	// two bottom levels, which hold nearly all of it and are what a
	// snapshot ships: 18% smaller than Snappy everywhere on the index
	// (BenchmarkIndexSize, the peer chain).
	po.ApplyCompressionSettings(func() pebble.DBCompressionSettings { return compression })
}

// Dir is the directory the DB was opened in.
func (d *DB) Dir() string { return d.dir }

// FormatVersion is the Pebble format major version of the open DB. It
// equals the FormatVersion constant unless the DB was written by a newer
// build, or opened read-only before being ratcheted.
func (d *DB) FormatVersion() uint64 {
	if d.closed.Load() {
		return 0
	}
	return uint64(d.db.FormatMajorVersion())
}

// Get returns a copy of the value stored under key, or ErrNotFound.
func (d *DB) Get(key []byte) ([]byte, error) {
	if d.closed.Load() {
		return nil, ErrClosed
	}
	return get(d.db, key)
}

// NewIter returns an unpositioned iterator over the keys within opts'
// bounds (all keys when opts is nil). The iterator sees the DB as of this
// call; it must be closed.
func (d *DB) NewIter(opts *IterOptions) (*Iterator, error) {
	if d.closed.Load() {
		return nil, ErrClosed
	}
	return newIter(d.db, opts)
}

// Scan calls fn for each key with the given prefix, in ascending order, on
// a consistent view of the DB as of the call. See Reader.
func (d *DB) Scan(prefix []byte, fn func(key, value []byte) error) error {
	return ScanRange(d, prefix, PrefixEnd(prefix), fn)
}

// NewSnapshot returns a consistent point-in-time view of the DB: writes
// committed after this call are invisible to it. It must be closed, before
// the DB. On a closed DB, every read of the snapshot returns ErrClosed.
func (d *DB) NewSnapshot() *Snapshot {
	if d.closed.Load() {
		return &Snapshot{}
	}
	return &Snapshot{s: d.db.NewSnapshot()}
}

// NewBatch returns an empty write-only batch.
func (d *DB) NewBatch() *Batch {
	if d.closed.Load() {
		return &Batch{db: d, state: batchClosed}
	}
	return &Batch{db: d, b: d.db.NewBatch()}
}

// NewIndexedBatch returns an empty batch whose reads (Get, NewIter, Scan)
// see its own uncommitted writes layered over the DB's current state. It
// costs more per write than NewBatch; use it when the writer reads back
// what it wrote, as the bulk sync does within one batch of blocks.
func (d *DB) NewIndexedBatch() *Batch {
	if d.closed.Load() {
		return &Batch{db: d, state: batchClosed}
	}
	return &Batch{db: d, b: d.db.NewIndexedBatch()}
}

// Flush writes the memtables to SST files and waits for that. With
// Options.DisableWAL it is what makes committed batches durable.
func (d *DB) Flush() error {
	switch {
	case d.closed.Load():
		return ErrClosed
	case d.readOnly:
		return ErrReadOnly
	}
	if err := d.db.Flush(); err != nil {
		return fmt.Errorf("flush store %s: %w", d.dir, err)
	}
	return nil
}

// Compact flushes and then compacts the whole key space into as few levels
// as possible. It is slow; it exists for tests and tools (and for a tidy
// LSM before a first snapshot). It does nothing on an empty DB.
func (d *DB) Compact(ctx context.Context) error {
	switch {
	case d.closed.Load():
		return ErrClosed
	case d.readOnly:
		return ErrReadOnly
	}
	if err := d.db.Flush(); err != nil {
		return fmt.Errorf("compact store %s: flush: %w", d.dir, err)
	}
	if err := d.compactAll(ctx); err != nil {
		return err
	}
	// Pebble moves a table down unrewritten when nothing below overlaps
	// it (a bulk sync's first flushes): it keeps its fast upper-level
	// compression and the tombstones of rows written and deleted before
	// the flush. Writing one of its keys again makes the next compaction
	// merge the table, and so rewrite it; a round or two suffices.
	for range 3 {
		touched, err := d.touchMoved()
		if err != nil {
			return fmt.Errorf("compact store %s: %w", d.dir, err)
		}
		if !touched {
			return nil
		}
		if err := d.compactAll(ctx); err != nil {
			return err
		}
	}
	return nil
}

// compactAll compacts the key range of every table, tombstones beyond
// the first or last live key included, into the bottom level.
func (d *DB) compactAll(ctx context.Context) error {
	levels, err := d.db.SSTables()
	if err != nil {
		return fmt.Errorf("compact store %s: find bounds: %w", d.dir, err)
	}
	var first, last []byte
	for _, level := range levels {
		for _, t := range level {
			if first == nil || bytes.Compare(t.Smallest.UserKey, first) < 0 {
				first = t.Smallest.UserKey
			}
			if last == nil || bytes.Compare(t.Largest.UserKey, last) > 0 {
				last = t.Largest.UserKey
			}
		}
	}
	if first == nil {
		return nil
	}
	// Compact's end bound is exclusive: the smallest key after last.
	if err := d.db.Compact(ctx, first, append(slices.Clip(last), 0), true); err != nil {
		return fmt.Errorf("compact store %s: %w", d.dir, err)
	}
	return nil
}

// compression is the compression profile of each level; a table records
// its profile's name.
var compression = pebble.DBCompressionGood

// bottomCompression names the bottom level's profile.
var bottomCompression = compression.Levels[len(compression.Levels)-1].Name

// touchMoved writes again, unchanged, one key of each bottom-level table
// that Pebble moved there unrewritten (other compression, or tombstones
// where nothing lies below), and flushes. It reports whether it wrote.
func (d *DB) touchMoved() (bool, error) {
	levels, err := d.db.SSTables(pebble.WithProperties())
	if err != nil {
		return false, err
	}
	b := d.db.NewBatch()
	defer b.Close()
	for _, t := range levels[len(levels)-1] {
		if t.Properties.NumDeletions == 0 && t.Properties.CompressionName == bottomCompression {
			continue
		}
		it, err := d.db.NewIter(&pebble.IterOptions{LowerBound: t.Smallest.UserKey})
		if err != nil {
			return false, err
		}
		if it.First() && bytes.Compare(it.Key(), t.Largest.UserKey) <= 0 {
			err = b.Set(it.Key(), it.Value(), nil)
		} else {
			// Nothing live in it: deleting its first key again is as good.
			err = b.Delete(t.Smallest.UserKey, nil)
		}
		if cerr := it.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return false, err
		}
	}
	if b.Empty() {
		return false, nil
	}
	if err := b.Commit(pebble.Sync); err != nil {
		return false, err
	}
	return true, d.db.Flush()
}

// Checkpoint writes a consistent copy of the DB's committed state into
// destDir, which must not exist (the error then wraps fs.ErrExist). It
// flushes first, and drops the WAL files Pebble copies though they were
// already flushed, so the copy is made of SST files (hard-linked to the
// DB's own where the filesystem allows) plus an empty WAL, and with
// Options.DisableWAL nothing committed is left out. The copy opens as a DB.
// Writes committed after Checkpoint returns are not in it. A read-only DB
// cannot be checkpointed (ErrReadOnly).
//
// NOTE: with Options.DisableWAL a batch committed while Checkpoint runs
// may be missing from the copy, as it would be after a crash; checkpoint
// while no writer is committing, as the builder does at a consistent tip.
func (d *DB) Checkpoint(destDir string) error {
	switch {
	case d.closed.Load():
		return ErrClosed
	case d.readOnly:
		// Pebble writes no OPTIONS file for a read-only DB, and a
		// checkpoint needs one.
		return ErrReadOnly
	}
	_, err := d.fs.Stat(destDir)
	switch {
	case err == nil:
		return fmt.Errorf("checkpoint store %s to %s: %w", d.dir, destDir, fs.ErrExist)
	case !errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("checkpoint store %s to %s: %w", d.dir, destDir, err)
	}
	if err := d.db.Flush(); err != nil {
		return fmt.Errorf("checkpoint store %s to %s: flush: %w", d.dir, destDir, err)
	}
	// WithFlushedWAL syncs the WAL too, for batches committed with
	// sync=false.
	if err := d.db.Checkpoint(destDir, pebble.WithFlushedWAL()); err != nil {
		return fmt.Errorf("checkpoint store %s to %s: %w", d.dir, destDir, err)
	}
	if err := d.tidyCheckpoint(d.fs, destDir); err != nil {
		return err
	}
	d.log.Debug("store checkpointed", slog.String("dir", d.dir), slog.String("dest", destDir))
	return nil
}

// Close closes the DB, first flushing it when the WAL is disabled so that a
// clean shutdown loses nothing. Iterators, snapshots and batches must be
// closed before. Only the first call does anything; it returns Pebble's
// error (for instance about leaked iterators), later calls return nil.
func (d *DB) Close() error {
	if !d.closed.CompareAndSwap(false, true) {
		return nil
	}
	var flushErr error
	if d.disableWAL && !d.readOnly {
		if err := d.db.Flush(); err != nil {
			flushErr = fmt.Errorf("close store %s: flush: %w", d.dir, err)
		}
	}
	if err := d.db.Close(); err != nil {
		return errors.Join(flushErr, fmt.Errorf("close store %s: %w", d.dir, err))
	}
	return flushErr
}
