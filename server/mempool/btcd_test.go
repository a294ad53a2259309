package mempool

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"math"
	"slices"
	"testing"
	"time"

	"github.com/btcsuite/btcd/chainhash/v2"
	"github.com/btcsuite/btcd/wire/v2"

	"amber/internal/chain"
	"amber/internal/chainsync"
	"amber/internal/config"
	"amber/internal/daemon"
	"amber/internal/index"
	"amber/internal/store"
	"amber/internal/testenv"
)

// daemonSource feeds chainsync from the daemon client. (The builder has
// one, but server packages do not import the builder.)
type daemonSource struct{ c *daemon.Client }

func (s daemonSource) BestBlock(ctx context.Context) (int32, chainhash.Hash, error) {
	info, err := s.c.BlockchainInfo(ctx)
	if err != nil {
		return 0, chainhash.Hash{}, err
	}
	return int32(info.Blocks), info.BestBlockHash, nil
}

func (s daemonSource) BlockHashes(ctx context.Context, start int32, count int) ([]chainhash.Hash, error) {
	return s.c.BlockHashes(ctx, int(start), count)
}

func (s daemonSource) RawBlocks(ctx context.Context, hashes []chainhash.Hash) ([][]byte, error) {
	return s.c.RawBlocks(ctx, hashes)
}

// sent is a transaction the test broadcast, with the wallet outputs it
// spends.
type sent struct {
	tx     *wire.MsgTx
	prev   []*testenv.UTXO
	height int32 // expected mempool height
}

// model is a naive recomputation of what the mempool should show for a
// script, from the transactions sent.
type model struct {
	history []Entry
	balance int64
	utxos   []UTXO
}

func buildModel(txs []sent) map[chain.HashX]*model {
	spent := map[wire.OutPoint]bool{}
	for _, s := range txs {
		for _, in := range s.tx.TxIn {
			spent[in.PreviousOutPoint] = true
		}
	}
	out := map[chain.HashX]*model{}
	get := func(pk []byte) *model {
		hx := chain.HashXOf(pk)
		if out[hx] == nil {
			out[hx] = &model{}
		}
		return out[hx]
	}
	for _, s := range txs {
		var fee int64
		touched := map[*model]bool{}
		for _, u := range s.prev {
			m := get(u.Script.PkScript)
			m.balance -= u.Value
			touched[m] = true
			fee += u.Value
		}
		for i, o := range s.tx.TxOut {
			fee -= o.Value
			if !chain.IsIndexed(o.PkScript) {
				continue
			}
			m := get(o.PkScript)
			m.balance += o.Value
			touched[m] = true
			op := wire.OutPoint{Hash: s.tx.TxHash(), Index: uint32(i)}
			if !spent[op] {
				m.utxos = append(m.utxos, UTXO{OutPoint: op, Value: o.Value})
			}
		}
		for m := range touched {
			m.history = append(m.history, Entry{TxID: s.tx.TxHash(), Height: s.height, Fee: fee})
		}
	}
	return out
}

