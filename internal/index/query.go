package index

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/btcsuite/btcd/chainhash/v2"

	"amber/internal/chain"
	"amber/internal/merkle"
	"amber/internal/store"
)

// HistoryItem is one confirmed transaction touching a script.
type HistoryItem struct {
	TxNum  uint64
	TxID   chainhash.Hash
	Height int32
}

// UTXO is one confirmed unspent output of a script.
type UTXO struct {
	TxNum  uint64
	TxID   chainhash.Hash
	Vout   uint32
	Height int32
	Value  uint64
}

// view is a consistent read: rows as of one moment, with the tx counts of
// the tip published no later than that moment. Rows of a block committed
// after the counts were taken are skipped.
type view struct {
	r      store.Reader
	counts []uint64
	close  func()
}

func (ix *Index) view() view {
	ix.mu.RLock()
	counts := ix.txCounts
	ix.mu.RUnlock()
	snap := ix.db.NewSnapshot()
	return view{r: snap, counts: counts, close: func() { snap.Close() }}
}

func (v view) txid(n uint64) (chainhash.Hash, error) {
	var h chainhash.Hash
	b, err := readTxid(v.r, v.counts, n)
	if err != nil {
		return h, fmt.Errorf("index: %w", err)
	}
	copy(h[:], b)
	return h, nil
}

// readTxid returns the txid of tx_num n as r holds it. counts locate its
// txid row; a tx_num past them (a block committed after a view took its
// counts) is found by a short backward seek instead, since its row is the
// last one starting at or before it.
func readTxid(r store.Reader, counts []uint64, n uint64) ([]byte, error) {
	start, ok := txidChunkOf(counts, n)
	var v []byte
	var err error
	if ok {
		v, err = r.Get(txidKey(start))
	} else {
		start, v, err = lastTxidRow(r, n)
	}
	if err != nil {
		return nil, fmt.Errorf("read txid of tx_num %d: %w", n, err)
	}
	return txidAt(v, start, n)
}

// txidAt returns tx_num n's txid from the txid row starting at tx_num
// start.
func txidAt(row []byte, start, n uint64) ([]byte, error) {
	off := int(n-start) * txidLen
	if len(row)%txidLen != 0 || off+txidLen > len(row) {
		return nil, fmt.Errorf("read txid of tx_num %d: txid row %d holds %d bytes", n, start, len(row))
	}
	return row[off : off+txidLen], nil
}

// lastTxidRow returns the txid row with the greatest start at or below n
// (a copy of its value).
func lastTxidRow(r store.Reader, n uint64) (uint64, []byte, error) {
	lo := n - min(n, txidChunk-1)
	it, err := r.NewIter(&store.IterOptions{Lower: txidKey(lo), Upper: txidKey(n + 1)})
	if err != nil {
		return 0, nil, err
	}
	var start uint64
	var v []byte
	found := it.Last()
	if found {
		start, v = getTxNum(it.Key()[1:]), bytes.Clone(it.Value())
	}
	if err := it.Close(); err != nil {
		return 0, nil, err
	}
	if !found {
		return 0, nil, store.ErrNotFound
	}
	return start, v, nil
}

// History returns the confirmed history of a script in chain order. At
// most limit items are read when limit > 0; more reports whether there
// were more.
func (ix *Index) History(hx chain.HashX, limit int) (items []HistoryItem, more bool, err error) {
	return ix.history(hx, limit, true)
}

// BoundedHistory is History for a caller that refuses a history longer
// than limit: then it returns no items and more, without reading their
// txids.
func (ix *Index) BoundedHistory(hx chain.HashX, limit int) (items []HistoryItem, more bool, err error) {
	return ix.history(hx, limit, false)
}

