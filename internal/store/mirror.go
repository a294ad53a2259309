package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sort"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/objstorage/objstorageprovider"
	"github.com/cockroachdb/pebble/v2/sstable"
	"github.com/cockroachdb/pebble/v2/vfs"
)

// A Mirror is a second Pebble DB holding a DB's rows as of its last
// Update, laid out so that successive checkpoints of it share most of
// their files. A DB's own compactions rewrite nearly every table as rows
// keyed by hashes arrive all over the key space, so consecutive snapshots
// of the DB itself share little. The mirror never compacts on its own:
//
//   - its key space is cut into ranges of similar size, and no table
//     crosses a range boundary: the ranges are read from the tables
//     themselves at each Update, so a copy of the mirror (a restored
//     snapshot) can be carried on as a mirror;
//   - an Update turns the keys the DB changed since the last one into one
//     small table per range and ingests them on top (rows appended past a
//     range's end go straight to the bottom level);
//   - then, within a byte budget, it rewrites the ranges that carry the
//     most such layers as fresh bottom tables read from the DB, so
//     layers never pile up.
//
// A snapshot of the mirror therefore uploads the new layers plus a few
// rewritten ranges, and stays close to the size of a compacted DB.
type Mirror struct {
	db    *pebble.DB
	opts  *pebble.Options
	dir   string
	log   *slog.Logger
	seq   int  // names staged tables
	stale bool // rebuild at the next Update

	// Step, when set, is called after each step of an Update that
	// changes the mirror ("layers", "rewrite"): crash tests kill the
	// process there.
	Step func(name string)
}

func (m *Mirror) step(name string) {
	if m.Step != nil {
		m.Step(name)
	}
}

// MirrorStats describes one Update.
type MirrorStats struct {
	// Rebuilt is set when the whole mirror was written again from the DB.
	Rebuilt bool
	// Keys is the number of changed keys applied as layers.
	Keys int
	// LayerBytes is the bytes of the layer tables ingested.
	LayerBytes int64
	// Rewritten is the number of ranges rewritten, RewrittenBytes their
	// new tables' bytes.
	Rewritten      int
	RewrittenBytes int64
	// Ranges is the number of ranges after the update.
	Ranges int
	// Bytes is the size of all the mirror's tables after the update, and
	// UpperBytes those of them above the bottom level.
	Bytes, UpperBytes int64
}

const (
	// mirrorRanges is the number of ranges a rebuild aims at: rewriting
	// one costs about 1/mirrorRanges of the DB.
	mirrorRanges = 48
	// minRangeBytes keeps ranges of a small DB from being tiny.
	minRangeBytes = 64 << 10
	// rewriteBudget is the share of the mirror's bytes an Update may
	// spend on layers and rewritten ranges together: what a publish
	// uploads, with the MANIFEST.
	rewriteBudget = 0.09
	// maxGarbage is the share of the mirror's bytes that may be garbage
	// (rangeInfo.garbage): past it (small DBs, where each layer table's
	// fixed cost weighs most, or updates far apart), ranges are rewritten
	// whatever the budget until that is down to minGarbage. A checkpoint
	// thus stays within about 1.1x of a compacted DB.
	maxGarbage = 0.09
	minGarbage = 0.075
	// tableBytes is where a rewritten range's output is cut into tables.
	tableBytes = 32 << 20
)

// numLevels is Pebble's number of levels.
const numLevels = 7

// keyEnd is above every key a mirror holds: keys are index rows, whose
// first byte is a printable prefix.
var keyEnd = []byte{0xff, 0xff}

// OpenMirror opens the mirror in dir, creating it if needed.
func OpenMirror(dir string, log *slog.Logger) (*Mirror, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	m := &Mirror{dir: dir, log: log}
	if err := m.open(); err != nil {
		return nil, err
	}
	return m, nil
}

// Invalidate makes the next Update write the mirror again from the DB:
// for a mirror that is known not to hold the DB's state as of the start
// of its change record.
func (m *Mirror) Invalidate() { m.stale = true }

