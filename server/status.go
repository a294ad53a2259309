package server

import (
	"context"
	"time"

	"amber/internal/daemon"
	"amber/internal/index"
	"amber/server/mempool"
	"amber/server/transport"
	"amber/snapshot"
)

// Status is a point-in-time view of a node for the status page.
type Status struct {
	// Serving is false until the listeners are up; the other fields
	// except Snapshot are then zero.
	Serving bool `json:"serving"`
	// Height and Hash are the index tip.
	Height int32  `json:"height"`
	Hash   string `json:"hash"`
	// DaemonHeight is the daemon's best block, -1 when it did not
	// answer; Lag is DaemonHeight minus Height (0 when unknown).
	DaemonHeight int `json:"daemon_height"`
	Lag          int `json:"lag"`
	// Sessions counts open connections by transport (tcp, ssl, ws, wss).
	Sessions map[string]int `json:"sessions"`
	// Listeners are the bound addresses by transport, in SERVICES order.
	Listeners []Listener `json:"listeners"`
	// MempoolTxs and MempoolVSize describe the mempool view;
	// FeeHistogram is its fee histogram, highest rate first.
	MempoolTxs   int         `json:"mempool_txs"`
	MempoolVSize int64       `json:"mempool_vsize"`
	FeeHistogram []FeeBucket `json:"fee_histogram"`
	// Snapshot is the snapshot this node was restored from, nil when it
	// kept its own index or synced from genesis.
	Snapshot *SnapshotInfo `json:"snapshot,omitempty"`
}

// Listener is one bound listener.
type Listener struct {
	Proto string `json:"proto"`
	Addr  string `json:"addr"`
}

// FeeBucket is one bar of the fee histogram: VSize vbytes paying at
// least Rate sat/vB.
type FeeBucket struct {
	Rate  float64 `json:"rate"`
	VSize int64   `json:"vsize"`
}

// SnapshotInfo names a restored snapshot.
type SnapshotInfo struct {
	Key     string    `json:"key"`
	Height  int64     `json:"height"`
	Created time.Time `json:"created"`
}

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
func (s *Server) Status(ctx context.Context) Status {
	s.mu.Lock()
	lv, snap := s.live, s.snapshot
	s.mu.Unlock()
	st := Status{Snapshot: snap, DaemonHeight: -1, Height: -1}
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
			st.Listeners = append(st.Listeners, Listener{Proto: s.cfg.Services[i].Proto, Addr: a.String()})
		}
	}
	st.MempoolTxs, st.MempoolVSize = lv.mp.Size(), lv.mp.VSize()
	st.FeeHistogram = []FeeBucket{}
	for _, b := range lv.mp.FeeHistogram() {
		st.FeeHistogram = append(st.FeeHistogram, FeeBucket{Rate: b.Rate, VSize: b.VSize})
	}
	return st
}

func snapshotInfo(m *snapshot.Manifest) *SnapshotInfo {
	return &SnapshotInfo{Key: m.Key(), Height: m.Height, Created: m.Created}
}
