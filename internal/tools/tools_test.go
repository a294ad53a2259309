package tools

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeInstall writes an executable named after the tool, slowly, and
// counts its calls.
func fakeInstall(calls *atomic.Int32) func(tool, string) error {
	return func(tl tool, dir string) error {
		calls.Add(1)
		time.Sleep(50 * time.Millisecond)
		return os.WriteFile(filepath.Join(dir, tl.name), []byte("#!/bin/sh\n"), 0o755)
	}
}

func TestInstallToolOnce(t *testing.T) {
	tools := t.TempDir()
	tl := tool{name: "fake", pkg: "example.com/fake", version: "v1.2.3"}
	// Leftovers of an interrupted install are cleaned up.
	stale := filepath.Join(tools, ".fake-v1.2.3.tmp-123")
	if err := os.MkdirAll(stale, 0o755); err != nil {
		t.Fatal(err)
	}

	var calls atomic.Int32
	var wg sync.WaitGroup
	paths := make([]string, 8)
	errs := make([]error, 8)
	for i := range paths {
		wg.Go(func() {
			paths[i], _, errs[i] = installTool(tools, tl, fakeInstall(&calls))
		})
	}
	wg.Wait()
	want := filepath.Join(tools, "fake-v1.2.3", "fake")
	for i := range paths {
		if errs[i] != nil || paths[i] != want {
			t.Fatalf("installTool = %q, %v; want %q", paths[i], errs[i], want)
		}
	}
	if n := calls.Load(); n != 1 {
		t.Fatalf("installed %d times, want once", n)
	}
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Fatalf("stale install directory survived: %v", err)
	}

	// Present: no install, not reported as installed.
	if _, installed, err := installTool(tools, tl, fakeInstall(&calls)); err != nil || installed || calls.Load() != 1 {
		t.Fatalf("second installTool: installed=%v err=%v calls=%d", installed, err, calls.Load())
	}
}

func TestInstallToolFailureLeavesNothing(t *testing.T) {
	tools := t.TempDir()
	tl := tool{name: "fake", pkg: "example.com/fake", version: "v1.2.3"}
	boom := errors.New("boom")
	_, _, err := installTool(tools, tl, func(tl tool, dir string) error {
		// A half-written binary, then a failure.
		_ = os.WriteFile(filepath.Join(dir, tl.name), []byte("#!"), 0o755)
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("err = %v, want the install's error", err)
	}
	entries, _ := filepath.Glob(filepath.Join(tools, "*fake-v1.2.3*"))
	entries = slices.DeleteFunc(entries, func(p string) bool { return filepath.Ext(p) == ".lock" })
	if len(entries) != 0 {
		t.Fatalf("a failed install left %v", entries)
	}
	if _, err := EnsureTool("no-such-tool"); err == nil {
		t.Fatal("EnsureTool accepted an unknown tool")
	}
}
