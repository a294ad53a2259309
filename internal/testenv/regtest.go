package testenv

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"testing"

	"github.com/btcsuite/btcd/chainhash/v2"
	"github.com/btcsuite/btcd/wire/v2"
)

// DefaultSeed is the wallet seed StartRegtest uses when none is given.
const DefaultSeed = "amber/testenv"

// RegtestOptions configures StartRegtest.
type RegtestOptions struct {
	// Seed derives the wallet's keys; empty means DefaultSeed.
	Seed []byte
	// MiningKind is the kind of the wallet script that block rewards pay
	// to; zero means P2WPKH. P2PK has no address btcd can mine to.
	MiningKind ScriptKind
	// Btcd configures the node. Its Network and MiningAddr are set by
	// StartRegtest.
	Btcd BtcdOptions
	// Core runs Bitcoin Core instead of btcd, configured by Bitcoind
	// (whose Network is set to regtest).
	Core     bool
	Bitcoind BitcoindOptions
}

// rpcNode is what Regtest needs of a daemon: btcd and Bitcoin Core
// answer these raw calls alike.
type rpcNode interface {
	Call(method string, params ...any) (json.RawMessage, error)
	URL() string
}

// Regtest is a regtest btcd whose block rewards pay to a Wallet, with the
// helpers that keep the two in step: Mine, Sync, Broadcast, Send and the
// reorganisation helpers. Its methods fail the test on error and must be
// called from the test's goroutine.
type Regtest struct {
	// Btcd is the node, nil when it is Bitcoin Core (Core).
	Btcd *Btcd
	// Core is the node when RegtestOptions.Core was set.
	Core *Bitcoind
	// Daemon names the node's kind: "btcd" or "core".
	Daemon string
	// Wallet owns the block rewards and follows the node's best chain
	// through Sync.
	Wallet *Wallet
	// MiningScript is the wallet script block rewards pay to.
	MiningScript *Script

	node rpcNode
	t    testing.TB
}

// StartRegtest makes a wallet, starts a regtest btcd that mines to one of
// its scripts, and returns both. No blocks are mined yet: coinbase outputs
// mature after 100 blocks, so tests that spend usually begin with
// Mine(101) or more.
func StartRegtest(t testing.TB, opts RegtestOptions) *Regtest {
	t.Helper()
	seed := opts.Seed
	if len(seed) == 0 {
		seed = []byte(DefaultSeed)
	}
	kind := opts.MiningKind
	if kind == 0 {
		kind = P2WPKH
	}
	if kind == P2PK {
		t.Fatal("testenv: btcd cannot mine to a P2PK script; choose another MiningKind")
	}
	bo := opts.Btcd
	bo.Network = "regtest"
	btcdParams := btcdNetworks["regtest"].params
	w := NewWallet(btcdParams, seed)
	mining := w.NewScript(kind)
	if opts.Core {
		co := opts.Bitcoind
		co.Network = "regtest"
		c := StartBitcoind(t, co)
		return &Regtest{Core: c, Daemon: "core", Wallet: w, MiningScript: mining, node: c, t: t}
	}
	bo.MiningAddr = mining.Address.EncodeAddress()
	b := StartBtcd(t, bo)
	return &Regtest{Btcd: b, Daemon: "btcd", Wallet: w, MiningScript: mining, node: b, t: t}
}

// Node returns the node, btcd or Bitcoin Core.
func (r *Regtest) Node() Node {
	if r.Btcd != nil {
		return r.Btcd
	}
	return r.Core
}

// URL returns the node's JSON-RPC URL in DAEMON_URL form.
func (r *Regtest) URL() string { return r.node.URL() }

// call makes a raw call and decodes the result into v, failing the test.
func (r *Regtest) call(v any, method string, params ...any) {
	r.t.Helper()
	raw, err := r.node.Call(method, params...)
	if err != nil {
		r.t.Fatalf("testenv: %s %s: %v", r.Daemon, method, err)
	}
	if v != nil {
		if err := json.Unmarshal(raw, v); err != nil {
			r.t.Fatalf("testenv: %s %s: decode %s: %v", r.Daemon, method, raw, err)
		}
	}
}

// Height returns the height of the node's best block.
func (r *Regtest) Height() int32 {
	r.t.Helper()
	var n int32
	r.call(&n, "getblockcount")
	return n
}

// Generate mines n blocks to the mining script without syncing the
// wallet, and returns their hashes.
func (r *Regtest) Generate(n int) []chainhash.Hash {
	r.t.Helper()
	if r.Btcd != nil {
		return r.Btcd.Generate(n)
	}
	return r.Core.Generate(n, r.MiningScript.Address.EncodeAddress())
}

// Block returns the node's block with the given hash.
func (r *Regtest) Block(hash chainhash.Hash) *wire.MsgBlock {
	r.t.Helper()
	var hexStr string
	r.call(&hexStr, "getblock", hash.String(), 0)
	b, err := hex.DecodeString(hexStr)
	if err != nil {
		r.t.Fatal(err)
	}
	var block wire.MsgBlock
	if err := block.Deserialize(bytes.NewReader(b)); err != nil {
		r.t.Fatalf("testenv: block %s: %v", hash, err)
	}
	return &block
}

// BlockHash returns the hash of the node's best-chain block at height.
func (r *Regtest) BlockHash(height int32) chainhash.Hash { r.t.Helper(); return r.blockHash(height) }

// Mine generates n blocks, lets the wallet learn their outputs, and returns
// them.
func (r *Regtest) Mine(n int) []*wire.MsgBlock {
	r.t.Helper()
	r.Generate(n)
	return r.Sync()
}

