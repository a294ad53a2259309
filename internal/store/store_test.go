package store

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
)

func TestGet(t *testing.T) {
	db := openMem(t)
	put(t, db, "k", "value", "empty", "")

	wantValue(t, db, "missing", notFound)
	if _, err := db.Get([]byte("missing")); err != ErrNotFound {
		t.Errorf("missing key: err = %v, want the ErrNotFound sentinel itself", err)
	}

	v, err := db.Get([]byte("k"))
	if err != nil {
		t.Fatal(err)
	}
	v[0] = 'X' // a copy: must not change what is stored
	wantValue(t, db, "k", "value")

	v, err = db.Get([]byte("empty"))
	if err != nil || v == nil || len(v) != 0 {
		t.Errorf("empty value = %#v, %v; want non-nil empty", v, err)
	}
}

func TestOpenOptions(t *testing.T) {
	cases := []struct {
		name string
		opts Options
		ok   bool
	}{
		{"defaults", Options{InMemory: true}, true},
		{"sizes", Options{InMemory: true, CacheSize: 1 << 20, MemTableSize: 1 << 20}, true},
		{"negative cache", Options{InMemory: true, CacheSize: -1}, false},
		{"negative memtable", Options{InMemory: true, MemTableSize: -1}, false},
		{"huge memtable", Options{InMemory: true, MemTableSize: 4 << 30}, false},
		{"read-only missing", Options{ReadOnly: true}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			db, err := Open(filepath.Join(t.TempDir(), "db"), tc.opts)
			if (err == nil) != tc.ok {
				t.Fatalf("Open err = %v, want ok=%v", err, tc.ok)
			}
			if err == nil {
				if got := db.FormatVersion(); got != FormatVersion {
					t.Errorf("FormatVersion() = %d, want %d", got, FormatVersion)
				}
				if err := db.Close(); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}

// TestBatchAtomicReopen: a committed batch is all there after reopening; an
// uncommitted one is not there at all, even when the DB is closed while it
// is open.
func TestBatchAtomicReopen(t *testing.T) {
	dir := t.TempDir()
	const n = 1000
	key := func(i int) []byte { return []byte("row/" + strconv.Itoa(100000+i)) }

	db := openT(t, dir, Options{})
	b := db.NewBatch()
	if b.Len() != 0 || b.Size() == 0 {
		t.Errorf("empty batch: Len %d Size %d", b.Len(), b.Size())
	}
	prev := b.Size()
	for i := range n {
		if err := b.Set(key(i), bytes.Repeat([]byte{'v'}, 100)); err != nil {
			t.Fatal(err)
		}
		if b.Size() <= prev {
			t.Fatalf("Size did not grow: %d after %d", b.Size(), prev)
		}
		prev = b.Size()
	}
	if b.Len() != n || b.Size() < n*100 {
		t.Errorf("full batch: Len %d Size %d", b.Len(), b.Size())
	}
	wantValue(t, db, string(key(0)), notFound) // invisible before Commit
	if err := b.Commit(true); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}

	// An uncommitted batch that also deletes committed rows.
	u := db.NewBatch()
	for i := range n {
		if err := u.Set([]byte("new/"+strconv.Itoa(i)), []byte("x")); err != nil {
			t.Fatal(err)
		}
		if err := u.Delete(key(i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if err := u.Close(); err != nil {
		t.Fatal(err)
	}

	db = openT(t, dir, Options{})
	if got := len(scanList(t, db, []byte("row/"))); got != n {
		t.Errorf("after reopen: %d committed rows, want %d", got, n)
	}
	if got := scanList(t, db, []byte("new/")); len(got) != 0 {
		t.Errorf("after reopen: uncommitted rows present: %d", len(got))
	}
}

func TestBatchLifecycle(t *testing.T) {
	db := openMem(t)
	put(t, db, "a", "1")

	w := db.NewBatch()
	if w.Indexed() {
		t.Error("NewBatch is indexed")
	}
	if _, err := w.Get([]byte("a")); !errors.Is(err, ErrNotIndexed) {
		t.Errorf("write-only Get: %v, want ErrNotIndexed", err)
	}
	if _, err := w.NewIter(nil); !errors.Is(err, ErrNotIndexed) {
		t.Errorf("write-only NewIter: %v, want ErrNotIndexed", err)
	}
	if err := w.Scan(nil, func(k, v []byte) error { return nil }); !errors.Is(err, ErrNotIndexed) {
		t.Errorf("write-only Scan: %v, want ErrNotIndexed", err)
	}
	if err := w.Set([]byte("b"), []byte("2")); err != nil {
		t.Fatal(err)
	}
	if err := w.Commit(false); err != nil {
		t.Fatal(err)
	}
	if err := w.Set([]byte("c"), nil); !errors.Is(err, ErrBatchDone) {
		t.Errorf("Set after Commit: %v, want ErrBatchDone", err)
	}
	if err := w.Commit(true); !errors.Is(err, ErrBatchDone) {
		t.Errorf("second Commit: %v, want ErrBatchDone", err)
	}
	for range 2 {
		if err := w.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	}
	if err := w.Delete([]byte("a")); !errors.Is(err, ErrBatchDone) {
		t.Errorf("Delete after Close: %v, want ErrBatchDone", err)
	}

	ib := db.NewIndexedBatch()
	if err := ib.Set([]byte("c"), []byte("3")); err != nil {
		t.Fatal(err)
	}
	if err := ib.Commit(true); err != nil {
		t.Fatal(err)
	}
	if _, err := ib.Get([]byte("c")); !errors.Is(err, ErrBatchDone) {
		t.Errorf("Get after Commit: %v, want ErrBatchDone", err)
	}
	if err := ib.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := ib.Get([]byte("c")); !errors.Is(err, ErrClosed) {
		t.Errorf("Get after Close: %v, want ErrClosed", err)
	}
	if got, want := dump(t, db), []string{"a=1", "b=2", "c=3"}; !slices.Equal(got, want) {
		t.Errorf("db = %q, want %q", got, want)
	}
}

func TestIndexedBatchReadsOwnWrites(t *testing.T) {
	db := openMem(t)
	put(t, db, "a", "1", "b", "2", "c", "3", "e/1", "x", "e/2", "y")

	b := db.NewIndexedBatch()
	defer b.Close()
	if !b.Indexed() {
		t.Fatal("NewIndexedBatch is not indexed")
	}
	for _, op := range []func() error{
		func() error { return b.Set([]byte("b"), []byte("20")) },
		func() error { return b.Delete([]byte("c")) },
		func() error { return b.Set([]byte("d"), []byte("4")) },
		func() error { return b.DeleteRange([]byte("e/"), []byte("e0")) },
	} {
		if err := op(); err != nil {
			t.Fatal(err)
		}
	}
	if b.Len() != 4 {
		t.Errorf("Len = %d, want 4", b.Len())
	}

	wantValue(t, b, "a", "1") // from the DB
	wantValue(t, b, "b", "20")
	wantValue(t, b, "c", notFound)
	wantValue(t, b, "d", "4")
	wantValue(t, b, "e/1", notFound)
	want := []string{"a=1", "b=20", "d=4"}
	if got := dump(t, b); !slices.Equal(got, want) {
		t.Errorf("batch view = %q, want %q", got, want)
	}
	if k, v, err := Last(b, nil); err != nil || string(k) != "d" || string(v) != "4" {
		t.Errorf("Last(batch) = %q %q %v", k, v, err)
	}
	// Others see nothing before Commit.
	before := []string{"a=1", "b=2", "c=3", "e/1=x", "e/2=y"}
	if got := dump(t, db); !slices.Equal(got, before) {
		t.Errorf("db before commit = %q, want %q", got, before)
	}
	// The batch view also sees the DB's later commits.
	put(t, db, "z", "26")
	wantValue(t, b, "z", "26")

	if err := b.Commit(true); err != nil {
		t.Fatal(err)
	}
	if got, want := dump(t, db), append(want, "z=26"); !slices.Equal(got, want) {
		t.Errorf("db after commit = %q, want %q", got, want)
	}
}

func TestSnapshotIsolation(t *testing.T) {
	db := openMem(t)
	put(t, db, "a", "1", "b", "2")

	snap := db.NewSnapshot()
	put(t, db, "a", "10", "c", "3")
	d := db.NewBatch()
	if err := d.Delete([]byte("b")); err != nil {
		t.Fatal(err)
	}
	if err := d.Commit(true); err != nil {
		t.Fatal(err)
	}
	d.Close()

	wantValue(t, snap, "a", "1")
	wantValue(t, snap, "b", "2")
	wantValue(t, snap, "c", notFound)
	if got, want := dump(t, snap), []string{"a=1", "b=2"}; !slices.Equal(got, want) {
		t.Errorf("snapshot = %q, want %q", got, want)
	}
	if got, want := dump(t, db), []string{"a=10", "c=3"}; !slices.Equal(got, want) {
		t.Errorf("db = %q, want %q", got, want)
	}

	// Concurrent readers on one snapshot.
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 100 {
				if v, err := snap.Get([]byte("a")); err != nil || string(v) != "1" {
					t.Errorf("concurrent snapshot Get = %q, %v", v, err)
					return
				}
			}
		})
	}
	wg.Wait()

	for range 2 {
		if err := snap.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := snap.Get([]byte("a")); !errors.Is(err, ErrClosed) {
		t.Errorf("Get on closed snapshot: %v, want ErrClosed", err)
	}
}

// TestDisableWAL: without a WAL a Flush makes commits durable, a crash
// loses what came after, and a clean Close loses nothing.
func TestDisableWAL(t *testing.T) {
	t.Run("flush and reopen", func(t *testing.T) {
		dir := t.TempDir()
		db := openT(t, dir, Options{DisableWAL: true})
		for i := range 100 {
			put(t, db, "k"+strconv.Itoa(i), "v") // Commit(true) is fine without a WAL
		}
		if err := db.Flush(); err != nil {
			t.Fatal(err)
		}
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
		db = openT(t, dir, Options{DisableWAL: true})
		if got := len(dump(t, db)); got != 100 {
			t.Errorf("after reopen: %d keys, want 100", got)
		}
	})

	t.Run("crash after flush", func(t *testing.T) {
		mem := vfs.NewCrashableMem()
		db := openT(t, "db", Options{DisableWAL: true, fs: mem})
		put(t, db, "flushed", "1")
		if err := db.Flush(); err != nil {
			t.Fatal(err)
		}
		put(t, db, "unflushed", "2")
		crashed := mem.CrashClone(vfs.CrashCloneCfg{})
		db2 := openT(t, "db", Options{fs: crashed})
		wantValue(t, db2, "flushed", "1")
		wantValue(t, db2, "unflushed", notFound)
	})

	t.Run("close flushes", func(t *testing.T) {
		mem := vfs.NewCrashableMem()
		db := openT(t, "db", Options{DisableWAL: true, fs: mem})
		put(t, db, "k", "1")
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
		db2 := openT(t, "db", Options{fs: mem.CrashClone(vfs.CrashCloneCfg{})})
		wantValue(t, db2, "k", "1")
	})
}

// TestSyncCommit: with the WAL on, a synced commit survives a crash.
func TestSyncCommit(t *testing.T) {
	mem := vfs.NewCrashableMem()
	db := openT(t, "db", Options{fs: mem})
	put(t, db, "synced", "1")
	crashed := mem.CrashClone(vfs.CrashCloneCfg{})
	db2 := openT(t, "db", Options{fs: crashed})
	wantValue(t, db2, "synced", "1")
}

func TestReadOnly(t *testing.T) {
	dir := t.TempDir()
	db := openT(t, dir, Options{})
	put(t, db, "a", "1")
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	ro := openT(t, dir, Options{ReadOnly: true})
	wantValue(t, ro, "a", "1")
	b := ro.NewBatch()
	defer b.Close()
	if err := b.Set([]byte("b"), []byte("2")); err != nil {
		t.Fatal(err)
	}
	if err := b.Commit(true); !errors.Is(err, ErrReadOnly) {
		t.Errorf("Commit: %v, want ErrReadOnly", err)
	}
	if err := ro.Flush(); !errors.Is(err, ErrReadOnly) {
		t.Errorf("Flush: %v, want ErrReadOnly", err)
	}
	if err := ro.Compact(context.Background()); !errors.Is(err, ErrReadOnly) {
		t.Errorf("Compact: %v, want ErrReadOnly", err)
	}
}

func TestClosed(t *testing.T) {
	db := openMem(t)
	put(t, db, "a", "1")
	b := db.NewBatch()
	defer b.Close()
	if err := b.Set([]byte("b"), nil); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := db.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
	}
	checks := []struct {
		name string
		err  error
	}{
		{"Get", func() error { _, err := db.Get([]byte("a")); return err }()},
		{"NewIter", func() error { _, err := db.NewIter(nil); return err }()},
		{"Scan", db.Scan(nil, func(k, v []byte) error { return nil })},
		{"Flush", db.Flush()},
		{"Compact", db.Compact(context.Background())},
		{"Checkpoint", db.Checkpoint(filepath.Join(t.TempDir(), "cp"))},
		{"Commit", b.Commit(true)},
		{"snapshot Get", func() error { _, err := db.NewSnapshot().Get([]byte("a")); return err }()},
	}
	for _, c := range checks {
		if !errors.Is(c.err, ErrClosed) {
			t.Errorf("%s after Close: %v, want ErrClosed", c.name, c.err)
		}
	}
	if err := db.NewBatch().Set([]byte("x"), nil); !errors.Is(err, ErrBatchDone) {
		t.Errorf("NewBatch().Set after Close: %v, want ErrBatchDone", err)
	}
	if m := db.Metrics(); m != (Metrics{}) {
		t.Errorf("Metrics after Close = %+v, want zero", m)
	}
}

func TestCompactAndMetrics(t *testing.T) {
	db := openT(t, t.TempDir(), Options{})
	if err := db.Compact(context.Background()); err != nil { // empty: no-op
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for round := range 3 {
		b := db.NewBatch()
		for range 5000 {
			k := make([]byte, 16)
			for i := range k {
				k[i] = byte(rng.Uint32())
			}
			if err := b.Set(k, k); err != nil {
				t.Fatal(err)
			}
		}
		if err := b.Commit(false); err != nil {
			t.Fatal(err)
		}
		b.Close()
		if err := db.Flush(); err != nil {
			t.Fatalf("flush %d: %v", round, err)
		}
	}
	m := db.Metrics()
	if m.Tables < 1 || m.TableBytes <= 0 || m.DiskUsage < uint64(m.TableBytes) || m.Flushes < 3 || m.ReadAmp < 1 {
		t.Errorf("metrics after flushes: %+v", m)
	}
	if err := db.Compact(context.Background()); err != nil {
		t.Fatal(err)
	}
	m = db.Metrics()
	if m.Compactions < 1 || m.Tables < 1 || m.ReadAmp != 1 {
		t.Errorf("metrics after compaction: %+v", m)
	}
	if got := len(dump(t, db)); got != 15000 {
		t.Errorf("after compaction: %d keys, want 15000", got)
	}
}

// recorder is a slog.Handler keeping the messages of the records it sees.
type recorder struct {
	mu   sync.Mutex
	msgs []string
}

func (r *recorder) Enabled(context.Context, slog.Level) bool { return true }
func (r *recorder) WithAttrs([]slog.Attr) slog.Handler       { return r }
func (r *recorder) WithGroup(string) slog.Handler            { return r }
func (r *recorder) Handle(_ context.Context, rec slog.Record) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if rec.Level != slog.LevelDebug {
		r.msgs = append(r.msgs, "unexpected level "+rec.Level.String()+": "+rec.Message)
	}
	r.msgs = append(r.msgs, rec.Message)
	return nil
}

func (r *recorder) has(msg string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Contains(r.msgs, msg)
}

func TestLogger(t *testing.T) {
	rec := &recorder{}
	db := openT(t, "mem", Options{InMemory: true, Logger: slog.New(rec)})
	put(t, db, "a", "1", "b", "2")
	if err := db.Compact(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	for _, msg := range []string{"store opened", "pebble flush", "pebble compaction"} {
		if !rec.has(msg) {
			t.Errorf("no %q record", msg)
		}
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	for _, m := range rec.msgs {
		if len(m) > 16 && m[:16] == "unexpected level" {
			t.Error(m)
		}
	}
}