func (m *Mirror) open() error {
	po := &pebble.Options{
		FormatMajorVersion:          formatMajorVersion,
		DisableAutomaticCompactions: true,
		DisableWAL:                  true,
		// Every update edits the MANIFEST, which a checkpoint ships whole;
		// a small limit makes Pebble start a compact one often.
		MaxManifestFileSize:   128 << 10,
		CacheSize:             16 << 20,
		L0StopWritesThreshold: 1 << 20,
		Logger:                pebbleLogger{m.log},
	}
	setLevels(po)
	db, err := pebble.Open(m.dir, po)
	if err != nil {
		return fmt.Errorf("open mirror %s: %w", m.dir, err)
	}
	m.db, m.opts = db, po
	return nil
}

// Close closes the mirror.
func (m *Mirror) Close() error {
	if err := m.db.Close(); err != nil {
		return fmt.Errorf("close mirror %s: %w", m.dir, err)
	}
	return nil
}

// Get returns the mirror's value for key, or ErrNotFound.
func (m *Mirror) Get(key []byte) ([]byte, error) { return get(m.db, key) }

// Checkpoint copies the mirror into destDir, which must not exist.
func (m *Mirror) Checkpoint(destDir string) error {
	if err := m.db.Checkpoint(destDir); err != nil {
		return fmt.Errorf("checkpoint mirror %s to %s: %w", m.dir, destDir, err)
	}
	return nil
}

// Update brings the mirror to db's current state: through the keys db
// recorded since the last Update (see TrackChanges) when that record is
// complete and the mirror has been built, by writing it again from db
// otherwise. Writes to db may go on meanwhile; the mirror takes the state
// at the moment Update starts.
func (m *Mirror) Update(ctx context.Context, db *DB) (MirrorStats, error) {
	keys, complete, snap := db.TakeChanges()
	defer snap.Close()
	var st MirrorStats
	levels, err := m.db.SSTables(pebble.WithProperties())
	if err != nil {
		return st, fmt.Errorf("mirror %s: %w", m.dir, err)
	}
	empty := true
	for _, level := range levels {
		empty = empty && len(level) == 0
	}
	if !complete || m.stale || empty {
		_, total := db.Uncompacted()
		err = m.rebuild(ctx, snap, total)
		st.Rebuilt = true
	} else {
		st, err = m.apply(ctx, snap, keys, levels)
	}
	if err != nil {
		return st, err
	}
	if levels, err = m.db.SSTables(); err != nil {
		return st, fmt.Errorf("mirror %s: %w", m.dir, err)
	}
	for i, level := range levels {
		for _, t := range level {
			st.Bytes += int64(t.Size)
			if i < len(levels)-1 {
				st.UpperBytes += int64(t.Size)
			}
		}
	}
	st.Ranges = len(deriveBounds(levels, max(st.Bytes/mirrorRanges, minRangeBytes)))
	return st, nil
}

// rebuild replaces the mirror's contents with src's, cut into ranges of
// about total/mirrorRanges bytes.
func (m *Mirror) rebuild(ctx context.Context, src Reader, total int64) error {
	if err := m.db.Close(); err != nil {
		return fmt.Errorf("mirror %s: %w", m.dir, err)
	}
	if err := os.RemoveAll(m.dir); err != nil {
		return fmt.Errorf("mirror %s: %w", m.dir, err)
	}
	if err := m.open(); err != nil {
		return err
	}
	if _, err := m.rewrite(ctx, src, nil, nil, max(total/mirrorRanges, minRangeBytes), false); err != nil {
		return err
	}
	m.stale = false
	return nil
}

// tableSpan is the key span and size of one table, or of a run of
// overlapping tables.
type tableSpan struct {
	lo, hi []byte
	size   int64
}

// deriveBounds cuts the key space into ranges of about target bytes
// where no table crosses a cut, and where the first byte of the keys
// changes.
func deriveBounds(levels [][]pebble.SSTableInfo, target int64) [][]byte {
	var spans []tableSpan
	for _, level := range levels {
		for _, t := range level {
			spans = append(spans, tableSpan{t.Smallest.UserKey, t.Largest.UserKey, int64(t.Size)})
		}
	}
	slices.SortFunc(spans, func(a, b tableSpan) int { return bytes.Compare(a.lo, b.lo) })
	bounds := [][]byte{{}}
	var group int64
	var first []byte
	var cur *tableSpan
	for i := range spans {
		s := &spans[i]
		if cur != nil && bytes.Compare(s.lo, cur.hi) <= 0 {
			// Overlaps the run: no cut here.
			if bytes.Compare(s.hi, cur.hi) > 0 {
				cur.hi = s.hi
			}
			group += s.size
			continue
		}
		if first != nil && (group >= target || len(s.lo) == 0 || len(first) == 0 || s.lo[0] != first[0]) {
			bounds = append(bounds, s.lo)
			group = 0
		}
		if group == 0 {
			first = s.lo
		}
		cur = &tableSpan{lo: s.lo, hi: s.hi}
		group += s.size
	}
	return bounds
}

