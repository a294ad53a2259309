package mempool

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/btcsuite/btcd/chainhash/v2"
	"github.com/btcsuite/btcd/wire/v2"

	"amber/internal/chain"
)

// checkTouched compares a Touched with the scripts (by number) and
// outpoints expected, as sets, and checks that both lists are sorted
// without duplicates.
func checkTouched(t *testing.T, got Touched, scripts []int, ops []wire.OutPoint) {
	t.Helper()
	want := map[chain.HashX]int{}
	for _, n := range scripts {
		want[hxOf(n)] = n
	}
	if !slices.IsSortedFunc(got.Scripts, func(a, b chain.HashX) int { return strings.Compare(string(a[:]), string(b[:])) }) {
		t.Errorf("touched scripts not sorted")
	}
	gotSet := map[chain.HashX]bool{}
	for _, hx := range got.Scripts {
		if gotSet[hx] {
			t.Errorf("touched script %s twice", hx)
		}
		gotSet[hx] = true
		if _, ok := want[hx]; !ok {
			t.Errorf("touched script %s, not expected", hx)
		}
	}
	for hx, n := range want {
		if !gotSet[hx] {
			t.Errorf("script %d not touched", n)
		}
	}
	wantOps := map[wire.OutPoint]bool{}
	for _, op := range ops {
		wantOps[op] = true
	}
	gotOps := map[wire.OutPoint]bool{}
	for _, op := range got.Outpoints {
		if gotOps[op] {
			t.Errorf("touched outpoint %v twice", op)
		}
		gotOps[op] = true
		if !wantOps[op] {
			t.Errorf("touched outpoint %v, not expected", op)
		}
	}
	for op := range wantOps {
		if !gotOps[op] {
			t.Errorf("outpoint %v not touched", op)
		}
	}
}

// entry is the expected history entry of a transaction.
func entry(tx *wire.MsgTx, height int32, fee int64) Entry {
	return Entry{TxID: tx.TxHash(), Height: height, Fee: fee, VSize: int64(tx.SerializeSize())}
}

func checkHistory(t *testing.T, m *Mempool, n int, want ...Entry) {
	t.Helper()
	got := m.History(hxOf(n))
	if len(want) == 0 {
		want = []Entry{}
	}
	if !slices.Equal(got, want) {
		t.Errorf("History(script %d):\n got %+v\nwant %+v", n, got, want)
	}
}

