package store

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
)

func TestCheckpoint(t *testing.T) {
	for _, opts := range []Options{{}, {DisableWAL: true}} {
		t.Run("wal="+strconv.FormatBool(!opts.DisableWAL), func(t *testing.T) {
			src := openT(t, filepath.Join(t.TempDir(), "src"), opts)
			for i := range 500 {
				put(t, src, "synced/"+strconv.Itoa(i), strings.Repeat("v", i))
			}
			// Some rows on disk, some only in the memtable and committed
			// without sync.
			if err := src.Flush(); err != nil {
				t.Fatal(err)
			}
			b := src.NewBatch()
			for i := range 500 {
				if err := b.Set([]byte("unsynced/"+strconv.Itoa(i)), []byte("u")); err != nil {
					t.Fatal(err)
				}
			}
			if err := b.Commit(false); err != nil {
				t.Fatal(err)
			}
			b.Close()
			want := dump(t, src)

			dest := filepath.Join(t.TempDir(), "cp")
			if err := src.Checkpoint(dest); err != nil {
				t.Fatal(err)
			}
			// The source goes on accepting writes the checkpoint must not see.
			put(t, src, "after", "1", "synced/1", "changed")
			if err := src.Checkpoint(dest); !errors.Is(err, fs.ErrExist) {
				t.Errorf("checkpoint into an existing directory: %v, want fs.ErrExist", err)
			}

			files, err := ListFiles(dest)
			if err != nil {
				t.Fatal(err)
			}
			checkListing(t, dest, files)

			cp := openT(t, dest, Options{ReadOnly: true})
			if got := dump(t, cp); !slices.Equal(got, want) {
				t.Errorf("checkpoint holds %d keys, want %d (first diff at %s)", len(got), len(want), firstDiff(got, want))
			}
			wantValue(t, cp, "after", notFound)
			wantValue(t, src, "after", "1")
			wantValue(t, src, "synced/1", "changed")
			if got := cp.FormatVersion(); got != FormatVersion {
				t.Errorf("checkpoint format %d, want %d", got, FormatVersion)
			}

			if err := cp.Checkpoint(filepath.Join(t.TempDir(), "cp2")); !errors.Is(err, ErrReadOnly) {
				t.Errorf("checkpoint of a read-only DB: %v, want ErrReadOnly", err)
			}
		})
	}
}

// TestCheckpointInMemory checks Checkpoint on a non-OS filesystem.
func TestCheckpointInMemory(t *testing.T) {
	mem := vfs.NewMem()
	db := openT(t, "db", Options{fs: mem})
	put(t, db, "a", "1")
	if err := db.Checkpoint("cp"); err != nil {
		t.Fatal(err)
	}
	if err := db.Checkpoint("cp"); !errors.Is(err, fs.ErrExist) {
		t.Errorf("second checkpoint: %v, want fs.ErrExist", err)
	}
	put(t, db, "b", "2")
	cp := openT(t, "cp", Options{fs: mem})
	if got, want := dump(t, cp), []string{"a=1"}; !slices.Equal(got, want) {
		t.Errorf("checkpoint = %q, want %q", got, want)
	}
}

// checkListing checks ListFiles' answer against the directory itself.
func checkListing(t *testing.T, dir string, files []FileInfo) {
	t.Helper()
	if !slices.IsSortedFunc(files, func(a, b FileInfo) int { return strings.Compare(a.Name, b.Name) }) {
		t.Errorf("ListFiles not sorted: %v", files)
	}
	var ssts int
	var manifest bool
	for _, f := range files {
		st, err := os.Stat(filepath.Join(dir, f.Name))
		if err != nil || st.Size() != f.Size {
			t.Errorf("%s: listed size %d, stat %v %v", f.Name, f.Size, st, err)
		}
		ssts += boolInt(strings.HasSuffix(f.Name, ".sst"))
		manifest = manifest || strings.HasPrefix(f.Name, "MANIFEST-")
	}
	if ssts == 0 || !manifest {
		t.Errorf("checkpoint lacks SST files or a MANIFEST: %v", files)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != len(files) {
		t.Errorf("ListFiles gave %d files, directory has %d entries", len(files), len(entries))
	}
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

func firstDiff(a, b []string) string {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return strconv.Quote(a[i]) + " vs " + strconv.Quote(b[i])
		}
	}
	return "the end"
}

