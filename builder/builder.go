// Package builder is the builder job: it syncs the chain from the daemon
// into the Pebble index and keeps it at the tip. Publishing snapshots of
// the index is added on top of the same loop.
package builder

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"amber/internal/chainsync"
	"amber/internal/config"
	"amber/internal/daemon"
	"amber/internal/index"
	"amber/internal/store"
	"amber/internal/telemetry"
	"amber/snapshot"
	"amber/snapshot/objstore/open"
)

// Builder syncs the index from the daemon.
type Builder struct {
	cfg      *config.Config
	logger   *slog.Logger
	progress io.Writer // where the progress line is drawn, if a terminal
	reg      *prometheus.Registry
	health   *telemetry.Health
	node     *telemetry.NodeMetrics
}

// New returns a Builder. progress is the writer whose terminal (if it is
// one) shows a live progress line; otherwise progress is logged.
func New(cfg *config.Config, logger *slog.Logger, progress io.Writer, reg *prometheus.Registry, health *telemetry.Health) *Builder {
	return &Builder{cfg: cfg, logger: logger, progress: progress, reg: reg, health: health}
}

// Run syncs to the daemon's tip, then follows it until ctx ends (or
// returns at the tip with BUILD_ONCE). The index is committed and closed
// before Run returns, so SIGINT or SIGTERM lose nothing.
func (b *Builder) Run(ctx context.Context) (err error) {
	cfg := b.cfg
	b.node = telemetry.NewNodeMetrics(b.reg, "publish", "restore")
	dc, err := daemon.New(cfg.DaemonURLs, daemon.Options{Logger: b.logger,
		CookieFile: cfg.DaemonCookieFile, MaxRetryDelay: cfg.DaemonRetryMax,
		Hooks: daemon.Hooks{Request: b.node.DaemonRequest, Failover: b.node.DaemonFailover}})
	if err != nil {
		return err
	}
	// Check the daemon before creating anything on disk.
	if err := dc.CheckNetwork(ctx, cfg.Network); err != nil {
		return err
	}
	var pub *snapshot.Publisher
	if cfg.SnapshotURL != "" {
		bucket, err := open.Open(ctx, cfg.SnapshotURL, open.Options{})
		if err != nil {
			return fmt.Errorf("builder: SNAPSHOT_URL: %w", err)
		}
		defer bucket.Close()
		// With no local DB (or one of another schema, or far behind),
		// resume from the latest snapshot.
		began := time.Now()
		m, err := snapshot.BootstrapRetry(ctx, bucket, cfg.DBDirectory, cfg.Network, &snapshot.Restorer{Logger: b.logger, Progress: b.progress,
			TrustedKeys: cfg.TrustedKeys, MaxBehind: int64(cfg.SnapshotMaxBehind)},
			func(err error, wait time.Duration) {
				b.node.Snapshot("restore", 0, 0, 0, err)
				b.logger.Warn("snapshot restore failed; retrying", "err", err, "retry_in", wait.String())
			})
		switch {
		case errors.Is(err, index.ErrSchema):
			// An index of another schema and no snapshot of ours: it is
			// kept (give this builder its own DB_DIRECTORY).
			b.node.Snapshot("restore", 0, 0, 0, err)
			return err
		case errors.Is(err, snapshot.ErrNoSnapshot):
			b.logger.Info("no snapshot to resume from; syncing from genesis", "snapshot", bucket.Name())
		case err != nil:
			b.node.Snapshot("restore", 0, 0, 0, err)
			return err
		case m != nil:
			b.node.Snapshot("restore", time.Since(began), m.Size(), m.Height, nil)
			b.logger.Info("resumed from snapshot", "snapshot", m.Key(), "height", m.Height)
			// The snapshot is also what the next publish builds on.
			if err := snapshot.SeedMirror(cfg.DBDirectory); err != nil {
				b.logger.Warn("snapshot mirror not seeded; the next publish uploads the whole index", "err", err)
			}
		}
		pub = &snapshot.Publisher{Bucket: bucket, Logger: b.logger, Progress: b.progress, GCGrace: cfg.SnapshotGCGrace}
		if cfg.SigningKeyFile != "" {
			if pub.SigningKey, err = snapshot.LoadSigningKey(cfg.SigningKeyFile); err != nil {
				return err
			}
		}
	}
	split := config.SplitCache(cfg.CacheMB)
	db, ix, err := index.OpenDir(cfg.DBDirectory, split.BlockCache, cfg.Network,
		index.Options{ReorgLimit: cfg.ReorgLimit, UTXOCacheBytes: split.UTXOCache, WriteMostly: true, Logger: b.logger})
	if err != nil {
		return err
	}
	defer func() {
		if cerr := db.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("builder: close %s: %w", cfg.DBDirectory, cerr)
		}
	}()
	if b.reg != nil {
		telemetry.RegisterDB(b.reg, db.Metrics)
	}
	if pub != nil {
		mirror, merr := snapshot.OpenMirror(db, b.logger)
		if merr != nil {
			return merr
		}
		pub.Mirror = mirror
		defer func() {
			// Bring the mirror to the index's final state, so that a restart
			// carries on with small publishes instead of a whole upload.
			uctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			if _, uerr := mirror.Update(uctx, db); uerr != nil {
				b.logger.Warn("snapshot mirror not updated at shutdown; the next publish uploads the whole index", "err", uerr)
			}
			if cerr := mirror.Close(); cerr != nil && err == nil {
				err = cerr
			}
		}()
	}
	m := newMetrics(b.reg)
	tip := ix.Tip()
	m.height.Set(float64(tip.Height))
	b.logger.Info("index opened", "dir", cfg.DBDirectory, "height", tip.Height, "block", tip.Hash.String(), "network", cfg.Network.String())

	meter := telemetry.NewMeter("sync", "blocks", b.progress, b.logger)
	var lastBlocks int
	var lastTxs uint64
	var wake <-chan struct{}
	if cfg.ZMQHashBlock != "" {
		wake = daemon.WatchBlocks(ctx, cfg.ZMQHashBlock, b.logger)
	}
	src := chainsync.DaemonSource{C: dc, FromFiles: new(atomic.Int64)}
	if src.Files, err = chainsync.OpenBlockFiles(ctx, dc, cfg.DaemonBlocksDir, cfg.Network, b.logger); err != nil {
		return err
	}
	if src.Files != nil {
		defer src.Files.Close()
	}
	syncer := chainsync.New(ix, src, chainsync.Options{
		Wake:       wake,
		Logger:     b.logger,
		BatchBytes: split.Batch,
		Progress: func(p chainsync.Progress) {
			meter.Update(int64(p.Height), int64(p.Target), false, "txs", int64(p.Txs))
			m.blocks.Add(float64(p.Blocks - lastBlocks))
			m.txs.Add(float64(p.Txs - lastTxs))
			lastBlocks, lastTxs = p.Blocks, p.Txs
		},
		OnCommit: func(t index.Tip, _ *index.Touched) { m.height.Set(float64(t.Height)) },
	})
	started := time.Now()
	tip, err = syncer.SyncToTip(ctx)
	if errors.Is(err, context.Canceled) {
		b.logger.Info("sync interrupted; index committed", "height", tip.Height, "block", tip.Hash.String())
		return nil
	}
	if err != nil {
		return err
	}
	meter.Update(int64(tip.Height), int64(tip.Height), true, "txs", int64(lastTxs))
	b.logger.Info("index at daemon tip", "height", tip.Height, "block", tip.Hash.String(), "took", time.Since(started).Round(time.Millisecond).String(),
		"blocks_from_files", src.FromFiles.Load())
	b.health.SetReady(true, "")
	if cfg.Verify {
		if err := verify(ctx, ix, dc, b.logger); err != nil {
			return err
		}
	}
	if pub != nil {
		if err := b.publish(ctx, db, pub); err != nil {
			return err
		}
	}
	if cfg.Once {
		return nil
	}
	if pub != nil {
		// Stop publishing before the DB closes (defers run last first).
		pctx, stop := context.WithCancel(ctx)
		var wg sync.WaitGroup
		wg.Add(1)
		go func() { defer wg.Done(); b.publishEvery(pctx, db, ix, pub) }()
		defer func() { stop(); wg.Wait() }()
	}
	return syncer.Follow(ctx, cfg.DaemonPollInterval, func(t index.Tip) {
		b.logger.Info("new tip", "height", t.Height, "block", t.Hash.String())
	})
}

