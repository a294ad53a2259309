package snapshot

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"

	"amber/internal/index"
	"amber/internal/store"
)

// ChangeLimit is how much memory a DB's record of changed keys may take
// between two publishes (store.DB.TrackChanges) before the next publish
// gives up on it and writes the whole mirror again: about 100 mainnet
// blocks at 1 MB of keys each.
const ChangeLimit = 128 << 20

// MirrorDir is where the mirror of the DB in dbDir lives: beside it.
func MirrorDir(dbDir string) string { return filepath.Clean(dbDir) + ".mirror" }

// OpenMirror opens the mirror beside db that PublishDB publishes from
// (Publisher.Mirror), and starts db's record of changed keys. Call it
// before anything writes to db. A mirror that does not hold db's state is
// written again from db at the first publish, which then uploads the
// whole index once.
func OpenMirror(db *store.DB, log *slog.Logger) (*store.Mirror, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	dir := MirrorDir(db.Dir())
	m, err := store.OpenMirror(dir, log)
	if err != nil {
		// A copy cut short (SeedMirror killed midway) does not open; it
		// is only a cache of the index, so start it again.
		log.Warn("snapshot mirror unreadable; starting a new one", "mirror", dir, "err", err)
		if rerr := os.RemoveAll(dir); rerr != nil {
			return nil, fmt.Errorf("snapshot: %w", errors.Join(err, rerr))
		}
		if m, err = store.OpenMirror(dir, log); err != nil {
			return nil, fmt.Errorf("snapshot: %w", err)
		}
	}
	m.Step = func(name string) { crashPoint("mirror-" + name) }
	db.TrackChanges(ChangeLimit)
	for _, k := range index.StateKeys() {
		a, errA := db.Get(k)
		b, errB := m.Get(k)
		if errA != nil || errB != nil || !bytes.Equal(a, b) {
			log.Info("snapshot mirror is not at the index's state; the next publish uploads the whole index",
				"mirror", MirrorDir(db.Dir()))
			m.Invalidate()
			break
		}
	}
	return m, nil
}

// SeedMirror makes the DB just restored into dbDir the mirror too, by
// linking its files, so that the first publish after a restore uploads
// only what changed since the snapshot. Call it before opening the DB.
func SeedMirror(dbDir string) error {
	dst := MirrorDir(dbDir)
	if err := os.RemoveAll(dst); err != nil {
		return fmt.Errorf("snapshot: seed mirror: %w", err)
	}
	files, err := store.ListFiles(dbDir)
	if err != nil {
		return fmt.Errorf("snapshot: seed mirror: %w", err)
	}
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return fmt.Errorf("snapshot: seed mirror: %w", err)
	}
	for _, f := range files {
		src, to := filepath.Join(dbDir, f.Name), filepath.Join(dst, f.Name)
		if err := os.Link(src, to); err != nil {
			if err := copyFile(src, to); err != nil {
				return errors.Join(fmt.Errorf("snapshot: seed mirror: %w", err), os.RemoveAll(dst))
			}
		}
	}
	return nil
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return errors.Join(out.Sync(), out.Close())
}
