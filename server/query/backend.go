package query

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/btcsuite/btcd/chainhash/v2"
	"github.com/btcsuite/btcd/wire/v2"

	"amber/internal/chain"
	"amber/internal/daemon"
	"amber/internal/index"
	"amber/server/mempool"
	"amber/server/rpc"
)

func badRequest(format string, args ...any) *rpc.Error {
	return rpc.BadRequest(fmt.Sprintf(format, args...))
}

// Mempool is the view of the daemon's mempool the methods read;
// *mempool.Mempool implements it.
type Mempool interface {
	History(hx chain.HashX) []mempool.Entry
	Balance(hx chain.HashX) int64
	UTXOs(hx chain.HashX) []mempool.UTXO
	Spender(op wire.OutPoint) (mempool.Entry, bool)
	Lookup(txid chainhash.Hash) (mempool.Entry, bool)
	Tx(txid chainhash.Hash) ([]byte, bool)
	FeeHistogram() []mempool.FeeBucket
	Recent(n int) []mempool.Entry
}

var _ Mempool = (*mempool.Mempool)(nil)

// Daemon is what the methods ask the daemon.
type Daemon interface {
	RawTransaction(ctx context.Context, txid chainhash.Hash) ([]byte, error)
	RawTransactionVerbose(ctx context.Context, txid chainhash.Hash) (json.RawMessage, error)
	SendRawTransaction(ctx context.Context, rawHex string) (chainhash.Hash, error)
	SubmitPackage(ctx context.Context, rawHexes []string) (*daemon.PackageResult, error)
	EstimateFee(ctx context.Context, blocks int, mode string) (float64, error)
	RelayFee(ctx context.Context) (float64, error)
	MempoolInfo(ctx context.Context) (*daemon.MempoolInfo, error)
	Call(ctx context.Context, method string, params ...any) (json.RawMessage, error)
}

// Backend answers the Electrum methods from the index, the mempool and the
// daemon. One Backend serves every session.
type Backend struct {
	Index   *index.Index
	Mempool Mempool
	Daemon  Daemon
	Net     *chain.Network

	// HistoryLimit caps confirmed history entries served for one script:
	// (MAX_SEND - 100) / 99, spec §5.5.
	HistoryLimit int
	// UTXOLimit caps the unspent outputs get_balance and listunspent read
	// for one script: as many as the history limit, whose entries are
	// about as large in a reply.
	UTXOLimit int
	// MaxSend is MAX_SEND, the largest response; it also caps server.ping's
	// pong_len (spec §4.7).
	MaxSend int

	feeMu    sync.Mutex
	feeTip   chainhash.Hash
	feeCache map[string]float64

	history *historyCache
	txs     *txCache
	chunks  *lruCache[[2]int32, string] // hex of header chunks, by start and count
}

// NewBackend returns a Backend; maxSend is MAX_SEND.
func NewBackend(ix *index.Index, mp Mempool, d Daemon, maxSend int) *Backend {
	return &Backend{Index: ix, Mempool: mp, Daemon: d, Net: ix.Network(), HistoryLimit: (maxSend - 100) / 99, UTXOLimit: (maxSend - 100) / 99, MaxSend: maxSend, feeCache: map[string]float64{}, history: newHistoryCache(DefaultHistoryCacheBytes, ix.Tip().Hash), txs: newTxCache(DefaultTxCacheBytes),
		chunks: newLRU[[2]int32](DefaultHeaderChunkCacheBytes, func(s string) int { return len(s) + txItemOverhead })}
}

// History is the script's confirmed history followed by its mempool
// entries, as get_history and the status see it, read at one index tip.
func (b *Backend) History(hx chain.HashX) (out []HistoryEntry, err error) {
	err = b.atOneTip(func(tip chainhash.Hash) error {
		confirmed, err := b.confirmedHistory(hx, tip)
		if err != nil {
			return err
		}
		out = append(make([]HistoryEntry, 0, len(confirmed)+1), confirmed...)
		if b.Mempool != nil {
			for _, e := range b.Mempool.History(hx) {
				out = append(out, HistoryEntry{TxID: e.TxID, Height: e.Height, Fee: e.Fee})
			}
		}
		return nil
	})
	return out, err
}

