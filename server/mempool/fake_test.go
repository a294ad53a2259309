package mempool

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/btcsuite/btcd/chainhash/v2"
	"github.com/btcsuite/btcd/wire/v2"

	"amber/internal/chain"
	"amber/internal/daemon"
	"amber/internal/index"
)

// fakeDaemon is an in-memory daemon: a best block hash, a mempool listing
// and the transactions it can serve.
type fakeDaemon struct {
	mu      sync.Mutex
	tip     chainhash.Hash
	listed  []chainhash.Hash
	raw     map[chainhash.Hash][]byte // what getrawtransaction serves
	fetched map[chainhash.Hash]int    // getrawtransaction calls per txid
	batches int
	active  int
	peak    int // most batches in flight at once
	slow    time.Duration

	listErr   error
	fetchErr  error
	afterList func() // called after RawMempool answers, unlocked
}

var _ Daemon = (*fakeDaemon)(nil)

func newFakeDaemon() *fakeDaemon {
	return &fakeDaemon{raw: map[chainhash.Hash][]byte{}, fetched: map[chainhash.Hash]int{}}
}

func (d *fakeDaemon) BestBlockHash(context.Context) (chainhash.Hash, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.tip, nil
}

func (d *fakeDaemon) RawMempool(context.Context) ([]chainhash.Hash, error) {
	d.mu.Lock()
	out, err, hook := append([]chainhash.Hash(nil), d.listed...), d.listErr, d.afterList
	d.mu.Unlock()
	if err != nil {
		return nil, err
	}
	if hook != nil {
		hook()
	}
	return out, nil
}

