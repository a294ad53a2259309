package session

import (
	"bytes"
	"context"
	"encoding/binary"
	"testing"
	"time"

	"github.com/btcsuite/btcd/chainhash/v2"
	"github.com/btcsuite/btcd/wire/v2"

	"amber/internal/chain"
	"amber/internal/daemon"
	"amber/internal/index"
	"amber/internal/store"
	"amber/server/mempool"
)

// fakeDaemon serves a fixed mempool at a tip the test moves.
type fakeDaemon struct {
	best chainhash.Hash
	txs  map[chainhash.Hash][]byte
}

func (f *fakeDaemon) BestBlockHash(context.Context) (chainhash.Hash, error) { return f.best, nil }
func (f *fakeDaemon) RawMempool(context.Context) ([]chainhash.Hash, error) {
	var ids []chainhash.Hash
	for id := range f.txs {
		ids = append(ids, id)
	}
	return ids, nil
}
func (f *fakeDaemon) RawTransactions(_ context.Context, ids []chainhash.Hash) ([]daemon.TxResult, error) {
	out := make([]daemon.TxResult, len(ids))
	for i, id := range ids {
		out[i].Raw = f.txs[id]
	}
	return out, nil
}

// block is a block on prev at height h with a coinbase paying OP_TRUE
// and txs.
func block(t testing.TB, prev chainhash.Hash, h int, txs ...*wire.MsgTx) *chain.Block {
	t.Helper()
	cb := wire.NewMsgTx(1)
	var hb [4]byte
	binary.LittleEndian.PutUint32(hb[:], uint32(h))
	cb.AddTxIn(&wire.TxIn{PreviousOutPoint: wire.OutPoint{Index: wire.MaxPrevOutIndex}, SignatureScript: append([]byte{4}, hb[:]...)})
	cb.AddTxOut(wire.NewTxOut(50e8, []byte{0x51}))
	msg := wire.MsgBlock{Header: wire.BlockHeader{PrevBlock: prev, Timestamp: time.Unix(int64(h), 0), Nonce: uint32(h)}}
	msg.AddTransaction(cb)
	for _, tx := range txs {
		msg.AddTransaction(tx)
	}
	var buf bytes.Buffer
	if err := msg.Serialize(&buf); err != nil {
		t.Fatal(err)
	}
	b, err := chain.ParseBlock(buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestSyncedHidesStaleMempool: right after a block confirms a mempool
// transaction, and before the mempool is refreshed, answers must not list
// it twice.
func TestSyncedHidesStaleMempool(t *testing.T) {
	net, _ := chain.Lookup("Bitcoin", "regtest")
	db, err := store.Open("", store.Options{InMemory: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ix, err := index.Open(db, net, index.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var gbuf bytes.Buffer
	net.Params.GenesisBlock.Serialize(&gbuf)
	genesis, _ := chain.ParseBlock(gbuf.Bytes())
	b1 := block(t, genesis.Hash, 1)
	w, _ := ix.NewWriter()
	w.Connect(genesis)
	w.Connect(b1)
	if err := w.Commit(true); err != nil {
		t.Fatal(err)
	}
	// A payment spending block 1's coinbase to script 0x52.
	pay := wire.NewMsgTx(2)
	pay.AddTxIn(&wire.TxIn{PreviousOutPoint: wire.OutPoint{Hash: b1.Txs[0].TxID}})
	pay.AddTxOut(wire.NewTxOut(49e8, []byte{0x52}))
	var pbuf bytes.Buffer
	pay.Serialize(&pbuf)
	d := &fakeDaemon{best: b1.Hash, txs: map[chainhash.Hash][]byte{pay.TxHash(): pbuf.Bytes()}}
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
	w, _ = ix.NewWriter()
	if err := w.Connect(block(t, b1.Hash, 2, pay)); err != nil {
		t.Fatal(err)
	}
	if err := w.Commit(true); err != nil {
		t.Fatal(err)
	}
	b.BlocksTouched(map[chain.HashX]struct{}{hx: {}})
	h, _ := b.History(hx)
	if len(h) != 1 || h[0].Height != 2 {
		t.Fatalf("after the block, before refresh: %+v (want the tx once, at height 2)", h)
	}
	bal, _, _ := b.GetBalance(hx)
	if bal.Confirmed != 49e8 || bal.Unconfirmed != 0 {
		t.Errorf("balance counted twice: %+v", bal)
	}
}