// atOneTip runs read, which reads the index and then the mempool view,
// again until the index tip is the same after it as before. A block
// committed between the two reads would leave its transactions out of
// both (the index read before it, the mempool view hidden as no longer
// the tip's): an older state than one a client may have seen.
func (b *Backend) atOneTip(read func(tip chainhash.Hash) error) error {
	for {
		tip := b.Index.Tip().Hash
		if err := read(tip); err != nil {
			return err
		}
		if b.Index.Tip().Hash == tip {
			return nil
		}
	}
}

// confirmedHistory reads a script's confirmed history through the cache,
// which is used only once it has seen the index's tip: between a commit
// and its BlocksTouched it may still hold what the block changed.
func (b *Backend) confirmedHistory(hx chain.HashX, tip chainhash.Hash) ([]HistoryEntry, error) {
	hist, ok, gen, current, err := b.history.get(hx, tip)
	if ok {
		return hist, err
	}
	items, more, err := b.Index.BoundedHistory(hx, b.HistoryLimit-1)
	if err != nil {
		return nil, err
	}
	if more {
		if current {
			b.history.put(hx, nil, rpc.ErrHistoryTooLong(), gen)
		}
		return nil, rpc.ErrHistoryTooLong()
	}
	hist = make([]HistoryEntry, 0, len(items))
	for _, it := range items {
		hist = append(hist, HistoryEntry{TxID: it.TxID, Height: it.Height})
	}
	if current {
		b.history.put(hx, hist, nil, gen)
	}
	return hist, nil
}

// BlocksTouched drops cached history of the scripts blocks changed, up to
// the index tip tip; call it after the commit and before notifying.
func (b *Backend) BlocksTouched(tip chainhash.Hash, scripts map[chain.HashX]struct{}) {
	b.history.invalidate(tip, scripts)
}

// ScriptStatus is the status of a script (spec §5.3), with whether it
// involves mempool transactions (so it may change when a parent confirms).
func (b *Backend) ScriptStatus(hx chain.HashX) (status string, ok, mempool bool, err error) {
	h, err := b.History(hx)
	if err != nil {
		return "", false, false, err
	}
	for _, e := range h {
		if e.Height <= 0 {
			mempool = true
			break
		}
	}
	status, ok = Status(h)
	return status, ok, mempool, nil
}

// Balance is {"confirmed", "unconfirmed"} in satoshis.
type Balance struct {
	Confirmed   uint64 `json:"confirmed"`
	Unconfirmed int64  `json:"unconfirmed"`
}

// GetBalance answers get_balance; rows is the number of unspent outputs
// read, which the request is charged for. A script with more than
// UTXOLimit outputs gets the 10001 error after reading UTXOLimit + 1.
func (b *Backend) GetBalance(hx chain.HashX) (bal Balance, rows int, err error) {
	err = b.atOneTip(func(chainhash.Hash) error {
		c, n, more, err := b.Index.Balance(hx, b.UTXOLimit)
		rows = n
		if err != nil {
			return err
		}
		if more {
			rows = n + 1
			return rpc.ErrTooManyUTXOs()
		}
		bal = Balance{Confirmed: c}
		if b.Mempool != nil {
			bal.Unconfirmed = b.Mempool.Balance(hx)
		}
		return nil
	})
	if err != nil {
		return Balance{}, rows, err
	}
	return bal, rows, nil
}

// Unspent is one listunspent entry.
type Unspent struct {
	TxHash string `json:"tx_hash"`
	TxPos  uint32 `json:"tx_pos"`
	Height int32  `json:"height"`
	Value  int64  `json:"value"`
}

