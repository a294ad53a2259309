package testenv

import (
	"errors"
	"strings"
	"testing"

	"github.com/btcsuite/btcd/chaincfg/v2"
	"github.com/btcsuite/btcd/chainhash/v2"
	"github.com/btcsuite/btcd/txscript/v2"
	"github.com/btcsuite/btcd/wire/v2"
)

// These tests need no daemon: blocks are built by hand and every signature
// is checked by btcd's script engine inside Wallet.Sign.

func TestWalletScripts(t *testing.T) {
	params := &chaincfg.RegressionNetParams
	tests := []struct {
		kind   ScriptKind
		class  txscript.ScriptClass
		prefix []string // accepted address prefixes
		length int      // address length, 0 for any
	}{
		{P2PK, txscript.PubKeyTy, []string{"p2pk:02", "p2pk:03"}, 0},
		{P2PKH, txscript.PubKeyHashTy, []string{"m", "n"}, 0},
		{P2WPKH, txscript.WitnessV0PubKeyHashTy, []string{"bcrt1q"}, 44},
		{P2SHP2WPKH, txscript.ScriptHashTy, []string{"2"}, 0},
		{P2WSHMultisig, txscript.WitnessV0ScriptHashTy, []string{"bcrt1q"}, 64},
		{P2TR, txscript.WitnessV1TaprootTy, []string{"bcrt1p"}, 64},
	}
	w1 := NewWallet(params, []byte("seed"))
	w2 := NewWallet(params, []byte("seed"))
	other := NewWallet(params, []byte("other seed"))
	for _, tc := range tests {
		t.Run(tc.kind.String(), func(t *testing.T) {
			s1, s2, s3 := w1.NewScript(tc.kind), w2.NewScript(tc.kind), other.NewScript(tc.kind)
			if s1.String() != s2.String() {
				t.Fatalf("same seed, different scripts: %s and %s", s1, s2)
			}
			if s1.String() == s3.String() {
				t.Fatalf("different seeds, same script %s", s1)
			}
			if got := txscript.GetScriptClass(s1.PkScript); got != tc.class {
				t.Fatalf("script class %v, want %v", got, tc.class)
			}
			addr := s1.String()
			if !hasAnyPrefix(addr, tc.prefix) || tc.length != 0 && len(addr) != tc.length {
				t.Fatalf("address %s: want a prefix in %v and length %d", addr, tc.prefix, tc.length)
			}
			if got, ok := w1.Script(s1.PkScript); !ok || got != s1 {
				t.Fatal("the wallet does not recognise its own script")
			}
			if _, ok := w1.Script(s3.PkScript); ok {
				t.Fatal("the wallet claims another wallet's script")
			}
		})
	}
}

