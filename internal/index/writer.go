package index

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/btcsuite/btcd/chainhash/v2"
	"github.com/btcsuite/btcd/wire/v2"

	"amber/internal/chain"
	"amber/internal/store"
)

// ErrPrevMismatch means a block does not extend the writer's tip: the
// caller has found a reorg and should disconnect blocks.
var ErrPrevMismatch = errors.New("index: block does not extend the tip")

// Writer applies blocks to the index in one batch. The batch holds rows,
// undo records and the tip together, so committing it moves the index from
// one consistent tip to another. Only one Writer exists at a time.
type Writer struct {
	ix      *Index
	b       *store.Batch
	r       store.Reader // the batch overlaid on the DB, or the DB for a bulk writer
	tip     Tip
	counts  []uint64
	done    bool
	touched *Touched // nil unless CollectTouched was called

	// fresh holds the outputs created in this batch, so spending them
	// (most spends are of recent outputs) needs no lookup. Their UTXO and
	// outpoint rows are written at Commit, and only for those still
	// unspent: an output created and spent in one batch costs no rows
	// and no tombstones. Commit then moves them to the UTXO cache.
	fresh map[wire.OutPoint]freshOut
	// bulk marks a writer whose batch cannot be read (NewBulkWriter).
	bulk bool
	// spentOld remembers the committed outputs this batch spent: neither
	// the UTXO cache nor a bulk writer's reads of the DB see the batch's
	// deletes. Commit takes them out of the cache.
	spentOld map[wire.OutPoint]struct{}
	// undoFrom: blocks below this height get no undo record (SetDaemonTip).
	undoFrom int32
	// disconnected records that blocks were taken out, which makes the
	// commit clear the index's block tree and UTXO caches; low is the
	// lowest tip reached, above which the header tree forgets its nodes.
	disconnected bool
	low          int32
	// pending delivers the result of the previous writer's commit, which
	// runs in the background (CommitNext); this writer waits for it before
	// it reads the DB, commits or closes. prevErr keeps a failure.
	pending <-chan error
	prevErr error
}

// freshEntryBytes is what one output created in the batch holds until
// Commit: its map entry and the two rows it will write. spentEntryBytes
// is a spentOld entry: a 36-byte outpoint in a map slot.
const (
	freshEntryBytes = 160
	spentEntryBytes = 64
)

type freshOut struct {
	txNum uint64
	hashX chain.HashX
	value uint64
}

// Touched lists what the blocks applied by a Writer changed: the scripts
// whose history changed and the outpoints created or spent. The server
// notifies subscribers of exactly these.
type Touched struct {
	Scripts   map[chain.HashX]struct{}
	Outpoints map[wire.OutPoint]struct{}
}

// CollectTouched makes the Writer record what it touches; a bulk sync
// leaves it off to save memory.
func (w *Writer) CollectTouched() {
	w.touched = &Touched{Scripts: map[chain.HashX]struct{}{}, Outpoints: map[wire.OutPoint]struct{}{}}
}

// Touched returns what was collected, or nil.
func (w *Writer) Touched() *Touched { return w.touched }

func (w *Writer) touch(hx chain.HashX, op wire.OutPoint) {
	if w.touched != nil {
		w.touched.Scripts[hx] = struct{}{}
		w.touched.Outpoints[op] = struct{}{}
	}
}

// NewWriter starts a batch on top of the committed tip. It fails while
// another Writer is open.
func (ix *Index) NewWriter() (*Writer, error) {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	if ix.writing {
		return nil, errors.New("index: a writer is already open")
	}
	ix.writing = true
	n := len(ix.txCounts)
	b := ix.db.NewIndexedBatch()
	return &Writer{ix: ix, b: b, r: b, tip: ix.tip, counts: ix.txCounts[:n:n]}, nil
}

// NewBulkWriter is NewWriter for a bulk sync, which only connects blocks:
// its batch is write-only, which saves the sorted index Pebble keeps of
// a readable batch's every write (the largest cost of indexing in the
// profiles), and hands its writes to Pebble in key order at commit
// (store.NewSortedBatch). Outputs created in the batch are found in
// memory, the rest in the DB. Disconnect fails on it.
func (ix *Index) NewBulkWriter() (*Writer, error) {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	if ix.writing {
		return nil, errors.New("index: a writer is already open")
	}
	ix.writing = true
	n := len(ix.txCounts)
	return &Writer{ix: ix, b: ix.db.NewSortedBatch(), r: ix.db, tip: ix.tip, counts: ix.txCounts[:n:n], bulk: true}, nil
}

