// Package server is an Amber server node: it opens the index, catches up
// with the daemon, follows the tip and the mempool, and serves the
// Electrum protocol to wallets over TCP, TLS, WebSocket and secure
// WebSocket, notifying subscribers after every block and mempool change.
package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/btcsuite/btcd/wire/v2"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"

	"amber/internal/chain"
	"amber/internal/chainsync"
	"amber/internal/config"
	"amber/internal/daemon"
	"amber/internal/index"
	"amber/internal/telemetry"
	"amber/internal/version"
	"amber/server/cost"
	"amber/server/mempool"
	"amber/server/methods"
	"amber/server/peers"
	"amber/server/query"
	"amber/server/session"
	"amber/server/statuspage"
	"amber/server/transport"
	"amber/snapshot"
	"amber/snapshot/objstore/open"
)

// Server is one server node.
type Server struct {
	cfg    *config.Config
	logger *slog.Logger
	reg    *prometheus.Registry
	health *telemetry.Health

	mu       sync.Mutex
	addrs    []string                 // bound listener addresses, once serving
	live     *live                    // set once serving, for Status
	snapshot *statuspage.SnapshotInfo // the restored snapshot, if any
	ready    chan struct{}
	node     *telemetry.NodeMetrics

	// LogLevel, when set before Run, is the level `amber rpc log`
	// changes at run time.
	LogLevel *slog.LevelVar
	// Progress, when set before Run, is where a terminal shows the
	// snapshot download and the catch-up as live lines, as `amber build`
	// does; otherwise (and when it is not a terminal) progress is logged.
	Progress io.Writer
}

// New returns a Server for cfg.
func New(cfg *config.Config, logger *slog.Logger, reg *prometheus.Registry, health *telemetry.Health) *Server {
	return &Server{cfg: cfg, logger: logger, reg: reg, health: health, ready: make(chan struct{})}
}

// Ready is closed once the listeners are up.
func (s *Server) Ready() <-chan struct{} { return s.ready }

// Addrs are the bound listener addresses, in SERVICES order, once Ready.
func (s *Server) Addrs() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.addrs...)
}

