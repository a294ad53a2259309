package store

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"
)

// diskFullChildEnv, when set, makes the test binary run diskFullChild on
// the directory it names instead of the tests.
const diskFullChildEnv = "AMBER_STORE_DISKFULL_CHILD_DIR"

// diskFullChild commits a batch, then flushes it on a disk where every
// new table fails with ENOSPC. It must not return: the flush ends the
// process.
func diskFullChild(dir string) int {
	var full errorfs.Toggle
	full.Injector = errorfs.InjectorFunc(func(op errorfs.Op) error {
		if op.Kind == errorfs.OpCreate && strings.HasSuffix(op.Path, ".sst") {
			return &os.PathError{Op: "open", Path: op.Path, Err: syscall.ENOSPC}
		}
		return nil
	})
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	db, err := Open(dir, Options{Logger: log, fs: errorfs.Wrap(vfs.Default, &full)})
	if err != nil {
		fmt.Fprintf(os.Stderr, "error: %v\n", err)
		return 2
	}
	b := db.NewBatch()
	_ = b.Set([]byte("k"), []byte("v"))
	if err := b.Commit(true); err != nil {
		fmt.Fprintf(os.Stderr, "error: %v\n", err)
		return 2
	}
	full.On()
	err = db.db.Flush()
	fmt.Fprintf(os.Stderr, "flush returned: %v\n", err)
	return 0
}

// TestFlushDiskFullEnds: Pebble retries a failed flush forever, and every
// write waiting for it would hang. On a full disk the process must end
// instead, saying what to do, and the DB must reopen with what was
// committed.
func TestFlushDiskFullEnds(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns a process")
	}
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), diskFullChildEnv+"="+dir)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("a flush on a full disk hung:\n%s", tail(stderr.String(), 2000))
	}
	if err == nil {
		t.Fatalf("a flush on a full disk did not end the process:\n%s", tail(stderr.String(), 2000))
	}
	out := stderr.String()
	if !strings.Contains(out, "disk full: the index stays at its last commit") || !strings.Contains(out, "no space left on device") {
		t.Fatalf("a flush on a full disk does not say so:\n%s", tail(out, 2000))
	}
	db := openT(t, dir, Options{})
	defer db.Close()
	if v, err := db.Get([]byte("k")); err != nil || string(v) != "v" {
		t.Fatalf("after the failed flush, k = %q, %v; want the committed v", v, err)
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}
