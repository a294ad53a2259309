package mempool

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/btcsuite/btcd/chainhash/v2"
	"github.com/btcsuite/btcd/wire/v2"

	"amber/internal/chain"
	"amber/internal/daemon"
	"amber/internal/index"
)

// Defaults for Options.
const (
	// DefaultFetchChunk is how many transactions one getrawtransaction
	// batch asks for, as ElectrumX does.
	DefaultFetchChunk = 200
	// DefaultFetchConcurrency is how many batches may be in flight at
	// once.
	DefaultFetchConcurrency = 4
	// DefaultHistogramInterval is the least time between two fee
	// histogram computations: ElectrumX's MEMPOOL_HISTOGRAM_REFRESH_SECS
	// for Bitcoin.
	DefaultHistogramInterval = 120 * time.Second
)

// ErrNotSynced means the index is not at the daemon's tip, or the daemon's
// tip moved while the mempool was read; Refresh changed nothing. Sync the
// index and call Refresh again.
var ErrNotSynced = errors.New("mempool: index not at the daemon's tip")

// Daemon is what the mempool asks the daemon; *daemon.Client implements
// it.
type Daemon interface {
	// BestBlockHash returns the hash of the daemon's best block.
	BestBlockHash(ctx context.Context) (chainhash.Hash, error)
	// RawMempool returns the txids in the daemon's mempool.
	RawMempool(ctx context.Context) ([]chainhash.Hash, error)
	// RawTransactions fetches transactions in one batch, in order. A
	// transaction the daemon does not know is reported in its TxResult
	// with an error matching daemon.ErrNotFound.
	RawTransactions(ctx context.Context, txids []chainhash.Hash) ([]daemon.TxResult, error)
}

// Outputs resolves confirmed outputs; *index.Index implements it.
type Outputs interface {
	// Output finds a confirmed unspent output: its script's hashX and
	// value. ok is false when the output does not exist or is spent in
	// the best chain.
	Output(txid chainhash.Hash, vout uint32) (hx chain.HashX, value uint64, ok bool, err error)
	// Tip returns the last block Output answers for.
	Tip() index.Tip
}

var (
	_ Daemon  = (*daemon.Client)(nil)
	_ Outputs = (*index.Index)(nil)
)

// Options configures a Mempool. The zero value is usable.
type Options struct {
	// Logger receives refresh summaries (debug) and transactions that
	// could not be decoded (warn); nil discards them.
	Logger *slog.Logger
	// Now is the clock the fee histogram interval is measured with; nil
	// means time.Now.
	Now func() time.Time
	// FetchChunk is how many transactions one daemon batch request asks
	// for; zero means DefaultFetchChunk.
	FetchChunk int
	// FetchConcurrency is how many batch requests may be in flight at
	// once; zero means DefaultFetchConcurrency.
	FetchConcurrency int
	// HistogramInterval is the least time between two fee histogram
	// computations; zero means DefaultHistogramInterval. A negative
	// value recomputes it on every refresh.
	HistogramInterval time.Duration
}

// Entry is a mempool transaction as a script's history shows it.
type Entry struct {
	// TxID is the transaction's id.
	TxID chainhash.Hash
	// Height is 0 when every input spends a confirmed output, -1 when
	// any input spends an output of another mempool transaction.
	Height int32
	// Fee is the inputs' value minus the outputs' value in satoshis,
	// never negative.
	Fee int64
	// VSize is the virtual size in vbytes.
	VSize int64
}

// UTXO is an output of a mempool transaction that no other mempool
// transaction spends. listunspent shows it with height 0.
type UTXO struct {
	// OutPoint names the output.
	OutPoint wire.OutPoint
	// Value is the amount in satoshis.
	Value int64
}

// Touched lists what a Refresh changed, each slice sorted and without
// duplicates.
type Touched struct {
	// Scripts are the scripts whose mempool history, heights, fees,
	// balance or unspent outputs changed.
	Scripts []chain.HashX
	// Outpoints are the outpoints spent or created by the transactions
	// that entered or left the view or changed height.
	Outpoints []wire.OutPoint
}