// Run opens the index, catches up, then serves until ctx ends. Shutdown
// order: stop accepting and mark not ready, close sessions, stop
// following, close the index.
func (s *Server) Run(ctx context.Context) (err error) {
	cfg := s.cfg
	s.node = telemetry.NewNodeMetrics(s.reg, "restore")
	dc, err := daemon.New(cfg.DaemonURLs, daemon.Options{Logger: s.logger,
		CookieFile: cfg.DaemonCookieFile, MaxRetryDelay: cfg.DaemonRetryMax,
		Hooks: daemon.Hooks{Request: s.node.DaemonRequest, Failover: s.node.DaemonFailover}})
	if err != nil {
		return err
	}
	if err := dc.CheckNetwork(ctx, cfg.Network); err != nil {
		return err
	}
	if cfg.SnapshotURL != "" {
		if err := s.bootstrap(ctx); err != nil {
			return err
		}
	}
	if snapshot.Unsynced(cfg.DBDirectory) {
		if cfg.SnapshotURL == "" {
			s.logger.Warn("the index was restored from a snapshot by a run that stopped before it was on disk, and with no SNAPSHOT_URL it cannot be restored again; serving it as it is",
				"dir", cfg.DBDirectory)
		} else {
			defer s.settle(cfg.DBDirectory)()
		}
	}
	split := config.SplitCache(cfg.CacheMB)
	db, ix, err := index.OpenDir(cfg.DBDirectory, split.BlockCache, cfg.Network,
		index.Options{ReorgLimit: cfg.ReorgLimit, UTXOCacheBytes: split.UTXOCache, Logger: s.logger})
	if err != nil {
		return err
	}
	defer func() {
		if cerr := db.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("server: close %s: %w", cfg.DBDirectory, cerr)
		}
	}()

	if s.reg != nil {
		telemetry.RegisterDB(s.reg, db.Metrics)
	}
	f := &follower{logger: s.logger, ix: ix, pending: newChange(), ops: make(chan followerOp)}
	// The catch-up from genesis or an old snapshot reports height, rate
	// and ETA like `amber build`, with the same meter and batch budget.
	meter := telemetry.NewMeter("sync", "blocks", s.Progress, s.logger)
	var synced uint64
	src := chainsync.DaemonSource{C: dc}
	if src.Files, err = chainsync.OpenBlockFiles(ctx, dc, cfg.DaemonBlocksDir, cfg.Network, s.logger); err != nil {
		return err
	}
	if src.Files != nil {
		defer src.Files.Close()
	}
	syncer := chainsync.New(ix, src, chainsync.Options{
		Logger:         s.logger,
		BatchBytes:     split.Batch,
		CollectTouched: true,
		OnCommit:       f.committed,
		Progress: func(p chainsync.Progress) {
			synced = p.Txs
			meter.Update(int64(p.Height), int64(p.Target), false, "txs", int64(p.Txs))
		},
	})
	s.health.SetReady(false, "catching up with the daemon")
	start := time.Now()
	tip, err := syncer.SyncToTip(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	if synced > 0 {
		meter.Update(int64(tip.Height), int64(tip.Height), true, "txs", int64(synced))
		// The catch-up's last batches sit in memtables, a large one as a
		// flushable batch that every read binary-searches: 6% of the CPU
		// under a wallet load on a node synced from genesis. Written out
		// once, reads find them in tables.
		if err := db.Flush(); err != nil {
			return err
		}
	}
	s.logger.Info("index at daemon tip", "height", tip.Height, "block", tip.Hash.String(), "took", time.Since(start).Round(time.Millisecond).String())
	// Confirmed transactions are asked for in their block: Bitcoin Core
	// needs no -txindex; btcd does, which is said once here.
	dc.SetTxLocator(ix.TxBlockHash)
	if ids, err := ix.BlockTxIDs(1); err == nil && len(ids) > 0 {
		if err := dc.CheckTxIndex(ctx, ids[0]); err != nil {
			s.logger.Warn(err.Error())
		}
	}
	f.pending = newChange() // nobody is subscribed yet

	mp := mempool.New(dc, ix, mempool.Options{Logger: s.logger})
	if _, err := mp.Refresh(ctx); err != nil && !errors.Is(err, mempool.ErrNotSynced) {
		s.logger.Warn("first mempool refresh failed; retrying while serving", "err", err)
	}

	backend := query.NewBackend(ix, query.Synced(mp, ix), dc, cfg.MaxSend)
	f.mu.Lock()
	f.backend = backend
	f.mu.Unlock()
	handlers := &methods.Handlers{
		Backend: backend,
		Info: &methods.ServerInfo{
			Software:        version.Software(),
			ProtocolMin:     session.ProtocolMin.String(),
			ProtocolMax:     session.ProtocolMax.String(),
			DonationAddress: cfg.DonationAddress,
			BannerFile:      cfg.BannerFile,
			ReportServices:  cfg.ReportServices,
			Genesis:         cfg.Network.Genesis.String(),
		},
	}
	table, err := handlers.Table()
	if err != nil {
		return err
	}
	ctx, stop := context.WithCancel(ctx) // amber rpc stop
	defer stop()
	hub := session.NewHub()
	bans := &banList{prefixes: cfg.BanList}
	allSubs := &session.SubCounter{Max: int64(cfg.MaxSubs)}
	var metrics *session.Metrics
	if s.reg != nil {
		metrics = session.NewMetrics(s.reg, telemetry.Namespace, func() float64 { return float64(allSubs.Count()) })
	}
	sv := &session.Server{
		Software:          handlers.Info.Software,
		Table:             table,
		Hub:               hub,
		Logger:            s.logger,
		MaxSend:           cfg.MaxSend,
		RequestTimeout:    cfg.RequestTimeout,
		IdleTimeout:       cfg.SessionTimeout,
		DropClient:        cfg.DropClient,
		DropClientUnknown: cfg.DropClientUnknown,
		Concurrent:        cfg.InitialConcurrent,
		MaxSubs:           cfg.MaxSessionSubs,
		AllSubs:           allSubs,
		Groups: cost.NewGroups(cost.Limits{
			SoftLimit: cfg.CostSoftLimit, HardLimit: cfg.CostHardLimit, DecayPerSec: cfg.CostDecayPerSec,
			BandwidthUnitCost: cfg.BandwidthUnitCost, RequestSleep: cfg.RequestSleep,
			InitialConcurrent: cfg.InitialConcurrent, SubnetIPv4: cfg.SubnetIPv4, SubnetIPv6: cfg.SubnetIPv6,
			GroupPrivate: cfg.GroupPrivate,
		}),
		Registry: session.NewRegistry(),
		Metrics:  metrics,
	}
	adm := &admin{s: s, level: s.LogLevel, started: time.Now(), registry: sv.Registry, groups: sv.Groups,
		subs: allSubs, bans: bans, f: f, ix: ix, mp: mp, dc: dc, stop: stop}
	if adm.level == nil {
		adm.level = new(slog.LevelVar)
		adm.level.Set(cfg.LogLevel)
	}
	ts, err := transport.New(cfg.Services, func(ctx context.Context, c transport.Conn) {
		if c.LocalService().Proto == "rpc" {
			adm.serve(ctx, c)
			return
		}
		sv.Serve(ctx, c)
	}, transport.Options{
		Logger:        s.logger,
		CertFile:      cfg.SSLCertFile,
		KeyFile:       cfg.SSLKeyFile,
		MaxRecv:       cfg.MaxRecv,
		MaxConns:      cfg.MaxSessions,
		GracePeriod:   cfg.DrainDelay,
		StopGrace:     cfg.ShutdownGrace,
		ProxyProtocol: cfg.ProxyProtocol,
		ProxyTrusted:  cfg.ProxyTrusted,
		Allow:         bans.allow,
	})
	if err != nil {
		return err
	}
	sv.Stop = ts.Stopping()
	s.registerMetrics(ix, mp, ts, hub, backend)
	pm := peers.New(peers.FromConfig(cfg, handlers.Info.Software, handlers.Info.ProtocolMin, handlers.Info.ProtocolMax, ix, ts.Ready(), s.logger))
	handlers.Peers, adm.peers = pm, pm
	if s.reg != nil {
		s.reg.MustRegister(pm.Collector())
	}

	g, gctx := errgroup.WithContext(ctx)
	// The follower outlives gctx: sessions kept open for DRAIN_DELAY still
	// get new blocks and mempool changes, and answers that include them,
	// until the transport has closed them.
	followCtx, stopFollowing := context.WithCancel(context.WithoutCancel(ctx))
	defer stopFollowing()
	f.health, f.dc, f.maxLag, f.metrics = s.health, dc, cfg.ReadyMaxLag, newFollowerMetrics(s.reg, mp)
	g.Go(func() error {
		defer stopFollowing()
		return ts.Run(gctx)
	})
	g.Go(func() error { return pm.Run(gctx) })
	g.Go(func() error {
		select {
		case <-ts.Ready():
		case <-gctx.Done():
			return nil
		}
		s.mu.Lock()
		for _, a := range ts.Addrs() {
			s.logger.Info("serving", "addr", a.String())
			s.addrs = append(s.addrs, a.String())
		}
		s.live = &live{ix: ix, mp: mp, ts: ts, dc: dc}
		s.mu.Unlock()
		f.ready.Store(true)
		close(s.ready)
		// Checked here too, not only after each round: a round stuck
		// retrying a dead daemon must still turn readiness red.
		tick := time.NewTicker(readyCheckInterval)
		defer tick.Stop()
		for f.checkReady(gctx); gctx.Err() == nil; {
			select {
			case <-tick.C:
				f.checkReady(gctx)
			case <-gctx.Done():
			}
		}
		s.logger.Info("shutting down: listeners closed, not ready", "drain_delay", cfg.DrainDelay.String(), "grace", cfg.ShutdownGrace.String())
		s.health.Drain()
		s.mu.Lock()
		s.live = nil // the index closes as Run returns
		s.mu.Unlock()
		return nil
	})
	g.Go(func() error { return s.reloadOnHUP(gctx, ts) })
	// Blocks and mempool changes announced over ZMQ wake the follower at
	// once; polling stays the fallback.
	wake := make(chan struct{}, 1)
	if cfg.ZMQHashBlock != "" {
		daemon.Watch(followCtx, cfg.ZMQHashBlock, "hashblock", s.logger, wake)
	}
	if cfg.ZMQSequence != "" {
		daemon.Watch(followCtx, cfg.ZMQSequence, "sequence", s.logger, wake)
	}
	g.Go(func() error {
		return f.run(followCtx, cfg.DaemonPollInterval, wake, syncer, mp, func(c session.Change) {
			hub.Broadcast(backend, c, s.logger)
		})
	})
	err = g.Wait()
	s.logger.Info("stopped", "height", ix.Tip().Height)
	return err
}

