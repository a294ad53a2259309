package store

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

// openT opens a DB and closes it when the test ends (Close is idempotent,
// so tests may also close it themselves).
func openT(t testing.TB, dir string, opts Options) *DB {
	t.Helper()
	db, err := Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := db.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return db
}

// openMem opens an in-memory DB.
func openMem(t testing.TB) *DB {
	t.Helper()
	return openT(t, "mem", Options{InMemory: true})
}

// put commits the key/value pairs kv (key, value, key, value, ...) in one
// synced batch.
func put(t testing.TB, db *DB, kv ...string) {
	t.Helper()
	if len(kv)%2 != 0 {
		t.Fatal("put: odd number of arguments")
	}
	b := db.NewBatch()
	defer b.Close()
	for i := 0; i < len(kv); i += 2 {
		if err := b.Set([]byte(kv[i]), []byte(kv[i+1])); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Commit(true); err != nil {
		t.Fatal(err)
	}
}

// dump returns every key=value of r in order.
func dump(t testing.TB, r Reader) []string {
	t.Helper()
	return scanList(t, r, nil)
}

// scanList returns the key=value pairs of r's Scan(prefix).
func scanList(t testing.TB, r Reader, prefix []byte) []string {
	t.Helper()
	var out []string
	err := r.Scan(prefix, func(k, v []byte) error {
		out = append(out, string(k)+"="+string(v))
		return nil
	})
	if err != nil {
		t.Fatalf("scan %q: %v", prefix, err)
	}
	return out
}

// wantValue checks r.Get(key); want "" with notFound means ErrNotFound.
func wantValue(t testing.TB, r Reader, key, want string) {
	t.Helper()
	v, err := r.Get([]byte(key))
	if want == notFound {
		if !errors.Is(err, ErrNotFound) {
			t.Fatalf("get %q = %q, %v; want ErrNotFound", key, v, err)
		}
		return
	}
	if err != nil || string(v) != want {
		t.Fatalf("get %q = %q, %v; want %q", key, v, err, want)
	}
}

// notFound is wantValue's marker for an absent key.
const notFound = "\x00<not found>"

// keysOf lists the keys of "k=v" strings.
func keysOf(kvs []string) string {
	keys := make([]string, len(kvs))
	for i, kv := range kvs {
		keys[i], _, _ = strings.Cut(kv, "=")
	}
	return fmt.Sprintf("%q", keys)
}