func (d *fakeDaemon) RawTransactions(ctx context.Context, ids []chainhash.Hash) ([]daemon.TxResult, error) {
	d.mu.Lock()
	d.batches++
	d.active++
	d.peak = max(d.peak, d.active)
	slow, ferr := d.slow, d.fetchErr
	d.mu.Unlock()
	defer func() {
		d.mu.Lock()
		d.active--
		d.mu.Unlock()
	}()
	if slow > 0 {
		select {
		case <-time.After(slow):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if ferr != nil {
		return nil, ferr
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make([]daemon.TxResult, len(ids))
	for i, id := range ids {
		d.fetched[id]++
		raw, ok := d.raw[id]
		if !ok {
			out[i].Err = fmt.Errorf("getrawtransaction %s: %w", id, &daemon.RPCError{Code: daemon.CodeNotFound, Message: "No such mempool or blockchain transaction"})
			continue
		}
		out[i].Raw = raw
	}
	return out, nil
}

// fakeOutputs is an in-memory index: confirmed unspent outputs and a tip.
type fakeOutputs struct {
	mu    sync.Mutex
	tip   index.Tip
	utxos map[wire.OutPoint]fakeOut
	err   error
	reads int
}

type fakeOut struct {
	hx    chain.HashX
	value uint64
}

var _ Outputs = (*fakeOutputs)(nil)

func (o *fakeOutputs) Output(txid chainhash.Hash, vout uint32) (chain.HashX, uint64, bool, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.reads++
	if o.err != nil {
		return chain.HashX{}, 0, false, o.err
	}
	u, ok := o.utxos[wire.OutPoint{Hash: txid, Index: vout}]
	return u.hx, u.value, ok, nil
}

func (o *fakeOutputs) Tip() index.Tip {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.tip
}

// env is a simulated chain: a fake daemon and a fake index kept at the
// same tip, and the mempool under test.
type env struct {
	t      *testing.T
	d      *fakeDaemon
	o      *fakeOutputs
	m      *Mempool
	now    time.Time
	height int32
	nonce  uint32
	pool   map[chainhash.Hash]*wire.MsgTx // the daemon's mempool
}

func newEnv(t *testing.T, opts Options) *env {
	t.Helper()
	e := &env{
		t:    t,
		d:    newFakeDaemon(),
		o:    &fakeOutputs{utxos: map[wire.OutPoint]fakeOut{}},
		now:  time.Unix(1_700_000_000, 0),
		pool: map[chainhash.Hash]*wire.MsgTx{},
	}
	e.setTip(100)
	if opts.Now == nil {
		opts.Now = func() time.Time { return e.now }
	}
	e.m = New(e.d, e.o, opts)
	return e
}

// setTip moves both the daemon and the index to a new block at height.
func (e *env) setTip(height int32) {
	e.height = height
	var h chainhash.Hash
	binary.LittleEndian.PutUint32(h[:], uint32(height))
	h[31] = 0xbb
	e.nonce++
	binary.LittleEndian.PutUint32(h[4:], e.nonce)
	e.d.mu.Lock()
	e.d.tip = h
	e.d.mu.Unlock()
	e.o.mu.Lock()
	e.o.tip = index.Tip{Height: height, Hash: h}
	e.o.mu.Unlock()
}

// script returns a distinct P2WPKH-shaped output script.
func script(n int) []byte {
	s := make([]byte, 22)
	s[0], s[1] = 0x00, 0x14
	binary.BigEndian.PutUint32(s[2:], uint32(n))
	s[21] = 0x5c
	return s
}

func hxOf(n int) chain.HashX { return chain.HashXOf(script(n)) }

// opReturn is an unindexed output script.
var opReturn = []byte{0x6a, 0x04, 'a', 'm', 'b', 'r'}

// fund creates a confirmed unspent output paying script n.
func (e *env) fund(n int, value int64) wire.OutPoint {
	e.nonce++
	var id chainhash.Hash
	binary.LittleEndian.PutUint32(id[:], e.nonce)
	id[31] = 0xcc
	op := wire.OutPoint{Hash: id, Index: 0}
	e.o.mu.Lock()
	e.o.utxos[op] = fakeOut{hx: hxOf(n), value: uint64(value)}
	e.o.mu.Unlock()
	return op
}

// out is an output paying value to script n.
func out(n int, value int64) *wire.TxOut { return wire.NewTxOut(value, script(n)) }

// newTx builds a transaction spending ins; a nonce in the lock time keeps
// txids distinct.
func (e *env) newTx(ins []wire.OutPoint, outs ...*wire.TxOut) *wire.MsgTx {
	e.nonce++
	tx := wire.NewMsgTx(2)
	for _, op := range ins {
		tx.AddTxIn(wire.NewTxIn(&op, []byte{0x51}, nil))
	}
	for _, o := range outs {
		tx.AddTxOut(o)
	}
	tx.LockTime = e.nonce
	return tx
}

func serialize(t testing.TB, tx *wire.MsgTx) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := tx.Serialize(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// send puts transactions in the daemon's mempool, listed in the order
// given.
func (e *env) send(txs ...*wire.MsgTx) {
	e.d.mu.Lock()
	defer e.d.mu.Unlock()
	for _, tx := range txs {
		id := tx.TxHash()
		e.d.raw[id] = serialize(e.t, tx)
		e.d.listed = append(e.d.listed, id)
		e.pool[id] = tx
	}
}

// drop takes transactions out of the daemon's mempool (evicted or
// replaced).
func (e *env) drop(txs ...*wire.MsgTx) {
	e.d.mu.Lock()
	defer e.d.mu.Unlock()
	for _, tx := range txs {
		id := tx.TxHash()
		delete(e.pool, id)
		delete(e.d.raw, id)
		for i, l := range e.d.listed {
			if l == id {
				e.d.listed = append(e.d.listed[:i], e.d.listed[i+1:]...)
				break
			}
		}
	}
}

// mine confirms transactions in a new block: they leave the daemon's
// mempool, their inputs are spent and their outputs become confirmed
// unspent outputs of the index.
func (e *env) mine(txs ...*wire.MsgTx) {
	e.drop(txs...)
	e.o.mu.Lock()
	for _, tx := range txs {
		for _, in := range tx.TxIn {
			delete(e.o.utxos, in.PreviousOutPoint)
		}
	}
	for _, tx := range txs {
		for i, o := range tx.TxOut {
			if chain.IsIndexed(o.PkScript) {
				e.o.utxos[wire.OutPoint{Hash: tx.TxHash(), Index: uint32(i)}] = fakeOut{hx: chain.HashXOf(o.PkScript), value: uint64(o.Value)}
			}
		}
	}
	e.o.mu.Unlock()
	e.setTip(e.height + 1)
}

// refresh runs Refresh and fails the test on error.
func (e *env) refresh() Touched {
	e.t.Helper()
	tc, err := e.m.Refresh(context.Background())
	if err != nil {
		e.t.Fatalf("Refresh: %v", err)
	}
	return tc
}

// outpoints lists the outpoints a transaction spends and creates.
func outpoints(txs ...*wire.MsgTx) []wire.OutPoint {
	var ops []wire.OutPoint
	for _, tx := range txs {
		for _, in := range tx.TxIn {
			ops = append(ops, in.PreviousOutPoint)
		}
		for i := range tx.TxOut {
			ops = append(ops, wire.OutPoint{Hash: tx.TxHash(), Index: uint32(i)})
		}
	}
	return ops
}
