package store

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// TestSortedBatchMatchesBatch: a sorted batch leaves the DB exactly as a
// plain batch given the same writes: overwrites and deletes of one key
// keep the last, keys sharing their first 8 bytes or shorter than 8 sort
// by the whole key, values larger than a chunk survive.
func TestSortedBatchMatchesBatch(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	type write struct {
		key, value []byte
		del        bool
	}
	var writes []write
	key := func() []byte {
		switch rng.IntN(4) {
		case 0: // a few short keys
			return []byte{byte('a' + rng.IntN(3))}
		case 1: // a shared 8-byte prefix: only the tail differs
			return fmt.Appendf(nil, "sharedpf%03d", rng.IntN(50))
		default:
			k := make([]byte, 1+rng.IntN(20))
			for i := range k {
				k[i] = byte(rng.IntN(4)) // few distinct bytes: many equal abbreviations
			}
			return k
		}
	}
	for range entBlock + 5000 { // entries span two blocks
		w := write{key: key(), del: rng.IntN(5) == 0}
		if !w.del {
			w.value = fmt.Appendf(nil, "v%d", rng.Int())
		}
		writes = append(writes, w)
	}
	// A busy script's rows: thousands of keys sharing 8 bytes, in random
	// order, some written twice.
	for range 3000 {
		w := write{key: fmt.Appendf(nil, "busyscr:%05d", rng.IntN(2500)), value: fmt.Appendf(nil, "b%d", rng.Int())}
		writes = append(writes, w)
	}
	// Enough distinct keys for the tables to be written by two writers.
	for _, i := range rng.Perm(parallelTables) {
		writes = append(writes, write{key: fmt.Appendf(nil, "u%08d", i), value: []byte("u")})
	}
	writes = append(writes, write{key: []byte("big"), value: bytes.Repeat([]byte{7}, 3<<20)})
	writes = append(writes, write{key: []byte("empty"), value: []byte{}})

	apply := func(db *DB, b *Batch) {
		t.Helper()
		defer b.Close()
		for _, w := range writes {
			var err error
			if w.del {
				err = b.Delete(w.key)
			} else {
				err = b.Set(w.key, w.value)
			}
			if err != nil {
				t.Fatal(err)
			}
		}
		if err := b.Commit(false); err != nil {
			t.Fatal(err)
		}
	}
	// A small memtable, so that the sorted batch is ingested as tables.
	plain, sorted := openMem(t), openT(t, "mem", Options{InMemory: true, MemTableSize: 1 << 20})
	// Both start with keys the batch deletes or overwrites.
	for _, db := range []*DB{plain, sorted} {
		put(t, db, "a", "old", "sharedpf001", "old", "zz", "kept")
		if err := db.Flush(); err != nil {
			t.Fatal(err)
		}
	}
	apply(plain, plain.NewBatch())
	apply(sorted, sorted.NewSortedBatch())
	if m := sorted.Metrics(); m.IngestedBytes == 0 {
		t.Fatal("the sorted batch was not ingested: the case tests the wrong path")
	}
	want, got := dump(t, plain), dump(t, sorted)
	if !slices.Equal(got, want) {
		t.Fatalf("sorted batch gave %d keys, plain batch %d; first difference: %s", len(got), len(want), firstDiff(got, want))
	}
	if len(want) < 100 {
		t.Fatalf("only %d keys: the case is too small to mean anything", len(want))
	}
}

func TestSortedBatchRefusesRange(t *testing.T) {
	db := openMem(t)
	b := db.NewSortedBatch()
	defer b.Close()
	if err := b.DeleteRange([]byte("a"), []byte("b")); err == nil {
		t.Fatal("DeleteRange on a sorted batch succeeded")
	}
	if _, err := b.Get([]byte("a")); err == nil {
		t.Fatal("Get on a sorted batch succeeded")
	}
}