// ListUnspent answers listunspent: confirmed outputs in chain order, then
// mempool outputs (height 0), less anything the mempool spends. rows and
// the bound are as for GetBalance.
func (b *Backend) ListUnspent(hx chain.HashX) (out []Unspent, rows int, err error) {
	spent := func(id chainhash.Hash, vout uint32) bool {
		if b.Mempool == nil {
			return false
		}
		_, ok := b.Mempool.Spender(wire.OutPoint{Hash: id, Index: vout})
		return ok
	}
	err = b.atOneTip(func(chainhash.Hash) error {
		utxos, more, err := b.Index.UTXOs(hx, b.UTXOLimit)
		rows = len(utxos)
		if err != nil {
			return err
		}
		if more {
			rows++
			return rpc.ErrTooManyUTXOs()
		}
		out = make([]Unspent, 0, len(utxos))
		for _, u := range utxos {
			if !spent(u.TxID, u.Vout) {
				out = append(out, Unspent{TxHash: u.TxID.String(), TxPos: u.Vout, Height: u.Height, Value: int64(u.Value)})
			}
		}
		if b.Mempool != nil {
			for _, u := range b.Mempool.UTXOs(hx) {
				out = append(out, Unspent{TxHash: u.OutPoint.Hash.String(), TxPos: u.OutPoint.Index, Height: 0, Value: u.Value})
			}
		}
		return nil
	})
	if err != nil {
		return nil, rows, err
	}
	return out, rows, nil
}

// HeaderHex returns the header at height as hex.
func (b *Backend) HeaderHex(height int32) (string, error) {
	h, err := b.Index.Header(height)
	if err != nil {
		return "", badRequest("height %s out of range", commas(int64(height)))
	}
	return hex.EncodeToString(h), nil
}

// HeaderChunk is the number of headers wallets ask for at once, from a
// multiple of it (Electrum's chunks of one difficulty period).
const HeaderChunk = 2016

// DefaultHeaderChunkCacheBytes bounds the cache of header chunks: some
// 50 whole ones, the recent ones every wallet syncing asks for.
const DefaultHeaderChunkCacheBytes = 16 << 20

// HeadersHex returns the hex of count headers from height start,
// concatenated; the caller has checked they are below the tip. Chunks
// that start at a multiple of HeaderChunk, as wallets ask for them, come
// from a cache, which a reorg empties. The chunk at the tip is cached by
// its length too: every wallet asks for it until the next block.
func (b *Backend) HeadersHex(start int32, count int) (string, error) {
	key := [2]int32{start, int32(count)}
	aligned := start%HeaderChunk == 0 && count > 0 && count <= HeaderChunk
	gen := b.Index.ReorgGen()
	if aligned {
		if s, ok := b.chunks.get(key, gen); ok {
			return s, nil
		}
	}
	raw, err := b.Index.Headers(start, count)
	if err != nil {
		return "", err
	}
	s := hex.EncodeToString(raw)
	if aligned {
		b.chunks.put(key, s, gen)
	}
	return s, nil
}

// CheckpointProof returns the branch and root proving the header at
// height against all block hashes up to cpHeight (spec §5.7).
func (b *Backend) CheckpointProof(height, cpHeight int32) (branch []string, root string, err error) {
	tip := b.Index.Tip().Height
	if height > cpHeight || cpHeight > tip {
		return nil, "", badRequest("require header height %s <= cp_height %s <= chain height %s", commas(int64(height)), commas(int64(cpHeight)), commas(int64(tip)))
	}
	br, r, err := b.Index.CheckpointProof(height, cpHeight)
	if err != nil {
		return nil, "", err
	}
	return hashStrings(br), r.String(), nil
}

// TxMerkle answers get_merkle: the branch of txid in the block at height,
// from the index's cache of block merkle trees. cost is the part of the
// request's cost that grows with the block (spec §4.24): reading its
// txids and hashing them on a miss, much less on a hit.
func (b *Backend) TxMerkle(txid chainhash.Hash, height int32) (branch []string, pos int, cost float64, err error) {
	tree, hit, err := b.Index.BlockTreeCached(height)
	if err != nil || height > b.Index.Tip().Height {
		return nil, 0, 0, badRequest("height %s out of range", commas(int64(height)))
	}
	// ElectrumX's figures: ntx/2500 for the branch, 10·√ntx/2500 from its
	// cache (blocks of 200 txs and more), 0.0001·ntx to read the txids.
	ntx := float64(len(tree.Leaves()))
	cost = ntx / 2500
	if hit && ntx >= 200 {
		cost = 10 * math.Sqrt(ntx) / 2500
	}
	if !hit {
		cost += 0.0001 * ntx
	}
	pos = slices.Index(tree.Leaves(), txid)
	if pos < 0 {
		return nil, 0, cost, badRequest("tx %s not in block at height %s", txid, commas(int64(height)))
	}
	br, err := tree.Branch(pos)
	if err != nil {
		return nil, 0, cost, err
	}
	return hashStrings(br), pos, cost, nil
}

