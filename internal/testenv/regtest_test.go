package testenv

import (
	"testing"

	"github.com/btcsuite/btcd/chainhash/v2"
	"github.com/btcsuite/btcd/wire/v2"
)

const coin = 100_000_000 // satoshis in a bitcoin

func skipShort(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("starts real daemons; skipped with -short")
	}
}

// TestRegtestSpendEveryKind funds outputs of every script kind from
// coinbase outputs, then spends each kind alone, all kinds together in one
// transaction, and an unconfirmed output, checking that btcd accepts,
// relays into its mempool and confirms everything, and that the wallet's
// view matches btcd's UTXO set. It ends with a reorganisation.
func TestRegtestSpendEveryKind(t *testing.T) {
	skipShort(t)
	r := StartRegtest(t, RegtestOptions{})
	b, w := r.Btcd, r.Wallet

	blocks := r.Mine(200)
	if len(blocks) != 200 || w.Height() != 200 || b.Height() != 200 {
		t.Fatalf("after mining 200: %d blocks, wallet height %d, btcd height %d", len(blocks), w.Height(), b.Height())
	}
	if got := len(w.UTXOs()); got != 200 {
		t.Fatalf("wallet has %d UTXOs, want the 200 coinbase outputs", got)
	}
	// Coinbase outputs of blocks 1..101 may be spent in block 201.
	spendable := w.Spendable()
	if len(spendable) != 101 {
		t.Fatalf("%d spendable coinbase outputs, want 101", len(spendable))
	}

	// Fund two outputs of every kind, plus an OP_RETURN, from two
	// coinbase outputs.
	var outs []*wire.TxOut
	for _, kind := range AllKinds() {
		s := w.NewScript(kind)
		outs = append(outs, s.TxOut(10*coin), s.TxOut(3*coin))
	}
	outs = append(outs, NullDataOutput([]byte("amber testenv")))
	fund := r.Send(TxRequest{Outputs: outs, Inputs: spendable[:2], NoSelect: true})
	fundID := fund.TxHash()
	if len(fund.TxIn) != 2 {
		t.Fatalf("funding transaction has %d inputs, want 2", len(fund.TxIn))
	}
	if !b.InMempool(fundID) {
		t.Fatalf("funding transaction %s is not in the mempool", fundID)
	}
	r.Mine(1)
	if c := b.Confirmations(fundID); c != 1 {
		t.Fatalf("funding transaction has %d confirmations, want 1", c)
	}
	if tx, err := b.Client.GetRawTransactionVerbose(&fundID); err != nil {
		t.Fatal(err)
	} else if tx.Vout[len(outs)-1].ScriptPubKey.Type != "nulldata" {
		t.Fatalf("output %d is %q, want nulldata", len(outs)-1, tx.Vout[len(outs)-1].ScriptPubKey.Type)
	}

	// The funded outputs by kind and amount.
	funded := map[ScriptKind][]*UTXO{}
	for _, u := range w.UTXOs() {
		if u.OutPoint.Hash == fundID && (u.Value == 10*coin || u.Value == 3*coin) {
			funded[u.Script.Kind] = append(funded[u.Script.Kind], u)
		}
	}

	// Spend one output of each kind alone, with change to the same kind.
	var sent []chainhash.Hash
	for _, kind := range AllKinds() {
		us := funded[kind]
		if len(us) != 2 {
			t.Fatalf("wallet sees %d funded %v outputs, want 2", len(us), kind)
		}
		var big *UTXO
		for _, u := range us {
			if u.Value == 10*coin {
				big = u
			}
		}
		tx := r.Send(TxRequest{
			Inputs:     []*UTXO{big},
			NoSelect:   true,
			Outputs:    []*wire.TxOut{w.NewScript(P2WPKH).TxOut(4 * coin)},
			ChangeKind: kind,
		})
		if len(tx.TxOut) != 2 {
			t.Fatalf("%v spend has %d outputs, want payment and change", kind, len(tx.TxOut))
		}
		sent = append(sent, tx.TxHash())
	}
	// Spend the other output of every kind in one transaction.
	var mixed []*UTXO
	for _, kind := range AllKinds() {
		for _, u := range funded[kind] {
			if u.Value == 3*coin {
				mixed = append(mixed, u)
			}
		}
	}
	mixedTx := r.Send(TxRequest{Inputs: mixed, NoSelect: true, Outputs: []*wire.TxOut{w.NewScript(P2TR).TxOut(15 * coin)}})
	sent = append(sent, mixedTx.TxHash())
	// Spend an unconfirmed output: the taproot output just made.
	chained := r.Send(TxRequest{
		Inputs:   []*UTXO{mustUTXO(t, w, wire.OutPoint{Hash: mixedTx.TxHash(), Index: 0})},
		NoSelect: true,
		Outputs:  []*wire.TxOut{w.NewScript(P2PKH).TxOut(14 * coin)},
	})
	sent = append(sent, chained.TxHash())

	for _, txid := range sent {
		if !b.InMempool(txid) {
			t.Fatalf("%s is not in the mempool", txid)
		}
	}
	block := r.Mine(1)[0]
	if len(block.Transactions) != 1+len(sent) {
		t.Fatalf("block has %d transactions, want coinbase and %d", len(block.Transactions), len(sent))
	}
	for _, txid := range sent {
		if c := b.Confirmations(txid); c != 1 {
			t.Fatalf("%s has %d confirmations, want 1", txid, c)
		}
	}
	checkWalletMatchesNode(t, r)

	// A reorganisation: the block confirming a payment is invalidated, the
	// payment returns to the mempool, and a longer branch confirms it.
	pay := r.Pay(w.NewScript(P2SHP2WPKH).TxOut(coin))
	payID := pay.TxHash()
	old := r.Mine(1)[0]
	oldHeight := w.Height()
	oldCoinbase := wire.OutPoint{Hash: old.Transactions[0].TxHash(), Index: 0}
	if _, ok := w.UTXO(oldCoinbase); !ok {
		t.Fatal("wallet does not see the coinbase output of the block to be replaced")
	}
	r.Invalidate(old.BlockHash())
	if w.Height() != oldHeight-1 {
		t.Fatalf("after invalidateblock the wallet is at %d, want %d", w.Height(), oldHeight-1)
	}
	if _, ok := w.UTXO(oldCoinbase); ok {
		t.Fatal("wallet still has the coinbase output of the invalidated block")
	}
	if !b.InMempool(payID) {
		t.Fatal("payment did not return to the mempool")
	}
	if u := mustUTXO(t, w, wire.OutPoint{Hash: payID, Index: 0}); u.Height != 0 {
		t.Fatalf("payment output at height %d after the reorganisation, want unconfirmed", u.Height)
	}
	r.Mine(2)
	if c := b.Confirmations(payID); c != 2 {
		t.Fatalf("payment has %d confirmations on the new branch, want 2", c)
	}
	if w.TipHash() == old.BlockHash() || w.Height() != oldHeight+1 {
		t.Fatalf("wallet at %d %s, want the new branch at %d", w.Height(), w.TipHash(), oldHeight+1)
	}
	checkWalletMatchesNode(t, r)

	// A busy script: paid three times, once while its earlier outputs
	// are unconfirmed, then emptied by one transaction across a deeper
	// reorganisation.
	busy := w.NewScript(P2WPKH)
	for range 3 {
		r.Pay(busy.TxOut(coin))
	}
	r.Mine(1)
	var onBusy []*UTXO
	for _, u := range w.UTXOs() {
		if u.Script == busy {
			onBusy = append(onBusy, u)
		}
	}
	if len(onBusy) != 3 {
		t.Fatalf("busy script has %d UTXOs, want 3", len(onBusy))
	}
	sweep := r.Send(TxRequest{Inputs: onBusy, NoSelect: true, Outputs: []*wire.TxOut{busy.TxOut(2 * coin)}})
	r.Mine(1)
	height := w.Height()
	r.Reorg(2, 3)
	if w.Height() != height+1 {
		t.Fatalf("after Reorg(2, 3) the wallet is at %d, want %d", w.Height(), height+1)
	}
	if c := b.Confirmations(sweep.TxHash()); c < 1 {
		t.Fatalf("sweep not confirmed again after the reorganisation")
	}
	checkWalletMatchesNode(t, r)
}

// checkWalletMatchesNode checks every confirmed wallet UTXO against btcd's
// UTXO set.
func checkWalletMatchesNode(t *testing.T, r *Regtest) {
	t.Helper()
	for _, u := range r.Wallet.UTXOs() {
		if u.Height == 0 {
			continue
		}
		res, err := r.Btcd.Client.GetTxOut(&u.OutPoint.Hash, u.OutPoint.Index, false)
		if err != nil {
			t.Fatalf("gettxout %v: %v", u.OutPoint, err)
		}
		if res == nil {
			t.Fatalf("wallet UTXO %v (%v) is not in btcd's UTXO set", u.OutPoint, u.Script.Kind)
		}
		if want := float64(u.Value) / coin; res.Value != want {
			t.Fatalf("UTXO %v is worth %v BTC to btcd, %v to the wallet", u.OutPoint, res.Value, want)
		}
	}
}

func mustUTXO(t *testing.T, w *Wallet, op wire.OutPoint) *UTXO {
	t.Helper()
	u, ok := w.UTXO(op)
	if !ok {
		t.Fatalf("wallet has no unspent output %v", op)
	}
	return u
}