// Empty reports whether nothing was touched.
func (t Touched) Empty() bool { return len(t.Scripts) == 0 && len(t.Outpoints) == 0 }

// input is one resolved input of a held transaction.
type input struct {
	prev    wire.OutPoint
	hx      chain.HashX // hashX of the spent output's script
	value   int64
	indexed bool // the spent output's script is indexed (chain.IsIndexed)
	mempool bool // spends an output of another mempool transaction
}

// output is one output of a held transaction.
type output struct {
	hx      chain.HashX
	value   int64
	indexed bool
}

// tx is a transaction of the view. Once published in Mempool.txs it is
// never modified; a change replaces it.
type tx struct {
	id     chainhash.Hash
	raw    []byte
	ins    []input // only prev is set until resolved
	outs   []output
	vsize  int64
	fee    int64
	height int32
}

func (t *tx) entry() Entry {
	return Entry{TxID: t.id, Height: t.height, Fee: t.fee, VSize: t.vsize}
}

// Mempool is the server's view of the daemon's mempool. Its queries are
// safe for concurrent use with each other and with Refresh.
type Mempool struct {
	d      Daemon
	outs   Outputs
	opts   Options
	logger *slog.Logger

	// refreshMu serialises Refresh. The refreshing goroutine is the only
	// writer of the fields under mu, so it reads them without mu.
	refreshMu sync.Mutex
	pending   map[chainhash.Hash]*tx // fetched, not resolvable yet; refreshMu
	histAt    time.Time              // when hist was computed; refreshMu

	mu       sync.RWMutex
	txs      map[chainhash.Hash]*tx
	byScript map[chain.HashX]map[chainhash.Hash]struct{}
	spends   map[wire.OutPoint]chainhash.Hash // prevout -> spending txid
	vsize    int64
	fees     int64
	tip      index.Tip
	synced   bool
	gen      uint64
	hist     []FeeBucket
	recent   []chainhash.Hash // txids in the order they entered, oldest first

	unresolved atomic.Int64
}

// recentKeep is how many recently added txids Recent looks through.
const recentKeep = 64

// New returns an empty mempool view over the daemon d, resolving
// confirmed outputs with outs. It makes no request; call Refresh.
func New(d Daemon, outs Outputs, opts Options) *Mempool {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.FetchChunk <= 0 {
		opts.FetchChunk = DefaultFetchChunk
	}
	if opts.FetchConcurrency <= 0 {
		opts.FetchConcurrency = DefaultFetchConcurrency
	}
	if opts.HistogramInterval == 0 {
		opts.HistogramInterval = DefaultHistogramInterval
	}
	return &Mempool{
		d:        d,
		outs:     outs,
		opts:     opts,
		logger:   opts.Logger,
		pending:  map[chainhash.Hash]*tx{},
		txs:      map[chainhash.Hash]*tx{},
		byScript: map[chain.HashX]map[chainhash.Hash]struct{}{},
		spends:   map[wire.OutPoint]chainhash.Hash{},
	}
}

// History returns the script's mempool transactions in canonical order:
// height 0 before height -1, then by txid in display byte order (the
// order of the hex strings clients see). It is empty when the mempool
// does not touch the script.
func (m *Mempool) History(hx chain.HashX) []Entry {
	m.mu.RLock()
	defer m.mu.RUnlock()
	ids := m.byScript[hx]
	out := make([]Entry, 0, len(ids))
	for id := range ids {
		out = append(out, m.txs[id].entry())
	}
	SortCanonical(out)
	return out
}

// SortCanonical sorts mempool entries in the canonical order of protocol
// 1.6 (PROTOCOL.md 5.3): by (-height, txid), the txid compared in display
// byte order, so height-0 entries come before height -1 ones.
func SortCanonical(es []Entry) {
	slices.SortFunc(es, func(a, b Entry) int {
		if a.Height != b.Height {
			return cmp.Compare(b.Height, a.Height)
		}
		return compareDisplay(&a.TxID, &b.TxID)
	})
}

// compareDisplay compares two hashes as their display (reversed) forms.
func compareDisplay(a, b *chainhash.Hash) int {
	for i := chainhash.HashSize - 1; i >= 0; i-- {
		if a[i] != b[i] {
			return cmp.Compare(a[i], b[i])
		}
	}
	return 0
}