func (ix *Index) history(hx chain.HashX, limit int, partial bool) (items []HistoryItem, more bool, err error) {
	v := ix.view()
	defer v.close()
	it, err := v.r.NewIter(nil)
	if err != nil {
		return nil, false, fmt.Errorf("index: history of %s: %w", hx, err)
	}
	defer it.Close()
	err = v.rows(it, append([]byte{prefixHistory}, hx[:]...), func(_, _ []byte, n uint64, h int32) (bool, error) {
		if limit > 0 && len(items) == limit {
			more = true
			return false, nil
		}
		items = append(items, HistoryItem{TxNum: n, Height: h})
		return true, nil
	})
	if err != nil {
		return nil, false, fmt.Errorf("index: history of %s: %w", hx, err)
	}
	if more && !partial {
		return nil, true, nil
	}
	err = v.fillTxids(it, len(items), func(i int) uint64 { return items[i].TxNum },
		func(i int, id []byte) { copy(items[i].TxID[:], id) })
	if err != nil {
		return nil, false, err
	}
	return items, more, nil
}

// rows calls fn, through the unbounded iterator it, for each row under
// prefix (whose keys go on with a tx_num) in key order, with its tx_num
// and height, until fn returns false. Rows of blocks committed after the
// view's counts are not visited.
func (v view) rows(it *store.Iterator, prefix []byte, fn func(k, val []byte, n uint64, h int32) (bool, error)) error {
	for ok := it.SeekGE(prefix); ok; ok = it.Next() {
		k := it.Key()
		if !bytes.HasPrefix(k, prefix) {
			break
		}
		n := getTxNum(k[len(prefix):])
		h, ok := heightOf(v.counts, n)
		if !ok {
			break // committed after our view of the tip
		}
		if more, err := fn(k, it.Value(), n, h); err != nil || !more {
			return err
		}
	}
	return it.Error()
}

// fillTxids reads the txids of n ascending tx_nums, all within the view's
// counts, with the unbounded iterator it: each row is read once however
// many of its txids are wanted, and every seek moves forward, which Pebble
// serves from the blocks it already holds. One Get per entry cost a new
// iterator and a copy of the row each (half a busy server's CPU).
func (v view) fillTxids(it *store.Iterator, n int, num func(int) uint64, put func(int, []byte)) error {
	key := make([]byte, 1+txNumLen)
	key[0] = prefixTxid
	var row []byte
	var start uint64
	for i := range n {
		t := num(i)
		s, ok := txidChunkOf(v.counts, t)
		if !ok {
			return fmt.Errorf("index: read txid of tx_num %d: past the view's tip", t)
		}
		if row == nil || s != start {
			putTxNum(key[1:], s)
			if !it.SeekGE(key) || !bytes.Equal(it.Key(), key) {
				if err := it.Error(); err != nil {
					return fmt.Errorf("index: read txid of tx_num %d: %w", t, err)
				}
				return fmt.Errorf("index: read txid of tx_num %d: %w", t, store.ErrNotFound)
			}
			row, start = it.Value(), s
		}
		id, err := txidAt(row, start, t)
		if err != nil {
			return fmt.Errorf("index: %w", err)
		}
		put(i, id)
	}
	return nil
}

// UTXOs returns the confirmed unspent outputs of a script in chain order.
// At most limit are read when limit > 0; more reports whether there were
// more, so a script with hundreds of thousands of outputs costs a bounded
// scan.
func (ix *Index) UTXOs(hx chain.HashX, limit int) (out []UTXO, more bool, err error) {
	v := ix.view()
	defer v.close()
	it, err := v.r.NewIter(nil)
	if err != nil {
		return nil, false, fmt.Errorf("index: utxos of %s: %w", hx, err)
	}
	defer it.Close()
	prefix := append([]byte{prefixUTXO}, hx[:]...)
	err = v.rows(it, prefix, func(k, val []byte, n uint64, h int32) (bool, error) {
		if limit > 0 && len(out) == limit {
			more = true
			return false, nil
		}
		if len(val) != 8 {
			return false, fmt.Errorf("row %x holds %d bytes", k, len(val))
		}
		out = append(out, UTXO{TxNum: n, Height: h,
			Vout: binary.BigEndian.Uint32(k[len(prefix)+txNumLen:]), Value: binary.BigEndian.Uint64(val)})
		return true, nil
	})
	if err != nil {
		return nil, false, fmt.Errorf("index: utxos of %s: %w", hx, err)
	}
	err = v.fillTxids(it, len(out), func(i int) uint64 { return out[i].TxNum },
		func(i int, id []byte) { copy(out[i].TxID[:], id) })
	if err != nil {
		return nil, false, err
	}
	return out, more, nil
}