func TestListFilesErrors(t *testing.T) {
	if _, err := ListFiles(filepath.Join(t.TempDir(), "missing")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing dir: %v, want fs.ErrNotExist", err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "b"), []byte("xy"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "a"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	files, err := ListFiles(dir)
	if err != nil || !slices.Equal(files, []FileInfo{{"a", 1}, {"b", 2}}) {
		t.Errorf("ListFiles = %v, %v", files, err)
	}
	if err := os.Mkdir(filepath.Join(dir, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := ListFiles(dir); err == nil {
		t.Error("a subdirectory was not reported")
	}
}

// TestCheckpointHoldsNoFlushedWAL checks that a checkpoint taken after
// large batches (which Pebble logs, then flushes as their own memtables)
// holds no WAL bytes: a published snapshot must not carry the log of data
// its SSTs already hold.
func TestCheckpointHoldsNoFlushedWAL(t *testing.T) {
	src := openT(t, filepath.Join(t.TempDir(), "src"), Options{MemTableSize: 1 << 20})
	val := strings.Repeat("x", 1000)
	for round := range 6 {
		b := src.NewBatch()
		for i := range 3000 {
			if err := b.Set([]byte(strconv.Itoa(round)+"/"+strconv.Itoa(i)), []byte(val)); err != nil {
				t.Fatal(err)
			}
		}
		if err := b.Commit(false); err != nil {
			t.Fatal(err)
		}
		b.Close()
	}
	want := dump(t, src)
	dest := filepath.Join(t.TempDir(), "cp")
	if err := src.Checkpoint(dest); err != nil {
		t.Fatal(err)
	}
	files, err := ListFiles(dest)
	if err != nil {
		t.Fatal(err)
	}
	checkListing(t, dest, files)
	var wal, total int64
	for _, f := range files {
		total += f.Size
		if strings.HasSuffix(f.Name, ".log") {
			wal += f.Size
		}
	}
	// An empty log is a few bytes of header; the source's log held 3 MB.
	if wal > 1024 {
		t.Errorf("checkpoint holds %d WAL bytes of %d: %v", wal, total, files)
	}
	cp := openT(t, dest, Options{ReadOnly: true})
	if got := dump(t, cp); !slices.Equal(got, want) {
		t.Errorf("checkpoint holds %d keys, want %d", len(got), len(want))
	}
}

// TestUncompacted checks the LSM shape PublishDB decides on: flushed
// files count as upper bytes, and none are left after a full compaction.
func TestUncompacted(t *testing.T) {
	db := openT(t, filepath.Join(t.TempDir(), "db"), Options{})
	for round := range 3 {
		for i := range 200 {
			put(t, db, strconv.Itoa(round)+"/"+strconv.Itoa(i), strings.Repeat("v", 100))
		}
		if err := db.Flush(); err != nil {
			t.Fatal(err)
		}
	}
	if upper, total := db.Uncompacted(); total == 0 || upper != total {
		t.Errorf("after flushes only: upper %d of %d, want all", upper, total)
	}
	if err := db.Compact(context.Background()); err != nil {
		t.Fatal(err)
	}
	if upper, total := db.Uncompacted(); total == 0 || upper != 0 {
		t.Errorf("after a full compaction: upper %d of %d, want 0", upper, total)
	}
}

// TestGarbage checks what PublishDB adds to the upper bytes: tombstones
// that weigh little but delete much of the bottom level.
func TestGarbage(t *testing.T) {
	db := openT(t, filepath.Join(t.TempDir(), "db"), Options{})
	for i := range 2000 {
		put(t, db, fmt.Sprintf("k/%05d", i), strings.Repeat(strconv.Itoa(i), 200))
	}
	if err := db.Compact(context.Background()); err != nil {
		t.Fatal(err)
	}
	_, before := db.Uncompacted()
	b := db.NewBatch()
	for i := range 1000 {
		if err := b.Delete(fmt.Appendf(nil, "k/%05d", i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Commit(true); err != nil {
		t.Fatal(err)
	}
	if err := db.Flush(); err != nil {
		t.Fatal(err)
	}
	upper, total := db.Uncompacted()
	garbage, err := db.Garbage()
	if err != nil {
		t.Fatal(err)
	}
	// Half the rows are deleted: about half the bottom level is garbage,
	// far more than the tombstones' own bytes.
	if garbage < before/4 || garbage <= 2*upper {
		t.Errorf("garbage %d bytes, tombstones %d, table bytes %d (before the deletes %d): want about half deleted",
			garbage, upper, total, before)
	}
	if err := db.Compact(context.Background()); err != nil {
		t.Fatal(err)
	}
	if garbage, err := db.Garbage(); err != nil || garbage != 0 {
		t.Errorf("after a full compaction: garbage %d (%v), want 0", garbage, err)
	}
}

// TestCompactRewritesMovedTables checks that a full compaction of a DB
// held in one flushed table rewrites it: Pebble would otherwise move the
// table to the bottom level as it is, with its upper-level compression
// and the tombstones of rows that were written and deleted before the
// flush (fewer than 10% of its entries, or Pebble would rewrite it in
// the background).
func TestCompactRewritesMovedTables(t *testing.T) {
	lone := openT(t, filepath.Join(t.TempDir(), "lone"), Options{})
	b := lone.NewBatch()
	for i := range 3000 {
		k := fmt.Appendf(nil, "k/%05d", i)
		if err := b.Set(k, []byte(strings.Repeat("v", 50))); err != nil {
			t.Fatal(err)
		}
		if i < 200 {
			if err := b.Commit(false); err != nil {
				t.Fatal(err)
			}
			b = lone.NewBatch()
			if err := b.Delete(k); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := b.Commit(true); err != nil {
		t.Fatal(err)
	}
	if err := lone.Flush(); err != nil {
		t.Fatal(err)
	}
	var codecs []string
	tombstones := func() (n uint64, tables int) {
		levels, err := lone.db.SSTables(pebble.WithProperties())
		if err != nil {
			t.Fatal(err)
		}
		codecs = nil
		for _, l := range levels {
			for _, tb := range l {
				n += tb.Properties.NumDeletions
				tables++
				codecs = append(codecs, tb.Properties.CompressionName)
			}
		}
		return n, tables
	}
	if n, tables := tombstones(); n == 0 || tables != 1 {
		t.Fatalf("before compacting: %d tombstones in %d tables, want some in one", n, tables)
	}
	if err := lone.Compact(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n, _ := tombstones(); n != 0 {
		t.Errorf("after a full compaction: %d tombstones left", n)
	}
	for _, c := range codecs {
		if c != bottomCompression {
			t.Errorf("after a full compaction: a table compressed with %q, want %q", c, bottomCompression)
		}
	}
	if got := len(dump(t, lone)); got != 2800 {
		t.Errorf("after a full compaction: %d keys, want 2800", got)
	}
}