// publish checkpoints the DB and publishes it; the publisher logs the
// result.
func (b *Builder) publish(ctx context.Context, db *store.DB, pub *snapshot.Publisher) error {
	began := time.Now()
	m, err := snapshot.PublishDB(ctx, db, b.cfg.Network, pub, b.progress)
	if err != nil {
		b.node.Snapshot("publish", 0, 0, 0, err)
		return fmt.Errorf("builder: publish snapshot: %w", err)
	}
	b.node.Snapshot("publish", time.Since(began), m.Size(), m.Height, nil)
	return nil
}

// publishEvery publishes a snapshot every SNAPSHOT_INTERVAL (a duration,
// or a number of new blocks) while the builder follows the tip; a failed
// publish is logged and retried at the next interval, since the previous
// snapshot stays valid.
func (b *Builder) publishEvery(ctx context.Context, db *store.DB, ix *index.Index, pub *snapshot.Publisher) {
	every, blocks := b.cfg.SnapshotInterval, b.cfg.SnapshotEveryBlocks
	if blocks > 0 {
		every = time.Second // check the height this often
	}
	if every <= 0 {
		return
	}
	last := ix.Tip().Height
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		tip := ix.Tip().Height
		if blocks > 0 && tip-last < int32(blocks) {
			continue
		}
		if err := b.publish(ctx, db, pub); err != nil {
			if ctx.Err() == nil {
				b.logger.Warn("snapshot not published; retrying at the next interval", "err", err)
			}
			continue
		}
		last = tip
	}
}

