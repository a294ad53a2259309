package mempool

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/btcsuite/btcd/chainhash/v2"
	"github.com/btcsuite/btcd/wire/v2"
	"golang.org/x/sync/errgroup"

	"amber/internal/chain"
	"amber/internal/daemon"
	"amber/internal/index"
)

// Refresh brings the view to the daemon's mempool and returns what
// changed. It returns an error wrapping ErrNotSynced, and changes nothing
// visible, when the index (Outputs.Tip) is not at the daemon's best
// block; other errors come from the daemon or the index. Concurrent calls
// run one after the other.
func (m *Mempool) Refresh(ctx context.Context) (Touched, error) {
	m.refreshMu.Lock()
	defer m.refreshMu.Unlock()
	started := m.opts.Now()

	tip := m.outs.Tip()
	ids, err := m.list(ctx, tip)
	if err != nil {
		return Touched{}, err
	}
	listed := make(map[chainhash.Hash]struct{}, len(ids))
	var missing []chainhash.Hash
	for _, id := range ids {
		if _, dup := listed[id]; dup {
			continue
		}
		listed[id] = struct{}{}
		if m.txs[id] == nil && m.pending[id] == nil {
			missing = append(missing, id)
		}
	}

	// Fetched transactions wait in pending until they resolve, so an
	// error below does not lose them.
	fetched, err := m.fetch(ctx, missing)
	if err != nil {
		return Touched{}, err
	}
	for _, t := range fetched {
		m.pending[t.id] = t
	}
	for id := range m.pending {
		if _, ok := listed[id]; !ok {
			delete(m.pending, id)
		}
	}
	m.unresolved.Store(int64(len(m.pending)))

	p, err := m.plan(listed, tip)
	if err != nil {
		return Touched{}, err
	}
	// The index must not have moved while inputs were resolved against it.
	if now := m.outs.Tip(); now.Hash != tip.Hash {
		return Touched{}, fmt.Errorf("%w: index moved from %d %s to %d %s during the refresh",
			ErrNotSynced, tip.Height, tip.Hash, now.Height, now.Hash)
	}
	touched := m.apply(p, tip)
	m.unresolved.Store(int64(len(m.pending)))
	m.maybeHistogram()

	took := m.opts.Now().Sub(started)
	m.logger.Debug("mempool refreshed", "height", tip.Height, "txs", len(m.txs),
		"added", len(p.added), "removed", len(p.removed), "changed", len(p.changed),
		"unresolved", len(m.pending), "fetched", len(fetched), "took", took.String())
	return touched, nil
}

// list returns the daemon's mempool txids, read while the daemon's best
// block was the index tip.
func (m *Mempool) list(ctx context.Context, tip index.Tip) ([]chainhash.Hash, error) {
	before, err := m.d.BestBlockHash(ctx)
	if err != nil {
		return nil, fmt.Errorf("mempool: read daemon tip: %w", err)
	}
	if before != tip.Hash {
		return nil, fmt.Errorf("%w: index at %d %s, daemon at %s", ErrNotSynced, tip.Height, tip.Hash, before)
	}
	ids, err := m.d.RawMempool(ctx)
	if err != nil {
		return nil, fmt.Errorf("mempool: list daemon mempool: %w", err)
	}
	after, err := m.d.BestBlockHash(ctx)
	if err != nil {
		return nil, fmt.Errorf("mempool: read daemon tip: %w", err)
	}
	if after != before {
		return nil, fmt.Errorf("%w: daemon tip moved from %s to %s while its mempool was listed", ErrNotSynced, before, after)
	}
	return ids, nil
}