// bootstrap fills an empty DB_DIRECTORY from the latest snapshot, or
// replaces a local DB of another schema or more than SNAPSHOT_MAX_BEHIND
// blocks behind it; with no snapshot at all the node syncs from genesis.
func (s *Server) bootstrap(ctx context.Context) error {
	s.health.SetReady(false, "restoring snapshot")
	bucket, err := open.Open(ctx, s.cfg.SnapshotURL, open.Options{})
	if err != nil {
		return fmt.Errorf("server: SNAPSHOT_URL: %w", err)
	}
	defer bucket.Close()
	start := time.Now()
	m, err := snapshot.BootstrapRetry(ctx, bucket, s.cfg.DBDirectory, s.cfg.Network, &snapshot.Restorer{Logger: s.logger, Progress: s.Progress,
		TrustedKeys: s.cfg.TrustedKeys, MaxBehind: int64(s.cfg.SnapshotMaxBehind), DeferSync: true},
		func(err error, wait time.Duration) {
			s.node.Snapshot("restore", 0, 0, 0, err)
			s.logger.Warn("snapshot restore failed; retrying", "err", err, "retry_in", wait.String())
		})
	switch {
	case errors.Is(err, index.ErrSchema):
		// An index of another schema and no snapshot of ours: it is kept.
		s.node.Snapshot("restore", 0, 0, 0, err)
		return err
	case errors.Is(err, snapshot.ErrNoSnapshot):
		s.logger.Warn("no usable snapshot; syncing from genesis", "snapshot", bucket.Name(), "err", err)
	case err != nil:
		s.node.Snapshot("restore", 0, 0, 0, err)
		return err
	case m == nil:
		s.logger.Info("keeping the local index", "dir", s.cfg.DBDirectory, "max_behind", s.cfg.SnapshotMaxBehind)
	default:
		s.node.Snapshot("restore", time.Since(start), m.Size(), m.Height, nil)
		s.mu.Lock()
		s.snapshot = snapshotInfo(m)
		s.mu.Unlock()
		s.logger.Info("restored snapshot", "snapshot", m.Key(), "height", m.Height, "took", time.Since(start).Round(time.Millisecond).String())
	}
	return nil
}