// Balance returns the script's unconfirmed balance delta in satoshis: for
// every mempool transaction touching the script, its outputs paying the
// script minus its inputs spending outputs of the script (confirmed or in
// the mempool). It can be negative.
func (m *Mempool) Balance(hx chain.HashX) int64 {
	m.mu.RLock()
	defer m.mu.RUnlock()
	var sum int64
	for id := range m.byScript[hx] {
		t := m.txs[id]
		for i := range t.ins {
			if in := &t.ins[i]; in.indexed && in.hx == hx {
				sum -= in.value
			}
		}
		for i := range t.outs {
			if o := &t.outs[i]; o.indexed && o.hx == hx {
				sum += o.value
			}
		}
	}
	return sum
}

// UTXOs returns the outputs of mempool transactions paying the script
// that no mempool transaction spends, ordered by txid in display order
// and then output index.
func (m *Mempool) UTXOs(hx chain.HashX) []UTXO {
	m.mu.RLock()
	defer m.mu.RUnlock()
	var out []UTXO
	for id := range m.byScript[hx] {
		t := m.txs[id]
		for i := range t.outs {
			o := &t.outs[i]
			if !o.indexed || o.hx != hx {
				continue
			}
			op := wire.OutPoint{Hash: id, Index: uint32(i)}
			if _, spent := m.spends[op]; !spent {
				out = append(out, UTXO{OutPoint: op, Value: o.value})
			}
		}
	}
	slices.SortFunc(out, func(a, b UTXO) int {
		if c := compareDisplay(&a.OutPoint.Hash, &b.OutPoint.Hash); c != 0 {
			return c
		}
		return cmp.Compare(a.OutPoint.Index, b.OutPoint.Index)
	})
	return out
}

// SpentInMempool reports whether a mempool transaction spends the output,
// confirmed or not: listunspent leaves such outputs out.
func (m *Mempool) SpentInMempool(op wire.OutPoint) bool {
	m.mu.RLock()
	defer m.mu.RUnlock()
	_, ok := m.spends[op]
	return ok
}

// Spender returns the mempool transaction spending the output, if any.
func (m *Mempool) Spender(op wire.OutPoint) (Entry, bool) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	id, ok := m.spends[op]
	if !ok {
		return Entry{}, false
	}
	return m.txs[id].entry(), true
}

// Lookup returns the mempool transaction with the given txid.
func (m *Mempool) Lookup(txid chainhash.Hash) (Entry, bool) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	t, ok := m.txs[txid]
	if !ok {
		return Entry{}, false
	}
	return t.entry(), true
}

// Output returns an output of a mempool transaction, spent or not: the
// hashX of its script (indexed or not) and its value. ok is false when
// op.Hash is not in the mempool or has no output op.Index.
func (m *Mempool) Output(op wire.OutPoint) (hx chain.HashX, value int64, ok bool) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	t, found := m.txs[op.Hash]
	if !found || int64(op.Index) >= int64(len(t.outs)) {
		return chain.HashX{}, 0, false
	}
	o := t.outs[op.Index]
	return o.hx, o.value, true
}

// Tx returns the serialized mempool transaction with the given txid, as
// the daemon gave it, so transaction.get need not ask the daemon. The
// bytes must not be modified.
func (m *Mempool) Tx(txid chainhash.Hash) ([]byte, bool) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	t, ok := m.txs[txid]
	if !ok {
		return nil, false
	}
	return t.raw, true
}

// Recent returns up to n of the transactions that most recently entered
// the view and are still in it, newest first (mempool.recent asks for
// 10). Transactions that entered in the same refresh are ordered parents
// before children.
func (m *Mempool) Recent(n int) []Entry {
	m.mu.RLock()
	defer m.mu.RUnlock()
	var out []Entry
	for i := len(m.recent) - 1; i >= 0 && len(out) < n; i-- {
		if t, ok := m.txs[m.recent[i]]; ok {
			out = append(out, t.entry())
		}
	}
	return out
}

