package query

import (
	"github.com/btcsuite/btcd/chainhash/v2"
	"github.com/btcsuite/btcd/wire/v2"

	"amber/internal/chain"
	"amber/internal/index"
	"amber/server/mempool"
)

// synced shows the mempool view only while it belongs to the index's tip.
// Between a block's commit and the next mempool refresh, the old view
// still holds the block's transactions: answering from both would list a
// transaction twice (spec §10 pitfall 4) or count it twice in a balance.
// In that short window answers come from the index alone; the
// notification round that follows the refresh brings clients up to date.
type synced struct {
	mp *mempool.Mempool
	ix *index.Index
}

// Synced wraps a mempool view so it is consulted only when in step with
// the index.
func Synced(mp *mempool.Mempool, ix *index.Index) Mempool { return synced{mp: mp, ix: ix} }

func (s synced) ok() bool {
	t, ok := s.mp.Tip()
	return ok && t.Hash == s.ix.Tip().Hash
}

func (s synced) History(hx chain.HashX) []mempool.Entry {
	if !s.ok() {
		return nil
	}
	return s.mp.History(hx)
}

func (s synced) Balance(hx chain.HashX) int64 {
	if !s.ok() {
		return 0
	}
	return s.mp.Balance(hx)
}

func (s synced) UTXOs(hx chain.HashX) []mempool.UTXO {
	if !s.ok() {
		return nil
	}
	return s.mp.UTXOs(hx)
}

func (s synced) Spender(op wire.OutPoint) (mempool.Entry, bool) {
	if !s.ok() {
		return mempool.Entry{}, false
	}
	return s.mp.Spender(op)
}

func (s synced) Lookup(txid chainhash.Hash) (mempool.Entry, bool) {
	if !s.ok() {
		return mempool.Entry{}, false
	}
	return s.mp.Lookup(txid)
}

// Tx serves raw bytes whatever the tip: a transaction's bytes do not
// change when it confirms.
func (s synced) Tx(txid chainhash.Hash) ([]byte, bool) { return s.mp.Tx(txid) }

func (s synced) FeeHistogram() []mempool.FeeBucket { return s.mp.FeeHistogram() }

func (s synced) Recent(n int) []mempool.Entry {
	if !s.ok() {
		return nil
	}
	return s.mp.Recent(n)
}
