// Package mempooltest holds a fixed daemon for tests of the mempool view
// and the packages above it (testenv may not import the daemon client,
// whose own tests import testenv).
package mempooltest

import (
	"context"

	"github.com/btcsuite/btcd/chainhash/v2"

	"amber/internal/daemon"
)

// FixedMempool is a daemon, as the mempool view reads it, holding a fixed
// set of raw transactions at a best block the test moves.
type FixedMempool struct {
	Best chainhash.Hash
	Txs  map[chainhash.Hash][]byte
}

// BestBlockHash returns Best.
func (f *FixedMempool) BestBlockHash(context.Context) (chainhash.Hash, error) { return f.Best, nil }

// RawMempool lists Txs.
func (f *FixedMempool) RawMempool(context.Context) ([]chainhash.Hash, error) {
	var ids []chainhash.Hash
	for id := range f.Txs {
		ids = append(ids, id)
	}
	return ids, nil
}

// RawTransactions returns the raw bytes of ids from Txs.
func (f *FixedMempool) RawTransactions(_ context.Context, ids []chainhash.Hash) ([]daemon.TxResult, error) {
	out := make([]daemon.TxResult, len(ids))
	for i, id := range ids {
		out[i].Raw = f.Txs[id]
	}
	return out, nil
}
