package testenv

import (
	"testing"

	"amber/internal/index"
	"amber/internal/store"
)

// DigestDir opens the index DB in dir read-only and returns the digest of
// all its rows, for comparing what two runs left on disk.
func DigestDir(t testing.TB, dir string) string {
	t.Helper()
	db, err := store.Open(dir, store.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	d, err := index.Digest(db)
	if err != nil {
		t.Fatal(err)
	}
	return d
}
