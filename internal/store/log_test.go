package store

import (
	"bytes"
	"io/fs"
	"log/slog"
	"strings"
	"syscall"
	"testing"
)

// TestFatalDiskFull: when Pebble gives up because the disk is full, the
// log says so in words an operator acts on, before the panic Pebble
// requires.
func TestFatalDiskFull(t *testing.T) {
	var buf bytes.Buffer
	l := pebbleLogger{log: slog.New(slog.NewTextHandler(&buf, nil))}
	err := &fs.PathError{Op: "write", Path: "db/000004.log", Err: syscall.ENOSPC}
	func() {
		defer func() {
			if recover() == nil {
				t.Error("Fatalf returned")
			}
		}()
		l.Fatalf("pebble: fatal commit error: %v", err)
	}()
	out := buf.String()
	if !strings.Contains(out, "disk full") || !strings.Contains(out, "free space") || !strings.Contains(out, "no space left on device") {
		t.Errorf("log of a full disk:\n%s", out)
	}

	buf.Reset()
	func() {
		defer func() { recover() }()
		l.Fatalf("pebble: invariant broken: %d", 7)
	}()
	if strings.Contains(buf.String(), "disk full") {
		t.Errorf("another fatal error reported as a full disk:\n%s", buf.String())
	}
}