// TestRadixSortStable: entries come out ordered by abbreviation, and
// equal abbreviations keep their order.
func TestRadixSortStable(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	ents := make([]sortedEnt, 20000)
	for i := range ents {
		ents[i] = sortedEnt{abbrev: rng.Uint64N(500) << (8 * rng.UintN(8)), at: uint32(i)}
	}
	want := slices.Clone(ents)
	slices.SortStableFunc(want, func(a, b sortedEnt) int {
		switch {
		case a.abbrev < b.abbrev:
			return -1
		case a.abbrev > b.abbrev:
			return 1
		}
		return 0
	})
	if got := radixSort(ents); !slices.Equal(got, want) {
		t.Fatal("radix sort differs from a stable sort")
	}
}

// TestSortedBatchAppendsAtBottom: rows a sorted batch appends past every
// key of their kind (txids and headers by number) are written once: their
// tables go to the bottom level and no flush or compaction rewrites them;
// rows among existing keys still land above and are merged down.
func TestSortedBatchAppendsAtBottom(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "db")
	// Each batch (2.9 MB) is over half a memtable: committed as tables.
	db := openT(t, dir, Options{MemTableSize: 4 << 20})
	val := bytes.Repeat([]byte{1}, 100)
	for n := range 5 {
		b := db.NewSortedBatch()
		for i := range 20000 {
			if err := b.Set(fmt.Appendf(nil, "t%02d%06d", n, i), val); err != nil {
				t.Fatal(err)
			}
		}
		if err := b.Commit(false); err != nil {
			t.Fatal(err)
		}
		b.Close()
	}
	m := db.Metrics()
	if m.IngestedBytes == 0 || m.FlushedBytes != 0 || m.CompactedBytes != 0 {
		t.Fatalf("appended rows: %d bytes ingested, %d flushed, %d compacted; want all ingested", m.IngestedBytes, m.FlushedBytes, m.CompactedBytes)
	}
	if upper, total := db.Uncompacted(); upper != 0 || total == 0 {
		t.Fatalf("appended rows: %d of %d table bytes above the bottom level", upper, total)
	}
	// Rows among the existing ones, and a delete of one, go above them.
	b := db.NewSortedBatch()
	for i := range 20000 {
		_ = b.Set(fmt.Appendf(nil, "t02%06dx", i), val)
	}
	_ = b.Set([]byte("t02000100x"), []byte("between"))
	_ = b.Delete([]byte("t03000005"))
	if err := b.Commit(false); err != nil {
		t.Fatal(err)
	}
	b.Close()
	if upper, _ := db.Uncompacted(); upper == 0 {
		t.Fatal("rows among existing keys went to the bottom level")
	}
	if v, err := db.Get([]byte("t02000100x")); err != nil || string(v) != "between" {
		t.Fatalf("row among the others: %q, %v", v, err)
	}
	if _, err := db.Get([]byte("t03000005")); !errors.Is(err, ErrNotFound) {
		t.Fatalf("deleted row: %v", err)
	}
	if n := len(scanList(t, db, []byte("t"))); n != 6*20000-1 {
		t.Fatalf("%d rows, want %d", n, 6*20000-1)
	}
	if _, err := os.Stat(filepath.Join(dir, stageDir)); err == nil {
		t.Error("the staging directory outlived the commits")
	}
}

// TestSmallSortedBatchThroughMemtable: a sorted batch under half a
// memtable is committed as a batch (a table would cost syncs and an
// ingestion for a few MB), and is as durable: it survives a reopen
// without a flush, from the log.
func TestSmallSortedBatchThroughMemtable(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "db")
	db := openT(t, dir, Options{MemTableSize: 4 << 20})
	b := db.NewSortedBatch()
	for i := range 1000 {
		_ = b.Set(fmt.Appendf(nil, "s%06d", 999-i), []byte("v"))
	}
	_ = b.Set([]byte("s000007"), []byte("last write wins"))
	if err := b.Commit(false); err != nil {
		t.Fatal(err)
	}
	b.Close()
	if m := db.Metrics(); m.IngestedBytes != 0 || m.MemTableSize == 0 {
		t.Fatalf("small sorted batch: %d bytes ingested, memtables %d bytes; want it in the memtable", m.IngestedBytes, m.MemTableSize)
	}
	// The log holds it: copy the directory as a crash would leave it.
	crashed := filepath.Join(t.TempDir(), "crashed")
	if err := os.CopyFS(crashed, os.DirFS(dir)); err != nil {
		t.Fatal(err)
	}
	db2 := openT(t, crashed, Options{})
	defer db2.Close()
	if n := len(scanList(t, db2, []byte("s"))); n != 1000 {
		t.Fatalf("after a crash, %d rows of the small sorted batch, want 1000", n)
	}
	if v, err := db2.Get([]byte("s000007")); err != nil || string(v) != "last write wins" {
		t.Fatalf("after a crash, s000007 = %q, %v", v, err)
	}
}

