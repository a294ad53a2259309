package server_test

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/btcsuite/btcd/wire/v2"

	"amber/internal/testenv"
)

// TestReorgNotifications replaces the top two blocks while clients are
// subscribed: txA pays script a in the first of them, txB spends that
// output and pays script b in the second. The new branch confirms both in
// its first block, so txB moves down one block. Subscribers hear of the
// new tip, of the new statuses of a and b (by scripthash at 1.6 and by
// scriptpubkey at 1.7) and of txB's output's new funding height; the
// answers follow the new branch.
func TestReorgNotifications(t *testing.T) {
	if testing.Short() {
		t.Skip("runs btcd and Bitcoin Core")
	}
	for _, d := range []string{"btcd", "core"} {
		t.Run(d, func(t *testing.T) { testReorgNotifications(t, d == "core") })
	}
}

func testReorgNotifications(t *testing.T, core bool) {
	n := startNode(t, nodeOptions{core: core})
	r, bd := n.r, n.r.Node()

	a, b := r.Wallet.NewScript(testenv.P2WPKH), r.Wallet.NewScript(testenv.P2TR)
	shA, shB := shOf(a.PkScript), shOf(b.PkScript)
	txA := r.Pay(a.TxOut(80_000))
	hA := n.mine(t, 1)
	txB, _ := build(t, r, testenv.TxRequest{Inputs: []*testenv.UTXO{walletUTXO(t, r, wire.OutPoint{Hash: txA.TxHash()})}, NoSelect: true,
		Outputs: []*wire.TxOut{b.TxOut(50_000)}})
	r.Broadcast(txB)
	hB := n.mine(t, 1)
	if txHeight(t, bd, txA.TxHash()) != hA || txHeight(t, bd, txB.TxHash()) != hB {
		t.Fatal("transactions not where the test puts them")
	}

	c16 := dialTCP(t, n.tcp)
	c16.version("1.6")
	c16.call("blockchain.headers.subscribe")
	c17 := dialTCP(t, n.tcp)
	c17.version("1.7")
	eA := entry{TxHash: txA.TxHash().String(), Height: hA}
	eB := entry{TxHash: txB.TxHash().String(), Height: hB}
	if st := statusString(t, c16.call("blockchain.scripthash.subscribe", shA)); st != statusOf(eA, eB) {
		t.Fatalf("status of a before the reorg %s", st)
	}
	if st := statusString(t, c16.call("blockchain.scripthash.subscribe", shB)); st != statusOf(eB) {
		t.Fatalf("status of b before the reorg %s", st)
	}
	if st := statusString(t, c17.call("blockchain.scriptpubkey.subscribe", hex.EncodeToString(b.PkScript))); st != statusOf(eB) {
		t.Fatalf("1.7 status of b before the reorg %s", st)
	}
	outB := fmt.Sprintf("%q", txB.TxHash())
	if st := c17.call("blockchain.outpoint.subscribe", txB.TxHash().String(), 0, hex.EncodeToString(b.PkScript)); !jsonEqual(st, []byte(fmt.Sprintf(`{"funder_height":%d}`, hB))) {
		t.Fatalf("outpoint %s:0 before the reorg %s", outB, st)
	}

	// Blocks hA and hB are replaced by three new ones.
	r.Reorg(2, 3)
	tip := r.Height()
	newA, newB := txHeight(t, bd, txA.TxHash()), txHeight(t, bd, txB.TxHash())
	if tip != hB+1 || newA != hA || newB != hA {
		t.Fatalf("btcd after the reorg: tip %d, txA at %d, txB at %d", tip, newA, newB)
	}
	hdr, _ := btcdHeader(t, bd, tip)
	if got := c16.waitHeader(tip); got != hdr {
		t.Errorf("new tip notified as %s, want %s", got, hdr)
	}
	// Both in one block now: txA first, as txB spends it.
	eB.Height = newB
	c16.waitStatus("blockchain.scripthash.subscribe", shA, statusOf(eA, eB), 20*time.Second)
	c16.waitStatus("blockchain.scripthash.subscribe", shB, statusOf(eB), 20*time.Second)
	c17.waitStatus("blockchain.scriptpubkey.subscribe", shB, statusOf(eB), 20*time.Second)
	c17.waitOutpoint(txB.TxHash(), 0, fmt.Sprintf(`{"funder_height":%d}`, newB))

	// Answers come from the new branch.
	if raw := c16.call("blockchain.scripthash.get_history", shA); !jsonEqual(raw, mustJSON(t, []entry{eA, eB})) {
		t.Errorf("history of a after the reorg: %s", raw)
	}
	if raw := c16.call("blockchain.scripthash.get_history", shB); !jsonEqual(raw, mustJSON(t, []entry{eB})) {
		t.Errorf("history of b after the reorg: %s", raw)
	}
	for h := hA; h <= tip; h++ {
		want, _ := btcdHeader(t, bd, h)
		if got := get[string](c16, "blockchain.block.header", h); got != want {
			t.Errorf("header %d after the reorg %s, want %s", h, got, want)
		}
	}
	blk := btcdBlock(t, bd, newB)
	for pos, tx := range blk.Transactions {
		var m struct {
			Merkle []string `json:"merkle"`
			Pos    int      `json:"pos"`
		}
		json.Unmarshal(c16.call("blockchain.transaction.get_merkle", tx.TxHash().String(), newB), &m)
		if m.Pos != pos || foldBranch(t, tx.TxHash(), m.Merkle, pos) != blk.Header.MerkleRoot {
			t.Errorf("merkle proof of %s in the new block %d does not verify", tx.TxHash(), newB)
		}
	}
	c16.fails(1, fmt.Sprintf("not in block at height %d", hB), "blockchain.transaction.get_merkle", txB.TxHash().String(), hB)
}