func TestRefreshAddsAndQueries(t *testing.T) {
	e := newEnv(t, Options{})
	a := e.fund(1, 100_000)
	b := e.fund(1, 50_000)
	c := e.fund(5, 7_000) // confirmed, not spent by the mempool
	tx1 := e.newTx([]wire.OutPoint{a, b}, out(2, 60_000), out(1, 80_000), wire.NewTxOut(0, opReturn))
	e.send(tx1)

	if _, ok := e.m.Tip(); ok {
		t.Fatal("Tip ok before the first refresh")
	}
	touched := e.refresh()
	checkTouched(t, touched, []int{1, 2}, outpoints(tx1))

	id := tx1.TxHash()
	want := entry(tx1, 0, 10_000)
	checkHistory(t, e.m, 1, want)
	checkHistory(t, e.m, 2, want)
	checkHistory(t, e.m, 5)
	if got := e.m.Balance(hxOf(1)); got != 80_000-150_000 {
		t.Errorf("Balance(1) = %d, want %d", got, 80_000-150_000)
	}
	if got := e.m.Balance(hxOf(2)); got != 60_000 {
		t.Errorf("Balance(2) = %d, want 60000", got)
	}
	if got := e.m.Balance(hxOf(5)); got != 0 {
		t.Errorf("Balance(5) = %d, want 0", got)
	}
	if got, want := e.m.UTXOs(hxOf(1)), []UTXO{{OutPoint: wire.OutPoint{Hash: id, Index: 1}, Value: 80_000}}; !slices.Equal(got, want) {
		t.Errorf("UTXOs(1) = %v, want %v", got, want)
	}
	if got, want := e.m.UTXOs(hxOf(2)), []UTXO{{OutPoint: wire.OutPoint{Hash: id, Index: 0}, Value: 60_000}}; !slices.Equal(got, want) {
		t.Errorf("UTXOs(2) = %v, want %v", got, want)
	}
	for _, tc := range []struct {
		op    wire.OutPoint
		spent bool
	}{{a, true}, {b, true}, {c, false}, {wire.OutPoint{Hash: id}, false}} {
		if got := e.m.SpentInMempool(tc.op); got != tc.spent {
			t.Errorf("SpentInMempool(%v) = %v, want %v", tc.op, got, tc.spent)
		}
		s, ok := e.m.Spender(tc.op)
		if ok != tc.spent || (ok && s != want) {
			t.Errorf("Spender(%v) = %+v, %v", tc.op, s, ok)
		}
	}
	if raw, ok := e.m.Tx(id); !ok || hex.EncodeToString(raw) != hex.EncodeToString(serialize(t, tx1)) {
		t.Errorf("Tx(%s) = %x, %v", id, raw, ok)
	}
	if _, ok := e.m.Tx(a.Hash); ok {
		t.Error("Tx of a confirmed transaction")
	}
	if got, ok := e.m.Lookup(id); !ok || got != want {
		t.Errorf("Lookup = %+v, %v", got, ok)
	}
	if hx, v, ok := e.m.Output(wire.OutPoint{Hash: id, Index: 2}); !ok || v != 0 || hx != chain.HashXOf(opReturn) {
		t.Errorf("Output(OP_RETURN) = %s, %d, %v", hx, v, ok)
	}
	if hx, v, ok := e.m.Output(wire.OutPoint{Hash: id, Index: 0}); !ok || v != 60_000 || hx != hxOf(2) {
		t.Errorf("Output(0) = %s, %d, %v", hx, v, ok)
	}
	if _, _, ok := e.m.Output(wire.OutPoint{Hash: id, Index: 3}); ok {
		t.Error("Output beyond the last output")
	}
	if e.m.Size() != 1 || e.m.VSize() != int64(tx1.SerializeSize()) || e.m.Fees() != 10_000 {
		t.Errorf("Size, VSize, Fees = %d, %d, %d", e.m.Size(), e.m.VSize(), e.m.Fees())
	}
	if tip, ok := e.m.Tip(); !ok || tip != e.o.Tip() {
		t.Errorf("Tip = %+v, %v, want %+v", tip, ok, e.o.Tip())
	}
	if got := e.m.Recent(10); !slices.Equal(got, []Entry{want}) {
		t.Errorf("Recent = %+v", got)
	}

	// Nothing changed: nothing touched, nothing fetched again.
	gen := e.m.Generation()
	checkTouched(t, e.refresh(), nil, nil)
	if e.d.fetched[id] != 1 {
		t.Errorf("tx fetched %d times", e.d.fetched[id])
	}
	if e.m.Generation() != gen {
		t.Error("Generation moved without a change")
	}

	// It leaves the daemon's mempool.
	e.drop(tx1)
	checkTouched(t, e.refresh(), []int{1, 2}, outpoints(tx1))
	checkHistory(t, e.m, 1)
	if e.m.Size() != 0 || e.m.VSize() != 0 || e.m.Fees() != 0 || e.m.SpentInMempool(a) || e.m.Balance(hxOf(1)) != 0 {
		t.Error("view not empty after the transaction left")
	}
	if e.m.Generation() == gen {
		t.Error("Generation did not move")
	}
	if got := e.m.Recent(10); len(got) != 0 {
		t.Errorf("Recent = %+v after removal", got)
	}
}

