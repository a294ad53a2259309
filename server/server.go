// Package server is an Amber server node: it opens the index, catches up
// with the daemon, follows the tip and the mempool, and serves the
// Electrum protocol to wallets over TCP, TLS, WebSocket and secure
// WebSocket, notifying subscribers after every block and mempool change.
package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"sync"
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
	"amber/server/mempool"
	"amber/server/peers"
	"amber/server/session"
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
	addrs    []string      // bound listener addresses, once serving
	live     *live         // set once serving, for Status
	snapshot *SnapshotInfo // the restored snapshot, if any
	ready    chan struct{}
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
	dc, err := daemon.New(cfg.DaemonURLs, daemon.Options{Logger: s.logger})
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
	db, ix, err := index.OpenDir(cfg.DBDirectory, int64(cfg.CacheMB)<<20/2, cfg.Network,
		index.Options{ReorgLimit: cfg.ReorgLimit, Logger: s.logger})
	if err != nil {
		return err
	}
	defer func() {
		if cerr := db.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("server: close %s: %w", cfg.DBDirectory, cerr)
		}
	}()

	f := &follower{logger: s.logger, ix: ix, pending: newChange()}
	syncer := chainsync.New(ix, chainsync.DaemonSource{C: dc}, chainsync.Options{
		Logger:         s.logger,
		CollectTouched: true,
		OnCommit:       f.committed,
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
	s.logger.Info("index at daemon tip", "height", tip.Height, "block", tip.Hash.String(), "took", time.Since(start).Round(time.Millisecond).String())
	f.pending = newChange() // nobody is subscribed yet

	mp := mempool.New(dc, ix, mempool.Options{Logger: s.logger})
	if _, err := mp.Refresh(ctx); err != nil && !errors.Is(err, mempool.ErrNotSynced) {
		s.logger.Warn("first mempool refresh failed; retrying while serving", "err", err)
	}

	backend := session.NewBackend(ix, session.Synced(mp, ix), dc, cfg.MaxSend)
	f.mu.Lock()
	f.backend = backend
	f.mu.Unlock()
	table, err := session.NewTable()
	if err != nil {
		return err
	}
	hub := session.NewHub()
	sv := &session.Server{
		Backend: backend,
		Info: &session.ServerInfo{
			Software:        version.Software(),
			ProtocolMin:     session.ProtocolMin.String(),
			ProtocolMax:     session.ProtocolMax.String(),
			DonationAddress: cfg.DonationAddress,
			BannerFile:      cfg.BannerFile,
			ReportServices:  cfg.ReportServices,
			Genesis:         cfg.Network.Genesis.String(),
		},
		Table:          table,
		Hub:            hub,
		Logger:         s.logger,
		MaxSend:        cfg.MaxSend,
		RequestTimeout: cfg.RequestTimeout,
		IdleTimeout:    cfg.SessionTimeout,
		DropClient:     cfg.DropClient,
	}
	ts, err := transport.New(cfg.Services, sv.Serve, transport.Options{
		Logger:      s.logger,
		CertFile:    cfg.SSLCertFile,
		KeyFile:     cfg.SSLKeyFile,
		MaxRecv:     cfg.MaxRecv,
		MaxConns:    cfg.MaxSessions,
		GracePeriod: 2 * time.Second,
	})
	if err != nil {
		return err
	}
	s.registerMetrics(ix, mp, ts, hub)
	pm := peers.New(peers.FromConfig(cfg, sv.Info, ix, ts.Ready(), s.logger))
	sv.Peers = pm

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return ts.Run(gctx) })
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
		s.health.SetReady(true, "")
		close(s.ready)
		<-gctx.Done()
		s.mu.Lock()
		s.live = nil // the index closes as Run returns
		s.mu.Unlock()
		s.health.Drain()
		return nil
	})
	g.Go(func() error { return s.reloadOnHUP(gctx, ts) })
	var wake <-chan struct{}
	if cfg.ZMQHashBlock != "" {
		wake = daemon.WatchBlocks(gctx, cfg.ZMQHashBlock, s.logger)
	}
	g.Go(func() error {
		return f.run(gctx, cfg.DaemonPollInterval, wake, syncer, mp, func(c session.Change) {
			hub.Broadcast(backend, c, s.logger)
		})
	})
	return g.Wait()
}

// bootstrap fills an empty DB_DIRECTORY from the latest snapshot; a node
// with its own DB keeps it, and with no snapshot at all the node syncs
// from genesis.
func (s *Server) bootstrap(ctx context.Context) error {
	s.health.SetReady(false, "restoring snapshot")
	bucket, err := open.Open(ctx, s.cfg.SnapshotURL, open.Options{})
	if err != nil {
		return fmt.Errorf("server: SNAPSHOT_URL: %w", err)
	}
	defer bucket.Close()
	start := time.Now()
	m, err := snapshot.Bootstrap(ctx, bucket, s.cfg.DBDirectory, s.cfg.Network, &snapshot.Restorer{Logger: s.logger, TrustedKeys: s.cfg.TrustedKeys})
	switch {
	case errors.Is(err, snapshot.ErrNoSnapshot):
		s.logger.Warn("no usable snapshot; syncing from genesis", "snapshot", bucket.Name(), "err", err)
	case err != nil:
		return err
	case m == nil:
		s.logger.Info("keeping the local index", "dir", s.cfg.DBDirectory)
	default:
		s.mu.Lock()
		s.snapshot = snapshotInfo(m)
		s.mu.Unlock()
		s.logger.Info("restored snapshot", "snapshot", m.Key(), "height", m.Height, "took", time.Since(start).Round(time.Millisecond).String())
	}
	return nil
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
	backend *session.Backend // set once serving; its caches follow commits
}

func newChange() session.Change {
	return session.Change{Scripts: map[chain.HashX]struct{}{}, Outpoints: map[wire.OutPoint]struct{}{}}
}

// committed collects what each commit of the syncer touched.
func (f *follower) committed(_ index.Tip, t *index.Touched) {
	if t == nil {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.backend != nil {
		f.backend.BlocksTouched(t.Scripts)
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
		}
		tip, err := syncer.SyncToTip(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if errors.Is(err, index.ErrReorgTooDeep) {
			return err
		}
		if err != nil {
			f.logger.Warn("following the daemon", "err", err)
			continue
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
	}
}

func (s *Server) registerMetrics(ix *index.Index, mp *mempool.Mempool, ts *transport.Server, hub *session.Hub) {
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
}
