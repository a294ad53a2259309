package store

import (
	"fmt"
	"path/filepath"
	"testing"
)

// TestTakeChanges checks the record of changed keys: every key of every
// committed batch, large ones included (Pebble empties a batch past half
// a memtable when it commits it), once each and sorted; and an overflow
// reported as incomplete.
func TestTakeChanges(t *testing.T) {
	db := openT(t, filepath.Join(t.TempDir(), "db"), Options{MemTableSize: 1 << 20})
	db.TrackChanges(1 << 30)
	put(t, db, "b", "1", "a", "2")
	b := db.NewBatch()
	big := make([]byte, 1<<10)
	for i := range 2000 { // 2 MB: a large batch for a 1 MiB memtable
		if err := b.Set(fmt.Appendf(nil, "k%05d", i), big); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Delete([]byte("a")); err != nil {
		t.Fatal(err)
	}
	if err := b.Commit(false); err != nil {
		t.Fatal(err)
	}
	b.Close()
	keys, complete, snap := db.TakeChanges()
	snap.Close()
	if !complete || len(keys) != 2002 || string(keys[0]) != "a" || string(keys[1]) != "b" || string(keys[2001]) != "k01999" {
		t.Fatalf("complete %v, %d keys", complete, len(keys))
	}
	keys, complete, snap = db.TakeChanges()
	snap.Close()
	if !complete || len(keys) != 0 {
		t.Fatalf("second take: complete %v, %d keys", complete, len(keys))
	}

	db.TrackChanges(100)
	put(t, db, "x", "1")
	put(t, db, string(make([]byte, 200)), "too much")
	put(t, db, "y", "1")
	if _, complete, snap = db.TakeChanges(); complete {
		t.Error("an overflowed record says it is complete")
	}
	snap.Close()
	// The next record starts afresh.
	put(t, db, "z", "1")
	if keys, complete, snap = db.TakeChanges(); !complete || len(keys) != 1 {
		t.Errorf("after an overflow: complete %v, %d keys", complete, len(keys))
	}
	snap.Close()
}
