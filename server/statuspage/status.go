package statuspage

import "time"

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