// settle makes a restore that did not wait for the disk durable in the
// background, while the node catches up and serves; a crash first means a
// restore again at the next start (Bootstrap). The returned func waits
// for it.
func (s *Server) settle(dir string) (wait func()) {
	settled := make(chan struct{})
	go func() {
		defer close(settled)
		start := time.Now()
		if err := snapshot.Settle(dir); err != nil {
			s.logger.Error("restored index not made durable; it will be restored again at the next start. Check the disk", "err", err)
			return
		}
		s.logger.Info("restored snapshot on disk", "took", time.Since(start).Round(time.Millisecond).String())
	}()
	return func() { <-settled }
}

// reloadOnHUP reloads the TLS certificate on SIGHUP.
func (s *Server) reloadOnHUP(ctx context.Context, ts *transport.Server) error {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-hup:
			if err := ts.ReloadCertificate(); err != nil {
				s.logger.Error("certificate not reloaded; still serving the old one", "err", err)
			} else {
				s.logger.Info("certificate reloaded")
			}
		}
	}
}

// follower keeps the index and the mempool at the daemon and turns what
// changed into notifications.
type follower struct {
	logger  *slog.Logger
	ix      *index.Index
	mu      sync.Mutex
	pending session.Change
	backend *query.Backend // set once serving; its caches follow commits

	ops     chan followerOp // admin work run between rounds, as the only writer
	health  *telemetry.Health
	dc      *daemon.Client
	maxLag  int
	metrics *followerMetrics
	ready   atomic.Bool // listeners are up: readiness may turn green
}

// followerOp is admin work for the follower's goroutine.
type followerOp struct {
	run  func(*chainsync.Syncer) (index.Tip, error)
	done chan followerResult
}

type followerResult struct {
	tip index.Tip
	err error
}

// rewind undoes the top n blocks from the follower's goroutine; the next
// round syncs them again and notifies subscribers of both moves.
func (f *follower) rewind(ctx context.Context, n int) (index.Tip, error) {
	op := followerOp{run: func(s *chainsync.Syncer) (index.Tip, error) { return s.Rewind(n) }, done: make(chan followerResult, 1)}
	select {
	case f.ops <- op:
	case <-ctx.Done():
		return index.Tip{}, ctx.Err()
	}
	select {
	case r := <-op.done:
		return r.tip, r.err
	case <-ctx.Done():
		return index.Tip{}, ctx.Err()
	}
}