// IDFromPos answers id_from_pos: the txid at a position, and its branch.
func (b *Backend) IDFromPos(height int32, pos int, wantMerkle bool) (chainhash.Hash, []string, error) {
	tree, err := b.Index.BlockTree(height)
	if err != nil {
		return chainhash.Hash{}, nil, badRequest("db error: block %d not on disk (>%d)", height, b.Index.Tip().Height)
	}
	ids := tree.Leaves()
	if pos < 0 || pos >= len(ids) {
		return chainhash.Hash{}, nil, badRequest("no tx at position %s in block at height %s", commas(int64(pos)), commas(int64(height)))
	}
	if !wantMerkle {
		return ids[pos], nil, nil
	}
	br, err := tree.Branch(pos)
	if err != nil {
		return chainhash.Hash{}, nil, err
	}
	return ids[pos], hashStrings(br), nil
}

// GetTransaction answers transaction.get: from the mempool view when it
// has the tx, else the daemon.
func (b *Backend) GetTransaction(ctx context.Context, txid chainhash.Hash, verbose bool) (any, error) {
	if verbose {
		raw, err := b.Daemon.RawTransactionVerbose(ctx, txid)
		if err != nil {
			return nil, DaemonError(err)
		}
		return raw, nil
	}
	if b.Mempool != nil {
		if raw, ok := b.Mempool.Tx(txid); ok {
			return hex.EncodeToString(raw), nil
		}
	}
	gen := b.Index.ReorgGen()
	if raw, ok := b.txs.get(txid, gen); ok {
		return hex.EncodeToString(raw), nil
	}
	raw, err := b.Daemon.RawTransaction(ctx, txid)
	if err != nil {
		return nil, DaemonError(err)
	}
	b.txs.put(txid, raw, gen)
	return hex.EncodeToString(raw), nil
}

// CacheStats is one cache's counters, for metrics.
type CacheStats struct {
	Name         string
	Hits, Misses uint64
	Bytes        int
}

// CacheStats reports the raw transaction, block merkle tree and header
// chunk caches.
func (b *Backend) CacheStats() []CacheStats {
	th, tm, tb := b.txs.stats()
	bh, bm, bb := b.Index.BlockTreeCacheStats()
	ch, cm, cb := b.chunks.stats()
	return []CacheStats{
		{Name: "raw_tx", Hits: th, Misses: tm, Bytes: tb},
		{Name: "block_merkle", Hits: bh, Misses: bm, Bytes: bb},
		{Name: "header_chunk", Hits: ch, Misses: cm, Bytes: cb},
	}
}

// Broadcast answers transaction.broadcast.
func (b *Backend) Broadcast(ctx context.Context, rawHex string) (string, error) {
	id, err := b.Daemon.SendRawTransaction(ctx, rawHex)
	if err != nil {
		var rpcErr *daemon.RPCError
		if errors.As(err, &rpcErr) {
			return "", badRequest("the transaction was rejected by network rules.\n\n%s\n[%s]", rpcErr.Message, rawHex)
		}
		return "", DaemonError(err)
	}
	return id.String(), nil
}