// TestChains sends a chain of unconfirmed transactions listed in various
// orders: all of it enters in one refresh, the first with height 0 and
// the rest -1.
func TestChains(t *testing.T) {
	const n = 30
	orders := map[string]func([]*wire.MsgTx) []*wire.MsgTx{
		"parents first":  func(c []*wire.MsgTx) []*wire.MsgTx { return c },
		"children first": func(c []*wire.MsgTx) []*wire.MsgTx { c = slices.Clone(c); slices.Reverse(c); return c },
		"shuffled": func(c []*wire.MsgTx) []*wire.MsgTx {
			c = slices.Clone(c)
			r := rand.New(rand.NewPCG(1, 2))
			r.Shuffle(len(c), func(i, j int) { c[i], c[j] = c[j], c[i] })
			return c
		},
	}
	for name, order := range orders {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t, Options{})
			prev := e.fund(1, 1_000_000)
			value := int64(1_000_000)
			var chainTxs []*wire.MsgTx
			for i := range n {
				value -= 100
				tx := e.newTx([]wire.OutPoint{prev}, out(10+i, value))
				chainTxs = append(chainTxs, tx)
				prev = wire.OutPoint{Hash: tx.TxHash()}
			}
			e.send(order(chainTxs)...)
			scripts := []int{1}
			for i := range n {
				scripts = append(scripts, 10+i)
			}
			checkTouched(t, e.refresh(), scripts, outpoints(chainTxs...))
			if e.m.Size() != n || e.m.Unresolved() != 0 {
				t.Fatalf("Size %d, Unresolved %d", e.m.Size(), e.m.Unresolved())
			}
			checkHistory(t, e.m, 1, entry(chainTxs[0], 0, 100))
			for i := range n {
				want := []Entry{entry(chainTxs[i], -1, 100)}
				if i == 0 {
					want[0].Height = 0
				}
				bal := int64(0)
				if i+1 < n {
					want = append(want, entry(chainTxs[i+1], -1, 100))
					SortCanonical(want)
				} else {
					bal = value
				}
				checkHistory(t, e.m, 10+i, want...)
				if got := e.m.Balance(hxOf(10 + i)); got != bal {
					t.Errorf("Balance(%d) = %d, want %d", 10+i, got, bal)
				}
				if got := len(e.m.UTXOs(hxOf(10 + i))); got != int(min(bal, 1)) {
					t.Errorf("UTXOs(%d) has %d entries", 10+i, got)
				}
			}
			if e.m.Fees() != 100*n {
				t.Errorf("Fees = %d", e.m.Fees())
			}
		})
	}
}

// TestParentConfirmed mines the parent of a chain: the child's height goes
// from -1 to 0, the parent leaves, and an unrelated transaction is neither
// touched nor read from the index again.
func TestParentConfirmed(t *testing.T) {
	e := newEnv(t, Options{})
	a := e.fund(1, 100_000)
	other := e.newTx([]wire.OutPoint{e.fund(8, 5_000)}, out(9, 4_000))
	parent := e.newTx([]wire.OutPoint{a}, out(2, 90_000))
	child := e.newTx([]wire.OutPoint{{Hash: parent.TxHash()}}, out(3, 85_000))
	e.send(other, parent, child)
	e.refresh()
	checkHistory(t, e.m, 3, entry(child, -1, 5_000))
	checkHistory(t, e.m, 2, entry(parent, 0, 10_000), entry(child, -1, 5_000))

	e.mine(parent)
	reads := e.o.reads
	touched := e.refresh()
	// The parent's scripts (it left) and the child's (its height changed).
	checkTouched(t, touched, []int{1, 2, 3}, outpoints(parent, child))
	if got := e.o.reads - reads; got != 1 {
		t.Errorf("%d index reads after the block, want 1 (the child's input)", got)
	}
	checkHistory(t, e.m, 2, entry(child, 0, 5_000))
	checkHistory(t, e.m, 3, entry(child, 0, 5_000))
	checkHistory(t, e.m, 1)
	checkHistory(t, e.m, 9, entry(other, 0, 1_000))
	if _, ok := e.m.Lookup(parent.TxHash()); ok {
		t.Error("mined parent still in the view")
	}
	if got := e.m.Balance(hxOf(2)); got != -90_000 {
		t.Errorf("Balance(2) = %d, want -90000", got)
	}
	if !e.m.SpentInMempool(wire.OutPoint{Hash: parent.TxHash()}) {
		t.Error("the confirmed parent's output is not spent in the mempool")
	}

	// Another block that confirms nothing of ours changes nothing.
	e.mine()
	checkTouched(t, e.refresh(), nil, nil)
}

