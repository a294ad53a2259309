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
// a DB is kept as it is (nil manifest): a node with its own index does not
// go back to an older snapshot. With no snapshot in the bucket it returns
// an error matching ErrNoSnapshot, and the caller may sync from genesis.
func Bootstrap(ctx context.Context, bucket objstore.Bucket, dbDir string, net *chain.Network, r *Restorer) (*Manifest, error) {
	entries, err := os.ReadDir(dbDir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("snapshot: read %s: %w", dbDir, err)
	}
	if len(entries) > 0 {
		return nil, nil
	}
	r.Bucket = bucket
	return r.Restore(ctx, dbDir, ExpectNetwork(net))
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

// PublishDB checkpoints an open DB next to its directory, publishes the
// checkpoint and applies retention. The manifest records the tip stored in
// the checkpoint itself, so it is consistent even while the DB moves on.
func PublishDB(ctx context.Context, db *store.DB, net *chain.Network, p *Publisher, progress io.Writer) (*Manifest, error) {
	dir := filepath.Clean(db.Dir()) + ".checkpoint"
	if err := os.RemoveAll(dir); err != nil {
		return nil, fmt.Errorf("snapshot: clear %s: %w", dir, err)
	}
	defer os.RemoveAll(dir)
	if err := compactIfLoose(ctx, db, p.logger()); err != nil {
		return nil, err
	}
	if err := db.Checkpoint(dir); err != nil {
		return nil, fmt.Errorf("snapshot: checkpoint %s: %w", dir, err)
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

// MaxLoose is the share of a DB's table bytes above its bottom level
// beyond which PublishDB compacts the DB before the checkpoint. Those
// bytes are at most what a full compaction could remove, so a snapshot
// stays within 1/(1-MaxLoose) (1.1x) of the fully compacted DB. Below it,
// the snapshot is published as Pebble left it: a full compaction rewrites
// every file, and so makes the next publish upload the whole DB instead of
// the few files that changed.
const MaxLoose = 1.0 / 11

// compactIfLoose flushes db and compacts it fully when more than MaxLoose
// of its bytes lie above the bottom level.
func compactIfLoose(ctx context.Context, db *store.DB, log *slog.Logger) error {
	if err := db.Flush(); err != nil {
		return fmt.Errorf("snapshot: %w", err)
	}
	upper, total := db.Uncompacted()
	if total == 0 || float64(upper) <= MaxLoose*float64(total) {
		return nil
	}
	start := time.Now()
	if err := db.Compact(ctx); err != nil {
		return fmt.Errorf("snapshot: compact before checkpoint: %w", err)
	}
	_, after := db.Uncompacted()
	log.Info("compacted before snapshot", slog.Int64("upper_bytes", upper), slog.Int64("bytes", total),
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