// BroadcastPackage answers transaction.broadcast_package.
func (b *Backend) BroadcastPackage(ctx context.Context, raws []string, verbose bool) (any, error) {
	res, err := b.Daemon.SubmitPackage(ctx, raws)
	if err != nil {
		var rpcErr *daemon.RPCError
		if errors.As(err, &rpcErr) || errors.Is(err, daemon.ErrUnsupported) {
			msg := err.Error()
			if rpcErr != nil {
				msg = rpcErr.Message
			}
			return nil, badRequest("the tx package was rejected by network rules.\n\n%s.", msg)
		}
		return nil, DaemonError(err)
	}
	if verbose {
		return res.Raw, nil
	}
	out := map[string]any{"success": res.Message == "success"}
	var errs []map[string]string
	for _, tx := range res.Txs {
		if tx.Error != "" {
			errs = append(errs, map[string]string{"txid": tx.TxID, "error": tx.Error})
		}
	}
	if len(errs) > 0 {
		out["errors"] = errs
	}
	return out, nil
}

// maxRawTxFeeRate is the fee rate cap, in BTC/kvB, that
// transaction.testmempoolaccept passes to the daemon: Bitcoin Core's
// default, given explicitly because btcd requires the argument.
const maxRawTxFeeRate = 0.10

// AcceptResult is one transaction.testmempoolaccept entry; the fields go
// on the wire in this order, absent ones left out.
type AcceptResult struct {
	TxID    json.RawMessage `json:"txid"`
	WTxID   json.RawMessage `json:"wtxid"`
	Allowed json.RawMessage `json:"allowed,omitempty"`
	Reason  string          `json:"reason,omitempty"`
}

// TestMempoolAccept answers transaction.testmempoolaccept (1.7): for each
// transaction its txid and wtxid, whether the daemon would accept it when
// it says, and the first non-empty of the daemon's reasons.
func (b *Backend) TestMempoolAccept(ctx context.Context, raws []string) ([]AcceptResult, error) {
	raw, err := b.Daemon.Call(ctx, "testmempoolaccept", raws, maxRawTxFeeRate)
	if err != nil {
		return nil, DaemonError(err)
	}
	var items []map[string]json.RawMessage
	if err := json.Unmarshal(raw, &items); err != nil {
		return nil, fmt.Errorf("query: decode testmempoolaccept result: %w", err)
	}
	out := make([]AcceptResult, 0, len(items))
	for _, it := range items {
		r := AcceptResult{TxID: it["txid"], WTxID: it["wtxid"], Allowed: it["allowed"]}
		for _, k := range []string{"package-error", "reject-details", "reject-reason"} {
			var reason string
			if json.Unmarshal(it[k], &reason) == nil && reason != "" {
				r.Reason = reason
				break
			}
		}
		out = append(out, r)
	}
	return out, nil
}

// RecentTx is one mempool.recent entry.
type RecentTx struct {
	TxID  string `json:"txid"`
	Fee   int64  `json:"fee"`
	VSize int64  `json:"vsize"`
}

// Recent answers mempool.recent (1.7): the ten transactions that most
// recently entered the mempool, newest first.
func (b *Backend) Recent() []RecentTx {
	out := []RecentTx{}
	if b.Mempool == nil {
		return out
	}
	for _, e := range b.Mempool.Recent(10) {
		out = append(out, RecentTx{TxID: e.TxID.String(), Fee: e.Fee, VSize: e.VSize})
	}
	return out
}

// EstimateFee answers blockchain.estimatefee: bucketed target (spec §4.11),
// cached until the tip changes.
func (b *Backend) EstimateFee(ctx context.Context, number int64, mode string) (any, error) {
	target := FeeTarget(number)
	mode = strings.ToUpper(mode)
	if mode != "" && mode != "CONSERVATIVE" && mode != "ECONOMICAL" {
		return nil, badRequest("unknown estimatefee mode: %s", mode)
	}
	key := fmt.Sprint(target, mode)
	tip := b.Index.Tip().Hash
	b.feeMu.Lock()
	if b.feeTip != tip {
		b.feeTip, b.feeCache = tip, map[string]float64{}
	}
	v, ok := b.feeCache[key]
	b.feeMu.Unlock()
	if !ok {
		var err error
		v, err = b.Daemon.EstimateFee(ctx, target, mode)
		if err != nil {
			return nil, DaemonError(err)
		}
		b.feeMu.Lock()
		if b.feeTip == tip {
			b.feeCache[key] = v
		}
		b.feeMu.Unlock()
	}
	if v < 0 {
		return -1, nil
	}
	return v, nil
}