// verifyTimeout bounds gettxoutsetinfo, which scans the daemon's whole
// UTXO set (minutes on mainnet).
const verifyTimeout = 30 * time.Minute

// bip30Overwrites are the mainnet heights whose coinbases repeat an
// earlier coinbase's txid (BIP30): Bitcoin Core's UTXO set keeps one
// 50 BTC output for each pair, the index both.
var bip30Overwrites = []int32{91842, 91880}

// verify compares the index's UTXO set figures with the daemon's
// gettxoutsetinfo, by Core's rules, in integer satoshis.
func verify(ctx context.Context, ix *index.Index, dc *daemon.Client, logger *slog.Logger) error {
	n, total, err := ix.UTXOStats()
	if err != nil {
		return err
	}
	tip := ix.Tip()
	if ix.Network().Name == "mainnet" {
		for _, h := range bip30Overwrites {
			if tip.Height >= h {
				n, total = n-1, total-50e8
			}
		}
	}
	logger.Info("index utxo set (Bitcoin Core's rules)", "height", tip.Height, "txouts", n, "total_sat", total)
	logger.Info("asking the daemon for its utxo set figures (gettxoutsetinfo); this scans its whole set", "timeout", verifyTimeout.String())
	raw, err := dc.CallSlow(ctx, verifyTimeout, "gettxoutsetinfo")
	if errors.Is(err, daemon.ErrUnsupported) {
		logger.Info("daemon has no gettxoutsetinfo; index figures not cross-checked")
		return nil
	}
	if err != nil {
		return fmt.Errorf("builder: verify: %w (the figures were not compared; rerun with --verify when the daemon is idle)", err)
	}
	var info struct {
		Height      int32       `json:"height"`
		Txouts      uint64      `json:"txouts"`
		TotalAmount json.Number `json:"total_amount"`
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&info); err != nil {
		return fmt.Errorf("builder: decode gettxoutsetinfo: %w", err)
	}
	sat, err := btcToSat(string(info.TotalAmount))
	if err != nil {
		return fmt.Errorf("builder: gettxoutsetinfo total_amount: %w", err)
	}
	if info.Height != tip.Height {
		logger.Warn("daemon moved on during verify; figures not comparable", "height", tip.Height, "daemon_height", info.Height)
		return nil
	}
	logger.Info("daemon utxo set", "height", info.Height, "txouts", info.Txouts, "total_sat", sat)
	if info.Txouts != n || sat != total {
		return fmt.Errorf("builder: utxo set mismatch at height %d: index %d outputs / %d sat, daemon %d / %d", tip.Height, n, total, info.Txouts, sat)
	}
	logger.Info("utxo set matches daemon", "height", tip.Height, "txouts", n, "total_sat", total)
	return nil
}

// btcToSat converts a decimal BTC amount as the daemon wrote it
// ("20.00000000") to satoshis exactly, without floating point.
func btcToSat(s string) (uint64, error) {
	whole, frac, _ := strings.Cut(s, ".")
	if len(frac) > 8 || whole == "" || strings.HasPrefix(whole, "-") {
		return 0, fmt.Errorf("not an amount of at most 8 decimals: %q", s)
	}
	frac += strings.Repeat("0", 8-len(frac))
	w, err := strconv.ParseUint(whole, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("amount %q: %w", s, err)
	}
	f, err := strconv.ParseUint(frac, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("amount %q: %w", s, err)
	}
	if w > (1<<64-1-f)/1e8 {
		return 0, fmt.Errorf("amount %q overflows", s)
	}
	return w*1e8 + f, nil
}

type metrics struct {
	height prometheus.Gauge
	blocks prometheus.Counter
	txs    prometheus.Counter
}

func newMetrics(reg *prometheus.Registry) *metrics {
	m := &metrics{
		height: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: telemetry.Namespace, Name: "index_height", Help: "Height of the last fully indexed block."}),
		blocks: prometheus.NewCounter(prometheus.CounterOpts{Namespace: telemetry.Namespace, Name: "sync_blocks_total", Help: "Blocks applied to the index."}),
		txs:    prometheus.NewCounter(prometheus.CounterOpts{Namespace: telemetry.Namespace, Name: "sync_transactions_total", Help: "Transactions applied to the index."}),
	}
	if reg != nil {
		reg.MustRegister(m.height, m.blocks, m.txs)
	}
	return m
}