// readyCheckInterval is how often readiness is checked besides after
// each round of following.
const readyCheckInterval = 2 * time.Second

// checkReady asks the daemon for its chain state: the node is ready while
// the daemon is not in initial block download and the index and the
// daemon are at most READY_MAX_LAG blocks apart, either way (a daemon
// behind the index, reindexing or a lagging failover target, cannot
// confirm what the node serves).
func (f *follower) checkReady(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	info, err := f.dc.BlockchainInfo(ctx)
	if err != nil {
		if ctx.Err() == nil || errors.Is(ctx.Err(), context.DeadlineExceeded) {
			f.health.SetReady(false, "daemon unreachable: "+err.Error())
		}
		return
	}
	h := info.Blocks
	tip := f.ix.Tip()
	lag := max(0, int64(h)-int64(tip.Height))
	if f.metrics != nil {
		f.metrics.daemonHeight.Set(float64(h))
		f.metrics.lag.Set(float64(lag))
	}
	if !f.ready.Load() {
		return
	}
	if lag > int64(f.maxLag) {
		f.health.SetReady(false, fmt.Sprintf("%d blocks behind the daemon (READY_MAX_LAG %d)", lag, f.maxLag))
		return
	}
	if info.InitialBlockDownload != nil && *info.InitialBlockDownload {
		f.health.SetReady(false, fmt.Sprintf("daemon %s is in initial block download (at height %d)", f.dc.URL(), h))
		return
	}
	if ahead := int64(tip.Height) - int64(h); ahead > int64(f.maxLag) {
		f.health.SetReady(false, fmt.Sprintf("daemon %s is %d blocks behind the index (at %d, index at %d; READY_MAX_LAG %d): waiting for it", f.dc.URL(), ahead, h, tip.Height, f.maxLag))
		return
	}
	f.health.SetReady(true, "")
}

var _ methods.Peers = (*peers.Manager)(nil)

func newChange() session.Change {
	return session.Change{Scripts: map[chain.HashX]struct{}{}, Outpoints: map[wire.OutPoint]struct{}{}}
}

// committed collects what each commit of the syncer touched.
func (f *follower) committed(tip index.Tip, t *index.Touched) {
	if t == nil {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.backend != nil {
		f.backend.BlocksTouched(tip.Hash, t.Scripts)
	}
	for hx := range t.Scripts {
		f.pending.Scripts[hx] = struct{}{}
	}
	for op := range t.Outpoints {
		f.pending.Outpoints[op] = struct{}{}
	}
}

// run polls the daemon every interval: blocks first, then the mempool,
// then one round of notifications covering both, so a transaction moving
// from the mempool into a block is never seen missing from both.
func (f *follower) run(ctx context.Context, interval time.Duration, wake <-chan struct{}, syncer *chainsync.Syncer, mp *mempool.Mempool, notify func(session.Change)) error {
	last := f.ix.Tip()
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		case <-wake:
		case op := <-f.ops:
			tip, err := op.run(syncer)
			if err == nil {
				last = tip // so the round that syncs back notifies the tip
			}
			op.done <- followerResult{tip, err}
		}
		began := time.Now()
		tip, err := syncer.SyncToTip(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if errors.Is(err, index.ErrReorgTooDeep) {
			return err
		}
		if err != nil {
			f.logger.Warn("following the daemon", "err", err)
			f.checkReady(ctx)
			continue
		}
		if tip.Hash != last.Hash && f.metrics != nil {
			f.metrics.apply.Observe(time.Since(began).Seconds())
		}
		touched, err := mp.Refresh(ctx)
		if err != nil && !errors.Is(err, mempool.ErrNotSynced) && ctx.Err() == nil {
			f.logger.Warn("mempool refresh", "err", err)
		}
		f.mu.Lock()
		c := f.pending
		f.pending = newChange()
		f.mu.Unlock()
		for _, hx := range touched.Scripts {
			c.Scripts[hx] = struct{}{}
		}
		for _, op := range touched.Outpoints {
			c.Outpoints[op] = struct{}{}
		}
		if tip.Hash != last.Hash {
			raw, err := f.ix.Header(tip.Height)
			if err == nil {
				c.Header = session.NewHeaderNotice(raw, tip.Height)
			}
			f.logger.Info("new tip", "height", tip.Height, "block", tip.Hash.String())
			last = tip
		}
		if c.Header != nil || len(c.Scripts) > 0 || len(c.Outpoints) > 0 {
			notify(c)
		}
		f.checkReady(ctx)
	}
}