func TestBuildTxEveryKind(t *testing.T) {
	w := NewWallet(&chaincfg.RegressionNetParams, []byte("build"))
	var outs []*wire.TxOut
	for _, kind := range AllKinds() {
		outs = append(outs, w.NewScript(kind).TxOut(coin), w.NewScript(kind).TxOut(coin))
	}
	funding := foreignTx(outs...)
	if err := w.ConnectBlock(testBlock(w, 1, funding)); err != nil {
		t.Fatal(err)
	}
	byKind := map[ScriptKind][]*UTXO{}
	for _, u := range w.UTXOs() {
		byKind[u.Script.Kind] = append(byKind[u.Script.Kind], u)
	}

	check := func(t *testing.T, req TxRequest) *wire.MsgTx {
		t.Helper()
		tx, ins, err := w.BuildTx(req)
		if err != nil {
			t.Fatal(err)
		}
		var in, out int64
		for _, u := range ins {
			in += u.Value
		}
		for _, o := range tx.TxOut {
			out += o.Value
		}
		vsize := int64((tx.SerializeSizeStripped()*3 + tx.SerializeSize() + 3) / 4)
		est := estimateVSize(ins, tx.TxOut)
		if est < vsize || est > vsize+int64(len(ins))+1 {
			t.Fatalf("estimated %d vbytes, signed transaction has %d", est, vsize)
		}
		if fee := in - out; fee < vsize*DefaultFeeRate {
			t.Fatalf("fee %d is below %d sat/vB for %d vbytes", fee, DefaultFeeRate, vsize)
		}
		return tx
	}
	for _, kind := range AllKinds() {
		t.Run(kind.String(), func(t *testing.T) {
			tx := check(t, TxRequest{
				Inputs: byKind[kind][:1], NoSelect: true,
				Outputs: []*wire.TxOut{w.NewScript(kind).TxOut(coin / 2)}, ChangeKind: kind,
			})
			if len(tx.TxIn) != 1 || len(tx.TxOut) != 2 {
				t.Fatalf("%d inputs and %d outputs, want 1 and 2", len(tx.TxIn), len(tx.TxOut))
			}
		})
	}
	t.Run("all kinds", func(t *testing.T) {
		var ins []*UTXO
		for _, kind := range AllKinds() {
			ins = append(ins, byKind[kind][1])
		}
		tx := check(t, TxRequest{Inputs: ins, NoSelect: true,
			Outputs: []*wire.TxOut{NullDataOutput([]byte("x")), w.NewScript(P2TR).TxOut(5 * coin)}})
		if len(tx.TxIn) != len(AllKinds()) {
			t.Fatalf("%d inputs, want %d", len(tx.TxIn), len(AllKinds()))
		}
	})
	t.Run("selects inputs", func(t *testing.T) {
		tx := check(t, TxRequest{Outputs: []*wire.TxOut{w.NewScript(P2WPKH).TxOut(coin + coin/2)}})
		if len(tx.TxIn) != 2 {
			t.Fatalf("%d inputs, want 2", len(tx.TxIn))
		}
	})
	t.Run("no change below dust", func(t *testing.T) {
		tx := check(t, TxRequest{Inputs: byKind[P2WPKH][:1], NoSelect: true,
			Outputs: []*wire.TxOut{w.NewScript(P2WPKH).TxOut(coin - 500)}})
		if len(tx.TxOut) != 1 {
			t.Fatalf("%d outputs, want the payment alone", len(tx.TxOut))
		}
	})
	t.Run("insufficient funds", func(t *testing.T) {
		_, _, err := w.BuildTx(TxRequest{Outputs: []*wire.TxOut{w.NewScript(P2WPKH).TxOut(100 * coin)}})
		if !errors.Is(err, ErrInsufficientFunds) {
			t.Fatalf("err = %v, want ErrInsufficientFunds", err)
		}
	})
}

func TestWalletBlocksAndMempool(t *testing.T) {
	w := NewWallet(&chaincfg.RegressionNetParams, []byte("blocks"))
	a := w.NewScript(P2WPKH)
	fundA := foreignTx(a.TxOut(10 * coin))
	if err := w.ConnectBlock(testBlock(w, 1, fundA)); err != nil {
		t.Fatal(err)
	}
	opA := wire.OutPoint{Hash: fundA.TxHash(), Index: 0}
	assertUTXOs(t, w, opA)

	// Block 2 spends A to B, and B to C within the block.
	b, c := w.NewScript(P2TR), w.NewScript(P2PKH)
	txB := build(t, w, []wire.OutPoint{opA}, b.TxOut(9*coin))
	opB := wire.OutPoint{Hash: txB.TxHash(), Index: 0}
	w.AddTx(txB)
	assertUTXOs(t, w, opB)
	txC := build(t, w, []wire.OutPoint{opB}, c.TxOut(8*coin))
	opC := wire.OutPoint{Hash: txC.TxHash(), Index: 0}
	w.AddTx(txC)
	assertUTXOs(t, w, opC)
	if u, _ := w.UTXO(opC); u.Height != 0 {
		t.Fatalf("unconfirmed output at height %d", u.Height)
	}
	// The order of AddTx does not matter.
	w.ResetMempool()
	w.AddTx(txC)
	w.AddTx(txB)
	assertUTXOs(t, w, opC)

	block2 := testBlock(w, 2, txB, txC)
	if err := w.ConnectBlock(block2); err != nil {
		t.Fatal(err)
	}
	assertUTXOs(t, w, opC)
	if u, _ := w.UTXO(opC); u.Height != 2 {
		t.Fatalf("confirmed output at height %d, want 2", u.Height)
	}

	if hash, err := w.DisconnectBlock(); err != nil || hash != block2.BlockHash() {
		t.Fatalf("DisconnectBlock = %s, %v", hash, err)
	}
	assertUTXOs(t, w, opA)
	orphan := testBlock(w, 2)
	orphan.Header.PrevBlock = chainhash.Hash{9}
	if err := w.ConnectBlock(orphan); err == nil {
		t.Fatal("ConnectBlock accepted a block that does not build on the tip")
	}

	// A block spending A elsewhere evicts the unconfirmed spend and its
	// child.
	conflict := build(t, w, []wire.OutPoint{opA}, w.NewScript(P2PK).TxOut(9*coin))
	w.AddTx(txB)
	w.AddTx(txC)
	assertUTXOs(t, w, opC)
	if err := w.ConnectBlock(testBlock(w, 3, conflict)); err != nil {
		t.Fatal(err)
	}
	assertUTXOs(t, w, wire.OutPoint{Hash: conflict.TxHash(), Index: 0})
}