// FeeTarget buckets an estimatefee target as ElectrumX does for Bitcoin.
func FeeTarget(n int64) int {
	switch {
	case n <= 1:
		return 1
	case n <= 12:
		return int(n)
	case n == 25:
		return 25
	case n <= 48:
		return int(n &^ 1)
	case n <= 1008:
		return int(n / 24 * 24)
	}
	return 1008
}

// OutpointStatus is the 1.7 outpoint status: {} when unknown,
// funder_height when unspent, and the spender when spent.
func (b *Backend) OutpointStatus(op wire.OutPoint) (map[string]any, bool, error) {
	st := map[string]any{}
	mempoolInvolved := false
	fundHeight, funded, spend, err := b.Index.Spender(op.Hash, op.Index)
	if err != nil {
		return nil, false, err
	}
	if funded {
		// The output index must exist in the funding transaction.
		exists, err := b.outputExists(op)
		if err != nil {
			return nil, false, err
		}
		if !exists {
			return st, false, nil
		}
		st["funder_height"] = fundHeight
	} else if b.Mempool != nil {
		e, ok := b.Mempool.Lookup(op.Hash)
		if !ok {
			return st, false, nil
		}
		h := e.Height
		raw, _ := b.Mempool.Tx(op.Hash)
		if tx, err := chain.ParseTx(raw); err != nil || int(op.Index) >= len(tx.TxOut) {
			return st, false, nil
		}
		st["funder_height"] = h
		mempoolInvolved = true
	} else {
		return st, false, nil
	}
	if spend != nil {
		st["spender_txhash"] = spend.TxID.String()
		st["spender_height"] = spend.Height
	} else if b.Mempool != nil {
		if e, ok := b.Mempool.Spender(op); ok {
			st["spender_txhash"] = e.TxID.String()
			st["spender_height"] = e.Height
			mempoolInvolved = true
		}
	}
	return st, mempoolInvolved, nil
}

// outputCheckTimeout bounds the daemon request outputExists makes.
const outputCheckTimeout = 10 * time.Second

// outputExists checks that a confirmed tx has output op.Index: an unspent
// or spent output of it is recorded in the index; an unindexed one
// (OP_RETURN) is looked up in the transaction, which the daemon has, as
// ElectrumX does.
func (b *Backend) outputExists(op wire.OutPoint) (bool, error) {
	if _, _, ok, _ := b.Index.Output(op.Hash, op.Index); ok {
		return true, nil
	}
	if _, _, spend, _ := b.Index.Spender(op.Hash, op.Index); spend != nil {
		return true, nil
	}
	if b.Daemon == nil {
		return false, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), outputCheckTimeout)
	defer cancel()
	raw, err := b.Daemon.RawTransaction(ctx, op.Hash)
	if err != nil {
		return false, fmt.Errorf("query: fetch %s to check output %d: %w", op.Hash, op.Index, err)
	}
	tx, err := chain.ParseTx(raw)
	if err != nil {
		return false, fmt.Errorf("query: parse %s: %w", op.Hash, err)
	}
	return int64(op.Index) < int64(len(tx.TxOut)), nil
}

// DaemonError wraps a daemon failure as error code 2.
func DaemonError(err error) *rpc.Error {
	var rpcErr *daemon.RPCError
	if errors.As(err, &rpcErr) {
		return rpc.DaemonError(fmt.Sprintf("daemon error: %d: %s", rpcErr.Code, rpcErr.Message))
	}
	return rpc.DaemonError("daemon error: " + err.Error())
}

func hashStrings(hs []chainhash.Hash) []string {
	out := make([]string, len(hs))
	for i, h := range hs {
		out[i] = h.String()
	}
	return out
}

// commas formats n with thousands separators, as ElectrumX's messages do.
func commas(n int64) string {
	s := fmt.Sprint(n)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var parts []string
	for len(s) > 3 {
		parts = append([]string{s[len(s)-3:]}, parts...)
		s = s[:len(s)-3]
	}
	parts = append([]string{s}, parts...)
	out := strings.Join(parts, ",")
	if neg {
		out = "-" + out
	}
	return out
}