// TestReorgReturnsParent disconnects the block of a confirmed parent, which
// returns to the mempool: its child goes from height 0 to -1.
func TestReorgReturnsParent(t *testing.T) {
	e := newEnv(t, Options{})
	a := e.fund(1, 100_000)
	parent := e.newTx([]wire.OutPoint{a}, out(2, 90_000))
	e.send(parent)
	e.refresh()
	e.mine(parent)
	child := e.newTx([]wire.OutPoint{{Hash: parent.TxHash()}}, out(3, 85_000))
	e.send(child)
	checkTouched(t, e.refresh(), []int{1, 2, 3}, outpoints(parent, child))
	checkHistory(t, e.m, 3, entry(child, 0, 5_000))

	// The block is replaced by one without the parent.
	e.o.mu.Lock()
	delete(e.o.utxos, wire.OutPoint{Hash: parent.TxHash()})
	e.o.utxos[a] = fakeOut{hx: hxOf(1), value: 100_000}
	e.o.mu.Unlock()
	e.setTip(e.height)
	e.send(parent)
	checkTouched(t, e.refresh(), []int{1, 2, 3}, outpoints(parent, child))
	checkHistory(t, e.m, 2, entry(parent, 0, 10_000), entry(child, -1, 5_000))
	checkHistory(t, e.m, 3, entry(child, -1, 5_000))
}

// TestUnresolvedRetried covers transactions whose inputs cannot be resolved
// yet: they stay out of the view, are not fetched again, and enter once
// their parent does.
func TestUnresolvedRetried(t *testing.T) {
	t.Run("parent listed later", func(t *testing.T) {
		e := newEnv(t, Options{})
		parent := e.newTx([]wire.OutPoint{e.fund(1, 100_000)}, out(2, 90_000))
		child := e.newTx([]wire.OutPoint{{Hash: parent.TxHash()}}, out(3, 85_000))
		e.send(child)
		checkTouched(t, e.refresh(), nil, nil)
		checkHistory(t, e.m, 3)
		if e.m.Unresolved() != 1 || e.m.Size() != 0 {
			t.Fatalf("Unresolved %d, Size %d", e.m.Unresolved(), e.m.Size())
		}
		checkTouched(t, e.refresh(), nil, nil)
		e.send(parent)
		checkTouched(t, e.refresh(), []int{1, 2, 3}, outpoints(parent, child))
		checkHistory(t, e.m, 3, entry(child, -1, 5_000))
		if e.m.Unresolved() != 0 || e.m.Size() != 2 {
			t.Errorf("Unresolved %d, Size %d", e.m.Unresolved(), e.m.Size())
		}
		if n := e.d.fetched[child.TxHash()]; n != 1 {
			t.Errorf("child fetched %d times", n)
		}
	})
	t.Run("confirmed output indexed later", func(t *testing.T) {
		e := newEnv(t, Options{})
		op := wire.OutPoint{Hash: chainhash.Hash{7}, Index: 3}
		tx := e.newTx([]wire.OutPoint{op}, out(3, 85_000))
		e.send(tx)
		e.refresh()
		if e.m.Unresolved() != 1 || e.m.Size() != 0 {
			t.Fatalf("Unresolved %d, Size %d", e.m.Unresolved(), e.m.Size())
		}
		e.o.mu.Lock()
		e.o.utxos[op] = fakeOut{hx: hxOf(1), value: 90_000}
		e.o.mu.Unlock()
		checkTouched(t, e.refresh(), []int{1, 3}, outpoints(tx))
		checkHistory(t, e.m, 1, entry(tx, 0, 5_000))
	})
	t.Run("dropped while unresolved", func(t *testing.T) {
		e := newEnv(t, Options{})
		tx := e.newTx([]wire.OutPoint{{Hash: chainhash.Hash{7}}}, out(3, 85_000))
		e.send(tx)
		e.refresh()
		e.drop(tx)
		checkTouched(t, e.refresh(), nil, nil)
		if e.m.Unresolved() != 0 {
			t.Errorf("Unresolved %d", e.m.Unresolved())
		}
	})
	t.Run("parent vanished", func(t *testing.T) {
		// The parent is listed but gone by the time it is fetched; the
		// child waits, and goes when the daemon stops listing it.
		e := newEnv(t, Options{})
		parent := e.newTx([]wire.OutPoint{e.fund(1, 100_000)}, out(2, 90_000))
		child := e.newTx([]wire.OutPoint{{Hash: parent.TxHash()}}, out(3, 85_000))
		lone := e.newTx([]wire.OutPoint{e.fund(4, 10_000)}, out(5, 9_000))
		e.send(parent, child, lone)
		e.d.mu.Lock()
		delete(e.d.raw, parent.TxHash())
		e.d.mu.Unlock()
		checkTouched(t, e.refresh(), []int{4, 5}, outpoints(lone))
		if e.m.Size() != 1 || e.m.Unresolved() != 1 {
			t.Fatalf("Size %d, Unresolved %d", e.m.Size(), e.m.Unresolved())
		}
		// Still listed: the parent is asked for again, the child is not.
		checkTouched(t, e.refresh(), nil, nil)
		if e.d.fetched[child.TxHash()] != 1 {
			t.Errorf("child fetched %d times", e.d.fetched[child.TxHash()])
		}
		e.drop(parent, child)
		checkTouched(t, e.refresh(), nil, nil)
		if e.m.Unresolved() != 0 || e.d.fetched[parent.TxHash()] != 2 {
			t.Errorf("Unresolved %d, parent fetched %d times", e.m.Unresolved(), e.d.fetched[parent.TxHash()])
		}
	})
}

