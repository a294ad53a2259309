package server

import (
	"context"
	"time"

	"amber/internal/daemon"
	"amber/internal/index"
	"amber/server/mempool"
	"amber/server/statuspage"
	"amber/server/transport"
	"amber/snapshot"
)

var _ statuspage.Source = (*Server)(nil)

// live holds the parts of a serving node that Status reads; each is safe
// for concurrent use.
type live struct {
	ix *index.Index
	mp *mempool.Mempool
	ts *transport.Server
	dc *daemon.Client
}

// Status reports the node's state; it asks the daemon for its height,
// waiting at most two seconds. Safe for concurrent use.
func (s *Server) Status(ctx context.Context) statuspage.Status {
	s.mu.Lock()
	lv, snap := s.live, s.snapshot
	s.mu.Unlock()
	st := statuspage.Status{Snapshot: snap, DaemonHeight: -1, Height: -1}
	if lv == nil {
		return st
	}
	st.Serving = true
	tip := lv.ix.Tip()
	st.Height, st.Hash = tip.Height, tip.Hash.String()
	dctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if info, err := lv.dc.BlockchainInfo(dctx); err == nil {
		st.DaemonHeight = info.Blocks
		st.Lag = max(info.Blocks-int(tip.Height), 0)
	}
	st.Sessions = lv.ts.Sessions()
	for i, a := range lv.ts.Addrs() {
		if i < len(s.cfg.Services) {
			st.Listeners = append(st.Listeners, statuspage.Listener{Proto: s.cfg.Services[i].Proto, Addr: a.String()})
		}
	}
	st.MempoolTxs, st.MempoolVSize = lv.mp.Size(), lv.mp.VSize()
	st.FeeHistogram = []statuspage.FeeBucket{}
	for _, b := range lv.mp.FeeHistogram() {
		st.FeeHistogram = append(st.FeeHistogram, statuspage.FeeBucket{Rate: b.Rate, VSize: b.VSize})
	}
	return st
}

func snapshotInfo(m *snapshot.Manifest) *statuspage.SnapshotInfo {
	return &statuspage.SnapshotInfo{Key: m.Key(), Height: m.Height, Created: m.Created}
}