// rewrite writes src's rows in [lo, hi) (hi nil: to the end) as bottom
// tables and ingests them in place of everything the mirror holds there
// (excise when the range is not empty). A new range starts where the
// first byte of the key changes and where one outgrows target bytes, so
// rows with different layouts never share a range (deriveBounds finds
// the cuts again from the tables). It returns the bytes of the tables
// written.
func (m *Mirror) rewrite(ctx context.Context, src Reader, lo, hi []byte, target int64, excise bool) (int64, error) {
	it, err := src.NewIter(&IterOptions{Lower: lo, Upper: hi})
	if err != nil {
		return 0, err
	}
	defer it.Close()
	stage, err := m.stage()
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(stage)
	var paths []string
	var w *sstable.Writer
	var rangeBytes, written int64
	finish := func() error {
		if w == nil {
			return nil
		}
		rangeBytes += int64(w.Raw().EstimatedSize())
		err := w.Close()
		if err == nil {
			var meta *sstable.WriterMetadata
			if meta, err = w.Metadata(); err == nil {
				written += int64(meta.Size)
			}
		}
		w = nil
		return err
	}
	var prev []byte
	for ok := it.First(); ok; ok = it.Next() {
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		k := it.Key()
		if prev != nil {
			var open int64
			if w != nil {
				open = int64(w.Raw().EstimatedSize())
			}
			newRange := k[0] != prev[0] || rangeBytes+open >= target
			if newRange || open >= tableBytes {
				if err := finish(); err != nil {
					return 0, err
				}
			}
			if newRange {
				rangeBytes = 0
			}
		}
		if w == nil {
			var path string
			if w, path, err = m.newTable(stage, numLevels-1); err != nil {
				return 0, err
			}
			paths = append(paths, path)
		}
		if err := w.Set(k, it.Value()); err != nil {
			return 0, fmt.Errorf("mirror %s: write table: %w", m.dir, err)
		}
		prev = append(prev[:0], k...)
	}
	if err := it.Error(); err != nil {
		return 0, err
	}
	if err := finish(); err != nil {
		return 0, fmt.Errorf("mirror %s: write table: %w", m.dir, err)
	}
	if excise {
		span := pebble.KeyRange{Start: nonNil(lo), End: hi}
		if span.End == nil {
			span.End = keyEnd
		}
		if len(paths) == 0 {
			err = m.db.Excise(ctx, span)
		} else {
			_, err = m.db.IngestAndExcise(ctx, paths, nil, nil, span)
		}
		if err != nil {
			return 0, fmt.Errorf("mirror %s: replace [%x, %x): %w", m.dir, span.Start, span.End, err)
		}
	} else if len(paths) > 0 {
		if err := m.db.Ingest(ctx, paths); err != nil {
			return 0, fmt.Errorf("mirror %s: ingest: %w", m.dir, err)
		}
	}
	return written, nil
}

// change is one key's new state: a value, or deleted.
type change struct {
	key, value []byte
	deleted    bool
}

// rangeInfo is what apply knows of one range.
type rangeInfo struct {
	changes     []change
	changeBytes int64
	dead        int64  // rows of the mirror the changes delete
	bytes       int64  // the range's tables
	upper       int64  // of which above the bottom level
	tombstones  uint64 // deletions in those
	bottom      int64  // bytes of its bottom tables
	rows        uint64 // entries in those
	tables      int64  // number of tables, all levels
	largest     []byte // the largest key of its tables
}

// tableCost is what a table costs beyond its rows, about: index,
// properties and footer (about 1 KiB), and the worse compression of a
// few small blocks. A range's layers and the small bottom tables that
// new blocks append (headers, txids, undo) add up, on a small DB most of
// all; rewriting the range folds them into one.
const tableCost = 2 << 10

