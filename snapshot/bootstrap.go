package snapshot

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"amber/internal/chain"
	"amber/internal/index"
	"amber/internal/store"
	"amber/snapshot/objstore"
)

// Bootstrap fills an empty (or missing) dbDir from the newest valid
// snapshot in bucket and returns its manifest. A dbDir that already holds
// a DB is kept (nil manifest) while it is of this build's schema and at
// most r.MaxBehind blocks behind the newest trusted snapshot (any lag when
// MaxBehind is zero); otherwise the snapshot replaces it: it is restored
// beside dbDir (dbDir+".new"), verified and opened, and only then swapped
// in, and the old DB removed. A swap cut short by a crash is finished on
// the next call. With no snapshot in the bucket it returns an error
// matching ErrNoSnapshot, and the caller may sync from genesis; for a DB
// of another schema the error also matches index.ErrSchema, and the DB is
// kept.
func Bootstrap(ctx context.Context, bucket objstore.Bucket, dbDir string, net *chain.Network, r *Restorer) (*Manifest, error) {
	dbDir = filepath.Clean(dbDir)
	r.Bucket = bucket
	if err := finishSwap(dbDir); err != nil {
		return nil, err
	}
	if err := r.unsettle(dbDir); err != nil {
		return nil, err
	}
	entries, err := os.ReadDir(dbDir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("snapshot: read %s: %w", dbDir, err)
	}
	want := ExpectNetwork(net)
	if len(entries) == 0 {
		return r.Restore(ctx, dbDir, want)
	}
	log := r.logger()
	local, err := inspectDB(dbDir, net)
	switch {
	case errors.Is(err, index.ErrSchema):
		log.Warn("local index is of another schema; replacing it with a snapshot", slog.String("dir", dbDir), slog.Any("err", err))
		m, rerr := r.replace(ctx, dbDir, net, -1)
		if errors.Is(rerr, ErrNoSnapshot) {
			// Not a reason to sync from genesis: the DB stays for the
			// release that wrote it, and the caller stops.
			return nil, fmt.Errorf("%w; kept: %w", err, rerr)
		}
		return m, rerr
	case err != nil:
		// Damaged, locked, or of another network: the normal open says
		// what is wrong; a snapshot must not silently replace it.
		return nil, nil
	case r.MaxBehind <= 0:
		return nil, nil
	}
	newest, err := r.Newest(ctx, want)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		log.Warn("cannot tell whether the local index is behind the snapshots; keeping it", slog.Any("err", err))
		return nil, nil
	}
	if behind := newest.Height - local.Height; behind > r.MaxBehind {
		log.Warn("local index is far behind the newest snapshot; replacing it", slog.String("dir", dbDir),
			slog.Int64("height", local.Height), slog.String("snapshot", newest.Key()), slog.Int64("behind", behind),
			slog.Int64("max_behind", r.MaxBehind))
		m, err := r.replace(ctx, dbDir, net, local.Height)
		if err != nil && !errors.Is(err, ctx.Err()) {
			// The local DB still works: catch up from the daemon instead.
			log.Warn("local index not replaced; catching up from the daemon", slog.Any("err", err))
			return nil, nil
		}
		return m, err
	}
	return nil, nil
}

// unsettle turns a DB that a restore with DeferSync left before Settle
// finished back into the staging directory of a restore: a power cut may
// have torn any of its files. Restore keeps the files that still verify.
func (r *Restorer) unsettle(dbDir string) error {
	if !Unsynced(dbDir) {
		return nil
	}
	r.logger().Warn("the index restored here was not yet on disk when amber stopped; restoring the snapshot again, keeping the files that verify",
		slog.String("dir", dbDir))
	staging := dbDir + ".staging"
	if err := removeDir(staging); err != nil {
		return err
	}
	if err := os.Rename(dbDir, staging); err != nil {
		return fmt.Errorf("snapshot: restore %s again: %w", dbDir, err)
	}
	return syncDir(filepath.Dir(dbDir))
}

