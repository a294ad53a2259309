package session

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"sync"
	"testing"

	"github.com/btcsuite/btcd/chainhash/v2"
	"github.com/btcsuite/btcd/wire/v2"

	"amber/internal/chain"
	"amber/internal/index"
	"amber/internal/store"
	"amber/internal/testenv"
	"amber/server/query"
)

// hubChain is an in-memory index with genesis and one block on it.
type hubChain struct {
	t    testing.TB
	ix   *index.Index
	b    *query.Backend
	tip  chainhash.Hash
	next int
	coin wire.OutPoint // an unspent coinbase output to pay from
}

func newHubChain(t testing.TB) *hubChain {
	net, _ := chain.Lookup("Bitcoin", "regtest")
	db, err := store.Open("", store.Options{InMemory: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	ix, err := index.Open(db, net, index.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var gbuf bytes.Buffer
	net.Params.GenesisBlock.Serialize(&gbuf)
	genesis, _ := chain.ParseBlock(gbuf.Bytes())
	c := &hubChain{t: t, ix: ix, b: query.NewBackend(ix, nil, nil, 1_000_000), tip: genesis.Hash, next: 1}
	c.connect(genesis)
	c.mine()
	return c
}

func (c *hubChain) connect(b *chain.Block) {
	w, err := c.ix.NewWriter()
	if err != nil {
		c.t.Fatal(err)
	}
	if err := w.Connect(b); err != nil {
		c.t.Fatal(err)
	}
	if err := w.Commit(true); err != nil {
		c.t.Fatal(err)
	}
}

// mine adds a block paying each script, spending the last coinbase; it
// returns the scripts' hashXs as a change.
func (c *hubChain) mine(scripts ...[]byte) map[chain.HashX]struct{} {
	var txs []*wire.MsgTx
	touched := map[chain.HashX]struct{}{}
	if len(scripts) > 0 {
		tx := wire.NewMsgTx(2)
		tx.AddTxIn(&wire.TxIn{PreviousOutPoint: c.coin})
		for _, s := range scripts {
			tx.AddTxOut(wire.NewTxOut(1000, s))
			touched[chain.HashXOf(s)] = struct{}{}
		}
		txs = append(txs, tx)
	}
	b := testenv.Block(c.t, c.tip, c.next, txs...)
	c.connect(b)
	c.tip, c.next = b.Hash, c.next+1
	c.coin = wire.OutPoint{Hash: b.Txs[0].TxID}
	c.b.BlocksTouched(b.Hash, touched)
	return touched
}

// recorder collects one session's notifications.
type recorder struct {
	mu    sync.Mutex
	notes []string
}

func (r *recorder) notify(method string, params any) {
	r.mu.Lock()
	r.notes = append(r.notes, fmt.Sprint(method, params))
	r.mu.Unlock()
}

func (r *recorder) take() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := r.notes
	r.notes = nil
	return n
}

// TestHubIndex: a change reaches the sessions subscribed to what it
// touched, through the hub's index by script; unsubscribing and ending a
// session leave nothing behind in the index.
func TestHubIndex(t *testing.T) {
	c := newHubChain(t)
	h := NewHub()
	log := slog.New(slog.DiscardHandler)
	scriptA, scriptB := []byte{0x51, 0x01}, []byte{0x51, 0x02}
	a, b := chain.HashXOf(scriptA), chain.HashXOf(scriptB)
	ctx := context.Background()

	var ra, rb, rboth recorder
	sa, sb, sboth := NewSubs(ra.notify, 0), NewSubs(rb.notify, 0), NewSubs(rboth.notify, 0)
	removeA, removeB := h.Add(sa), h.Add(sb)
	h.Add(sboth)
	for _, sub := range []struct {
		s  *Subs
		hx chain.HashX
	}{{sa, a}, {sb, b}, {sboth, a}, {sboth, b}} {
		if _, err := sub.s.SubscribeScript(ctx, c.b, sub.hx, "blockchain.scripthash.subscribe", fmt.Sprintf("%x", sub.hx[:2])); err != nil {
			t.Fatal(err)
		}
	}

	h.Broadcast(c.b, Change{Scripts: c.mine(scriptA)}, log)
	if n := ra.take(); len(n) != 1 {
		t.Errorf("subscriber of the paid script got %v, want one notification", n)
	}
	if n := rb.take(); len(n) != 0 {
		t.Errorf("subscriber of another script got %v", n)
	}
	if n := rboth.take(); len(n) != 1 {
		t.Errorf("subscriber of both got %v, want one notification", n)
	}

	// A headers change reaches headers subscribers only.
	if _, err := sb.SubscribeHeaders(ctx, func() (any, error) { return "tip", nil }); err != nil {
		t.Fatal(err)
	}
	h.Broadcast(c.b, Change{Header: &HeaderNotice{Height: 9}}, log)
	if na, nb := ra.take(), rb.take(); len(na) != 0 || len(nb) != 1 {
		t.Errorf("a new tip notified %v and %v, want only the headers subscriber", na, nb)
	}

	sa.UnsubscribeScript(a)
	h.Broadcast(c.b, Change{Scripts: c.mine(scriptA)}, log)
	if n := ra.take(); len(n) != 0 {
		t.Errorf("an unsubscribed session got %v", n)
	}
	if n := rboth.take(); len(n) != 1 {
		t.Errorf("the other subscriber got %v, want one notification", n)
	}

	removeA()
	sb.Release()
	removeB()
	sboth.Release()
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.scripts) != 0 || len(h.headers) != 0 || len(h.mempool) != 0 {
		t.Errorf("after every session ended the hub still indexes %d scripts, %d headers, %d mempool sessions",
			len(h.scripts), len(h.headers), len(h.mempool))
	}
}

// BenchmarkBroadcast is one notification round touching one script while
// 10,000 sessions hold 20 subscriptions each.
func BenchmarkBroadcast(b *testing.B) {
	c := newHubChain(b)
	h := NewHub()
	ctx := context.Background()
	log := slog.New(slog.DiscardHandler)
	var rec recorder
	for i := range 10_000 {
		s := NewSubs(rec.notify, 0)
		h.Add(s)
		for j := range 20 {
			hx := chain.HashX{byte(i), byte(i >> 8), byte(j)}
			if _, err := s.SubscribeScript(ctx, c.b, hx, "blockchain.scripthash.subscribe", "x"); err != nil {
				b.Fatal(err)
			}
		}
	}
	change := Change{Scripts: map[chain.HashX]struct{}{{7, 0, 3}: {}}}
	b.ResetTimer()
	for range b.N {
		h.Broadcast(c.b, change, log)
	}
}
