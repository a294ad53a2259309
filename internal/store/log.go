package store

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"strconv"
	"strings"
	"syscall"

	"github.com/cockroachdb/pebble/v2"
)

// pebbleLogger routes Pebble's printf-style log lines into slog. Pebble's
// Infof lines (recovery, format upgrades, ...) are debug records; its
// Errorf lines (failed cleanups and the like, which Pebble survives) are
// warnings.
type pebbleLogger struct {
	log *slog.Logger
}

var _ pebble.Logger = pebbleLogger{}

// Infof logs a Pebble informational line at debug level.
func (l pebbleLogger) Infof(format string, args ...any) {
	if !l.log.Enabled(context.Background(), slog.LevelDebug) {
		return
	}
	l.log.Debug("pebble", slog.String("detail", fmt.Sprintf(format, args...)))
}

// Errorf logs a Pebble error line as a warning.
func (l pebbleLogger) Errorf(format string, args ...any) {
	l.log.Warn("pebble error", slog.String("detail", fmt.Sprintf(format, args...)))
}

// Fatalf logs a Pebble fatal line and panics.
//
// NOTE: Pebble calls Fatalf when one of its own invariants is broken (a
// commit pipeline failure, for instance) and relies on it not returning.
// Its default logger exits the process; panicking instead lets the
// process's own handling, and tests, see it.
//
// A full disk is the usual cause an operator can fix, so it gets a line
// that says what to do.
func (l pebbleLogger) Fatalf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	for _, a := range args {
		if err, ok := a.(error); ok && errors.Is(err, syscall.ENOSPC) {
			logDiskFull(l.log, err)
			break
		}
	}
	l.log.Error("pebble fatal", slog.String("detail", msg))
	panic("store: pebble fatal: " + msg)
}

// flushDiskFull ends the process when a flush fails on a full disk.
// Pebble retries a failed flush at once and forever, without a backoff,
// and everything that waits for the flush waits with it: a write stall,
// or an ingestion of tables that overlap the memtable (a sorted batch),
// would hang with no end. A failed WAL write already ends the process
// (Fatalf); a failed flush now does too, with the same line. The flush
// installed nothing, so the DB reopens at its last commit.
func flushDiskFull(log *slog.Logger, err error) {
	logDiskFull(log, err)
	panic("store: pebble cannot flush: the disk is full")
}

// logDiskFull says what a full disk means and what to do.
func logDiskFull(log *slog.Logger, err error) {
	// The path error alone: Pebble's wrapping adds a stack trace.
	if pe := (*fs.PathError)(nil); errors.As(err, &pe) {
		err = pe
	}
	log.Error("disk full: the index stays at its last commit; free space on the DB directory's disk and restart",
		slog.String("err", err.Error()))
}

// eventListener summarises Pebble's events into d.log: one debug record
// per finished flush or compaction, debug records for write stalls (also
// counted for Metrics), warnings for slow disks and low disk space, and
// errors for background errors and corruption.
func (d *DB) eventListener() *pebble.EventListener {
	log := d.log
	debug := func() bool { return log.Enabled(context.Background(), slog.LevelDebug) }
	return &pebble.EventListener{
		FlushEnd: func(info pebble.FlushInfo) {
			if errors.Is(info.Err, syscall.ENOSPC) {
				flushDiskFull(log, info.Err)
			}
			if !debug() {
				return
			}
			n, size := tables(info.Output)
			attrs := []any{
				slog.Int("job", info.JobID),
				slog.String("reason", info.Reason),
				slog.Int("memtables", info.Input),
				slog.Uint64("in_bytes", info.InputBytes),
				slog.Int("out_tables", n),
				slog.Uint64("out_bytes", size),
				slog.Bool("ingest", info.Ingest),
				slog.Duration("took", info.TotalDuration),
			}
			if info.Err != nil {
				attrs = append(attrs, slog.Any("err", info.Err))
			}
			log.Debug("pebble flush", attrs...)
		},
		CompactionEnd: func(info pebble.CompactionInfo) {
			if !debug() {
				return
			}
			var from []string
			var inTables int
			var inBytes uint64
			for _, l := range info.Input {
				n, size := tables(l.Tables)
				inTables += n
				inBytes += size
				from = append(from, "L"+strconv.Itoa(l.Level))
			}
			outTables, outBytes := tables(info.Output.Tables)
			attrs := []any{
				slog.Int("job", info.JobID),
				slog.String("reason", info.Reason),
				slog.String("from", strings.Join(from, ",")),
				slog.String("to", "L"+strconv.Itoa(info.Output.Level)),
				slog.Int("in_tables", inTables),
				slog.Uint64("in_bytes", inBytes),
				slog.Int("out_tables", outTables),
				slog.Uint64("out_bytes", outBytes),
				slog.Duration("took", info.TotalDuration),
			}
			if info.Err != nil {
				attrs = append(attrs, slog.Any("err", info.Err))
			}
			log.Debug("pebble compaction", attrs...)
		},
		WriteStallBegin: func(info pebble.WriteStallBeginInfo) {
			d.stalls.Add(1)
			log.Debug("pebble write stall", slog.String("reason", info.Reason))
		},
		WriteStallEnd: func() {
			log.Debug("pebble write stall end")
		},
		DiskSlow: func(info pebble.DiskSlowInfo) {
			log.Warn("pebble slow disk", slog.String("path", info.Path),
				slog.String("op", info.OpType.String()), slog.Duration("took", info.Duration))
		},
		LowDiskSpace: func(info pebble.LowDiskSpaceInfo) {
			log.Warn("pebble low disk space", slog.Uint64("avail_bytes", info.AvailBytes),
				slog.Uint64("total_bytes", info.TotalBytes), slog.Int("threshold_percent", info.PercentThreshold))
		},
		BackgroundError: func(err error) {
			if errors.Is(err, pebble.ErrCancelledCompaction) {
				return // routine: Pebble retries it
			}
			log.Error("pebble background error", slog.Any("err", err))
		},
		DataCorruption: func(info pebble.DataCorruptionInfo) {
			log.Error("pebble data corruption", slog.String("path", info.Path), slog.Any("err", info.Details))
		},
	}
}

// tables counts the tables of an event and their total size in bytes.
func tables(ts []pebble.TableInfo) (n int, size uint64) {
	for _, t := range ts {
		size += t.Size
	}
	return len(ts), size
}