// feeRateBands are the lower bounds (sat/vB) of the mempool fee metric.
var feeRateBands = []float64{0, 1, 2, 3, 5, 8, 10, 15, 20, 30, 50, 75, 100, 150, 200, 300, 500, 1000}

// followerMetrics are the tip-following metrics.
type followerMetrics struct {
	daemonHeight prometheus.Gauge
	lag          prometheus.Gauge
	apply        prometheus.Histogram
}

func newFollowerMetrics(reg *prometheus.Registry, mp *mempool.Mempool) *followerMetrics {
	ns := telemetry.Namespace
	m := &followerMetrics{
		daemonHeight: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Name: "daemon_height", Help: "The daemon's block count at the last check."}),
		lag:          prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Name: "index_lag_blocks", Help: "Blocks the index trails the daemon's tip by."}),
		apply: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: ns, Name: "block_apply_seconds",
			Help: "Time to index a new tip (usually one block) while following.", Buckets: prometheus.ExponentialBuckets(0.001, 2.5, 12)}),
	}
	if reg != nil {
		fees := prometheus.NewDesc(prometheus.BuildFQName(ns, "mempool", "fee_histogram_vbytes"),
			"Mempool virtual size by fee rate band; fee_rate is the band's lower bound in sat/vB.", []string{"fee_rate"}, nil)
		reg.MustRegister(m.daemonHeight, m.lag, m.apply, telemetry.NewCollector([]*prometheus.Desc{fees}, func(ch chan<- prometheus.Metric) {
			for i, v := range mp.FeeRateBands(feeRateBands) {
				ch <- prometheus.MustNewConstMetric(fees, prometheus.GaugeValue, float64(v), strconv.FormatFloat(feeRateBands[i], 'f', -1, 64))
			}
		}))
	}
	return m
}

func (s *Server) registerMetrics(ix *index.Index, mp *mempool.Mempool, ts *transport.Server, hub *session.Hub, backend *query.Backend) {
	if s.reg == nil {
		return
	}
	ns := telemetry.Namespace
	s.reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: ns, Name: "index_height", Help: "Height of the last fully indexed block."},
			func() float64 { return float64(ix.Tip().Height) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: ns, Name: "mempool_transactions", Help: "Transactions in the mempool view."},
			func() float64 { return float64(mp.Size()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: ns, Name: "mempool_vsize_bytes", Help: "Virtual size of the mempool view."},
			func() float64 { return float64(mp.VSize()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: ns, Name: "subscribed_sessions", Help: "Sessions registered for notifications."},
			func() float64 { return float64(hub.Len()) }),
	)
	sessions := prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Name: "sessions", Help: "Open sessions by transport."}, []string{"transport"})
	s.reg.MustRegister(prometheus.CollectorFunc(func(ch chan<- prometheus.Metric) {
		sessions.Reset()
		for proto, n := range ts.Sessions() {
			sessions.WithLabelValues(proto).Set(float64(n))
		}
		sessions.Collect(ch)
	}))
	lookups := prometheus.NewDesc(ns+"_cache_requests_total", "Lookups in the serving caches, by cache (raw_tx, block_merkle, header_chunk) and result (hit, miss).", []string{"cache", "result"}, nil)
	held := prometheus.NewDesc(ns+"_cache_bytes", "Bytes held by each serving cache.", []string{"cache"}, nil)
	s.reg.MustRegister(prometheus.CollectorFunc(func(ch chan<- prometheus.Metric) {
		for _, c := range backend.CacheStats() {
			ch <- prometheus.MustNewConstMetric(lookups, prometheus.CounterValue, float64(c.Hits), c.Name, "hit")
			ch <- prometheus.MustNewConstMetric(lookups, prometheus.CounterValue, float64(c.Misses), c.Name, "miss")
			ch <- prometheus.MustNewConstMetric(held, prometheus.GaugeValue, float64(c.Bytes), c.Name)
		}
	}))
}