// Newest returns the newest manifest a restore for want would try first:
// trusted, valid and for want. The error wraps ErrNoSnapshot when there is
// none, ErrUnavailable when the bucket cannot be read.
func (r *Restorer) Newest(ctx context.Context, want Expect) (*Manifest, error) {
	b := SchemaBucket(r.Bucket, want.schema())
	keys, err := r.candidates(ctx, b)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	for _, key := range keys {
		m, err := r.load(ctx, b, key)
		if err == nil {
			err = want.Check(m)
		}
		if err == nil {
			return m, nil
		}
		if !unusable(err) {
			return nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
		}
	}
	return nil, fmt.Errorf("%s: %w", b.Name(), ErrNoSnapshot)
}

// localDB is what inspectDB reads of a local index.
type localDB struct {
	Height int64
}

// inspectDB opens the index in dir read-only and returns its tip; the
// error wraps index.ErrSchema for a DB of another schema.
func inspectDB(dir string, net *chain.Network) (localDB, error) {
	db, err := store.Open(dir, store.Options{ReadOnly: true, CacheSize: 8 << 20})
	if err != nil {
		return localDB{}, err
	}
	defer db.Close()
	ix, err := index.Open(db, net, index.Options{})
	if err != nil {
		return localDB{}, err
	}
	return localDB{Height: int64(ix.Tip().Height)}, nil
}

// replace restores the newest snapshot into dbDir+".new", checks that it
// opens as an index of net at the manifest's tip, and swaps it in for
// dbDir. A snapshot no higher than localHeight is dropped and the local
// DB kept (nil manifest).
func (r *Restorer) replace(ctx context.Context, dbDir string, net *chain.Network, localHeight int64) (*Manifest, error) {
	newDir := dbDir + ".new"
	// A leftover from a replacement cut short; its .staging files are
	// kept and reused.
	if err := os.RemoveAll(newDir); err != nil {
		return nil, fmt.Errorf("snapshot: clear %s: %w", newDir, err)
	}
	m, err := r.Restore(ctx, newDir, ExpectNetwork(net))
	if err != nil {
		return nil, err
	}
	crashPoint("restored")
	if m.Height <= localHeight {
		r.logger().Warn("the only usable snapshot is not ahead of the local index; keeping the local index",
			slog.String("snapshot", m.Key()), slog.Int64("height", localHeight))
		return nil, removeDir(newDir)
	}
	got, err := inspectDB(newDir, net)
	if err == nil && got.Height != m.Height {
		err = fmt.Errorf("its tip is %d, the manifest says %d", got.Height, m.Height)
	}
	if err != nil {
		removeDir(newDir)
		return nil, fmt.Errorf("snapshot: restored %s does not open: %w", m.Key(), err)
	}
	if err := swapIn(dbDir); err != nil {
		return nil, err
	}
	r.logger().Info("local index replaced by snapshot", slog.String("dir", dbDir), slog.String("snapshot", m.Key()),
		slog.Int64("height", m.Height))
	return m, nil
}

// swapIn replaces dbDir by the complete dbDir+".new": dbDir becomes
// dbDir+".old", the new one takes its name, and the old one is removed.
// Each step is a rename synced in the parent directory, so a crash at any
// point leaves a state finishSwap completes.
func swapIn(dbDir string) error {
	newDir, oldDir := dbDir+".new", dbDir+".old"
	if err := removeDir(oldDir); err != nil {
		return err
	}
	if err := os.Rename(dbDir, oldDir); err != nil {
		return fmt.Errorf("snapshot: swap %s: %w", dbDir, err)
	}
	crashPoint("swap-old-moved")
	if err := os.Rename(newDir, dbDir); err != nil {
		return fmt.Errorf("snapshot: swap %s: %w", dbDir, err)
	}
	if err := syncDir(filepath.Dir(dbDir)); err != nil {
		return err
	}
	crashPoint("swap-new-moved")
	return removeDir(oldDir)
}