// TestBtcd runs the mempool against a real regtest btcd, the real daemon
// client and a real index: payments to every script kind and a chain of
// unconfirmed transactions, then a block that confirms them all.
func TestBtcd(t *testing.T) {
	if testing.Short() {
		t.Skip("starts btcd; skipped with -short")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	r := testenv.StartRegtest(t, testenv.RegtestOptions{})
	r.Mine(101)
	w := r.Wallet

	urls, err := config.ParseDaemonURLs(r.Btcd.URL())
	if err != nil {
		t.Fatal(err)
	}
	client, err := daemon.New(urls, daemon.Options{})
	if err != nil {
		t.Fatal(err)
	}
	db, err := store.Open(t.TempDir(), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	net, err := chain.Lookup("Bitcoin", "regtest")
	if err != nil {
		t.Fatal(err)
	}
	ix, err := index.Open(db, net, index.Options{})
	if err != nil {
		t.Fatal(err)
	}
	syncer := chainsync.New(ix, daemonSource{client}, chainsync.Options{})
	if _, err := syncer.SyncToTip(ctx); err != nil {
		t.Fatal(err)
	}
	m := New(client, ix, Options{})
	if tc, err := m.Refresh(ctx); err != nil || !tc.Empty() || m.Size() != 0 {
		t.Fatalf("first refresh: %+v, %v, size %d", tc, err, m.Size())
	}

	// tx1 pays every script kind and an OP_RETURN from confirmed coinbase
	// outputs.
	var scripts []*testenv.Script
	var outs []*wire.TxOut
	for i, kind := range testenv.AllKinds() {
		s := w.NewScript(kind)
		scripts = append(scripts, s)
		outs = append(outs, s.TxOut(100_000_000+int64(i)*1000))
	}
	outs = append(outs, testenv.NullDataOutput([]byte("amber")))
	send := func(req testenv.TxRequest, height int32) sent {
		t.Helper()
		tx, prev, err := w.BuildTx(req)
		if err != nil {
			t.Fatal(err)
		}
		r.Broadcast(tx)
		return sent{tx: tx, prev: prev, height: height}
	}
	tx1 := send(testenv.TxRequest{Outputs: outs}, 0)
	utxo := func(s sent, vout uint32) *testenv.UTXO {
		t.Helper()
		u, ok := w.UTXO(wire.OutPoint{Hash: s.tx.TxHash(), Index: vout})
		if !ok {
			t.Fatalf("no wallet output %s:%d", s.tx.TxHash(), vout)
		}
		return u
	}
	// tx2 spends tx1's P2PK and P2TR outputs; tx3 spends tx2's first
	// output to the P2PKH script again, which is then reused.
	busy := w.NewScript(testenv.P2WSHMultisig)
	tx2 := send(testenv.TxRequest{Inputs: []*testenv.UTXO{utxo(tx1, 0), utxo(tx1, 5)}, NoSelect: true,
		Outputs: []*wire.TxOut{busy.TxOut(150_000_000)}}, -1)
	tx3 := send(testenv.TxRequest{Inputs: []*testenv.UTXO{utxo(tx2, 0)}, NoSelect: true,
		Outputs: []*wire.TxOut{scripts[1].TxOut(120_000_000)}, FeeRate: 5}, -1)
	// tx4 is independent, spending confirmed outputs only.
	tx4 := send(testenv.TxRequest{Outputs: []*wire.TxOut{busy.TxOut(10_000_000)}}, 0)
	txs := []sent{tx1, tx2, tx3, tx4}
	want := buildModel(txs)
	t.Logf("%d scripts, height %d", len(want), ix.Tip().Height)
	if len(want) < 9 {
		t.Fatalf("model has %d scripts", len(want))
	}

	touched, err := m.Refresh(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(touched.Scripts) != len(want) {
		t.Errorf("%d scripts touched, want %d", len(touched.Scripts), len(want))
	}
	for _, hx := range touched.Scripts {
		if want[hx] == nil {
			t.Errorf("script %s touched, not paid or spent", hx)
		}
	}
	checkModel(t, m, want)

	// Fees and sizes agree with btcd's own accounting.
	raw, err := r.Btcd.Call("getrawmempool", true)
	if err != nil {
		t.Fatal(err)
	}
	var verbose map[string]struct {
		VSize int64   `json:"vsize"`
		Fee   float64 `json:"fee"`
	}
	if err := json.Unmarshal(raw, &verbose); err != nil {
		t.Fatal(err)
	}
	if len(verbose) != len(txs) || m.Size() != len(txs) {
		t.Fatalf("btcd holds %d transactions, the view %d", len(verbose), m.Size())
	}
	var vsize, fees int64
	for id, v := range verbose {
		h, err := chain.ParseHash(id)
		if err != nil {
			t.Fatal(err)
		}
		e, ok := m.Lookup(h)
		fee := int64(math.Round(v.Fee * 1e8))
		if !ok || e.VSize != v.VSize || e.Fee != fee {
			t.Errorf("%s: view %+v, %v; btcd vsize %d fee %d", id, e, ok, v.VSize, fee)
		}
		vsize += v.VSize
		fees += fee
	}
	if m.VSize() != vsize || m.Fees() != fees {
		t.Errorf("VSize %d, Fees %d; btcd %d, %d", m.VSize(), m.Fees(), vsize, fees)
	}
	for _, s := range txs {
		if got, ok := m.Tx(s.tx.TxHash()); !ok || string(got) != string(serialize(t, s.tx)) {
			t.Errorf("Tx(%s) differs", s.tx.TxHash())
		}
		for _, in := range s.tx.TxIn {
			if sp, ok := m.Spender(in.PreviousOutPoint); !ok || sp.TxID != s.tx.TxHash() {
				t.Errorf("Spender(%v) = %+v, %v", in.PreviousOutPoint, sp, ok)
			}
		}
	}

	// A block confirms everything. Until the index has it, the mempool
	// refuses to refresh.
	r.Mine(1)
	if _, err := m.Refresh(ctx); !errors.Is(err, ErrNotSynced) {
		t.Fatalf("refresh with the index behind: %v", err)
	}
	tip, err := syncer.SyncToTip(ctx)
	if err != nil {
		t.Fatal(err)
	}
	touched, err = m.Refresh(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(touched.Scripts) != len(want) || m.Size() != 0 || m.VSize() != 0 || m.Fees() != 0 {
		t.Errorf("after the block: %d scripts touched, size %d", len(touched.Scripts), m.Size())
	}
	if got, _ := m.Tip(); got != tip {
		t.Errorf("Tip %+v, want %+v", got, tip)
	}
	empty := map[chain.HashX]*model{}
	for hx := range want {
		empty[hx] = &model{}
	}
	checkModel(t, m, empty)
	// The index has them now, at the new height.
	for _, s := range txs {
		hx := chain.HashXOf(s.tx.TxOut[0].PkScript)
		items, _, err := ix.History(hx, 0)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.ContainsFunc(items, func(it index.HistoryItem) bool {
			return it.TxID == s.tx.TxHash() && it.Height == tip.Height
		}) {
			t.Errorf("%s not confirmed at %d in the index", s.tx.TxHash(), tip.Height)
		}
	}
}

func byOutPoint(a, b UTXO) int {
	if c := compareDisplay(&a.OutPoint.Hash, &b.OutPoint.Hash); c != 0 {
		return c
	}
	return cmp.Compare(a.OutPoint.Index, b.OutPoint.Index)
}

// checkModel compares the view of every script in want with the model.
func checkModel(t *testing.T, m *Mempool, want map[chain.HashX]*model) {
	t.Helper()
	for hx, w := range want {
		got := m.History(hx)
		for i := range got {
			got[i].VSize = 0 // checked against btcd separately
		}
		wantHist := slices.Clone(w.history)
		if wantHist == nil {
			wantHist = []Entry{}
		}
		SortCanonical(wantHist)
		if !slices.Equal(got, wantHist) {
			t.Errorf("History(%s):\n got %+v\nwant %+v", hx, got, wantHist)
		}
		if b := m.Balance(hx); b != w.balance {
			t.Errorf("Balance(%s) = %d, want %d", hx, b, w.balance)
		}
		gotU := m.UTXOs(hx)
		slices.SortFunc(gotU, byOutPoint)
		wantU := slices.Clone(w.utxos)
		slices.SortFunc(wantU, byOutPoint)
		if !slices.Equal(gotU, wantU) {
			t.Errorf("UTXOs(%s):\n got %+v\nwant %+v", hx, gotU, wantU)
		}
	}
}