// FeeHistogram returns the compact fee histogram (PROTOCOL.md 5.8) as of
// its last computation; empty before the first. The slice must not be
// modified.
func (m *Mempool) FeeHistogram() []FeeBucket {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if m.hist == nil {
		return []FeeBucket{}
	}
	return m.hist
}

// Size returns the number of transactions in the view.
func (m *Mempool) Size() int {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return len(m.txs)
}

// VSize returns the total virtual size of the transactions in the view.
func (m *Mempool) VSize() int64 {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.vsize
}

// Fees returns the total fees of the transactions in the view, in
// satoshis.
func (m *Mempool) Fees() int64 {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.fees
}

// Unresolved returns the number of fetched transactions held aside
// because some input could not be resolved yet.
func (m *Mempool) Unresolved() int { return int(m.unresolved.Load()) }

// Tip returns the index tip the view was last refreshed at; ok is false
// before the first successful Refresh.
func (m *Mempool) Tip() (tip index.Tip, ok bool) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.tip, m.synced
}

// Generation counts the refreshes that changed the view. A request that
// reads several queries may compare it before and after to know they all
// saw the same state.
func (m *Mempool) Generation() uint64 {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.gen
}

// add publishes t in the view; the caller holds mu for writing.
func (m *Mempool) add(t *tx) {
	m.txs[t.id] = t
	for i := range t.ins {
		in := &t.ins[i]
		m.spends[in.prev] = t.id
		if in.indexed {
			m.link(in.hx, t.id)
		}
	}
	for i := range t.outs {
		if o := &t.outs[i]; o.indexed {
			m.link(o.hx, t.id)
		}
	}
	m.vsize += t.vsize
	m.fees += t.fee
}

// remove takes t out of the view; the caller holds mu for writing.
func (m *Mempool) remove(t *tx) {
	delete(m.txs, t.id)
	for i := range t.ins {
		in := &t.ins[i]
		if m.spends[in.prev] == t.id {
			delete(m.spends, in.prev)
		}
		if in.indexed {
			m.unlink(in.hx, t.id)
		}
	}
	for i := range t.outs {
		if o := &t.outs[i]; o.indexed {
			m.unlink(o.hx, t.id)
		}
	}
	m.vsize -= t.vsize
	m.fees -= t.fee
}

func (m *Mempool) link(hx chain.HashX, id chainhash.Hash) {
	set := m.byScript[hx]
	if set == nil {
		set = map[chainhash.Hash]struct{}{}
		m.byScript[hx] = set
	}
	set[id] = struct{}{}
}

func (m *Mempool) unlink(hx chain.HashX, id chainhash.Hash) {
	set := m.byScript[hx]
	delete(set, id)
	if len(set) == 0 {
		delete(m.byScript, hx)
	}
}

// touchSet collects what changed transactions touch.
type touchSet struct {
	scripts   map[chain.HashX]struct{}
	outpoints map[wire.OutPoint]struct{}
}

func newTouchSet() *touchSet {
	return &touchSet{scripts: map[chain.HashX]struct{}{}, outpoints: map[wire.OutPoint]struct{}{}}
}

func (s *touchSet) add(t *tx) {
	for i := range t.ins {
		in := &t.ins[i]
		s.outpoints[in.prev] = struct{}{}
		if in.indexed {
			s.scripts[in.hx] = struct{}{}
		}
	}
	for i := range t.outs {
		o := &t.outs[i]
		s.outpoints[wire.OutPoint{Hash: t.id, Index: uint32(i)}] = struct{}{}
		if o.indexed {
			s.scripts[o.hx] = struct{}{}
		}
	}
}

func (s *touchSet) sorted() Touched {
	var out Touched
	for hx := range s.scripts {
		out.Scripts = append(out.Scripts, hx)
	}
	slices.SortFunc(out.Scripts, func(a, b chain.HashX) int { return bytes.Compare(a[:], b[:]) })
	for op := range s.outpoints {
		out.Outpoints = append(out.Outpoints, op)
	}
	slices.SortFunc(out.Outpoints, func(a, b wire.OutPoint) int {
		if c := bytes.Compare(a.Hash[:], b.Hash[:]); c != 0 {
			return c
		}
		return cmp.Compare(a.Index, b.Index)
	})
	return out
}