// Tip is the tip as of the blocks applied so far in this batch.
func (w *Writer) Tip() Tip { return w.tip }

// Size is the memory the writer holds in bytes: the batch as it will be
// held once committed, the outputs created in it whose rows Commit
// writes, and the committed outputs it spent. Callers commit by it.
func (w *Writer) Size() int {
	return w.b.CommitBytes() + len(w.fresh)*freshEntryBytes + len(w.spentOld)*spentEntryBytes
}

// SetDaemonTip tells the writer the daemon's tip, so that Connect writes
// no undo record for blocks REORG_LIMIT or more below it: a reorg that
// deep is refused anyway, and the records would be pruned unread
// (ElectrumX keeps undo information only within its reorg limit too).
func (w *Writer) SetDaemonTip(height int32) {
	w.undoFrom = height - int32(w.ix.opts.ReorgLimit) + 1
}

// writeFresh writes the rows of the outputs created in the batch and not
// spent in it.
func (w *Writer) writeFresh() error {
	for op, f := range w.fresh {
		if err := w.set(utxoKey(f.hashX, f.txNum, op.Index), putUint64(f.value)); err != nil {
			return err
		}
		if err := w.set(outLookupKey((*[32]byte)(&op.Hash), op.Index, f.txNum), f.hashX[:]); err != nil {
			return err
		}
	}
	return nil
}

// wait waits for the previous writer's background commit, if any.
func (w *Writer) wait() error {
	if w.pending != nil {
		if err := <-w.pending; err != nil {
			// What the DB holds now is unknown: trust no cached output.
			w.ix.utxos.clear()
			w.prevErr = err
		}
		w.pending = nil
	}
	return w.prevErr
}

// CommitNext commits the batch of a bulk writer in the background and
// returns a bulk writer that continues from its tip, so that Pebble's
// work on one batch (sorting it into the memtable) overlaps the indexing
// of the next instead of stalling it. The new writer waits for that
// commit before it reads the DB, commits or closes, and fails if the
// commit failed; readers see the new tip once the commit is done. The
// UTXO cache is updated at once: spends it cannot answer wait for the
// commit, so it never answers what the DB would not.
func (w *Writer) CommitNext(sync bool) (*Writer, error) {
	if w.done {
		return nil, errors.New("index: writer already finished")
	}
	if !w.bulk {
		return nil, errors.New("index: CommitNext needs a bulk writer")
	}
	if err := w.wait(); err != nil {
		w.Close()
		return nil, err
	}
	w.done = true
	err := w.writeFresh()
	if err == nil {
		err = w.set(metaKey("tip"), w.tip.marshal())
	}
	if err != nil {
		w.release()
		return nil, err
	}
	c := w.ix.utxos
	for op := range w.spentOld {
		c.del(op)
	}
	for op, f := range w.fresh {
		c.put(op, f)
	}
	done := make(chan error, 1)
	go func() {
		w.ix.hdrMu.Lock() // as Commit
		err := w.b.Commit(sync)
		if err == nil {
			w.ix.mu.Lock()
			w.ix.tip, w.ix.txCounts = w.tip, w.counts
			w.ix.mu.Unlock()
		}
		w.ix.hdrMu.Unlock()
		if err != nil {
			err = fmt.Errorf("index: commit through height %d: %w", w.tip.Height, err)
		}
		w.b.Close()
		done <- err
	}()
	// The index stays marked as written: the new writer owns it now.
	next := &Writer{ix: w.ix, b: w.ix.db.NewSortedBatch(), r: w.ix.db, tip: w.tip,
		counts: w.counts[:len(w.counts):len(w.counts)], bulk: true, undoFrom: w.undoFrom, pending: done}
	if w.touched != nil {
		next.CollectTouched()
	}
	return next, nil
}

