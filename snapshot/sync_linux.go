package snapshot

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// syncAll makes every file written under dir durable with one syncfs of
// its filesystem: one call instead of an fsync per file, each of which
// waits for the disk on its own.
func syncAll(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	defer d.Close()
	if err := unix.Syncfs(int(d.Fd())); err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}

// startWriteback asks the kernel to start writing f's dirty pages to disk
// without waiting for them.
func startWriteback(f *os.File) {
	// Only a hint: syncAll waits for the data either way.
	_ = unix.SyncFileRange(int(f.Fd()), 0, 0, unix.SYNC_FILE_RANGE_WRITE)
}
