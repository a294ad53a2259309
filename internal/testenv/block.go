package testenv

import (
	"bytes"
	"encoding/binary"
	"testing"
	"time"

	"github.com/btcsuite/btcd/chainhash/v2"
	"github.com/btcsuite/btcd/wire/v2"

	"amber/internal/chain"
)

// Block is a block on prev at height h with a coinbase paying OP_TRUE
// and txs, for unit tests that index blocks without a daemon.
func Block(t testing.TB, prev chainhash.Hash, h int, txs ...*wire.MsgTx) *chain.Block {
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
