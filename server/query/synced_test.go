package query

import (
	"bytes"
	"context"
	"testing"

	"github.com/btcsuite/btcd/chainhash/v2"
	"github.com/btcsuite/btcd/wire/v2"

	"amber/internal/chain"
	"amber/internal/index"
	"amber/internal/testenv"
	"amber/server/mempool"
	"amber/server/mempool/mempooltest"
)

// paidIndex is an index of genesis and block 1, and pay, a payment of
// 49 BTC from block 1's coinbase to script 0x52, not yet in a block.
func paidIndex(t *testing.T) (*index.Index, *chain.Block, *wire.MsgTx) {
	t.Helper()
	ix, genesis := memIndex(t)
	b1 := testenv.Block(t, genesis.Hash, 1)
	w, _ := ix.NewWriter()
	w.Connect(genesis)
	w.Connect(b1)
	if err := w.Commit(true); err != nil {
		t.Fatal(err)
	}
	pay := wire.NewMsgTx(2)
	pay.AddTxIn(&wire.TxIn{PreviousOutPoint: wire.OutPoint{Hash: b1.Txs[0].TxID}})
	pay.AddTxOut(wire.NewTxOut(49e8, []byte{0x52}))
	return ix, b1, pay
}

// TestSyncedHidesStaleMempool: right after a block confirms a mempool
// transaction, and before the mempool is refreshed, answers must not list
// it twice.
func TestSyncedHidesStaleMempool(t *testing.T) {
	ix, b1, pay := paidIndex(t)
	var pbuf bytes.Buffer
	pay.Serialize(&pbuf)
	d := &mempooltest.FixedMempool{Best: b1.Hash, Txs: map[chainhash.Hash][]byte{pay.TxHash(): pbuf.Bytes()}}
	mp := mempool.New(d, ix, mempool.Options{})
	if _, err := mp.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	b := NewBackend(ix, Synced(mp, ix), nil, 8_100_000)
	hx := chain.HashXOf([]byte{0x52})
	if h, _ := b.History(hx); len(h) != 1 || h[0].Height != 0 {
		t.Fatalf("before the block: %+v", h)
	}
	// The block confirming it arrives; the mempool has not refreshed.
	w, _ := ix.NewWriter()
	if err := w.Connect(testenv.Block(t, b1.Hash, 2, pay)); err != nil {
		t.Fatal(err)
	}
	if err := w.Commit(true); err != nil {
		t.Fatal(err)
	}
	b.BlocksTouched(ix.Tip().Hash, map[chain.HashX]struct{}{hx: {}})
	h, _ := b.History(hx)
	if len(h) != 1 || h[0].Height != 2 {
		t.Fatalf("after the block, before refresh: %+v (want the tx once, at height 2)", h)
	}
	bal, _, _ := b.GetBalance(hx)
	if bal.Confirmed != 49e8 || bal.Unconfirmed != 0 {
		t.Errorf("balance counted twice: %+v", bal)
	}
}

// commitDuringRead is a mempool view that, the first time it is asked
// for a history, lets a block be committed first, as the chain follower
// may between History's read of the index and its read of the mempool;
// the view, no longer the tip's, then shows nothing (as synced does).
type commitDuringRead struct {
	Mempool
	commit func()
}

func (m *commitDuringRead) maybeCommit() {
	if m.commit != nil {
		m.commit()
		m.commit = nil
	}
}

func (m *commitDuringRead) History(chain.HashX) []mempool.Entry { m.maybeCommit(); return nil }
func (m *commitDuringRead) Balance(chain.HashX) int64           { m.maybeCommit(); return 0 }
func (m *commitDuringRead) UTXOs(chain.HashX) []mempool.UTXO    { m.maybeCommit(); return nil }
func (m *commitDuringRead) Spender(wire.OutPoint) (mempool.Entry, bool) {
	m.maybeCommit()
	return mempool.Entry{}, false
}

// TestHistoryAcrossACommit: a block committed between the confirmed read
// and the mempool read must not leave its transaction out of both: the
// history, balance and unspent outputs are read again at the new tip.
func TestHistoryAcrossACommit(t *testing.T) {
	ix, b1, pay := paidIndex(t)
	hx := chain.HashXOf([]byte{0x52})
	mp := &commitDuringRead{}
	b := NewBackend(ix, mp, nil, 8_100_000)
	if h, err := b.History(hx); err != nil || len(h) != 0 {
		t.Fatalf("before the block: %+v, %v", h, err)
	}
	// Each read commits the next block with a payment to the script: the
	// first pays from block 1's coinbase, the others from the block before.
	prev, height := b1, 2
	arm := func() {
		mp.commit = func() {
			w, _ := ix.NewWriter()
			p := pay
			if height > 2 {
				p = wire.NewMsgTx(2)
				p.AddTxIn(&wire.TxIn{PreviousOutPoint: wire.OutPoint{Hash: prev.Txs[0].TxID}})
				p.AddTxOut(wire.NewTxOut(49e8, []byte{0x52}))
			}
			blk := testenv.Block(t, prev.Hash, height, p)
			if err := w.Connect(blk); err != nil {
				t.Fatal(err)
			}
			if err := w.Commit(true); err != nil {
				t.Fatal(err)
			}
			prev, height = blk, height+1
			b.BlocksTouched(ix.Tip().Hash, map[chain.HashX]struct{}{hx: {}})
		}
	}
	arm()
	h, err := b.History(hx)
	if err != nil || len(h) != 1 || h[0].Height != 2 || h[0].TxID != pay.TxHash() {
		t.Fatalf("history read across the commit: %+v, %v; want the payment at height 2", h, err)
	}
	arm()
	if bal, _, err := b.GetBalance(hx); err != nil || bal.Confirmed != 2*49e8 {
		t.Errorf("balance read across a commit: %+v, %v; want both payments confirmed", bal, err)
	}
	arm()
	if us, _, err := b.ListUnspent(hx); err != nil || len(us) != 3 {
		t.Errorf("listunspent read across a commit: %+v, %v; want the three payments", us, err)
	}
}