// TestOpenRemovesStagedTables: tables a sorted batch was writing when the
// process died are removed at the next Open, and the DB is as before.
func TestOpenRemovesStagedTables(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "db")
	db := openT(t, dir, Options{})
	put(t, db, "k", "v")
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	stage := filepath.Join(dir, stageDir)
	if err := os.MkdirAll(stage, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(stage, "000007.sst"), []byte("half a table"), 0o644); err != nil {
		t.Fatal(err)
	}
	db = openT(t, dir, Options{})
	if _, err := os.Stat(stage); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("staged tables after Open: %v", err)
	}
	if got := dump(t, db); !slices.Equal(got, []string{"k=v"}) {
		t.Fatalf("DB after Open: %v", got)
	}
}

// TestSortedBatchRecordsChanges: a mirror learns a sorted batch's keys
// like any other batch's.
func TestSortedBatchRecordsChanges(t *testing.T) {
	db := openMem(t)
	put(t, db, "gone", "1")
	db.TrackChanges(1 << 20)
	b := db.NewSortedBatch()
	_ = b.Set([]byte("b"), []byte("1"))
	_ = b.Set([]byte("a"), []byte("1"))
	_ = b.Delete([]byte("gone"))
	if err := b.Commit(false); err != nil {
		t.Fatal(err)
	}
	b.Close()
	keys, complete, snap := db.TakeChanges()
	snap.Close()
	var got []string
	for _, k := range keys {
		got = append(got, string(k))
	}
	if !complete || !slices.Equal(got, []string{"a", "b", "gone"}) {
		t.Fatalf("changes after a sorted batch: complete %v, keys %v", complete, got)
	}
}

// TestWriteMostlyDefersL0: overlapping tables, as a bulk sync's history
// rows make, are compacted from 4 L0 sublevels by default and from 8 in a
// WriteMostly DB: the same writes cost it fewer compactions.
func TestWriteMostlyDefersL0(t *testing.T) {
	compactions := func(writeMostly bool) (n int64, readAmp int) {
		db := openT(t, filepath.Join(t.TempDir(), "db"), Options{MemTableSize: 4 << 20, WriteMostly: writeMostly})
		defer db.Close()
		rng := rand.New(rand.NewPCG(5, 6))
		val := make([]byte, 100)
		for range 16 {
			b := db.NewSortedBatch()
			for range 20000 {
				for i := range val {
					val[i] = byte(rng.Uint32())
				}
				_ = b.Set(fmt.Appendf(nil, "h%016x", rng.Uint64()), val)
			}
			if err := b.Commit(false); err != nil {
				t.Fatal(err)
			}
			b.Close()
		}
		// Until the compactions settle.
		last := int64(-1)
		for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); {
			m := db.db.Metrics()
			if m.Compact.Count == last && m.Compact.NumInProgress == 0 {
				break
			}
			last = m.Compact.Count
			time.Sleep(300 * time.Millisecond)
		}
		return last, db.Metrics().ReadAmp
	}
	dn, dra := compactions(false)
	wn, wra := compactions(true)
	t.Logf("16 overlapping ingests: %d compactions (read amplification %d) by default, %d (%d) write-mostly", dn, dra, wn, wra)
	if wn >= dn || dra > 5 {
		t.Errorf("16 overlapping ingests: %d compactions by default (read amplification %d), %d write-mostly; want fewer write-mostly", dn, dra, wn)
	}
}