// Balance is the confirmed balance of a script in satoshis and the number
// of unspent outputs summed. At most limit outputs are read when limit >
// 0; more reports whether there were more (and sum is then partial). It
// reads the output rows only, not their txids.
func (ix *Index) Balance(hx chain.HashX, limit int) (sum uint64, n int, more bool, err error) {
	v := ix.view()
	defer v.close()
	prefix := append([]byte{prefixUTXO}, hx[:]...)
	err = v.r.Scan(prefix, func(k, val []byte) error {
		if _, ok := heightOf(v.counts, getTxNum(k[len(prefix):])); !ok {
			return store.ErrStop
		}
		if limit > 0 && n == limit {
			more = true
			return store.ErrStop
		}
		sum += binary.BigEndian.Uint64(val)
		n++
		return nil
	})
	if err != nil && !errors.Is(err, store.ErrStop) {
		return 0, 0, false, fmt.Errorf("index: balance of %s: %w", hx, err)
	}
	return sum, n, more, nil
}

// Header returns the raw 80-byte header at height.
func (ix *Index) Header(height int32) ([]byte, error) {
	if t := ix.Tip(); height < 0 || height > t.Height {
		return nil, fmt.Errorf("index: no header at height %d (tip %d)", height, t.Height)
	}
	b, err := ix.db.Get(headerKey(uint32(height)))
	if err != nil {
		return nil, fmt.Errorf("index: read header %d: %w", height, err)
	}
	return b, nil
}

// Headers returns the count headers from height start, concatenated,
// read in one scan: a chunk of 2,016 costs one seek, not 2,016 lookups.
func (ix *Index) Headers(start int32, count int) ([]byte, error) {
	if count == 0 && start >= 0 {
		return nil, nil
	}
	if t := ix.Tip(); start < 0 || count < 0 || int64(start)+int64(count)-1 > int64(t.Height) {
		return nil, fmt.Errorf("index: no %d headers from height %d (tip %d)", count, start, t.Height)
	}
	out := make([]byte, 0, count*chain.HeaderSize)
	err := ix.scanHeaders(int(start), int(start)+count, func(hdr []byte) { out = append(out, hdr...) })
	if err != nil {
		return nil, err
	}
	return out, nil
}

// scanHeaders calls fn with each header row of heights [lo, hi), in
// order, in one scan; a missing row is an error.
func (ix *Index) scanHeaders(lo, hi int, fn func(hdr []byte)) error {
	next := lo
	err := store.ScanRange(ix.db, headerKey(uint32(lo)), headerKey(uint32(hi)), func(k, v []byte) error {
		if h := int(binary.BigEndian.Uint32(k[1:])); h != next {
			return fmt.Errorf("header row of height %d missing (found %d)", next, h)
		}
		fn(v)
		next++
		return nil
	})
	if err == nil && next != hi {
		err = fmt.Errorf("header rows end at height %d", next)
	}
	if err != nil {
		return fmt.Errorf("index: read headers %d to %d: %w", lo, hi-1, err)
	}
	return nil
}

// BlockTxIDs returns the txids of the block at height in block order. Block
// 0 has none in the index.
func (ix *Index) BlockTxIDs(height int32) ([]chainhash.Hash, error) {
	t, err := ix.BlockTree(height)
	if err != nil {
		return nil, err
	}
	return slices.Clone(t.Leaves()), nil
}

// BlockTree returns the merkle tree of the txids of the block at height,
// from a cache of recently asked blocks that a reorg clears. The tree is
// shared: the caller must not change it.
func (ix *Index) BlockTree(height int32) (*merkle.BlockTree, error) {
	t, _, err := ix.BlockTreeCached(height)
	return t, err
}