// finishSwap completes a swap cut short by a crash. dbDir+".new" exists
// only once complete (Restore renames it into place), so a missing or
// empty dbDir beside it means the crash fell between the two renames.
func finishSwap(dbDir string) error {
	newDir, oldDir := dbDir+".new", dbDir+".old"
	if isEmptyDir(dbDir) {
		from := ""
		switch {
		case isDir(newDir):
			from = newDir
		case isDir(oldDir):
			from = oldDir // never reached by swapIn; undo by hand
		}
		if from != "" {
			if err := os.Remove(dbDir); err != nil && !errors.Is(err, os.ErrNotExist) {
				return fmt.Errorf("snapshot: finish swap into %s: %w", dbDir, err)
			}
			if err := os.Rename(from, dbDir); err != nil {
				return fmt.Errorf("snapshot: finish swap into %s: %w", dbDir, err)
			}
			if err := syncDir(filepath.Dir(dbDir)); err != nil {
				return err
			}
		}
	}
	if isDir(oldDir) && !isEmptyDir(dbDir) {
		return removeDir(oldDir)
	}
	return nil
}

// killAt is a step of a DB replacement or of a mirror update at which
// the process kills itself with SIGKILL: set from AMBER_TEST_KILL_AT by
// the crash tests of the real binary, so they can stop it exactly between
// two renames or two ingests.
var killAt = os.Getenv("AMBER_TEST_KILL_AT")

func crashPoint(step string) {
	if killAt != step {
		return
	}
	if p, err := os.FindProcess(os.Getpid()); err == nil {
		p.Kill()
	}
	select {} // the kill is on its way
}

func isDir(dir string) bool {
	st, err := os.Stat(dir)
	return err == nil && st.IsDir()
}

// isEmptyDir reports whether dir is missing or an empty directory.
func isEmptyDir(dir string) bool {
	entries, err := os.ReadDir(dir)
	return errors.Is(err, os.ErrNotExist) || err == nil && len(entries) == 0
}

func removeDir(dir string) error {
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("snapshot: remove %s: %w", dir, err)
	}
	return nil
}

// firstRetryWait is BootstrapRetry's first wait; tests shorten it.
var firstRetryWait = 2 * time.Second

// BootstrapRetry is Bootstrap retried while the bucket or the disk is
// unavailable (ErrUnavailable), waiting 2 s, then twice as long each time
// up to a minute, and calling onRetry before each wait; files already
// verified are kept between tries. Any other outcome is returned as is.
func BootstrapRetry(ctx context.Context, bucket objstore.Bucket, dbDir string, net *chain.Network, r *Restorer, onRetry func(err error, wait time.Duration)) (*Manifest, error) {
	wait := firstRetryWait
	for {
		m, err := Bootstrap(ctx, bucket, dbDir, net, r)
		if !errors.Is(err, ErrUnavailable) {
			return m, err
		}
		onRetry(err, wait)
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(wait):
		}
		wait = min(2*wait, time.Minute)
	}
}