func TestCoinbaseMaturity(t *testing.T) {
	params := &chaincfg.RegressionNetParams
	w := NewWallet(params, []byte("maturity"))
	s := w.NewScript(P2WPKH)
	for h := int32(1); h <= int32(params.CoinbaseMaturity); h++ {
		block := testBlock(w, h)
		block.Transactions[0].TxOut[0].PkScript = s.PkScript
		if err := w.ConnectBlock(block); err != nil {
			t.Fatal(err)
		}
		// The coinbase of block 1 may be spent in block 101.
		if got := len(w.Spendable()); got != 0 && h < int32(params.CoinbaseMaturity) {
			t.Fatalf("at height %d, %d coinbase outputs are spendable", h, got)
		}
	}
	if got := len(w.Spendable()); got != 1 {
		t.Fatalf("at height %d, %d coinbase outputs are spendable, want 1", w.Height(), got)
	}
	if got := len(w.UTXOs()); got != int(params.CoinbaseMaturity) {
		t.Fatalf("%d UTXOs, want %d", got, params.CoinbaseMaturity)
	}
}

// testBlock returns a block on the wallet's tip with a coinbase paying to
// no wallet script, then txs.
func testBlock(w *Wallet, height int32, txs ...*wire.MsgTx) *wire.MsgBlock {
	coinbase := wire.NewMsgTx(2)
	script, _ := txscript.NewScriptBuilder().AddInt64(int64(height)).Script()
	coinbase.AddTxIn(wire.NewTxIn(wire.NewOutPoint(&chainhash.Hash{}, wire.MaxPrevOutIndex), script, nil))
	coinbase.AddTxOut(wire.NewTxOut(50*coin, []byte{txscript.OP_TRUE}))
	block := wire.NewMsgBlock(wire.NewBlockHeader(1, ptr(w.TipHash()), &chainhash.Hash{}, 0, uint32(height)))
	block.AddTransaction(coinbase)
	for _, tx := range txs {
		block.AddTransaction(tx)
	}
	return block
}

// foreignTx returns a transaction spending an output the wallet does not
// own.
func foreignTx(outs ...*wire.TxOut) *wire.MsgTx {
	tx := wire.NewMsgTx(2)
	tx.AddTxIn(wire.NewTxIn(wire.NewOutPoint(&chainhash.Hash{1}, 0), nil, nil))
	for _, o := range outs {
		tx.AddTxOut(o)
	}
	return tx
}

// build signs a transaction spending exactly the given wallet outputs.
func build(t *testing.T, w *Wallet, ops []wire.OutPoint, outs ...*wire.TxOut) *wire.MsgTx {
	t.Helper()
	var ins []*UTXO
	for _, op := range ops {
		ins = append(ins, mustUTXO(t, w, op))
	}
	tx, _, err := w.BuildTx(TxRequest{Inputs: ins, NoSelect: true, Outputs: outs})
	if err != nil {
		t.Fatal(err)
	}
	return tx
}

// assertUTXOs checks that the wallet's unspent outputs paying a whole
// number of bitcoins are exactly want (change outputs are ignored).
func assertUTXOs(t *testing.T, w *Wallet, want ...wire.OutPoint) {
	t.Helper()
	var got []wire.OutPoint
	for _, u := range w.UTXOs() {
		if u.Value%coin == 0 {
			got = append(got, u.OutPoint)
		}
	}
	if len(got) != len(want) {
		t.Fatalf("UTXOs %v, want %v", got, want)
	}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("UTXOs %v, want %v", got, want)
		}
	}
}

func hasAnyPrefix(s string, prefixes []string) bool {
	for _, p := range prefixes {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}

func ptr[T any](v T) *T { return &v }