// BlockTreeCached is BlockTree, saying whether the tree came from the
// cache (so a request can be charged for the work a miss took).
func (ix *Index) BlockTreeCached(height int32) (*merkle.BlockTree, bool, error) {
	ix.mu.RLock()
	cached, hit := ix.trees[height]
	gen := ix.treesGen
	ix.mu.RUnlock()
	if hit {
		ix.treeHits.Add(1)
		return cached, true, nil
	}
	ix.treeMisses.Add(1)
	ids, err := ix.readBlockTxIDs(height)
	if err != nil {
		return nil, false, err
	}
	t := merkle.NewBlockTree(ids)
	ix.mu.Lock()
	if _, dup := ix.trees[height]; gen == ix.treesGen && !dup && t.Bytes() <= blockTreeCacheBytes {
		if ix.trees == nil {
			ix.trees = map[int32]*merkle.BlockTree{}
		}
		for h, old := range ix.trees {
			if ix.treesBytes+t.Bytes() <= blockTreeCacheBytes {
				break
			}
			delete(ix.trees, h) // any one: map order is random
			ix.treesBytes -= old.Bytes()
		}
		ix.trees[height] = t
		ix.treesBytes += t.Bytes()
	}
	ix.mu.Unlock()
	return t, false, nil
}

// ReorgGen counts the commits that took blocks out: caches of confirmed
// data outside the index empty themselves when it moves.
func (ix *Index) ReorgGen() uint64 {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	return ix.treesGen
}

// BlockTreeCacheStats reports the block tree cache's hits and misses
// since the index was opened, and the bytes it holds.
func (ix *Index) BlockTreeCacheStats() (hits, misses uint64, bytes int) {
	ix.mu.RLock()
	bytes = ix.treesBytes
	ix.mu.RUnlock()
	return ix.treeHits.Load(), ix.treeMisses.Load(), bytes
}