// Sync brings the wallet to btcd's best chain and returns the blocks it
// connected. Blocks that are no longer on the best chain are disconnected
// first; after such a reorganisation the wallet's unconfirmed set is
// reloaded from btcd's mempool, where btcd returns the transactions of
// disconnected blocks.
func (r *Regtest) Sync() []*wire.MsgBlock {
	r.t.Helper()
	best := r.Height()
	w := r.Wallet
	disconnected := 0
	for h := w.Height(); h > 0; h = w.Height() {
		if h <= best && r.blockHash(h) == w.TipHash() {
			break
		}
		if _, err := w.DisconnectBlock(); err != nil {
			r.t.Fatal(err)
		}
		disconnected++
	}
	var blocks []*wire.MsgBlock
	for h := w.Height() + 1; h <= best; h++ {
		block := r.Block(r.blockHash(h))
		if err := w.ConnectBlock(block); err != nil {
			r.t.Fatal(err)
		}
		blocks = append(blocks, block)
	}
	if disconnected > 0 {
		r.reloadMempool()
	}
	return blocks
}

// blockHash returns the hash of btcd's best-chain block at height.
func (r *Regtest) blockHash(height int32) chainhash.Hash {
	r.t.Helper()
	var s string
	r.call(&s, "getblockhash", height)
	h, err := chainhash.NewHashFromStr(s)
	if err != nil {
		r.t.Fatal(err)
	}
	return *h
}

// reloadMempool replaces the wallet's unconfirmed set with btcd's mempool.
func (r *Regtest) reloadMempool() {
	r.t.Helper()
	var txids []string
	r.call(&txids, "getrawmempool")
	r.Wallet.ResetMempool()
	for _, txid := range txids {
		var hexStr string
		r.call(&hexStr, "getrawtransaction", txid, 0)
		b, err := hex.DecodeString(hexStr)
		if err != nil {
			r.t.Fatal(err)
		}
		var tx wire.MsgTx
		if err := tx.Deserialize(bytes.NewReader(b)); err != nil {
			r.t.Fatalf("testenv: tx %s: %v", txid, err)
		}
		r.Wallet.AddTx(&tx)
	}
}

// TryBroadcast submits the transaction to btcd and, once accepted, records
// it in the wallet. It returns btcd's error for a rejected transaction.
func (r *Regtest) TryBroadcast(tx *wire.MsgTx) (chainhash.Hash, error) {
	var buf bytes.Buffer
	if err := tx.Serialize(&buf); err != nil {
		return chainhash.Hash{}, err
	}
	if _, err := r.node.Call("sendrawtransaction", hex.EncodeToString(buf.Bytes())); err != nil {
		return chainhash.Hash{}, err
	}
	r.Wallet.AddTx(tx)
	return tx.TxHash(), nil
}

// Broadcast submits the transaction to btcd and records it in the wallet.
func (r *Regtest) Broadcast(tx *wire.MsgTx) chainhash.Hash {
	r.t.Helper()
	txid, err := r.TryBroadcast(tx)
	if err != nil {
		r.t.Fatalf("testenv: sendrawtransaction %s: %v", tx.TxHash(), err)
	}
	return txid
}

// Send builds, signs and broadcasts a transaction from the wallet.
func (r *Regtest) Send(req TxRequest) *wire.MsgTx {
	r.t.Helper()
	tx, _, err := r.Wallet.BuildTx(req)
	if err != nil {
		r.t.Fatal(err)
	}
	r.Broadcast(tx)
	return tx
}

// Pay sends a transaction paying the outputs from the wallet's spendable
// outputs, with change to a new P2WPKH script, at DefaultFeeRate.
func (r *Regtest) Pay(outputs ...*wire.TxOut) *wire.MsgTx {
	r.t.Helper()
	return r.Send(TxRequest{Outputs: outputs})
}

// Invalidate marks a block invalid in btcd (invalidateblock), which makes
// the chain before it the best chain again, and syncs the wallet.
func (r *Regtest) Invalidate(hash chainhash.Hash) {
	r.t.Helper()
	r.call(nil, "invalidateblock", hash.String())
	r.Sync()
}

// Reorg replaces the top depth blocks of the best chain with n new ones
// mined on the block below them, and returns the new blocks. btcd follows
// the new branch whatever its length, because the old one is invalidated;
// make n larger than depth for the shape of a real reorganisation. The
// transactions of the replaced blocks go back to btcd's mempool, so the
// new blocks confirm them again.
func (r *Regtest) Reorg(depth, n int) []*wire.MsgBlock {
	r.t.Helper()
	tip := r.Wallet.Height()
	if depth < 1 || int32(depth) > tip {
		r.t.Fatalf("testenv: cannot reorganise %d blocks of a chain of height %d", depth, tip)
	}
	r.Invalidate(r.blockHash(tip - int32(depth) + 1))
	if r.Core != nil && n > 0 {
		// Core would mine the invalidated block again, byte for byte,
		// and refuse it: the first new block pays another script.
		r.Core.Generate(1, r.Wallet.NewScript(P2WPKH).Address.EncodeAddress())
		first := r.Sync()
		return append(first, r.Mine(n-1)...)
	}
	return r.Mine(n)
}

// Restart restarts btcd (see Btcd.Restart: the best chain is kept, the
// mempool is not) and brings the wallet back in step, forgetting its
// unconfirmed transactions.
func (r *Regtest) Restart() {
	r.t.Helper()
	if r.Btcd != nil {
		r.Btcd.Restart()
	} else {
		r.Core.Restart()
	}
	r.Sync()
	r.reloadMempool()
}
