package daemon

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/btcsuite/btcd/chainhash/v2"
	"golang.org/x/sync/errgroup"

	"amber/internal/chain"
)

// Call makes one JSON-RPC call with positional params and returns the raw
// result, with the client's retries and failover. It is the escape hatch
// for methods the client has no wrapper for.
func (c *Client) Call(ctx context.Context, method string, params ...any) (json.RawMessage, error) {
	var raw json.RawMessage
	err := c.do(ctx, method, func(ctx context.Context, ep *endpoint) error {
		r, err := c.post(ctx, ep, call{method: method, params: params})
		raw = r
		return err
	})
	return raw, err
}

// callInto makes a Call and decodes its result into v.
func (c *Client) callInto(ctx context.Context, v any, method string, params ...any) error {
	raw, err := c.Call(ctx, method, params...)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return fmt.Errorf("%s: decode result: %w", method, err)
	}
	return nil
}

// batch sends calls as one JSON-RPC batch, with retries and failover, and
// returns their results in order. Daemon errors are reported per call.
func (c *Client) batch(ctx context.Context, calls []call) ([]result, error) {
	var out []result
	err := c.do(ctx, calls[0].method, func(ctx context.Context, ep *endpoint) error {
		r, err := c.postBatch(ctx, ep, calls)
		out = r
		return err
	})
	return out, err
}

// batchParts is how many requests a long batch is split into: the daemon
// answers each request's calls one after another on one thread.
const batchParts = 4