func (ix *Index) readBlockTxIDs(height int32) ([]chainhash.Hash, error) {
	first, count, ok := ix.BlockTxRange(height)
	if !ok {
		return nil, fmt.Errorf("index: no block at height %d", height)
	}
	// One scan over the block's rows, straight on the DB (an iterator is
	// a consistent view by itself): a Get per txid on a new snapshot was
	// the top index cost of merkle proofs under wallet load.
	ids := make([]chainhash.Hash, 0, count)
	end := first + uint64(count)
	err := store.ScanRange(ix.db, txidKey(first), txidKey(end), func(k, val []byte) error {
		n := first + uint64(len(ids))
		if got, want := getTxNum(k[1:]), min(txidChunk, end-n)*txidLen; got != n || uint64(len(val)) != want {
			return fmt.Errorf("index: txid row of tx_num %d missing or malformed (found row %d of %d bytes)", n, got, len(val))
		}
		for i := 0; i < len(val); i += txidLen {
			ids = append(ids, chainhash.Hash(val[i:i+txidLen]))
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(ids) != count {
		return nil, fmt.Errorf("index: block %d has %d txid rows, want %d", height, len(ids), count)
	}
	return ids, nil
}

// LookupTx finds a confirmed transaction by txid.
func (ix *Index) LookupTx(txid chainhash.Hash) (txNum uint64, height int32, ok bool, err error) {
	v := ix.view()
	defer v.close()
	return v.lookupTx(txid)
}

func (v view) lookupTx(txid chainhash.Hash) (uint64, int32, bool, error) {
	prefix := txLookupKey((*[32]byte)(&txid), 0)[:1+shortLen]
	num, found, err := confirmTx(v.r, v.counts, prefix, (*[32]byte)(&txid), nil)
	if err != nil {
		return 0, 0, false, fmt.Errorf("index: look up %s: %w", txid, err)
	}
	if !found {
		return 0, 0, false, nil
	}
	h, ok := heightOf(v.counts, num)
	return num, h, ok, nil
}

// confirmTx finds the tx_num of txid among the lookup rows under prefix
// (a lookup key cut right before its tx_num suffix): the rows are keyed by
// a short txid prefix, which collides, so each candidate is confirmed by
// its full txid row. It calls found, if not nil, with the matching row's
// value, valid only during the call. Every txid-prefix lookup of the
// index goes through here.
func confirmTx(r store.Reader, counts []uint64, prefix []byte, txid *[32]byte, found func(val []byte)) (num uint64, ok bool, err error) {
	err = r.Scan(prefix, func(k, val []byte) error {
		n := getTxNum(k[len(prefix):])
		full, err := readTxid(r, counts, n)
		if err != nil {
			return err
		}
		if !bytes.Equal(full, txid[:]) {
			return nil
		}
		ok, num = true, n
		if found != nil {
			found(val)
		}
		return store.ErrStop
	})
	if err != nil {
		return 0, false, err
	}
	return num, ok, nil
}

// Spend is the confirmed transaction that spent an outpoint.
type Spend struct {
	TxID   chainhash.Hash
	Height int32
}

// Spender reports who spent output vout of txid, if anyone did in the
// best chain. It also reports whether the funding transaction is
// confirmed, and at what height.
func (ix *Index) Spender(txid chainhash.Hash, vout uint32) (fundHeight int32, funded bool, spend *Spend, err error) {
	v := ix.view()
	defer v.close()
	fund, fh, ok, err := v.lookupTx(txid)
	if err != nil || !ok {
		return 0, false, nil, err
	}
	b, err := v.r.Get(spendKey((*[32]byte)(&txid), vout, fund))
	if errors.Is(err, store.ErrNotFound) {
		return fh, true, nil, nil
	}
	if err != nil {
		return 0, false, nil, fmt.Errorf("index: read spend of %s:%d: %w", txid, vout, err)
	}
	n := getTxNum(b)
	sh, ok := heightOf(v.counts, n)
	if !ok {
		return fh, true, nil, nil
	}
	id, err := v.txid(n)
	if err != nil {
		return 0, false, nil, err
	}
	return fh, true, &Spend{TxID: id, Height: sh}, nil
}

// UTXOStats counts the confirmed unspent outputs and their total value by
// scanning every UTXO row: the figures `amber build --verify` compares
// with the daemon's gettxoutsetinfo.
func (ix *Index) UTXOStats() (count uint64, total uint64, err error) {
	v := ix.view()
	defer v.close()
	err = v.r.Scan([]byte{prefixUTXO}, func(_, val []byte) error {
		count++
		total += binary.BigEndian.Uint64(val)
		return nil
	})
	if err != nil {
		return 0, 0, fmt.Errorf("index: scan utxos: %w", err)
	}
	return count, total, nil
}

// Digest hashes every row of the index (keys and values, in key order)
// into a short hex string with the row count: two indexes of the same
// chain built the same way have the same digest, whatever crashes and
// restarts happened on the way.
func Digest(r store.Reader) (string, error) { return digestRows(r, nil) }

// digestRows is Digest over the rows skip does not leave out.
func digestRows(r store.Reader, skip func(key []byte) bool) (string, error) {
	h := sha256.New()
	rows := 0
	var n [4]byte
	err := r.Scan(nil, func(k, v []byte) error {
		if skip != nil && skip(k) {
			return nil
		}
		binary.BigEndian.PutUint32(n[:], uint32(len(k)))
		h.Write(n[:])
		h.Write(k)
		binary.BigEndian.PutUint32(n[:], uint32(len(v)))
		h.Write(n[:])
		h.Write(v)
		rows++
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("index: digest: %w", err)
	}
	return fmt.Sprintf("%x/%d", h.Sum(nil)[:12], rows), nil
}

// Output finds a confirmed unspent output: its script's hashX and value.
// ok is false when the output does not exist or is spent in the best
// chain. The mempool uses it to resolve what its transactions spend.
func (ix *Index) Output(txid chainhash.Hash, vout uint32) (hx chain.HashX, value uint64, ok bool, err error) {
	v := ix.view()
	defer v.close()
	key := (*[32]byte)(&txid)
	prefix := outLookupKey(key, vout, 0)[:1+shortLen+voutLen]
	fund, ok, err := confirmTx(v.r, v.counts, prefix, key, func(val []byte) { copy(hx[:], val) })
	if err != nil {
		return hx, 0, false, fmt.Errorf("index: output %s:%d: %w", txid, vout, err)
	}
	if !ok {
		return hx, 0, false, nil
	}
	b, err := v.r.Get(utxoKey(hx, fund, vout))
	if err != nil {
		return hx, 0, false, fmt.Errorf("index: utxo %s:%d: %w", txid, vout, err)
	}
	return hx, binary.BigEndian.Uint64(b), true, nil
}

// TxBlockHash returns the hash of the block holding a confirmed
// transaction, so a daemon without a transaction index can still find it
// (getrawtransaction TXID 0 BLOCKHASH). ok is false for a transaction the
// index does not have, such as one in the mempool.
func (ix *Index) TxBlockHash(txid chainhash.Hash) (chainhash.Hash, bool) {
	_, h, ok, err := ix.LookupTx(txid)
	if err != nil || !ok {
		return chainhash.Hash{}, false
	}
	hdr, err := ix.Header(h)
	if err != nil {
		return chainhash.Hash{}, false
	}
	return chainhash.DoubleHashH(hdr), true
}

// CheckpointProof returns the merkle branch of the block hash at height
// in the tree of the block hashes 0 to cpHeight, and that tree's root
// (spec §5.7). The tree's complete nodes are kept in memory, so a proof
// costs O(log n): a few header reads and hashes.
func (ix *Index) CheckpointProof(height, cpHeight int32) ([]chainhash.Hash, chainhash.Hash, error) {
	for {
		ix.hdrMu.RLock()
		tip := ix.Tip().Height
		if height < 0 || height > cpHeight || cpHeight > tip {
			ix.hdrMu.RUnlock()
			return nil, chainhash.Hash{}, fmt.Errorf("index: no checkpoint proof of height %d at cp_height %d (tip %d)", height, cpHeight, tip)
		}
		if int(cpHeight) < ix.hdrTree.Len() {
			br, root, err := ix.hdrTree.Branch(int(height), int(cpHeight)+1, ix.blockHashes)
			ix.hdrMu.RUnlock()
			return br, root, err
		}
		ix.hdrMu.RUnlock()
		if err := ix.extendHeaderTree(); err != nil {
			return nil, chainhash.Hash{}, err
		}
	}
}

// extendHeaderTree brings the header tree up to the tip. The first call
// reads every header (about a second at mainnet height); later ones only
// the new blocks.
func (ix *Index) extendHeaderTree() error {
	ix.hdrMu.Lock()
	defer ix.hdrMu.Unlock()
	n := int(ix.Tip().Height) + 1
	from := ix.hdrTree.Len()
	if n <= from {
		return nil
	}
	start := time.Now()
	if err := ix.hdrTree.Extend(n, ix.blockHashes); err != nil {
		return fmt.Errorf("index: build the header merkle tree to height %d: %w", n-1, err)
	}
	if n-from > 10_000 {
		ix.logger.Info("header merkle tree built", "height", n-1, "nodes", ix.hdrTree.Nodes(), "took", time.Since(start).Round(time.Millisecond).String())
	}
	return nil
}

// blockHashes reads the hashes of the blocks at heights [lo, hi) in one
// scan of their header rows.
func (ix *Index) blockHashes(lo, hi int) ([]chainhash.Hash, error) {
	out := make([]chainhash.Hash, 0, hi-lo)
	if hi-lo <= 1<<headerTreeBase {
		// A proof's few leaves: point reads are cheaper than an iterator.
		for h := lo; h < hi; h++ {
			v, err := ix.db.Get(headerKey(uint32(h)))
			if err != nil {
				return nil, fmt.Errorf("index: read header %d: %w", h, err)
			}
			out = append(out, chain.HeaderHash(v))
		}
		return out, nil
	}
	if err := ix.scanHeaders(lo, hi, func(hdr []byte) { out = append(out, chain.HeaderHash(hdr)) }); err != nil {
		return nil, err
	}
	return out, nil
}