// deleted estimates the bytes of rows the range still holds that its
// tombstones and changes delete: a tombstone of a spent output or a
// pruned undo record weighs far less than the row.
func (r *rangeInfo) deleted() int64 {
	var d int64
	if r.rows > 0 {
		d = int64(r.tombstones) * r.bottom / int64(r.rows)
	}
	return min(d, r.bottom) + r.dead
}

// loose is what a rewrite of the range folds away: its layers, the
// changes about to become one, the rows they delete, and its tables'
// fixed costs.
func (r *rangeInfo) loose() int64 {
	return r.upper + r.changeBytes + r.deleted() + (r.tables-1)*tableCost
}

// garbage is what a rewrite would save in bytes, about: the rows deleted,
// the cost of all tables but one, and a layer's extra cost over the same
// rows in a bottom table (filters, smaller blocks), taken as a quarter.
func (r *rangeInfo) garbage() int64 {
	return r.deleted() + max(0, r.tables-1)*tableCost + (r.upper+r.changeBytes)/4
}

// apply writes the changed keys as layers, then rewrites ranges within
// the budget.
func (m *Mirror) apply(ctx context.Context, src Reader, keys [][]byte, levels [][]pebble.SSTableInfo) (MirrorStats, error) {
	st := MirrorStats{}
	var total int64
	for _, level := range levels {
		for _, t := range level {
			total += int64(t.Size)
		}
	}
	target := max(total/mirrorRanges, minRangeBytes)
	bounds := deriveBounds(levels, target)
	rangeOf := func(key []byte) int {
		i := sort.Search(len(bounds), func(i int) bool { return bytes.Compare(bounds[i], key) > 0 })
		return max(0, i-1)
	}
	ranges := make([]rangeInfo, len(bounds))
	for i, level := range levels {
		for _, t := range level {
			r := &ranges[rangeOf(t.Smallest.UserKey)]
			r.bytes += int64(t.Size)
			r.tables++
			if i < len(levels)-1 {
				r.upper += int64(t.Size)
				r.tombstones += t.Properties.NumDeletions
			} else {
				r.bottom += int64(t.Size)
				r.rows += t.Properties.NumEntries
			}
			if bytes.Compare(t.Largest.UserKey, r.largest) > 0 {
				r.largest = t.Largest.UserKey
			}
		}
	}
	for _, k := range keys {
		v, err := src.Get(k)
		deleted := errors.Is(err, ErrNotFound)
		if err != nil && !deleted {
			return st, err
		}
		old, err := m.Get(k)
		switch {
		case errors.Is(err, ErrNotFound):
			if deleted {
				continue // written and deleted again since the last update
			}
		case err != nil:
			return st, err
		case !deleted && bytes.Equal(old, v):
			continue
		}
		r := &ranges[rangeOf(k)]
		r.changes = append(r.changes, change{key: k, value: v, deleted: deleted})
		r.changeBytes += int64(len(k) + len(v))
		if deleted {
			r.dead += int64(len(k) + len(old))
		}
		st.Keys++
	}

	// Ranges to rewrite: those that a rewrite folds most for its size,
	// while the budget lasts.
	var changeBytes, garbage int64
	order := make([]int, 0, len(ranges))
	for i := range ranges {
		r := &ranges[i]
		changeBytes += r.changeBytes
		garbage += r.garbage()
		if r.loose() > 0 {
			order = append(order, i)
		}
	}
	weight := func(r *rangeInfo) float64 {
		return float64(r.loose()) / float64(max(1, r.bytes))
	}
	sort.SliceStable(order, func(a, b int) bool { return weight(&ranges[order[a]]) > weight(&ranges[order[b]]) })
	budget := int64(rewriteBudget*float64(total)) - changeBytes
	force := float64(garbage) > maxGarbage*float64(total)
	rewrite := map[int]bool{}
	for _, i := range order {
		r := &ranges[i]
		if force && float64(garbage) <= minGarbage*float64(total) {
			force = false
		}
		// Rewriting a range uploads it instead of its new layer.
		if cost := r.bytes; force || cost <= budget+r.changeBytes {
			rewrite[i] = true
			budget -= cost - r.changeBytes
			garbage -= r.garbage()
		}
	}

	// Layers first, all in one ingest: their tables do not overlap. Ranges
	// about to be rewritten get theirs too, so that the mirror holds one
	// whole state (the tip row and the rows it stands for) after each step:
	// a crash between two steps leaves a mirror the next run can carry on.
	stage, err := m.stage()
	if err != nil {
		return st, err
	}
	defer os.RemoveAll(stage)
	var paths []string
	for i := range ranges {
		r := &ranges[i]
		if len(r.changes) == 0 {
			continue
		}
		// Rows past the range's last key (new blocks' headers, txids, undo)
		// overlap nothing and go to the bottom level in a table of their
		// own; the rest lands above what it overlaps.
		cut := len(r.changes)
		if r.largest != nil {
			cut = sort.Search(len(r.changes), func(j int) bool {
				return bytes.Compare(r.changes[j].key, r.largest) > 0
			})
		}
		for _, part := range [][]change{r.changes[:cut], r.changes[cut:]} {
			if len(part) == 0 {
				continue
			}
			path, size, err := m.writeLayer(stage, part)
			if err != nil {
				return st, err
			}
			paths = append(paths, path)
			st.LayerBytes += size
		}
	}
	if len(paths) > 0 {
		if err := m.db.Ingest(ctx, paths); err != nil {
			return st, fmt.Errorf("mirror %s: ingest layers: %w", m.dir, err)
		}
		m.step("layers")
	}

	// Then the rewrites, from the source: they also repair anything the
	// layers got wrong. A range grown past twice its share is split.
	for i := range ranges {
		if !rewrite[i] {
			continue
		}
		var hi []byte
		if i+1 < len(bounds) {
			hi = bounds[i+1]
		}
		t := int64(1) << 62
		if ranges[i].bytes > 2*target {
			t = target
		}
		n, err := m.rewrite(ctx, src, bounds[i], hi, t, true)
		if err != nil {
			return st, err
		}
		st.Rewritten++
		st.RewrittenBytes += n
		m.step("rewrite")
	}
	return st, nil
}