// fetch gets and decodes the transactions, in batches, a bounded number at
// once. Transactions the daemon no longer has, or that do not decode, are
// left out.
func (m *Mempool) fetch(ctx context.Context, ids []chainhash.Hash) ([]*tx, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	chunks := slices.Collect(slices.Chunk(ids, m.opts.FetchChunk))
	got := make([][]*tx, len(chunks))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(m.opts.FetchConcurrency)
	for i, chunk := range chunks {
		g.Go(func() error {
			res, err := m.d.RawTransactions(gctx, chunk)
			if err != nil {
				return fmt.Errorf("mempool: fetch %d transactions: %w", len(chunk), err)
			}
			if len(res) != len(chunk) {
				return fmt.Errorf("mempool: fetch %d transactions: daemon answered %d", len(chunk), len(res))
			}
			txs := make([]*tx, 0, len(chunk))
			for j, r := range res {
				id := chunk[j]
				switch {
				case errors.Is(r.Err, daemon.ErrNotFound):
					m.logger.Debug("mempool transaction gone before fetch", "txid", id.String())
					continue
				case r.Err != nil:
					m.logger.Warn("mempool transaction not fetched", "txid", id.String(), "err", r.Err)
					continue
				}
				t, err := decode(id, r.Raw)
				if err != nil {
					m.logger.Warn("mempool transaction not decoded", "txid", id.String(), "err", err)
					continue
				}
				txs = append(txs, t)
			}
			got[i] = txs
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	return slices.Concat(got...), nil
}

// decode makes an unresolved transaction from the daemon's bytes.
func decode(id chainhash.Hash, raw []byte) (*tx, error) {
	ct, err := chain.DecodeTx(raw)
	if err != nil {
		return nil, err
	}
	if ct.TxID != id {
		return nil, fmt.Errorf("daemon returned transaction %s", ct.TxID)
	}
	t := &tx{
		id:    id,
		raw:   raw,
		ins:   make([]input, len(ct.Inputs)),
		outs:  make([]output, len(ct.Outputs)),
		vsize: int64(ct.VSize()),
	}
	for i, in := range ct.Inputs {
		if in.Coinbase {
			return nil, errors.New("coinbase input in a mempool transaction")
		}
		t.ins[i] = input{prev: in.Prev}
	}
	for i, o := range ct.Outputs {
		t.outs[i] = output{hx: chain.HashXOf(o.PkScript), value: o.Value, indexed: chain.IsIndexed(o.PkScript)}
	}
	return t, nil
}

// plan is a refresh's set of changes, computed without touching the view.
type plan struct {
	removed []*tx     // held transactions leaving the view
	demoted []*tx     // of removed, those still listed, to wait in pending
	added   []*tx     // pending transactions entering the view
	changed [][2]*tx  // held transactions re-resolved visibly: old, new
	quiet   []*tx     // held transactions re-resolved with nothing visible changed
	touched *touchSet // what removed, added and changed touch
}

// plan works out the changes a refresh makes: held transactions the
// daemon no longer lists leave; those whose parents left, or all of them
// when the index tip changed, are resolved again; pending ones are
// resolved, parents first.
func (m *Mempool) plan(listed map[chainhash.Hash]struct{}, tip index.Tip) (*plan, error) {
	p := &plan{touched: newTouchSet()}
	gone := map[chainhash.Hash]bool{}
	for id, t := range m.txs {
		if _, ok := listed[id]; !ok {
			gone[id] = true
			p.removed = append(p.removed, t)
		}
	}

	// Held transactions to resolve again.
	again := map[chainhash.Hash]*tx{}
	if !m.synced || tip.Hash != m.tip.Hash {
		for id, t := range m.txs {
			if !gone[id] {
				again[id] = t
			}
		}
	} else {
		// Descendants of the transactions that left.
		queue := make([]*tx, 0, len(p.removed))
		queue = append(queue, p.removed...)
		for len(queue) > 0 {
			t := queue[0]
			queue = queue[1:]
			for vout := range t.outs {
				child, ok := m.spends[wire.OutPoint{Hash: t.id, Index: uint32(vout)}]
				if !ok || gone[child] || again[child] != nil {
					continue
				}
				c := m.txs[child]
				again[child] = c
				queue = append(queue, c)
			}
		}
	}

	cands := make(map[chainhash.Hash]*tx, len(m.pending)+len(again))
	for id, t := range m.pending {
		cands[id] = t
	}
	for id, t := range again {
		cands[id] = t
	}
	accepted := make(map[chainhash.Hash]*tx, len(cands))
	for _, c := range topoOrder(cands) {
		r, ok, err := m.resolve(c, cands, accepted, gone, listed)
		if err != nil {
			return nil, err
		}
		old, held := again[c.id]
		switch {
		case ok && !held:
			accepted[c.id] = r
			p.added = append(p.added, r)
			p.touched.add(r)
		case ok && held:
			accepted[c.id] = r
			switch {
			case r == old:
			case visiblyEqual(old, r):
				p.quiet = append(p.quiet, r)
			default:
				p.changed = append(p.changed, [2]*tx{old, r})
				p.touched.add(old)
				p.touched.add(r)
			}
		case held:
			p.removed = append(p.removed, old)
			p.demoted = append(p.demoted, old)
		}
	}
	for _, t := range p.removed {
		p.touched.add(t)
	}
	return p, nil
}

// resolve finds what every input of c spends. c's parents among cands
// have been resolved already (or failed). For a held transaction it
// returns c itself when nothing changed. ok is false when some input
// cannot be resolved now.
func (m *Mempool) resolve(c *tx, cands, accepted map[chainhash.Hash]*tx, gone map[chainhash.Hash]bool,
	listed map[chainhash.Hash]struct{}) (*tx, bool, error) {
	ins := make([]input, len(c.ins))
	same := m.txs[c.id] == c // c is held: reuse its confirmed inputs
	for i := range c.ins {
		old := c.ins[i]
		prev := old.prev
		in := input{prev: prev}
		var parent *tx
		switch {
		case accepted[prev.Hash] != nil:
			parent = accepted[prev.Hash]
		case cands[prev.Hash] != nil:
			// A candidate parent that did not resolve.
			return nil, false, nil
		case m.txs[prev.Hash] != nil && !gone[prev.Hash]:
			parent = m.txs[prev.Hash]
		}
		switch {
		case parent != nil:
			if int64(prev.Index) >= int64(len(parent.outs)) {
				return nil, false, nil
			}
			o := parent.outs[prev.Index]
			in.hx, in.value, in.indexed, in.mempool = o.hx, o.value, o.indexed, true
		case same && !old.mempool:
			// Resolved to a confirmed output before; still confirmed
			// unless its transaction is back in the daemon's mempool,
			// in which case it is a candidate or held, handled above.
			if _, ok := listed[prev.Hash]; ok {
				return nil, false, nil
			}
			in = old
		default:
			if _, ok := listed[prev.Hash]; ok {
				// Listed by the daemon but not in the view.
				return nil, false, nil
			}
			hx, value, ok, err := m.outs.Output(prev.Hash, prev.Index)
			if err != nil {
				return nil, false, fmt.Errorf("mempool: resolve input %s:%d of %s: %w", prev.Hash, prev.Index, c.id, err)
			}
			if !ok {
				return nil, false, nil
			}
			in.hx, in.value, in.indexed = hx, int64(value), true
		}
		ins[i] = in
	}

	r := &tx{id: c.id, raw: c.raw, ins: ins, outs: c.outs, vsize: c.vsize}
	var inSum, outSum int64
	for i := range ins {
		inSum += ins[i].value
		if ins[i].mempool {
			r.height = -1
		}
	}
	for i := range c.outs {
		outSum += c.outs[i].value
	}
	r.fee = max(0, inSum-outSum)
	if same && slices.Equal(ins, c.ins) && r.fee == c.fee && r.height == c.height {
		return c, true, nil
	}
	return r, true, nil
}

// visiblyEqual reports whether a re-resolved transaction shows the same
// to every query as before: same height, fee and spent outputs.
func visiblyEqual(a, b *tx) bool {
	if a.height != b.height || a.fee != b.fee || len(a.ins) != len(b.ins) {
		return false
	}
	for i := range a.ins {
		x, y := &a.ins[i], &b.ins[i]
		if x.hx != y.hx || x.value != y.value || x.indexed != y.indexed {
			return false
		}
	}
	return true
}

// topoOrder orders candidates parents first (Kahn's algorithm over the
// spends among them), ties by txid so a refresh is deterministic.
// Candidates in a cycle, which valid transactions cannot form, come last.
func topoOrder(cands map[chainhash.Hash]*tx) []*tx {
	ids := make([]chainhash.Hash, 0, len(cands))
	for id := range cands {
		ids = append(ids, id)
	}
	slices.SortFunc(ids, func(a, b chainhash.Hash) int { return bytes.Compare(a[:], b[:]) })
	indeg := make(map[chainhash.Hash]int, len(cands))
	children := map[chainhash.Hash][]chainhash.Hash{}
	for _, id := range ids {
		for _, in := range cands[id].ins {
			if _, ok := cands[in.prev.Hash]; ok && in.prev.Hash != id {
				indeg[id]++
				children[in.prev.Hash] = append(children[in.prev.Hash], id)
			}
		}
	}
	order := make([]*tx, 0, len(ids))
	done := make(map[chainhash.Hash]bool, len(ids))
	for _, id := range ids {
		if indeg[id] == 0 {
			order = append(order, cands[id])
			done[id] = true
		}
	}
	for i := 0; i < len(order); i++ {
		for _, ch := range children[order[i].id] {
			if indeg[ch]--; indeg[ch] == 0 {
				order = append(order, cands[ch])
				done[ch] = true
			}
		}
	}
	for _, id := range ids {
		if !done[id] {
			order = append(order, cands[id])
		}
	}
	return order
}

// apply publishes a plan under the write lock and returns what it
// touched.
func (m *Mempool) apply(p *plan, tip index.Tip) Touched {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, t := range p.removed {
		m.remove(t)
	}
	for _, d := range p.demoted {
		m.pending[d.id] = d
	}
	for _, c := range p.changed {
		m.remove(c[0])
		m.add(c[1])
	}
	for _, t := range p.quiet {
		m.txs[t.id] = t
	}
	for _, t := range p.added {
		m.add(t)
		delete(m.pending, t.id)
		m.recent = append(m.recent, t.id)
	}
	if n := len(m.recent); n > recentKeep {
		m.recent = slices.Clone(m.recent[n-recentKeep:])
	}
	touched := p.touched.sorted()
	if !touched.Empty() || len(p.quiet) > 0 || !m.synced || m.tip.Hash != tip.Hash {
		m.gen++
	}
	m.tip, m.synced = tip, true
	return touched
}

// maybeHistogram recomputes the fee histogram when it is due. It runs in
// Refresh, after apply, and reads the view without the lock because only
// Refresh writes it.
func (m *Mempool) maybeHistogram() {
	now := m.opts.Now()
	if !m.histAt.IsZero() && now.Sub(m.histAt) < m.opts.HistogramInterval {
		return
	}
	byRate := map[int64]int64{}
	for _, t := range m.txs {
		byRate[rateTenths(t.fee, t.vsize)] += t.vsize
	}
	hist := compactHistogram(byRate, histogramBin)
	m.mu.Lock()
	m.hist = hist
	m.mu.Unlock()
	m.histAt = now
	m.logger.Debug("mempool fee histogram computed", "buckets", len(hist), "took", m.opts.Now().Sub(now).String())
}