// TestReplaced replaces a transaction with a chain below it by a
// conflicting one, as replace-by-fee does.
func TestReplaced(t *testing.T) {
	e := newEnv(t, Options{})
	a := e.fund(1, 100_000)
	tx1 := e.newTx([]wire.OutPoint{a}, out(2, 90_000))
	tx2 := e.newTx([]wire.OutPoint{{Hash: tx1.TxHash()}}, out(3, 85_000))
	e.send(tx1, tx2)
	e.refresh()

	e.drop(tx1, tx2)
	tx1b := e.newTx([]wire.OutPoint{a}, out(4, 80_000))
	e.send(tx1b)
	checkTouched(t, e.refresh(), []int{1, 2, 3, 4}, outpoints(tx1, tx2, tx1b))
	checkHistory(t, e.m, 1, entry(tx1b, 0, 20_000))
	checkHistory(t, e.m, 2)
	checkHistory(t, e.m, 3)
	checkHistory(t, e.m, 4, entry(tx1b, 0, 20_000))
	if s, ok := e.m.Spender(a); !ok || s.TxID != tx1b.TxHash() {
		t.Errorf("Spender(a) = %+v, %v", s, ok)
	}
	if e.m.SpentInMempool(wire.OutPoint{Hash: tx1.TxHash()}) {
		t.Error("output of the replaced transaction still spent")
	}
	if e.m.Size() != 1 || e.m.Fees() != 20_000 {
		t.Errorf("Size %d, Fees %d", e.m.Size(), e.m.Fees())
	}
}

// TestTouchedExact checks, step by step, that exactly the scripts of the
// transactions that changed are reported.
func TestTouchedExact(t *testing.T) {
	e := newEnv(t, Options{})
	txA := e.newTx([]wire.OutPoint{e.fund(1, 10_000)}, out(2, 9_000))
	txB := e.newTx([]wire.OutPoint{e.fund(3, 10_000)}, out(4, 9_000), out(2, 500))
	txC := e.newTx([]wire.OutPoint{e.fund(5, 10_000)}, out(6, 9_000))
	steps := []struct {
		name    string
		do      func()
		scripts []int
		ops     []wire.OutPoint
	}{
		{"add A", func() { e.send(txA) }, []int{1, 2}, outpoints(txA)},
		{"add B and C", func() { e.send(txB, txC) }, []int{2, 3, 4, 5, 6}, outpoints(txB, txC)},
		{"nothing", func() {}, nil, nil},
		{"drop B", func() { e.drop(txB) }, []int{2, 3, 4}, outpoints(txB)},
		{"mine C", func() { e.mine(txC) }, []int{5, 6}, outpoints(txC)},
		{"empty block", func() { e.mine() }, nil, nil},
		{"mine A", func() { e.mine(txA) }, []int{1, 2}, outpoints(txA)},
	}
	for _, s := range steps {
		s.do()
		got := e.refresh()
		t.Run(s.name, func(t *testing.T) { checkTouched(t, got, s.scripts, s.ops) })
	}
}