// writeLayer writes changes (sorted, all in one range) as one table.
func (m *Mirror) writeLayer(stage string, changes []change) (string, int64, error) {
	w, path, err := m.newTable(stage, numLevels-2)
	if err != nil {
		return "", 0, err
	}
	for _, c := range changes {
		if c.deleted {
			err = w.Delete(c.key)
		} else {
			err = w.Set(c.key, c.value)
		}
		if err != nil {
			w.Close()
			return "", 0, fmt.Errorf("mirror %s: write layer: %w", m.dir, err)
		}
	}
	if err := w.Close(); err != nil {
		return "", 0, fmt.Errorf("mirror %s: write layer: %w", m.dir, err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		return "", 0, err
	}
	return path, fi.Size(), nil
}

// newTable creates a table in stage written as Pebble would write one
// for level: compression and filters as the DB's own (setLevels).
func (m *Mirror) newTable(stage string, level int) (*sstable.Writer, string, error) {
	m.seq++
	path := filepath.Join(stage, fmt.Sprintf("%06d.sst", m.seq))
	w, err := createTable(vfs.Default, path, m.opts, level, m.db)
	if err != nil {
		return nil, "", fmt.Errorf("mirror %s: %w", m.dir, err)
	}
	return w, path, nil
}

// createTable creates path and returns a writer of a table for level of a
// DB opened with po: compression and filters as the DB's own (setLevels).
func createTable(fs vfs.FS, path string, po *pebble.Options, level int, db *pebble.DB) (*sstable.Writer, error) {
	f, err := fs.Create(path, vfs.WriteCategoryUnspecified)
	if err != nil {
		return nil, err
	}
	return sstable.NewWriter(objstorageprovider.NewFileWritable(f), po.MakeWriterOptions(level, db.TableFormat())), nil
}

// stage makes an empty directory beside the mirror for tables about to be
// ingested.
func (m *Mirror) stage() (string, error) {
	dir := filepath.Clean(m.dir) + ".ingest"
	if err := os.RemoveAll(dir); err != nil {
		return "", fmt.Errorf("mirror %s: %w", m.dir, err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("mirror %s: %w", m.dir, err)
	}
	return dir, nil
}

func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}
