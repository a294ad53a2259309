package index

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/btcsuite/btcd/chainhash/v2"
	"github.com/btcsuite/btcd/wire/v2"

	"amber/internal/chain"
	"amber/internal/store"
	"amber/internal/testenv/naive"
)

func regtest(t testing.TB) *chain.Network {
	n, err := chain.Lookup("Bitcoin", "regtest")
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func openIndex(t testing.TB, net *chain.Network, reorgLimit int) (*store.DB, *Index) {
	t.Helper()
	db, err := store.Open("", store.Options{InMemory: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	ix, err := Open(db, net, Options{ReorgLimit: reorgLimit})
	if err != nil {
		t.Fatal(err)
	}
	return db, ix
}

// synth makes a chain of raw blocks for the index: coinbases and spends of
// earlier (and same-block) outputs across a set of scripts, a few of them
// busy, plus OP_RETURN outputs. Signatures and proof of work are not the
// index's business, so they are left out.
type synth struct {
	rng     *rand.Rand
	scripts [][]byte
	utxos   []wire.OutPoint
	values  map[wire.OutPoint]int64
	prev    chainhash.Hash
	maxTxs  int // spending transactions per block: 0 to maxTxs-1
}

func newSynth(seed uint64, genesis chainhash.Hash) *synth {
	s := &synth{rng: rand.New(rand.NewPCG(seed, 1)), values: map[wire.OutPoint]int64{}, prev: genesis, maxTxs: 6}
	for i := range 40 {
		s.scripts = append(s.scripts, append([]byte{0x00, 0x14}, sha256Bytes([]byte{byte(i)})[:20]...))
	}
	return s
}

func merkleRoot(level []chainhash.Hash) chainhash.Hash {
	for len(level) > 1 {
		if len(level)%2 == 1 {
			level = append(level, level[len(level)-1])
		}
		next := make([]chainhash.Hash, len(level)/2)
		for i := range next {
			next[i] = chainhash.DoubleHashH(append(level[2*i][:], level[2*i+1][:]...))
		}
		level = next
	}
	return level[0]
}

func sha256Bytes(b []byte) []byte { h := sha256.Sum256(b); return h[:] }

func (s *synth) script() []byte {
	// Zipf-like: script 0 and 1 are busy.
	if s.rng.IntN(3) == 0 {
		return s.scripts[s.rng.IntN(2)]
	}
	return s.scripts[s.rng.IntN(len(s.scripts))]
}

func (s *synth) block(height int32) *chain.Block {
	msg := wire.MsgBlock{Header: wire.BlockHeader{Version: 4, PrevBlock: s.prev, Timestamp: time.Unix(1_600_000_000+int64(height)*600, 0), Bits: 0x207fffff, Nonce: uint32(height)}}
	cb := wire.NewMsgTx(2)
	var hb [4]byte
	binary.LittleEndian.PutUint32(hb[:], uint32(height))
	cb.AddTxIn(&wire.TxIn{PreviousOutPoint: wire.OutPoint{Index: wire.MaxPrevOutIndex}, SignatureScript: append([]byte{4}, hb[:]...)})
	cb.AddTxOut(wire.NewTxOut(50e8, s.script()))
	msg.AddTransaction(cb)
	var pending []wire.OutPoint
	addOuts := func(tx *wire.MsgTx) {
		h := tx.TxHash()
		for i, o := range tx.TxOut {
			if chain.IsIndexed(o.PkScript) {
				op := wire.OutPoint{Hash: h, Index: uint32(i)}
				pending = append(pending, op)
				s.values[op] = o.Value
			}
		}
	}
	addOuts(cb)
	ntx := s.rng.IntN(s.maxTxs)
	for range ntx {
		pool := &s.utxos
		if s.rng.IntN(4) == 0 && len(pending) > 1 {
			pool = &pending // spend inside the block
		}
		if len(*pool) == 0 {
			break
		}
		tx := wire.NewMsgTx(2)
		var total int64
		for range 1 + s.rng.IntN(3) {
			if len(*pool) == 0 {
				break
			}
			i := s.rng.IntN(len(*pool))
			op := (*pool)[i]
			(*pool)[i] = (*pool)[len(*pool)-1]
			*pool = (*pool)[:len(*pool)-1]
			tx.AddTxIn(&wire.TxIn{PreviousOutPoint: op})
			total += s.values[op]
			delete(s.values, op)
		}
		n := 1 + s.rng.IntN(3)
		for range n {
			tx.AddTxOut(wire.NewTxOut(total/int64(n+1), s.script()))
		}
		if s.rng.IntN(5) == 0 {
			tx.AddTxOut(wire.NewTxOut(0, []byte{0x6a, 0x04, 'a', 'm', 'b', 'r'}))
		}
		msg.AddTransaction(tx)
		addOuts(tx)
	}
	s.utxos = append(s.utxos, pending...)
	var ids []chainhash.Hash
	for _, tx := range msg.Transactions {
		ids = append(ids, tx.TxHash())
	}
	msg.Header.MerkleRoot = merkleRoot(ids)
	return toBlock(&msg)
}

func toBlock(msg *wire.MsgBlock) *chain.Block {
	var buf bytes.Buffer
	if err := msg.Serialize(&buf); err != nil {
		panic(err)
	}
	b, err := chain.ParseBlock(buf.Bytes())
	if err != nil {
		panic(err)
	}
	return b
}

// genesisBlock is the real regtest genesis block.
func genesisBlock(net *chain.Network) *chain.Block {
	return toBlock(net.Params.GenesisBlock)
}

func makeChain(net *chain.Network, seed uint64, n int) []*chain.Block {
	return makeWideChain(net, seed, n, 6)
}

// makeWideChain is makeChain with up to maxTxs-1 spending transactions
// per block: above 16, blocks span several txid rows.
func makeWideChain(net *chain.Network, seed uint64, n, maxTxs int) []*chain.Block {
	blocks := []*chain.Block{genesisBlock(net)}
	s := newSynth(seed, blocks[0].Hash)
	s.maxTxs = maxTxs
	for h := int32(1); h < int32(n); h++ {
		b := s.block(h)
		s.prev = b.Hash
		blocks = append(blocks, b)
	}
	return blocks
}

func connectAll(t testing.TB, ix *Index, blocks []*chain.Block, perCommit int) {
	t.Helper()
	var w *Writer
	for i, b := range blocks {
		if w == nil {
			var err error
			if w, err = ix.NewWriter(); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.Connect(b); err != nil {
			t.Fatalf("connect block %d: %v", i, err)
		}
		if (i+1)%perCommit == 0 {
			if err := w.Commit(false); err != nil {
				t.Fatal(err)
			}
			w = nil
		}
	}
	if w != nil {
		if err := w.Commit(false); err != nil {
			t.Fatal(err)
		}
	}
}

// digest hashes every row of the DB but the undo records: two indexes of
// the same chain must agree byte for byte. Undo rows are left out because
// after a reorg of depth k the window of kept undo records is k blocks
// shorter until new blocks arrive.
func digest(t testing.TB, db *store.DB) string {
	t.Helper()
	d, err := digestRows(db, func(k []byte) bool { return k[0] == prefixUndo })
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func itoa(n int) string { return strconv.Itoa(n) }

func checkAgainstOracle(t *testing.T, ix *Index, o *naive.Result) {
	t.Helper()
	for _, hx := range o.Scripts() {
		items, more, err := ix.History(hx, 0)
		if err != nil || more {
			t.Fatalf("history %s: %v more=%v", hx, err, more)
		}
		want := o.History(hx)
		if len(items) != len(want) {
			t.Fatalf("history of %s: %d items, want %d", hx, len(items), len(want))
		}
		for i := range items {
			if items[i].Height != want[i].Height || items[i].TxID != want[i].TxID {
				t.Errorf("history of %s item %d: %d:%s, want %d:%s", hx, i, items[i].Height, items[i].TxID, want[i].Height, want[i].TxID)
			}
		}
		// A limit reads no more than it allows, and says so; a bounded
		// read past it returns nothing.
		if len(want) > 1 {
			lim := len(want) - 1
			if h, more, err := ix.History(hx, lim); err != nil || len(h) != lim || !more || h[lim-1].TxID != want[lim-1].TxID {
				t.Errorf("history of %s limited to %d: %d items (more %v, %v)", hx, lim, len(h), more, err)
			}
			if h, more, err := ix.BoundedHistory(hx, lim); err != nil || h != nil || !more {
				t.Errorf("bounded history of %s limited to %d: %d items (more %v, %v)", hx, lim, len(h), more, err)
			}
			if h, more, err := ix.BoundedHistory(hx, len(want)); err != nil || len(h) != len(want) || more || h[len(h)-1].TxID != want[len(want)-1].TxID {
				t.Errorf("bounded history of %s limited to exactly %d: %d items (more %v, %v)", hx, len(want), len(h), more, err)
			}
		}
		utxos, more, err := ix.UTXOs(hx, 0)
		if err != nil || more {
			t.Fatal(err, more)
		}
		wantU := o.UTXOs(hx)
		if len(utxos) != len(wantU) {
			t.Errorf("utxos of %s: got %d, want %d", hx, len(utxos), len(wantU))
		}
		for _, u := range utxos {
			v, ok := wantU[wire.OutPoint{Hash: u.TxID, Index: u.Vout}]
			if !ok || uint64(v) != u.Value {
				t.Errorf("utxo %s:%d of %s not expected (value %d)", u.TxID, u.Vout, hx, u.Value)
			}
		}
		if bal, n, more, _ := ix.Balance(hx, 0); bal != uint64(o.Balance(hx)) || n != len(wantU) || more {
			t.Errorf("balance of %s: %d of %d outputs (more %v), want %d of %d", hx, bal, n, more, o.Balance(hx), len(wantU))
		}
		// A limit reads no more than it allows, and says so.
		if len(wantU) > 1 {
			lim := len(wantU) - 1
			if u, more, _ := ix.UTXOs(hx, lim); len(u) != lim || !more {
				t.Errorf("utxos of %s limited to %d: %d (more %v)", hx, lim, len(u), more)
			}
			if _, n, more, _ := ix.Balance(hx, lim); n != lim || !more {
				t.Errorf("balance of %s limited to %d: read %d (more %v)", hx, lim, n, more)
			}
			if u, more, _ := ix.UTXOs(hx, len(wantU)); len(u) != len(wantU) || more {
				t.Errorf("utxos of %s limited to exactly %d: %d (more %v)", hx, len(wantU), len(u), more)
			}
		}
	}
}

func TestConnectMatchesNaiveRecomputation(t *testing.T) {
	net := regtest(t)
	t.Run("narrow", func(t *testing.T) { testConnectMatchesNaive(t, net, makeChain(net, 7, 400)) })
	// Blocks of up to 60 transactions span up to four txid rows.
	t.Run("wide", func(t *testing.T) { testConnectMatchesNaive(t, net, makeWideChain(net, 7, 150, 60)) })
}

// TestTxidPastCounts: a reader whose tx counts are older than the rows it
// reads (a block committed in between) still finds every txid, by seeking.
func TestTxidPastCounts(t *testing.T) {
	net := regtest(t)
	blocks := makeWideChain(net, 3, 60, 60)
	widest := 0
	for _, b := range blocks {
		widest = max(widest, len(b.Txs))
	}
	if widest <= 2*txidChunk {
		t.Fatalf("widest block has %d transactions: too few to span three txid rows", widest)
	}
	db, ix := openIndex(t, net, 100)
	connectAll(t, ix, blocks, 10)
	var n uint64
	for h, b := range blocks[1:] {
		for i, tx := range b.Txs {
			for _, counts := range [][]uint64{ix.txCounts, ix.txCounts[:h/2], nil} {
				got, err := readTxid(db, counts, n)
				if err != nil || !bytes.Equal(got, tx.TxID[:]) {
					t.Fatalf("block %d tx %d (tx_num %d) with %d counts: %x, %v; want %s", h+1, i, n, len(counts), got, err, tx.TxID)
				}
			}
			n++
		}
	}
	if _, err := readTxid(db, nil, n); err == nil {
		t.Errorf("tx_num %d past the tip: no error", n)
	}
}

func testConnectMatchesNaive(t *testing.T, net *chain.Network, blocks []*chain.Block) {
	_, ix := openIndex(t, net, 100)
	connectAll(t, ix, blocks, 37)
	tip := ix.Tip()
	if last := len(blocks) - 1; tip.Height != int32(last) || tip.Hash != blocks[last].Hash {
		t.Fatalf("tip %d %s", tip.Height, tip.Hash)
	}
	checkAgainstOracle(t, ix, naive.Build(blocks))

	// Every tx is found by txid at its height, and every block's txids
	// come back in order.
	for h := int32(1); h < int32(len(blocks)); h += 7 {
		ids, err := ix.BlockTxIDs(h)
		if err != nil {
			t.Fatal(err)
		}
		want := blocks[h].TxIDs()
		if len(ids) != len(want) {
			t.Fatalf("block %d: %d txids, want %d", h, len(ids), len(want))
		}
		for i := range ids {
			if ids[i] != want[i] {
				t.Errorf("block %d tx %d: %s, want %s", h, i, ids[i], want[i])
			}
			_, gotH, ok, err := ix.LookupTx(want[i])
			if err != nil || !ok || gotH != h {
				t.Errorf("LookupTx(%s) = %d %v %v, want height %d", want[i], gotH, ok, err, h)
			}
		}
		hdr, err := ix.Header(h)
		if err != nil || chain.HeaderHash(hdr) != blocks[h].Hash {
			t.Errorf("header %d: %v", h, err)
		}
	}
}

// TestHeaders: a range read gives the same bytes as reading each header,
// and a range past the tip is refused rather than cut short.
func TestHeaders(t *testing.T) {
	net := regtest(t)
	blocks := makeChain(net, 3, 40)
	_, ix := openIndex(t, net, 100)
	connectAll(t, ix, blocks, 1000)
	tip := ix.Tip().Height
	for _, r := range [][2]int32{{0, 1}, {0, tip + 1}, {5, 10}, {tip, 1}, {tip + 1, 0}, {3, 0}} {
		got, err := ix.Headers(r[0], int(r[1]))
		if err != nil {
			t.Fatalf("Headers(%d, %d): %v", r[0], r[1], err)
		}
		var want []byte
		for h := r[0]; h < r[0]+r[1]; h++ {
			hdr, err := ix.Header(h)
			if err != nil {
				t.Fatal(err)
			}
			want = append(want, hdr...)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("Headers(%d, %d): %d bytes differ from the headers read one by one (%d bytes)", r[0], r[1], len(got), len(want))
		}
	}
	for _, r := range [][2]int32{{tip, 2}, {0, tip + 2}, {-1, 1}, {tip + 2, 1}} {
		if got, err := ix.Headers(r[0], int(r[1])); err == nil {
			t.Errorf("Headers(%d, %d) = %d bytes, want an error past the tip (%d)", r[0], r[1], len(got), tip)
		}
	}
}

func TestSpender(t *testing.T) {
	net := regtest(t)
	blocks := makeChain(net, 3, 120)
	_, ix := openIndex(t, net, 100)
	connectAll(t, ix, blocks, 1000)
	spentBy := map[wire.OutPoint][2]any{}
	for h, b := range blocks[1:] {
		for _, tx := range b.Txs {
			for _, in := range tx.Inputs {
				if !in.Coinbase {
					spentBy[in.Prev] = [2]any{tx.TxID, int32(h + 1)}
				}
			}
		}
	}
	checked := 0
	for h, b := range blocks[1:] {
		for _, tx := range b.Txs {
			for i := range tx.Outputs {
				fh, funded, sp, err := ix.Spender(tx.TxID, uint32(i))
				if err != nil || !funded || fh != int32(h+1) {
					t.Fatalf("Spender(%s:%d): funded %v at %d, err %v", tx.TxID, i, funded, fh, err)
				}
				want, spent := spentBy[wire.OutPoint{Hash: tx.TxID, Index: uint32(i)}]
				switch {
				case spent && (sp == nil || sp.TxID != want[0] || sp.Height != want[1]):
					t.Errorf("%s:%d spent by %v, index says %+v", tx.TxID, i, want, sp)
				case !spent && sp != nil:
					t.Errorf("%s:%d unspent, index says %+v", tx.TxID, i, sp)
				}
				checked++
			}
		}
	}
	if _, funded, _, _ := ix.Spender(chainhash.Hash{1}, 0); funded {
		t.Error("unknown tx reported as funded")
	}
	if checked < 100 {
		t.Fatalf("only %d outputs checked", checked)
	}
}

// TestDisconnectRestoresState: connecting N blocks then disconnecting k
// leaves exactly the rows of an index that only ever saw N-k blocks.
func TestDisconnectRestoresState(t *testing.T) {
	net := regtest(t)
	t.Run("narrow", func(t *testing.T) { testDisconnectRestoresState(t, net, makeChain(net, 11, 300)) })
	t.Run("wide", func(t *testing.T) { testDisconnectRestoresState(t, net, makeWideChain(net, 11, 120, 60)) })
}

func testDisconnectRestoresState(t *testing.T, net *chain.Network, blocks []*chain.Block) {
	for _, depth := range []int{1, 6, 50} {
		t.Run(itoa(depth), func(t *testing.T) {
			db, ix := openIndex(t, net, 100)
			connectAll(t, ix, blocks, 64)
			w, err := ix.NewWriter()
			if err != nil {
				t.Fatal(err)
			}
			for range depth {
				if err := w.Disconnect(); err != nil {
					t.Fatal(err)
				}
			}
			if err := w.Commit(true); err != nil {
				t.Fatal(err)
			}
			keep := blocks[:len(blocks)-depth]
			refDB, ref := openIndex(t, net, 100)
			connectAll(t, ref, keep, 1000)
			if ix.Tip() != ref.Tip() {
				t.Fatalf("tip after disconnect %+v, want %+v", ix.Tip(), ref.Tip())
			}
			if got, want := digest(t, db), digest(t, refDB); got != want {
				t.Fatalf("rows after disconnecting %d: digest %s, want %s", depth, got, want)
			}
			// And the branch can be connected again to the same state.
			connectAll(t, ix, blocks[len(keep):], 1000)
			full, fullIx := openIndex(t, net, 100)
			connectAll(t, fullIx, blocks, 1000)
			if digest(t, db) != digest(t, full) {
				t.Fatal("reconnecting the branch differs from indexing it straight")
			}
		})
	}
}

// competingBranch shares a's first 190 blocks and then goes its own way
// for 15 blocks, to height 204.
func competingBranch(a []*chain.Block) []*chain.Block {
	s := newSynth(99, a[189].Hash)
	b := append([]*chain.Block{}, a[:190]...)
	for h := int32(190); h < 205; h++ {
		blk := s.block(h)
		s.prev = blk.Hash
		b = append(b, blk)
	}
	return b
}

// TestReorgToCompetingBranch swaps the last blocks for another branch.
func TestReorgToCompetingBranch(t *testing.T) {
	net := regtest(t)
	a := makeChain(net, 5, 200)
	b := competingBranch(a)
	db, ix := openIndex(t, net, 100)
	connectAll(t, ix, a, 50)
	w, _ := ix.NewWriter()
	err := w.Connect(b[200])
	if !errors.Is(err, ErrPrevMismatch) {
		t.Fatalf("connect of a block on another branch: %v, want ErrPrevMismatch", err)
	}
	for w.Tip().Hash != b[w.Tip().Height].Hash {
		if err := w.Disconnect(); err != nil {
			t.Fatal(err)
		}
	}
	for _, blk := range b[w.Tip().Height+1:] {
		if err := w.Connect(blk); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Commit(true); err != nil {
		t.Fatal(err)
	}
	refDB, ref := openIndex(t, net, 100)
	connectAll(t, ref, b, 1000)
	if digest(t, db) != digest(t, refDB) {
		t.Fatal("state after reorg differs from indexing the winning branch from scratch")
	}
}

func TestReorgLimit(t *testing.T) {
	net := regtest(t)
	blocks := makeChain(net, 1, 40)
	_, ix := openIndex(t, net, 10)
	connectAll(t, ix, blocks, 1000)
	w, _ := ix.NewWriter()
	defer w.Close()
	var err error
	n := 0
	for err == nil {
		err = w.Disconnect()
		n++
	}
	if !errors.Is(err, ErrReorgTooDeep) || n != 11 {
		t.Fatalf("disconnect %d: %v, want ErrReorgTooDeep after 10", n, err)
	}
}

func TestReopenAndMismatch(t *testing.T) {
	net := regtest(t)
	dir := t.TempDir()
	db, err := store.Open(dir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ix, err := Open(db, net, Options{})
	if err != nil {
		t.Fatal(err)
	}
	blocks := makeChain(net, 2, 30)
	connectAll(t, ix, blocks, 7)
	tip := ix.Tip()
	db.Close()

	db, err = store.Open(dir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ix, err = Open(db, net, Options{})
	if err != nil || ix.Tip() != tip {
		t.Fatalf("reopen: tip %+v err %v, want %+v", ix.Tip(), err, tip)
	}
	if h, ok := ix.TxNumHeight(0); !ok || h != 1 {
		t.Errorf("tx_num 0 at height %d %v, want 1 (genesis is not indexed)", h, ok)
	}
	main, _ := chain.Lookup("Bitcoin", "mainnet")
	if _, err := Open(db, main, Options{}); !errors.Is(err, ErrNetwork) || !strings.Contains(err.Error(), "regtest") {
		t.Errorf("open regtest DB as mainnet: %v", err)
	}
	b := db.NewBatch()
	var v [4]byte
	binary.BigEndian.PutUint32(v[:], SchemaVersion+1)
	b.Set(metaKey("schema"), v[:])
	if err := b.Commit(true); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(db, net, Options{}); !errors.Is(err, ErrSchema) {
		t.Errorf("open with another schema: %v", err)
	}
}

// TestRealMainnetChain indexes mainnet blocks 0 to 14,131 from btcd's test
// data and checks the well-known early transactions.
func TestRealMainnetChain(t *testing.T) {
	if testing.Short() {
		t.Skip("indexes 14,132 real blocks")
	}
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/btcsuite/btcd").Output()
	if err != nil {
		t.Fatalf("locate btcd module: %v", err)
	}
	f, err := os.Open(filepath.Join(strings.TrimSpace(string(out)), "blockchain", "testdata", "blk_0_to_14131.dat"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	net, _ := chain.Lookup("Bitcoin", "mainnet")
	_, ix := openIndex(t, net, 200)
	w, _ := ix.NewWriter()
	n := 0
	err = chain.ReadBlockFile(f, net, func(raw []byte) error {
		b, err := chain.ParseBlock(raw)
		if err != nil {
			return err
		}
		n++
		return w.Connect(b)
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Commit(false); err != nil {
		t.Fatal(err)
	}
	if tip := ix.Tip(); tip.Height != 14131 || n != 14132 {
		t.Fatalf("tip %d after %d blocks", tip.Height, n)
	}
	// Block 170: the first bitcoin payment, 10 BTC from Satoshi to Hal
	// Finney, spending block 9's coinbase.
	pay, _ := chain.ParseHash("f4184fc596403b9d638783cf57adfe4c75c605f6356fbc91338530e9831e9e16")
	cb9, _ := chain.ParseHash("0437cd7f8525ceed2324359c2d0ba26006d92d856a9c20fa0241106ee5a597c9")
	if _, h, ok, _ := ix.LookupTx(pay); !ok || h != 170 {
		t.Errorf("first payment at %d %v, want 170", h, ok)
	}
	fh, funded, sp, err := ix.Spender(cb9, 0)
	if err != nil || !funded || fh != 9 || sp == nil || sp.TxID != pay || sp.Height != 170 {
		t.Errorf("block 9 coinbase: funded %v at %d, spent by %+v (%v)", funded, fh, sp, err)
	}
	// Hal's P2PK output of 10 BTC.
	halKey, _ := hex.DecodeString("4104ae1a62fe09c5f51b13905f07f06b99a2f7159b2225f374cd378d71302fa28414e7aab37397f554a7df5f142c21c1b7303b8a0626f1baded5c72a704f7e6cd84cac")
	hist, _, _ := ix.History(chain.HashXOf(halKey), 0)
	if len(hist) == 0 || hist[0].TxID != pay || hist[0].Height != 170 {
		t.Errorf("Hal's history starts %+v, want the block 170 payment", hist)
	}
	// The genesis coinbase is not indexed.
	genesisKey := net.Params.GenesisBlock.Transactions[0].TxOut[0].PkScript
	if h, _, _ := ix.History(chain.HashXOf(genesisKey), 0); len(h) != 0 {
		t.Errorf("genesis script has history %+v", h)
	}
	ids, _ := ix.BlockTxIDs(170)
	if len(ids) != 2 || ids[1] != pay {
		t.Errorf("block 170 txids %v", ids)
	}
}

func TestUTXOStats(t *testing.T) {
	net := regtest(t)
	blocks := makeChain(net, 21, 150)
	_, ix := openIndex(t, net, 100)
	connectAll(t, ix, blocks, 1000)
	wantN, wantSum := naive.Build(blocks).UTXOStats()
	n, sum, err := ix.UTXOStats()
	if err != nil || n != wantN || sum != wantSum {
		t.Fatalf("UTXOStats = %d, %d (%v), want %d, %d", n, sum, err, wantN, wantSum)
	}
}

func TestOutput(t *testing.T) {
	net := regtest(t)
	blocks := makeChain(net, 4, 150)
	_, ix := openIndex(t, net, 100)
	connectAll(t, ix, blocks, 1000)
	want := naive.Build(blocks)
	n := 0
	for _, hx := range want.Scripts() {
		for op, v := range want.UTXOs(hx) {
			gotHX, gotV, ok, err := ix.Output(op.Hash, op.Index)
			if err != nil || !ok || gotHX != hx || gotV != uint64(v) {
				t.Fatalf("Output(%s) = %s %d %v %v, want %s %d", op, gotHX, gotV, ok, err, hx, v)
			}
			n++
		}
	}
	// A spent output is not found.
	for _, tx := range blocks[149].Txs[1:] {
		prev := tx.Inputs[0].Prev
		if _, _, ok, _ := ix.Output(prev.Hash, prev.Index); ok {
			t.Errorf("spent output %s reported unspent", prev)
		}
	}
	if n < 50 {
		t.Fatalf("only %d outputs checked", n)
	}
}

// TestTouched: the scripts a Writer reports touched are exactly those whose
// history gained (or, disconnecting, lost) an entry.
func TestTouched(t *testing.T) {
	net := regtest(t)
	blocks := makeChain(net, 8, 130)
	_, ix := openIndex(t, net, 100)
	connectAll(t, ix, blocks[:120], 1000)
	want := map[chain.HashX]bool{}
	o := naive.Build(blocks)
	for _, hx := range o.Scripts() {
		for _, it := range o.History(hx) {
			if it.Height >= 120 {
				want[hx] = true
			}
		}
	}
	check := func(what string, got *Touched) {
		if len(got.Scripts) != len(want) {
			t.Errorf("%s: %d scripts touched, want %d", what, len(got.Scripts), len(want))
		}
		for hx := range want {
			if _, ok := got.Scripts[hx]; !ok {
				t.Errorf("%s: %s not reported", what, hx)
			}
		}
		if len(got.Outpoints) == 0 {
			t.Errorf("%s: no outpoints", what)
		}
	}
	w, _ := ix.NewWriter()
	w.CollectTouched()
	for _, b := range blocks[120:] {
		if err := w.Connect(b); err != nil {
			t.Fatal(err)
		}
	}
	check("connect", w.Touched())
	if err := w.Commit(false); err != nil {
		t.Fatal(err)
	}
	w, _ = ix.NewWriter()
	defer w.Close()
	w.CollectTouched()
	for range 10 {
		if err := w.Disconnect(); err != nil {
			t.Fatal(err)
		}
	}
	check("disconnect", w.Touched())
}

// TestBulkWriter checks that a bulk writer, whose batch cannot be read,
// builds the same index as a readable one, still refuses an output spent
// twice (once from the DB, once again in its own batch), and refuses to
// disconnect.
func TestBulkWriter(t *testing.T) {
	net := regtest(t)
	blocks := makeChain(net, 7, 400)
	dbA, ixA := openIndex(t, net, 100)
	connectAll(t, ixA, blocks, 37)
	dbB, ixB := openIndex(t, net, 100)
	for i := 0; i < len(blocks); i += 37 {
		w, err := ixB.NewBulkWriter()
		if err != nil {
			t.Fatal(err)
		}
		for _, b := range blocks[i:min(i+37, len(blocks))] {
			if err := w.Connect(b); err != nil {
				t.Fatalf("bulk connect block %d: %v", w.Tip().Height+1, err)
			}
		}
		if err := w.Commit(false); err != nil {
			t.Fatal(err)
		}
	}
	if a, b := digest(t, dbA), digest(t, dbB); a != b {
		t.Fatalf("bulk index digest %s, readable batches give %s", b, a)
	}
	checkAgainstOracle(t, ixB, naive.Build(blocks))

	// Extend the chain with a block spending a committed output, then a
	// block spending it again, in one bulk batch.
	var spent wire.OutPoint
	inBlock := map[chainhash.Hash]bool{}
	for _, tx := range blocks[len(blocks)-1].Txs {
		inBlock[tx.TxID] = true
	}
	for _, tx := range blocks[len(blocks)-1].Txs[1:] {
		for _, in := range tx.Inputs {
			if !inBlock[in.Prev.Hash] {
				spent = in.Prev
			}
		}
	}
	if spent == (wire.OutPoint{}) {
		t.Fatal("the last block spends no output of an earlier block")
	}
	_, ixC := openIndex(t, net, 100)
	connectAll(t, ixC, blocks[:len(blocks)-1], 50)
	w, err := ixC.NewBulkWriter()
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	last := blocks[len(blocks)-1]
	if err := w.Connect(last); err != nil {
		t.Fatal(err)
	}
	again := &chain.Block{Hash: chainhash.Hash{1}, Header: wire.BlockHeader{PrevBlock: last.Hash}, Txs: []chain.Tx{
		last.Txs[0], // a coinbase, not indexed
		{TxID: chainhash.Hash{2}, Inputs: []chain.Input{{Prev: spent}}},
	}}
	if err := w.Connect(again); err == nil || !strings.Contains(err.Error(), "not an unspent output") {
		t.Fatalf("connecting a second spend of %s in a bulk batch: %v, want it refused", spent, err)
	}
	if err := w.Disconnect(); err == nil {
		t.Fatal("a bulk writer disconnected a block")
	}
}

// TestBlockTxIDsAfterReorg checks that the txids served for a height come
// from the block now at that height: asked (and cached) before a reorg,
// asked again after it.
func TestBlockTxIDsAfterReorg(t *testing.T) {
	net := regtest(t)
	a := makeChain(net, 5, 200)
	b := competingBranch(a)
	_, ix := openIndex(t, net, 100)
	connectAll(t, ix, a, 50)
	check := func(blocks []*chain.Block, heights ...int32) {
		t.Helper()
		for _, h := range heights {
			ids, err := ix.BlockTxIDs(h)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(ids, blocks[h].TxIDs()) {
				t.Fatalf("block %d: txids %v, want %v", h, ids, blocks[h].TxIDs())
			}
			ids[0] = chainhash.Hash{} // the caller's copy, not the cache's
			if tr, err := ix.BlockTree(h); err != nil || tr.Root() != blocks[h].Header.MerkleRoot {
				t.Fatalf("block %d: cached tree's root is not the header's merkle root (%v)", h, err)
			}
		}
	}
	check(a, 150, 195, 199, 195, 199)
	// Each block is read once; every later ask is a hit.
	if hits, misses, bytes := ix.BlockTreeCacheStats(); misses != 3 || hits != 7 || bytes == 0 {
		t.Fatalf("cache after 10 asks of 3 blocks: %d hits, %d misses, %d bytes; want 7, 3, > 0", hits, misses, bytes)
	}
	w, err := ix.NewWriter()
	if err != nil {
		t.Fatal(err)
	}
	for w.Tip().Height >= 190 {
		if err := w.Disconnect(); err != nil {
			t.Fatal(err)
		}
	}
	for _, blk := range b[190:] {
		if err := w.Connect(blk); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Commit(true); err != nil {
		t.Fatal(err)
	}
	check(b, 150, 195, 199, 204)
	if _, misses, _ := ix.BlockTreeCacheStats(); misses != 7 {
		t.Fatalf("%d misses after the reorg, want 7: the reorg must empty the cache", misses)
	}
}