// TestNotSynced refreshes while the index and the daemon disagree: the
// view stays as it was, and fetched transactions are kept for the next
// refresh.
func TestNotSynced(t *testing.T) {
	e := newEnv(t, Options{})
	tx1 := e.newTx([]wire.OutPoint{e.fund(1, 10_000)}, out(2, 9_000))
	e.send(tx1)
	e.refresh()
	tip, _ := e.m.Tip()
	tx2 := e.newTx([]wire.OutPoint{e.fund(3, 10_000)}, out(4, 9_000))
	e.send(tx2)

	check := func(t *testing.T) {
		t.Helper()
		_, err := e.m.Refresh(context.Background())
		if !errors.Is(err, ErrNotSynced) {
			t.Fatalf("Refresh: %v, want ErrNotSynced", err)
		}
		if got, _ := e.m.Tip(); got != tip || e.m.Size() != 1 {
			t.Errorf("view changed: tip %+v, size %d", got, e.m.Size())
		}
	}
	t.Run("daemon ahead", func(t *testing.T) {
		e.d.mu.Lock()
		saved := e.d.tip
		e.d.tip = chainhash.Hash{1}
		e.d.mu.Unlock()
		check(t)
		e.d.mu.Lock()
		e.d.tip = saved
		e.d.mu.Unlock()
	})
	t.Run("daemon moved while listing", func(t *testing.T) {
		e.d.afterList = func() {
			e.d.mu.Lock()
			e.d.tip[0]++
			e.d.mu.Unlock()
		}
		check(t)
		e.d.afterList = nil
		e.d.mu.Lock()
		e.d.tip[0]--
		e.d.mu.Unlock()
	})
	t.Run("index moved during refresh", func(t *testing.T) {
		saved := e.o.Tip()
		e.d.afterList = func() {
			e.o.mu.Lock()
			e.o.tip.Hash[0]++
			e.o.mu.Unlock()
		}
		check(t)
		e.d.afterList = nil
		e.o.mu.Lock()
		e.o.tip = saved
		e.o.mu.Unlock()
		if e.m.Unresolved() != 1 {
			t.Errorf("fetched transaction not kept: Unresolved %d", e.m.Unresolved())
		}
	})
	checkTouched(t, e.refresh(), []int{3, 4}, outpoints(tx2))
	if n := e.d.fetched[tx2.TxHash()]; n != 1 {
		t.Errorf("tx2 fetched %d times", n)
	}
}