// Commit writes the batch atomically and publishes the new tip to readers.
// sync makes it durable before returning. The Writer is finished after.
func (w *Writer) Commit(sync bool) error {
	if w.done {
		return errors.New("index: writer already finished")
	}
	if err := w.wait(); err != nil {
		w.Close()
		return err
	}
	w.done = true
	defer w.release()
	if err := w.writeFresh(); err != nil {
		return err
	}
	if err := w.b.Set(metaKey("tip"), w.tip.marshal()); err != nil {
		return fmt.Errorf("index: write tip: %w", err)
	}
	w.ix.hdrMu.Lock()
	defer w.ix.hdrMu.Unlock()
	if err := w.b.Commit(sync); err != nil {
		// What the DB holds now is unknown: trust no cached output.
		w.ix.utxos.clear()
		return fmt.Errorf("index: commit through height %d: %w", w.tip.Height, err)
	}
	// The cache follows the committed state; the lock of release orders
	// this before the next writer's use.
	if c := w.ix.utxos; w.disconnected {
		c.clear()
	} else {
		for op := range w.spentOld {
			c.del(op)
		}
		for op, f := range w.fresh {
			c.put(op, f)
		}
	}
	w.ix.mu.Lock()
	w.ix.tip, w.ix.txCounts = w.tip, w.counts
	if w.disconnected {
		w.ix.treesGen++
		clear(w.ix.trees)
		w.ix.treesBytes = 0
	}
	w.ix.mu.Unlock()
	if w.disconnected {
		w.ix.hdrTree.Truncate(int(w.low) + 1)
	}
	return nil
}

// Close discards an uncommitted batch (after the previous writer's
// background commit is done).
func (w *Writer) Close() {
	if !w.done {
		_ = w.wait()
		w.done = true
		w.release()
	}
}

func (w *Writer) release() {
	w.b.Close()
	w.ix.mu.Lock()
	w.ix.writing = false
	w.ix.mu.Unlock()
}

// Connect indexes blk as the block after the writer's tip. Block 0 is
// recorded (header, counts) but its coinbase is not indexed: it cannot be
// spent.
func (w *Writer) Connect(blk *chain.Block) error {
	height := w.tip.Height + 1
	if height == 0 {
		if blk.Hash != w.ix.net.Genesis {
			return fmt.Errorf("index: block 0 is %s, want the %s genesis %s", blk.Hash, w.ix.net, w.ix.net.Genesis)
		}
	} else if blk.Header.PrevBlock != w.tip.Hash {
		return fmt.Errorf("%w: block %s at height %d has prev %s, tip is %s", ErrPrevMismatch, blk.Hash, height, blk.Header.PrevBlock, w.tip.Hash)
	}
	h := uint32(height)
	var undo *undoRecord
	if height >= w.undoFrom {
		undo = &undoRecord{}
	}
	txNum := w.tip.TxCount
	if height > 0 {
		// The txid rows and count go first: an input may spend an output
		// of this block, and finding its txid needs both.
		if err := w.setTxids(blk, txNum); err != nil {
			return err
		}
		w.counts = append(w.counts, txNum+uint64(len(blk.Txs)))
		for i := range blk.Txs {
			if err := w.connectTx(&blk.Txs[i], txNum, undo); err != nil {
				return fmt.Errorf("index: block %d tx %d (%s): %w", height, i, blk.Txs[i].TxID, err)
			}
			txNum++
		}
	}
	var count [txNumLen]byte
	putTxNum(count[:], txNum)
	if err := w.set(headerKey(h), blk.RawHeader[:]); err != nil {
		return err
	}
	if err := w.set(txCountKey(h), count[:]); err != nil {
		return err
	}
	if undo != nil {
		if err := w.set(undoKey(h), undo.marshal()); err != nil {
			return err
		}
	}
	if old := int64(h) - int64(w.ix.opts.ReorgLimit); old >= 0 {
		if err := w.b.Delete(undoKey(uint32(old))); err != nil {
			return fmt.Errorf("index: prune undo %d: %w", old, err)
		}
	}
	w.tip = Tip{Height: height, Hash: blk.Hash, TxCount: txNum}
	if height == 0 {
		w.counts = append(w.counts, txNum)
	}
	return nil
}

// setTxids writes the txid rows of blk, whose first tx_num is first.
func (w *Writer) setTxids(blk *chain.Block, first uint64) error {
	for i := 0; i < len(blk.Txs); i += txidChunk {
		end := min(i+txidChunk, len(blk.Txs))
		v := make([]byte, 0, (end-i)*txidLen)
		for j := i; j < end; j++ {
			v = append(v, blk.Txs[j].TxID[:]...)
		}
		if err := w.set(txidKey(first+uint64(i)), v); err != nil {
			return err
		}
	}
	return nil
}

