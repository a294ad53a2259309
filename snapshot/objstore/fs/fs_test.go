package fs_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"amber/snapshot/objstore"
	"amber/snapshot/objstore/fs"
	"amber/snapshot/objstore/objtest"
)

func TestAcceptance(t *testing.T) {
	b, err := fs.New(filepath.Join(t.TempDir(), "bucket"))
	if err != nil {
		t.Fatal(err)
	}
	objtest.AcceptanceTest(t, b)
	// Failed and canceled uploads leave no temporary files behind.
	if err := filepath.WalkDir(b.Dir(), func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			t.Errorf("file left behind: %s", p)
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
}

// TestPartialUploadInvisible simulates a crash in the middle of Upload: a
// stray temporary file must be invisible to Get, Exists and Iter, and a
// later Upload of the same name must succeed.
func TestPartialUploadInvisible(t *testing.T) {
	ctx := t.Context()
	b, err := fs.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(b.Dir(), "sst"), 0o755); err != nil {
		t.Fatal(err)
	}
	stray := filepath.Join(b.Dir(), "sst", "01.tmp-123456")
	if err := os.WriteFile(stray, []byte("half an obj"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Get(ctx, "sst/01"); !objstore.IsNotFound(err) {
		t.Errorf("Get: err = %v, want ErrNotFound", err)
	}
	if ok, err := b.Exists(ctx, "sst/01"); ok || err != nil {
		t.Errorf("Exists = %v, %v", ok, err)
	}
	if _, err := b.Get(ctx, "sst/01.tmp-123456"); err == nil {
		t.Error("Get of the temporary file's name succeeded")
	}
	var names []string
	if err := b.Iter(ctx, "", func(n string) error { names = append(names, n); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(names) != 0 {
		t.Errorf("Iter = %q, want nothing", names)
	}
	if err := b.Upload(ctx, "sst/01", strings.NewReader("whole"), 5); err != nil {
		t.Fatal(err)
	}
	names = nil
	if err := b.Iter(ctx, "sst/", func(n string) error { names = append(names, n); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(names) != 1 || names[0] != "sst/01" {
		t.Errorf("Iter = %q, want [sst/01]", names)
	}
}