// TestErrors covers daemon and index failures and transactions that do
// not decode.
func TestErrors(t *testing.T) {
	e := newEnv(t, Options{})
	tx1 := e.newTx([]wire.OutPoint{e.fund(1, 10_000)}, out(2, 9_000))
	e.send(tx1)

	boom := errors.New("boom")
	e.d.listErr = boom
	if _, err := e.m.Refresh(context.Background()); !errors.Is(err, boom) {
		t.Errorf("list error: %v", err)
	}
	e.d.listErr = nil
	e.d.fetchErr = boom
	if _, err := e.m.Refresh(context.Background()); !errors.Is(err, boom) {
		t.Errorf("fetch error: %v", err)
	}
	e.d.fetchErr = nil
	e.o.err = boom
	if _, err := e.m.Refresh(context.Background()); !errors.Is(err, boom) {
		t.Errorf("index error: %v", err)
	}
	e.o.err = nil
	if e.m.Size() != 0 {
		t.Fatal("view changed by failed refreshes")
	}

	// Garbage and a transaction under another txid are skipped.
	garbage := chainhash.Hash{0xde, 0xad}
	liar := chainhash.Hash{0xbe, 0xef}
	e.d.mu.Lock()
	e.d.raw[garbage] = []byte{1, 2, 3}
	e.d.raw[liar] = serialize(t, tx1)
	e.d.listed = append(e.d.listed, garbage, liar, tx1.TxHash()) // tx1 listed twice
	e.d.mu.Unlock()
	checkTouched(t, e.refresh(), []int{1, 2}, outpoints(tx1))
	if e.m.Size() != 1 || e.m.Unresolved() != 0 {
		t.Errorf("Size %d, Unresolved %d", e.m.Size(), e.m.Unresolved())
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	e.d.slow = time.Second
	e.send(e.newTx([]wire.OutPoint{e.fund(3, 10_000)}, out(4, 9_000)))
	if _, err := e.m.Refresh(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled refresh: %v", err)
	}
}

// TestManyTxs loads thousands of transactions, chains among them listed
// children first, in bounded concurrent batches.
func TestManyTxs(t *testing.T) {
	e := newEnv(t, Options{FetchChunk: 100, FetchConcurrency: 3})
	e.d.slow = time.Millisecond
	var all []*wire.MsgTx
	for i := range 1000 {
		all = append(all, e.newTx([]wire.OutPoint{e.fund(i, 10_000)}, out(100_000+i, 9_000)))
	}
	for c := range 100 {
		prev := e.fund(200_000+c, 100_000)
		var chainTxs []*wire.MsgTx
		for i := range 20 {
			tx := e.newTx([]wire.OutPoint{prev}, out(300_000+c*20+i, 100_000-int64(i+1)*200))
			chainTxs = append(chainTxs, tx)
			prev = wire.OutPoint{Hash: tx.TxHash()}
		}
		slices.Reverse(chainTxs)
		all = append(all, chainTxs...)
	}
	e.send(all...)
	touched := e.refresh()
	if e.m.Size() != 3000 || e.m.Unresolved() != 0 {
		t.Fatalf("Size %d, Unresolved %d", e.m.Size(), e.m.Unresolved())
	}
	if len(touched.Scripts) != 1000*2+100*21 {
		t.Errorf("%d scripts touched", len(touched.Scripts))
	}
	if e.d.batches != 30 || e.d.peak > 3 {
		t.Errorf("%d batches, %d at once", e.d.batches, e.d.peak)
	}
	if got := e.m.Fees(); got != 1000*1000+100*20*200 {
		t.Errorf("Fees = %d", got)
	}
	// The tail of chain 7 has 19 unconfirmed ancestors.
	if h := e.m.History(hxOf(300_000 + 7*20 + 19)); len(h) != 1 || h[0].Height != -1 {
		t.Errorf("chain tail history %+v", h)
	}

	// Half of the independent ones are mined.
	e.mine(all[:500]...)
	if got := e.refresh(); len(got.Scripts) != 1000 {
		t.Errorf("%d scripts touched by the block", len(got.Scripts))
	}
	if e.m.Size() != 2500 {
		t.Errorf("Size %d", e.m.Size())
	}
}

// TestSpecStatusOrder checks the canonical order with the spec's worked
// example (PROTOCOL.md 12.5): sorting its mempool entries and hashing the
// history reproduces the spec's status.
func TestSpecStatusOrder(t *testing.T) {
	mk := func(s string, height int32, fee int64) Entry {
		h, err := chain.ParseHash(s)
		if err != nil {
			t.Fatal(err)
		}
		return Entry{TxID: h, Height: height, Fee: fee}
	}
	mempool := []Entry{
		mk("bb4c8ab438c13b89ca80d1d5bee25b0b6b7f55673f4d801998ba97db161d9e85", -1, 200),
		mk("e02a1dadfa83b996b24175df807b271ea5d02937ef5b35c195fac1e1bdc3198f", 0, 300),
		mk("80b19848aed792565ab7c5a79b7c2a00fbf985741579396ebe0ab6098e607311", 0, 200),
	}
	SortCanonical(mempool)
	var order []string
	for _, e := range mempool {
		order = append(order, e.TxID.String()[:4])
	}
	if got := strings.Join(order, " "); got != "80b1 e02a bb4c" {
		t.Fatalf("order %s, want 80b1 e02a bb4c", got)
	}
	preimage := "a6c9c361bd0bc536d6a22648efbf8f9b200e425ef6c3a7a9669dc444c532a347:2472:" +
		"9c42f84b2fcdaff676ba25d9d4941741cc0d1a01cce0c23fdc4c0b2afa38431c:2473:" +
		"770f2d4371b3fabb902dd9a103e2dd005fcd3971181078fca4a2a1d6ff127b30:2473:"
	for _, e := range mempool {
		preimage += e.TxID.String() + ":" + strconv.Itoa(int(e.Height)) + ":"
	}
	sum := sha256.Sum256([]byte(preimage))
	if got := hex.EncodeToString(sum[:]); got != "78e96c6562cafa71c115503b9411fdfdc595a45031e2ab76ff75162fe1b0590d" {
		t.Errorf("status %s", got)
	}
}

// TestHistoryOrderLikeSpec rebuilds the shape of the spec's example
// (12.5) through Refresh: two transactions spending confirmed outputs
// whose txids start 80 and e0, and one starting bb that spends the first,
// so it sorts last with height -1 although its txid sorts between them.
func TestHistoryOrderLikeSpec(t *testing.T) {
	e := newEnv(t, Options{})
	grind := func(prefix string, ins []wire.OutPoint, outs ...*wire.TxOut) *wire.MsgTx {
		for {
			tx := e.newTx(ins, outs...)
			if strings.HasPrefix(tx.TxHash().String(), prefix) {
				return tx
			}
		}
	}
	const me = 1
	tx80 := grind("80", []wire.OutPoint{e.fund(me, 10_000)}, out(me, 9_800))
	txE0 := grind("e0", []wire.OutPoint{e.fund(me, 20_000)}, out(me, 19_700))
	txBB := grind("bb", []wire.OutPoint{{Hash: tx80.TxHash()}}, out(me, 9_600))
	e.send(txBB, txE0, tx80)
	e.refresh()
	checkHistory(t, e.m, me, entry(tx80, 0, 200), entry(txE0, 0, 300), entry(txBB, -1, 200))
	if got := e.m.Balance(hxOf(me)); got != 9_600+19_700-30_000 {
		t.Errorf("Balance = %d", got)
	}
}

// TestConcurrentQueries runs queries while refreshes switch the view
// between two states; every query must see one state or the other,
// never a mix. Run with -race.
func TestConcurrentQueries(t *testing.T) {
	e := newEnv(t, Options{HistogramInterval: -1})
	const me = 1
	parent := e.newTx([]wire.OutPoint{e.fund(me, 100_000)}, out(2, 90_000))
	child := e.newTx([]wire.OutPoint{{Hash: parent.TxHash()}}, out(me, 85_000))
	other := e.newTx([]wire.OutPoint{e.fund(me, 50_000)}, out(3, 45_000))

	stateA := []Entry{entry(parent, 0, 10_000), entry(child, -1, 5_000)}
	SortCanonical(stateA)
	stateB := []Entry{entry(other, 0, 5_000)}
	balA, balB := int64(85_000-100_000), int64(-50_000)

	stop := make(chan struct{})
	var wg sync.WaitGroup
	errs := make(chan string, 4)
	for range 3 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				h := e.m.History(hxOf(me))
				if len(h) != 0 && !slices.Equal(h, stateA) && !slices.Equal(h, stateB) {
					errs <- "mixed history"
					return
				}
				if b := e.m.Balance(hxOf(me)); b != 0 && b != balA && b != balB {
					errs <- "mixed balance " + strconv.FormatInt(b, 10)
					return
				}
				u := e.m.UTXOs(hxOf(me))
				if len(u) > 1 {
					errs <- "mixed utxos"
					return
				}
				_ = e.m.FeeHistogram()
				_ = e.m.SpentInMempool(wire.OutPoint{Hash: parent.TxHash()})
				_, _ = e.m.Spender(wire.OutPoint{Hash: parent.TxHash()})
				_ = e.m.Recent(10)
				_, _ = e.m.Tx(parent.TxHash())
				_ = e.m.Size() + int(e.m.VSize()+e.m.Fees())
			}
		})
	}
	for i := range 200 {
		if i%2 == 0 {
			e.drop(other)
			e.send(parent, child)
		} else {
			e.drop(parent, child)
			e.send(other)
		}
		e.refresh()
	}
	close(stop)
	wg.Wait()
	select {
	case msg := <-errs:
		t.Fatal(msg)
	default:
	}
}