func (w *Writer) connectTx(tx *chain.Tx, txNum uint64, undo *undoRecord) error {
	txid := (*[32]byte)(&tx.TxID)
	if err := w.set(txLookupKey(txid, txNum), nil); err != nil {
		return err
	}
	var spender [txNumLen]byte
	putTxNum(spender[:], txNum)
	for _, in := range tx.Inputs {
		if in.Coinbase {
			continue
		}
		prev := (*[32]byte)(&in.Prev.Hash)
		var (
			fund  uint64
			hx    chain.HashX
			value uint64
		)
		if f, ok := w.fresh[in.Prev]; ok {
			// Created in this batch: its rows were never written.
			fund, hx, value = f.txNum, f.hashX, f.value
			delete(w.fresh, in.Prev)
		} else {
			if _, spent := w.spentOld[in.Prev]; spent {
				return fmt.Errorf("spends %s:%d, which is not an unspent output in the index", in.Prev.Hash, in.Prev.Index)
			}
			if w.spentOld == nil {
				w.spentOld = map[wire.OutPoint]struct{}{}
			}
			w.spentOld[in.Prev] = struct{}{}
			f, ok := freshOut{}, false
			if !w.disconnected {
				f, ok = w.ix.utxos.get(in.Prev)
			}
			if ok {
				fund, hx, value = f.txNum, f.hashX, f.value
			} else {
				if err := w.wait(); err != nil {
					return err
				}
				var err error
				if fund, hx, err = w.lookupOutpoint(prev, in.Prev.Index); err != nil {
					return err
				}
				// Only an undo record needs the value: far from the tip a
				// miss costs one read fewer.
				if undo != nil {
					v, err := w.r.Get(utxoKey(hx, fund, in.Prev.Index))
					if err != nil {
						return fmt.Errorf("read utxo of %s:%d: %w", in.Prev.Hash, in.Prev.Index, err)
					}
					value = binary.BigEndian.Uint64(v)
				}
			}
			if err := w.del(utxoKey(hx, fund, in.Prev.Index)); err != nil {
				return err
			}
			if err := w.del(outLookupKey(prev, in.Prev.Index, fund)); err != nil {
				return err
			}
		}
		if undo != nil {
			undo.spent = append(undo.spent, spentOut{hashX: hx, fundTxNum: fund, vout: in.Prev.Index, value: value, spender: txNum})
		}
		if err := w.set(spendKey(prev, in.Prev.Index, fund), spender[:]); err != nil {
			return err
		}
		if err := w.set(historyKey(hx, txNum), nil); err != nil {
			return err
		}
		w.touch(hx, in.Prev)
	}
	for vout, out := range tx.Outputs {
		if !chain.IsIndexed(out.PkScript) {
			continue
		}
		hx := chain.HashXOf(out.PkScript)
		v := uint32(vout)
		if err := w.set(historyKey(hx, txNum), nil); err != nil {
			return err
		}
		if undo != nil {
			undo.created = append(undo.created, newOut{hashX: hx, txNum: txNum, vout: v})
		}
		if w.fresh == nil {
			w.fresh = map[wire.OutPoint]freshOut{}
		}
		w.fresh[wire.OutPoint{Hash: tx.TxID, Index: v}] = freshOut{txNum: txNum, hashX: hx, value: uint64(out.Value)}
		w.touch(hx, wire.OutPoint{Hash: tx.TxID, Index: v})
	}
	return nil
}

// lookupOutpoint finds the funding tx_num and script of an unspent
// outpoint, confirming candidates by their full txid.
func (w *Writer) lookupOutpoint(txid *[32]byte, vout uint32) (uint64, chain.HashX, error) {
	prefix := outLookupKey(txid, vout, 0)[:1+shortLen+voutLen]
	var hx chain.HashX
	fund, found, err := confirmTx(w.r, w.counts, prefix, txid, func(val []byte) { copy(hx[:], val) })
	if err != nil {
		return 0, hx, err
	}
	if !found {
		return 0, hx, fmt.Errorf("spends %s:%d, which is not an unspent output in the index", chainhash.Hash(*txid), vout)
	}
	return fund, hx, nil
}