// splitBatch runs calls as up to batchParts batches at once, of at least
// 100 calls each, and returns their results in order.
func (c *Client) splitBatch(ctx context.Context, calls []call) ([]result, error) {
	parts := min(batchParts, (len(calls)+99)/100)
	if parts <= 1 {
		return c.batch(ctx, calls)
	}
	res := make([][]result, parts)
	g, gctx := errgroup.WithContext(ctx)
	for p := range parts {
		part := calls[p*len(calls)/parts : (p+1)*len(calls)/parts]
		g.Go(func() (err error) {
			res[p], err = c.batch(gctx, part)
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	return slices.Concat(res...), nil
}

// ChainInfo is the part of getblockchaininfo that both daemons report.
type ChainInfo struct {
	// Chain is the network in Bitcoin Core's words: "main", "test",
	// "testnet4", "signet" or "regtest" (btcd's "mainnet" and "testnet3"
	// are translated; "simnet" is btcd's own).
	Chain string
	// Blocks is the height of the best validated block.
	Blocks int
	// Headers is the height of the best known header; btcd reports
	// Blocks.
	Headers int
	// BestBlockHash is the hash of the best validated block.
	BestBlockHash chainhash.Hash
	// InitialBlockDownload is Bitcoin Core's flag, nil when the daemon
	// does not report it (btcd).
	InitialBlockDownload *bool
	// VerificationProgress is Bitcoin Core's estimate between 0 and 1,
	// nil when the daemon does not report it (btcd).
	VerificationProgress *float64
}

// Syncing reports whether the daemon is still catching up with the
// network: in initial block download when it says so, otherwise when it
// knows headers beyond its best block.
func (i *ChainInfo) Syncing() bool {
	if i.InitialBlockDownload != nil {
		return *i.InitialBlockDownload
	}
	return i.Headers > i.Blocks
}

// chainNames maps btcd's network names to Bitcoin Core's.
var chainNames = map[string]string{"mainnet": "main", "testnet3": "test"}

// BlockchainInfo returns the daemon's view of the chain (getblockchaininfo).
func (c *Client) BlockchainInfo(ctx context.Context) (*ChainInfo, error) {
	var res struct {
		Chain                string   `json:"chain"`
		Blocks               int      `json:"blocks"`
		Headers              int      `json:"headers"`
		BestBlockHash        string   `json:"bestblockhash"`
		InitialBlockDownload *bool    `json:"initialblockdownload"`
		VerificationProgress *float64 `json:"verificationprogress"`
	}
	if err := c.callInto(ctx, &res, "getblockchaininfo"); err != nil {
		return nil, err
	}
	hash, err := chainhash.NewHashFromStrStrict(res.BestBlockHash)
	if err != nil {
		return nil, fmt.Errorf("getblockchaininfo: bestblockhash %q: %w", res.BestBlockHash, err)
	}
	info := &ChainInfo{
		Chain:                res.Chain,
		Blocks:               res.Blocks,
		Headers:              res.Headers,
		BestBlockHash:        *hash,
		InitialBlockDownload: res.InitialBlockDownload,
		VerificationProgress: res.VerificationProgress,
	}
	if name, ok := chainNames[info.Chain]; ok {
		info.Chain = name
	}
	return info, nil
}

// BestBlockHash returns the hash of the daemon's best block.
func (c *Client) BestBlockHash(ctx context.Context) (chainhash.Hash, error) {
	raw, err := c.Call(ctx, "getbestblockhash")
	if err != nil {
		return chainhash.Hash{}, err
	}
	return parseHash("getbestblockhash", raw)
}

// BlockCount returns the height of the daemon's best block.
func (c *Client) BlockCount(ctx context.Context) (int, error) {
	var n int
	err := c.callInto(ctx, &n, "getblockcount")
	return n, err
}

// BlockHash returns the hash of the best-chain block at height.
func (c *Client) BlockHash(ctx context.Context, height int) (chainhash.Hash, error) {
	raw, err := c.Call(ctx, "getblockhash", height)
	if err != nil {
		return chainhash.Hash{}, err
	}
	return parseHash("getblockhash", raw)
}

// BlockHashes returns the hashes of count best-chain blocks from height
// start, in one batch request. A height beyond the tip is an error.
func (c *Client) BlockHashes(ctx context.Context, start, count int) ([]chainhash.Hash, error) {
	if count <= 0 {
		return nil, nil
	}
	calls := make([]call, count)
	for i := range calls {
		calls[i] = call{method: "getblockhash", params: []any{start + i}}
	}
	res, err := c.splitBatch(ctx, calls)
	if err != nil {
		return nil, err
	}
	out := make([]chainhash.Hash, count)
	for i, r := range res {
		if r.err != nil {
			return nil, fmt.Errorf("getblockhash %d: %w", start+i, r.err)
		}
		if out[i], err = parseHash("getblockhash", r.raw); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// RawBlock returns the serialized block with the given hash.
func (c *Client) RawBlock(ctx context.Context, hash chainhash.Hash) ([]byte, error) {
	blocks, err := c.RawBlocks(ctx, []chainhash.Hash{hash})
	if err != nil {
		return nil, err
	}
	return blocks[0], nil
}

// RawBlocks returns the serialized blocks with the given hashes, in order.
// When the daemon serves Bitcoin Core's REST interface and blocks are
// large, they are fetched from it in parallel (raw bytes, no hex);
// otherwise, and for any block REST did not deliver, they come from one
// getblock batch. A block the daemon does not have is an error.
func (c *Client) RawBlocks(ctx context.Context, hashes []chainhash.Hash) (out [][]byte, err error) {
	out = make([][]byte, len(hashes))
	if len(hashes) == 0 {
		return out, nil
	}
	defer func() {
		if err == nil {
			n := 0
			for _, b := range out {
				n += len(b)
			}
			c.blockSize.Store(int64(n / len(out)))
		}
	}()
	if ep := c.current(); c.largeBlocks() && c.hasREST(ctx, ep) {
		var wg sync.WaitGroup
		for i, h := range hashes {
			wg.Go(func() {
				if raw, err := c.restBlock(ctx, ep, h); err == nil {
					out[i] = raw
				}
			})
		}
		wg.Wait()
		if ctx.Err() != nil {
			return nil, stopped(ctx, "getblock", nil)
		}
	}
	var calls []call
	var missing []int
	for i, raw := range out {
		if raw == nil {
			missing = append(missing, i)
			// btcd wants the verbosity as an integer; 0 is raw hex.
			calls = append(calls, call{method: "getblock", params: []any{hashes[i].String(), 0}})
		}
	}
	if len(calls) == 0 {
		return out, nil
	}
	res, err := c.splitBatch(ctx, calls)
	if err != nil {
		return nil, err
	}
	for j, r := range res {
		i := missing[j]
		if r.err != nil {
			return nil, fmt.Errorf("getblock %s: %w", hashes[i], r.err)
		}
		if out[i], err = decodeHex(r.raw); err != nil {
			return nil, fmt.Errorf("getblock %s: %w", hashes[i], err)
		}
	}
	return out, nil
}

// largeBlocks reports whether the blocks last fetched were large enough
// for REST, or none was fetched yet.
func (c *Client) largeBlocks() bool {
	n := c.blockSize.Load()
	return n == 0 || n >= int64(c.opts.RESTMinBlock)
}

// RawTransaction returns the serialized transaction with the given txid.
// The daemon finds confirmed transactions only with a transaction index
// (btcd --txindex, bitcoind -txindex).
//
// With a TxLocator set, a confirmed transaction is asked for in its block
// (getrawtransaction TXID 0 BLOCKHASH), which Bitcoin Core answers without
// -txindex.
func (c *Client) RawTransaction(ctx context.Context, txid chainhash.Hash) ([]byte, error) {
	raw, err := c.getTx(ctx, txid, 0)
	if err != nil {
		return nil, err
	}
	tx, err := decodeHex(raw)
	if err != nil {
		return nil, fmt.Errorf("getrawtransaction %s: %w", txid, err)
	}
	return tx, nil
}

// TxResult is the outcome for one transaction of RawTransactions.
type TxResult struct {
	// Raw is the serialized transaction, nil when Err is set.
	Raw []byte
	// Err is the daemon's error for this transaction, an *RPCError that
	// matches ErrNotFound when the daemon does not know it.
	Err error
}

// RawTransactions fetches transactions in one batch request. A
// transaction the daemon does not know (one that left the mempool, say)
// is reported in its TxResult, not as the call's error.
func (c *Client) RawTransactions(ctx context.Context, txids []chainhash.Hash) ([]TxResult, error) {
	if len(txids) == 0 {
		return nil, nil
	}
	calls := make([]call, len(txids))
	for i, txid := range txids {
		calls[i] = call{method: "getrawtransaction", params: []any{txid.String(), 0}}
	}
	res, err := c.batch(ctx, calls)
	if err != nil {
		return nil, err
	}
	out := make([]TxResult, len(txids))
	for i, r := range res {
		switch {
		case r.err != nil:
			out[i].Err = fmt.Errorf("getrawtransaction %s: %w", txids[i], r.err)
		default:
			if out[i].Raw, err = decodeHex(r.raw); err != nil {
				out[i].Err = fmt.Errorf("getrawtransaction %s: %w", txids[i], err)
			}
		}
	}
	return out, nil
}

// RawTransactionVerbose returns the daemon's verbose description of a
// transaction (getrawtransaction with verbosity 1) as it gave it.
func (c *Client) RawTransactionVerbose(ctx context.Context, txid chainhash.Hash) (json.RawMessage, error) {
	return c.getTx(ctx, txid, 1)
}

// TxLocator returns the hash of the block holding a confirmed
// transaction, ok false when it does not know the transaction.
type TxLocator func(txid chainhash.Hash) (block chainhash.Hash, ok bool)

// SetTxLocator makes getrawtransaction name the block of a confirmed
// transaction, so the daemon needs no transaction index (Bitcoin Core).
func (c *Client) SetTxLocator(f TxLocator) { c.locator.Store(&f) }

// getTx calls getrawtransaction with the transaction's block when it is
// known and the daemon takes it; btcd does not (wrong number of
// parameters), which is learned once per daemon.
func (c *Client) getTx(ctx context.Context, txid chainhash.Hash, verbosity int) (json.RawMessage, error) {
	var (
		block           chainhash.Hash
		looked, located bool
	)
	var raw json.RawMessage
	err := c.do(ctx, "getrawtransaction", func(ctx context.Context, ep *endpoint) error {
		params := []any{txid.String(), verbosity}
		// The block is looked up only for a daemon that takes it: the
		// lookup is an index read, wasted on btcd.
		if !looked && !ep.noTxBlock.Load() {
			looked = true
			if f := c.locator.Load(); f != nil {
				block, located = (*f)(txid)
			}
		}
		if located && !ep.noTxBlock.Load() {
			r, err := c.post(ctx, ep, call{method: "getrawtransaction", params: append(params, block.String())})
			var rpcErr *RPCError
			if !errors.As(err, &rpcErr) || !rpcErr.badParams() {
				raw = r
				return err
			}
			ep.noTxBlock.Store(true)
			c.log.Info("daemon takes no block hash in getrawtransaction (btcd): confirmed transactions need its transaction index (--txindex)", "daemon", ep.name)
		}
		r, err := c.post(ctx, ep, call{method: "getrawtransaction", params: params})
		raw = r
		return err
	})
	return raw, err
}

// CheckTxIndex tells, in one line, when the daemon cannot serve confirmed
// transactions: btcd (no block-hash form of getrawtransaction) without
// --txindex. Bitcoin Core needs no transaction index. probe is a
// confirmed transaction to try, such as block 1's coinbase.
func (c *Client) CheckTxIndex(ctx context.Context, probe chainhash.Hash) error {
	if _, err := c.Call(ctx, "getindexinfo"); err == nil {
		return nil // Bitcoin Core: the block hash is enough
	} else if !errors.Is(err, ErrUnsupported) {
		return err
	}
	_, err := c.Call(ctx, "getrawtransaction", probe.String(), 0)
	if errors.Is(err, ErrNotFound) {
		return fmt.Errorf("daemon %s has no transaction index and cannot look transactions up by block: restart btcd with --txindex (blockchain.transaction.get of confirmed transactions fails until then)", c.URL())
	}
	if err != nil {
		return err
	}
	return nil
}

// RawMempool returns the txids of the transactions in the daemon's
// mempool.
func (c *Client) RawMempool(ctx context.Context) ([]chainhash.Hash, error) {
	var strs []string
	if err := c.callInto(ctx, &strs, "getrawmempool"); err != nil {
		return nil, err
	}
	out := make([]chainhash.Hash, len(strs))
	for i, s := range strs {
		if err := chainhash.DecodeStrict(&out[i], s); err != nil {
			return nil, fmt.Errorf("getrawmempool: txid %q: %w", s, err)
		}
	}
	return out, nil
}

// SendRawTransaction submits a transaction given in hex, as a wallet sent
// it, and returns its txid. A rejection is an *RPCError carrying the
// daemon's reason, for the server to relay.
func (c *Client) SendRawTransaction(ctx context.Context, rawHex string) (chainhash.Hash, error) {
	raw, err := c.Call(ctx, "sendrawtransaction", rawHex)
	if err != nil {
		return chainhash.Hash{}, err
	}
	return parseHash("sendrawtransaction", raw)
}

// PackageResult is the daemon's answer to SubmitPackage.
type PackageResult struct {
	// Message is Bitcoin Core's package_msg, "success" when every
	// transaction was accepted.
	Message string
	// Txs are the per-transaction results, in the daemon's order.
	Txs []PackageTx
	// Raw is the whole result as the daemon gave it.
	Raw json.RawMessage
}

// PackageTx is one transaction's result in a PackageResult.
type PackageTx struct {
	// WTxID is the key Bitcoin Core gives the result under.
	WTxID string
	// TxID is the transaction's txid.
	TxID string
	// Error is the daemon's reason for refusing it, empty if accepted.
	Error string
}

// SubmitPackage submits a package of transactions given in hex (child
// with its parents, child last) with submitpackage. A daemon without the
// method (btcd, Bitcoin Core before 26) gives an error that matches
// ErrUnsupported.
func (c *Client) SubmitPackage(ctx context.Context, rawHexes []string) (*PackageResult, error) {
	if rawHexes == nil {
		rawHexes = []string{}
	}
	raw, err := c.Call(ctx, "submitpackage", rawHexes)
	if err != nil {
		return nil, err
	}
	res, err := parsePackageResult(raw)
	if err != nil {
		return nil, fmt.Errorf("submitpackage: decode result: %w", err)
	}
	return res, nil
}

// parsePackageResult decodes a submitpackage result, keeping the order of
// its tx-results object.
func parsePackageResult(raw json.RawMessage) (*PackageResult, error) {
	var res struct {
		Message   string          `json:"package_msg"`
		TxResults json.RawMessage `json:"tx-results"`
	}
	if err := json.Unmarshal(raw, &res); err != nil {
		return nil, err
	}
	out := &PackageResult{Message: res.Message, Raw: raw}
	if len(res.TxResults) == 0 || string(res.TxResults) == "null" {
		return out, nil
	}
	dec := json.NewDecoder(bytes.NewReader(res.TxResults))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, fmt.Errorf("tx-results is not an object")
	}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		key, _ := tok.(string)
		var tx struct {
			TxID  string `json:"txid"`
			Error string `json:"error"`
		}
		if err := dec.Decode(&tx); err != nil {
			return nil, err
		}
		out.Txs = append(out.Txs, PackageTx{WTxID: key, TxID: tx.TxID, Error: tx.Error})
	}
	return out, nil
}

// EstimateFee returns the fee rate, in BTC per 1000 virtual bytes, that
// should confirm a transaction within blocks blocks, or -1 when the
// daemon cannot tell. mode ("CONSERVATIVE" or "ECONOMICAL", empty for the
// daemon's default) is passed to estimatesmartfee; a daemon without that
// method (btcd) is asked estimatefee, which knows no modes, and any error
// it answers with means it has no estimate.
func (c *Client) EstimateFee(ctx context.Context, blocks int, mode string) (float64, error) {
	params := []any{blocks}
	if mode != "" {
		params = append(params, mode)
	}
	var fee float64
	err := c.do(ctx, "estimatesmartfee", func(ctx context.Context, ep *endpoint) error {
		if !ep.noSmartFee.Load() {
			raw, err := c.post(ctx, ep, call{method: "estimatesmartfee", params: params})
			if err == nil {
				var res struct {
					FeeRate *float64 `json:"feerate"`
				}
				if err := json.Unmarshal(raw, &res); err != nil {
					return permanent(fmt.Errorf("decode result: %w", err))
				}
				fee = -1
				if res.FeeRate != nil && *res.FeeRate > 0 {
					fee = *res.FeeRate
				}
				return nil
			}
			if !methodMissing(err) {
				return err
			}
			ep.noSmartFee.Store(true)
			c.log.Info("daemon has no estimatesmartfee; using estimatefee", "daemon", ep.name)
		}
		raw, err := c.post(ctx, ep, call{method: "estimatefee", params: []any{blocks}})
		var rpcErr *RPCError
		if errors.As(err, &rpcErr) && rpcErr.Code != CodeWarmingUp {
			// btcd answers an error when it has seen too few blocks.
			fee = -1
			return nil
		}
		if err != nil {
			return err
		}
		if err := json.Unmarshal(raw, &fee); err != nil {
			return permanent(fmt.Errorf("estimatefee: decode result: %w", err))
		}
		if fee <= 0 {
			fee = -1
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	return fee, nil
}

// RelayFee returns the daemon's minimum relay fee rate in BTC per 1000
// virtual bytes: getnetworkinfo's relayfee, or getinfo's where
// getnetworkinfo is missing (btcd).
func (c *Client) RelayFee(ctx context.Context) (float64, error) {
	var fee float64
	err := c.do(ctx, "getnetworkinfo", func(ctx context.Context, ep *endpoint) error {
		method := "getnetworkinfo"
		if ep.noNetInfo.Load() {
			method = "getinfo"
		}
		raw, err := c.post(ctx, ep, call{method: method})
		if method == "getnetworkinfo" && methodMissing(err) {
			ep.noNetInfo.Store(true)
			method = "getinfo"
			raw, err = c.post(ctx, ep, call{method: method})
		}
		if err != nil {
			return err
		}
		var res struct {
			RelayFee *float64 `json:"relayfee"`
		}
		if err := json.Unmarshal(raw, &res); err != nil {
			return permanent(fmt.Errorf("%s: decode result: %w", method, err))
		}
		if res.RelayFee == nil {
			return permanent(fmt.Errorf("%s: no relayfee in the result", method))
		}
		fee = *res.RelayFee
		return nil
	})
	return fee, err
}

// MempoolInfo is the daemon's mempool summary (getmempoolinfo), fee rates
// in BTC per 1000 virtual bytes.
type MempoolInfo struct {
	// Size is the number of transactions.
	Size int
	// Bytes is their total virtual size (btcd: serialized size).
	Bytes int64
	// MempoolMinFee is the lowest fee rate the mempool accepts now.
	MempoolMinFee float64
	// MinRelayTxFee is the daemon's minimum relay fee rate.
	MinRelayTxFee float64
	// IncrementalRelayFee is the fee rate a replacement must add.
	IncrementalRelayFee float64
}

// MempoolInfo returns the daemon's mempool summary. Fee fields the daemon
// does not report (btcd reports none) are filled with its minimum relay
// fee (from RelayFee when getmempoolinfo lacks it too), which is what
// Bitcoin Core reports for them by default.
func (c *Client) MempoolInfo(ctx context.Context) (*MempoolInfo, error) {
	var res struct {
		Size                int      `json:"size"`
		Bytes               int64    `json:"bytes"`
		MempoolMinFee       *float64 `json:"mempoolminfee"`
		MinRelayTxFee       *float64 `json:"minrelaytxfee"`
		IncrementalRelayFee *float64 `json:"incrementalrelayfee"`
	}
	if err := c.callInto(ctx, &res, "getmempoolinfo"); err != nil {
		return nil, err
	}
	if res.MinRelayTxFee == nil {
		relay, err := c.RelayFee(ctx)
		if err != nil {
			return nil, err
		}
		res.MinRelayTxFee = &relay
	}
	info := &MempoolInfo{
		Size:                res.Size,
		Bytes:               res.Bytes,
		MempoolMinFee:       *res.MinRelayTxFee,
		MinRelayTxFee:       *res.MinRelayTxFee,
		IncrementalRelayFee: *res.MinRelayTxFee,
	}
	if res.MempoolMinFee != nil {
		info.MempoolMinFee = *res.MempoolMinFee
	}
	if res.IncrementalRelayFee != nil {
		info.IncrementalRelayFee = *res.IncrementalRelayFee
	}
	return info, nil
}

// parseHash decodes a result holding a hash in the usual byte-reversed
// hex.
func parseHash(method string, raw json.RawMessage) (chainhash.Hash, error) {
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return chainhash.Hash{}, fmt.Errorf("%s: decode result: %w", method, err)
	}
	var h chainhash.Hash
	if err := chainhash.DecodeStrict(&h, s); err != nil {
		return chainhash.Hash{}, fmt.Errorf("%s: hash %q: %w", method, s, err)
	}
	return h, nil
}

// decodeHex decodes a result holding a hex string.
func decodeHex(raw json.RawMessage) ([]byte, error) {
	// Hex needs no JSON escapes: decode it in place, which skips the
	// validating pass and the string copy (a fifth of a sync's CPU on
	// the profiles). Anything else takes the general path below.
	if n := len(raw); n >= 2 && raw[0] == '"' && raw[n-1] == '"' {
		b := make([]byte, (n-2)/2)
		if _, err := hex.Decode(b, raw[1:n-1]); err == nil {
			return b, nil
		}
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return nil, fmt.Errorf("decode result: %w", err)
	}
	b, err := hex.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("decode hex result: %w", err)
	}
	return b, nil
}

// CheckNetwork refuses a daemon whose genesis block is not net's, before
// a caller writes anything on the strength of its answers.
func (c *Client) CheckNetwork(ctx context.Context, net *chain.Network) error {
	h, err := c.BlockHash(ctx, 0)
	if err != nil {
		return fmt.Errorf("daemon: ask %s for its genesis block: %w", c.URL(), err)
	}
	if h != net.Genesis {
		return fmt.Errorf("daemon: %s has genesis %s, but NET=%s has %s; point DAEMON_URL at a %s node or fix NET",
			c.URL(), h, net.Name, net.Genesis, net.Name)
	}
	return nil
}

// slowCallKey carries CallSlow's timeout to send.
type slowCallKey struct{}

// CallSlow makes one call that may take long (gettxoutsetinfo scans the
// whole UTXO set: minutes on mainnet): bounded by timeout instead of
// Options.Timeout, and tried once against the daemon in use, since
// repeating a call that timed out would only load the daemon again.
func (c *Client) CallSlow(ctx context.Context, timeout time.Duration, method string, params ...any) (json.RawMessage, error) {
	ctx = context.WithValue(ctx, slowCallKey{}, timeout)
	raw, err := c.post(ctx, c.current(), call{method: method, params: params})
	var perm *permanentError
	if errors.As(err, &perm) {
		err = perm.err
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", method, err)
	}
	return raw, nil
}

// LocalLogPath returns the path of the daemon's debug log (getrpcinfo's
// logpath; Bitcoin Core writes it in its network's data directory), or ""
// when the daemon in use is not on this host (its URL is not a loopback
// address) or does not say (btcd has no getrpcinfo).
func (c *Client) LocalLogPath(ctx context.Context) (string, error) {
	host := c.current().url.Host
	if ip := net.ParseIP(strings.Trim(host, "[]")); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return "", nil
	}
	var res struct {
		LogPath string `json:"logpath"`
	}
	err := c.callInto(ctx, &res, "getrpcinfo")
	var rpcErr *RPCError
	if errors.As(err, &rpcErr) {
		return "", nil // no such method
	}
	return res.LogPath, err
}