// PublishDB checkpoints an open DB (or, with p.Mirror, its mirror) next
// to its directory, publishes the checkpoint and applies retention. The manifest records the tip stored in
// the checkpoint itself, so it is consistent even while the DB moves on.
func PublishDB(ctx context.Context, db *store.DB, net *chain.Network, p *Publisher, progress io.Writer) (*Manifest, error) {
	dir := filepath.Clean(db.Dir()) + ".checkpoint"
	if err := os.RemoveAll(dir); err != nil {
		return nil, fmt.Errorf("snapshot: clear %s: %w", dir, err)
	}
	defer os.RemoveAll(dir)
	if p.Mirror != nil {
		start := time.Now()
		st, err := p.Mirror.Update(ctx, db)
		if err != nil {
			return nil, fmt.Errorf("snapshot: update mirror: %w", err)
		}
		p.logger().Info("snapshot mirror updated", slog.Bool("rebuilt", st.Rebuilt), slog.Int("keys", st.Keys),
			slog.Int64("layer_bytes", st.LayerBytes), slog.Int("ranges_rewritten", st.Rewritten),
			slog.Int64("rewritten_bytes", st.RewrittenBytes), slog.Int("ranges", st.Ranges),
			slog.Int64("bytes", st.Bytes), slog.Int64("layered_bytes", st.UpperBytes), slog.Duration("took", time.Since(start)))
		if err := p.Mirror.Checkpoint(dir); err != nil {
			return nil, fmt.Errorf("snapshot: %w", err)
		}
	} else {
		if err := compactIfLoose(ctx, db, p.logger()); err != nil {
			return nil, err
		}
		if err := db.Checkpoint(dir); err != nil {
			return nil, fmt.Errorf("snapshot: checkpoint %s: %w", dir, err)
		}
	}
	tip, stats, err := checkpointTip(dir, net)
	if err != nil {
		return nil, err
	}
	if tip.Height < 0 {
		return nil, errors.New("snapshot: nothing indexed yet; sync before publishing")
	}
	m, err := p.Publish(ctx, dir, Meta{
		Network: net.Name, Genesis: net.Genesis.String(),
		Height: int64(tip.Height), Block: tip.Hash.String(),
		UTXOCount: &stats[0], UTXOTotal: &stats[1],
	})
	if err != nil {
		return nil, err
	}
	if err := p.Retain(ctx); err != nil {
		p.logger().Warn("snapshot retention failed; old snapshots kept", "err", err)
	}
	return m, nil
}

// MaxLoose is the share of a DB's table bytes that a full compaction
// could remove beyond which PublishDB compacts the DB before the
// checkpoint, so a snapshot stays within 1/(1-MaxLoose) (1.1x) of the
// fully compacted DB. Below it, the snapshot is published as Pebble left
// it: a full compaction rewrites every file, and so makes the next
// publish upload the whole DB instead of the files that changed.
const MaxLoose = 1.0 / 11

// Loose returns what a full compaction of db could remove, at most, and
// the bytes of all its tables: the bytes above its bottom level (new
// data, overwritten values, tombstones) plus the data the tombstones
// delete below. The second half matters: a spent output's or a pruned
// undo record's tombstone weighs far less than the row it deletes.
func Loose(db *store.DB) (loose, total int64, err error) {
	upper, total := db.Uncompacted()
	garbage, err := db.Garbage()
	if err != nil {
		return 0, 0, fmt.Errorf("snapshot: %w", err)
	}
	return upper + garbage, total, nil
}

// compactIfLoose flushes db and compacts it fully when more than MaxLoose
// of its bytes could be removed by doing so.
func compactIfLoose(ctx context.Context, db *store.DB, log *slog.Logger) error {
	if err := db.Flush(); err != nil {
		return fmt.Errorf("snapshot: %w", err)
	}
	loose, total, err := Loose(db)
	if err != nil {
		return err
	}
	if total == 0 || float64(loose) <= MaxLoose*float64(total) {
		return nil
	}
	start := time.Now()
	if err := db.Compact(ctx); err != nil {
		return fmt.Errorf("snapshot: compact before checkpoint: %w", err)
	}
	_, after := db.Uncompacted()
	log.Info("compacted before snapshot", slog.Int64("loose_bytes", loose), slog.Int64("bytes", total),
		slog.Int64("compacted_bytes", after), slog.Duration("took", time.Since(start)))
	return nil
}

// checkpointTip reads the tip and UTXO figures stored in a checkpoint.
func checkpointTip(dir string, net *chain.Network) (index.Tip, [2]uint64, error) {
	db, err := store.Open(dir, store.Options{ReadOnly: true, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return index.Tip{}, [2]uint64{}, fmt.Errorf("snapshot: open checkpoint %s: %w", dir, err)
	}
	defer db.Close()
	ix, err := index.Open(db, net, index.Options{})
	if err != nil {
		return index.Tip{}, [2]uint64{}, err
	}
	n, total, err := ix.UTXOStats()
	if err != nil {
		return index.Tip{}, [2]uint64{}, err
	}
	return ix.Tip(), [2]uint64{n, total}, nil
}