// Disconnect takes the tip block back out using its undo record, leaving
// the index as it was before the block was connected.
func (w *Writer) Disconnect() error {
	if w.bulk {
		return errors.New("index: a bulk writer cannot disconnect blocks")
	}
	if !w.disconnected {
		w.low = w.tip.Height
	}
	// Rows of outputs created earlier in this batch go in first, for the
	// undo record to take out; from here on the batch is read, not fresh,
	// nor the cache (cleared at Commit).
	if err := w.writeFresh(); err != nil {
		return err
	}
	w.fresh, w.spentOld = nil, nil
	w.disconnected = true
	height := w.tip.Height
	if height <= 0 {
		return errors.New("index: cannot disconnect the genesis block")
	}
	h := uint32(height)
	raw, err := w.b.Get(undoKey(h))
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("%w: no undo record for block %d (kept for %d blocks)", ErrReorgTooDeep, height, w.ix.opts.ReorgLimit)
	}
	if err != nil {
		return fmt.Errorf("index: read undo %d: %w", height, err)
	}
	undo, err := unmarshalUndo(raw)
	if err != nil {
		return fmt.Errorf("index: block %d: %w", height, err)
	}
	first := w.counts[height-1]
	last := w.counts[height]
	// Outputs the block created: remove their rows (any spent ones were
	// spent in this block and are restored and removed below).
	for _, c := range undo.created {
		txid, err := readTxid(w.b, w.counts, c.txNum)
		if err != nil {
			return fmt.Errorf("index: %w", err)
		}
		if err := w.del(utxoKey(c.hashX, c.txNum, c.vout)); err != nil {
			return err
		}
		if err := w.del(outLookupKey((*[32]byte)(txid), c.vout, c.txNum)); err != nil {
			return err
		}
		if err := w.del(historyKey(c.hashX, c.txNum)); err != nil {
			return err
		}
		w.touch(c.hashX, wire.OutPoint{Hash: chainhash.Hash(txid), Index: c.vout})
	}
	// Outputs it spent, newest first so an output created and spent inside
	// the block ends up deleted.
	for i := len(undo.spent) - 1; i >= 0; i-- {
		s := undo.spent[i]
		var txid [32]byte
		full, err := readTxid(w.b, w.counts, s.fundTxNum)
		if err != nil {
			return fmt.Errorf("index: %w", err)
		}
		copy(txid[:], full)
		if err := w.del(historyKey(s.hashX, s.spender)); err != nil {
			return err
		}
		if err := w.del(spendKey(&txid, s.vout, s.fundTxNum)); err != nil {
			return err
		}
		w.touch(s.hashX, wire.OutPoint{Hash: chainhash.Hash(txid), Index: s.vout})
		if s.fundTxNum >= first {
			continue // created in this block: stays deleted
		}
		if err := w.set(utxoKey(s.hashX, s.fundTxNum, s.vout), putUint64(s.value)); err != nil {
			return err
		}
		if err := w.set(outLookupKey(&txid, s.vout, s.fundTxNum), s.hashX[:]); err != nil {
			return err
		}
	}
	for start := first; start < last; start += txidChunk {
		ids, err := w.b.Get(txidKey(start))
		if err != nil {
			return fmt.Errorf("index: read txid row %d: %w", start, err)
		}
		if uint64(len(ids)) != min(txidChunk, last-start)*txidLen {
			return fmt.Errorf("index: txid row %d holds %d bytes", start, len(ids))
		}
		for i := 0; i < len(ids); i += txidLen {
			if err := w.del(txLookupKey((*[32]byte)(ids[i:i+txidLen]), start+uint64(i/txidLen))); err != nil {
				return err
			}
		}
		if err := w.del(txidKey(start)); err != nil {
			return err
		}
	}
	for _, k := range [][]byte{headerKey(h), txCountKey(h), undoKey(h)} {
		if err := w.del(k); err != nil {
			return err
		}
	}
	prevHeader, err := w.b.Get(headerKey(h - 1))
	if err != nil {
		return fmt.Errorf("index: read header %d: %w", h-1, err)
	}
	w.counts = w.counts[:height:height]
	w.tip = Tip{Height: height - 1, Hash: chain.HeaderHash(prevHeader), TxCount: first}
	w.low = min(w.low, w.tip.Height)
	return nil
}

func (w *Writer) set(k, v []byte) error {
	if err := w.b.Set(k, v); err != nil {
		return fmt.Errorf("index: write %x: %w", k[:1], err)
	}
	return nil
}

func (w *Writer) del(k []byte) error {
	if err := w.b.Delete(k); err != nil {
		return fmt.Errorf("index: delete %x: %w", k[:1], err)
	}
	return nil
}
