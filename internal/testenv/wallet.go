package testenv

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"sort"
	"sync"

	"github.com/btcsuite/btcd/address/v2"
	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/btcsuite/btcd/btcec/v2/schnorr"
	"github.com/btcsuite/btcd/chaincfg/v2"
	"github.com/btcsuite/btcd/chainhash/v2"
	"github.com/btcsuite/btcd/txscript/v2"
	"github.com/btcsuite/btcd/wire/v2"
)

// ScriptKind is a kind of output script the Wallet can create and spend.
type ScriptKind uint8

// The script kinds a Wallet owns. OP_RETURN outputs are not owned; make
// them with NullDataOutput.
const (
	// P2PK pays to a bare compressed public key: <pubkey> OP_CHECKSIG.
	P2PK ScriptKind = iota + 1
	// P2PKH pays to the hash of a public key (a 1... / m... address).
	P2PKH
	// P2WPKH is segwit v0 pay-to-public-key-hash (bc1q / bcrt1q, 20 bytes).
	P2WPKH
	// P2SHP2WPKH is P2WPKH nested in P2SH (a 3... / 2... address).
	P2SHP2WPKH
	// P2WSHMultisig is segwit v0 pay-to-script-hash of a 2-of-3
	// multisig script (bc1q / bcrt1q, 32 bytes).
	P2WSHMultisig
	// P2TR is a BIP 86 taproot output spent by the key path (bc1p / bcrt1p).
	P2TR
)

// AllKinds returns every ScriptKind, in declaration order.
func AllKinds() []ScriptKind {
	return []ScriptKind{P2PK, P2PKH, P2WPKH, P2SHP2WPKH, P2WSHMultisig, P2TR}
}

// String returns the kind's conventional name.
func (k ScriptKind) String() string {
	switch k {
	case P2PK:
		return "p2pk"
	case P2PKH:
		return "p2pkh"
	case P2WPKH:
		return "p2wpkh"
	case P2SHP2WPKH:
		return "p2sh-p2wpkh"
	case P2WSHMultisig:
		return "p2wsh-multisig"
	case P2TR:
		return "p2tr"
	}
	return fmt.Sprintf("ScriptKind(%d)", uint8(k))
}

// Script is an output script owned by a Wallet, with what is needed to
// spend it. Pay to the same Script many times to make a busy, reused
// script.
type Script struct {
	// Kind is the script's template.
	Kind ScriptKind
	// PkScript is the output script (scriptPubKey).
	PkScript []byte
	// Address is the script's address. For P2PK it is an
	// *address.AddressPubKey, whose EncodeAddress gives the P2PKH form.
	Address address.Address
	// Keys are the private keys: one, or three for P2WSHMultisig (in the
	// order of the multisig script; the first two sign).
	Keys []*btcec.PrivateKey
	// RedeemScript is the P2SH redeem script (P2SHP2WPKH only).
	RedeemScript []byte
	// WitnessScript is the P2WSH witness script (P2WSHMultisig only).
	WitnessScript []byte
	// KeyIndex is the derivation index of the first key.
	KeyIndex uint32
}

// String returns the address, or "p2pk:<pubkey hex>" for P2PK.
func (s *Script) String() string {
	if s.Kind == P2PK {
		return "p2pk:" + hex.EncodeToString(s.Keys[0].PubKey().SerializeCompressed())
	}
	return s.Address.EncodeAddress()
}

// TxOut returns an output paying value satoshis to the script.
func (s *Script) TxOut(value int64) *wire.TxOut { return wire.NewTxOut(value, s.PkScript) }

// NullDataOutput returns a zero-value OP_RETURN output carrying data in one
// push. Up to 80 bytes of data is standard; btcd relays larger ones in
// regtest, which accepts non-standard transactions.
func NullDataOutput(data []byte) *wire.TxOut {
	// AddFullData has no size limit, so Script cannot fail.
	script, _ := txscript.NewScriptBuilder().AddOp(txscript.OP_RETURN).AddFullData(data).Script()
	return wire.NewTxOut(0, script)
}

// UTXO is an unspent output owned by the Wallet.
type UTXO struct {
	// OutPoint names the output.
	OutPoint wire.OutPoint
	// Value is the amount in satoshis.
	Value int64
	// Script is the wallet script the output pays to.
	Script *Script
	// Height is the height of the block holding the output, or 0 while
	// it is unconfirmed.
	Height int32
	// Coinbase is set for outputs of coinbase transactions, which are
	// spendable only after the network's coinbase maturity.
	Coinbase bool
}

// TxOut returns the output itself.
func (u *UTXO) TxOut() *wire.TxOut { return u.Script.TxOut(u.Value) }

// connectedBlock is a block the wallet has applied, with what it changed.
type connectedBlock struct {
	hash  chainhash.Hash
	added []wire.OutPoint // wallet outputs the block created
	spent []*UTXO         // wallet outputs the block spent
}

// Wallet is a deterministic test wallet: keys derived from a seed, scripts
// of every ScriptKind, and the unspent outputs paying to them. It learns
// confirmed outputs from blocks (ConnectBlock, DisconnectBlock) and
// unconfirmed ones from transactions (AddTx), builds and signs
// transactions (BuildTx, Sign), and knows nothing of any node: Regtest
// connects it to btcd. A Wallet is safe for concurrent use.
//
// The wallet's view is its confirmed outputs plus the outputs of the
// unconfirmed transactions it was given, minus everything those
// transactions spend.
type Wallet struct {
	params *chaincfg.Params
	seed   []byte

	mu        sync.Mutex
	nextKey   uint32
	scripts   map[string]*Script // by string(PkScript)
	order     []*Script          // in creation order
	blocks    []connectedBlock   // index is height; blocks[0] is genesis
	confirmed map[wire.OutPoint]*UTXO
	pending   map[wire.OutPoint]*UTXO          // outputs of unconfirmed txs
	spentBy   map[wire.OutPoint]chainhash.Hash // inputs of unconfirmed txs
	mempool   map[chainhash.Hash]*wire.MsgTx
}

// NewWallet returns an empty wallet for the network whose keys are derived
// from seed: the same seed gives the same keys, scripts and addresses.
// The wallet starts at the genesis block.
func NewWallet(params *chaincfg.Params, seed []byte) *Wallet {
	return &Wallet{
		params:    params,
		seed:      append([]byte(nil), seed...),
		scripts:   map[string]*Script{},
		blocks:    []connectedBlock{{hash: *params.GenesisHash}},
		confirmed: map[wire.OutPoint]*UTXO{},
		pending:   map[wire.OutPoint]*UTXO{},
		spentBy:   map[wire.OutPoint]chainhash.Hash{},
		mempool:   map[chainhash.Hash]*wire.MsgTx{},
	}
}

// Params returns the wallet's chain parameters.
func (w *Wallet) Params() *chaincfg.Params { return w.params }

// Key returns the private key with derivation index i:
// SHA-256("amber/testenv/key" || seed || i as 4 big-endian bytes), reduced
// modulo the curve order.
func (w *Wallet) Key(i uint32) *btcec.PrivateKey {
	h := sha256.New()
	h.Write([]byte("amber/testenv/key"))
	h.Write(w.seed)
	var idx [4]byte
	binary.BigEndian.PutUint32(idx[:], i)
	h.Write(idx[:])
	priv, _ := btcec.PrivKeyFromBytes(h.Sum(nil))
	return priv
}

// NewScript derives fresh keys and returns a new script of the kind, which
// the wallet then recognises in blocks and transactions.
func (w *Wallet) NewScript(kind ScriptKind) *Script {
	w.mu.Lock()
	defer w.mu.Unlock()
	nkeys := uint32(1)
	if kind == P2WSHMultisig {
		nkeys = 3
	}
	first := w.nextKey
	w.nextKey += nkeys
	keys := make([]*btcec.PrivateKey, nkeys)
	for i := range keys {
		keys[i] = w.Key(first + uint32(i))
	}
	s, err := makeScript(kind, keys, w.params)
	if err != nil {
		// Only an unknown kind or a btcd bug gets here.
		panic(fmt.Sprintf("testenv: make %v script: %v", kind, err))
	}
	s.KeyIndex = first
	w.scripts[string(s.PkScript)] = s
	w.order = append(w.order, s)
	return s
}

// makeScript builds the output script of a kind from its keys.
func makeScript(kind ScriptKind, keys []*btcec.PrivateKey, params *chaincfg.Params) (*Script, error) {
	s := &Script{Kind: kind, Keys: keys}
	pub := keys[0].PubKey().SerializeCompressed()
	var err error
	switch kind {
	case P2PK:
		s.Address, err = address.NewAddressPubKey(pub, params)
	case P2PKH:
		s.Address, err = address.NewAddressPubKeyHash(address.Hash160(pub), params)
	case P2WPKH:
		s.Address, err = address.NewAddressWitnessPubKeyHash(address.Hash160(pub), params)
	case P2SHP2WPKH:
		var inner address.Address
		if inner, err = address.NewAddressWitnessPubKeyHash(address.Hash160(pub), params); err != nil {
			return nil, err
		}
		if s.RedeemScript, err = txscript.PayToAddrScript(inner); err != nil {
			return nil, err
		}
		s.Address, err = address.NewAddressScriptHash(s.RedeemScript, params)
	case P2WSHMultisig:
		b := txscript.NewScriptBuilder().AddOp(txscript.OP_2)
		for _, k := range keys {
			b.AddData(k.PubKey().SerializeCompressed())
		}
		if s.WitnessScript, err = b.AddOp(txscript.OP_3).AddOp(txscript.OP_CHECKMULTISIG).Script(); err != nil {
			return nil, err
		}
		h := sha256.Sum256(s.WitnessScript)
		s.Address, err = address.NewAddressWitnessScriptHash(h[:], params)
	case P2TR:
		outputKey := txscript.ComputeTaprootKeyNoScript(keys[0].PubKey())
		s.Address, err = address.NewAddressTaproot(schnorr.SerializePubKey(outputKey), params)
	default:
		return nil, fmt.Errorf("unknown script kind %v", kind)
	}
	if err != nil {
		return nil, err
	}
	s.PkScript, err = txscript.PayToAddrScript(s.Address)
	return s, err
}

// Script returns the wallet script with the given output script, if the
// wallet owns it.
func (w *Wallet) Script(pkScript []byte) (*Script, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	s, ok := w.scripts[string(pkScript)]
	return s, ok
}

// Scripts returns every script the wallet has made, oldest first.
func (w *Wallet) Scripts() []*Script {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]*Script(nil), w.order...)
}

// Height returns the height of the last block the wallet has connected.
func (w *Wallet) Height() int32 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return int32(len(w.blocks) - 1)
}

// TipHash returns the hash of the last block the wallet has connected.
func (w *Wallet) TipHash() chainhash.Hash {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.blocks[len(w.blocks)-1].hash
}

// BlockHash returns the hash of the connected block at height, if any.
func (w *Wallet) BlockHash(height int32) (chainhash.Hash, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if height < 0 || int(height) >= len(w.blocks) {
		return chainhash.Hash{}, false
	}
	return w.blocks[height].hash, true
}

// ConnectBlock applies the next block on top of the wallet's tip: outputs
// paying to wallet scripts become confirmed UTXOs, spent ones go, and the
// block's transactions leave the wallet's unconfirmed set (with anything
// in it that conflicts with them).
func (w *Wallet) ConnectBlock(block *wire.MsgBlock) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	tip := w.blocks[len(w.blocks)-1].hash
	if block.Header.PrevBlock != tip {
		return fmt.Errorf("testenv: block %s builds on %s, not on the wallet's tip %s",
			block.BlockHash(), block.Header.PrevBlock, tip)
	}
	height := int32(len(w.blocks))
	rec := connectedBlock{hash: block.BlockHash()}
	for i, tx := range block.Transactions {
		txid := tx.TxHash()
		coinbase := i == 0
		if _, ok := w.mempool[txid]; ok {
			w.dropConfirmed(txid)
		}
		if !coinbase {
			for _, in := range tx.TxIn {
				if other, ok := w.spentBy[in.PreviousOutPoint]; ok && other != txid {
					w.evict(other)
				}
				if u, ok := w.confirmed[in.PreviousOutPoint]; ok {
					delete(w.confirmed, in.PreviousOutPoint)
					rec.spent = append(rec.spent, u)
				}
			}
		}
		for vout, out := range tx.TxOut {
			s, ok := w.scripts[string(out.PkScript)]
			if !ok {
				continue
			}
			op := wire.OutPoint{Hash: txid, Index: uint32(vout)}
			w.confirmed[op] = &UTXO{OutPoint: op, Value: out.Value, Script: s, Height: height, Coinbase: coinbase}
			rec.added = append(rec.added, op)
		}
	}
	w.blocks = append(w.blocks, rec)
	return nil
}

// DisconnectBlock undoes the wallet's tip block, as a reorganisation does,
// and returns its hash. The block's transactions are not put back into the
// unconfirmed set; add the node's mempool with AddTx if needed.
func (w *Wallet) DisconnectBlock() (chainhash.Hash, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.blocks) == 1 {
		return chainhash.Hash{}, fmt.Errorf("testenv: cannot disconnect the genesis block")
	}
	rec := w.blocks[len(w.blocks)-1]
	// Restore first, then delete: an output created and spent within the
	// block is in both lists and must end up absent.
	for _, u := range rec.spent {
		w.confirmed[u.OutPoint] = u
	}
	for _, op := range rec.added {
		delete(w.confirmed, op)
	}
	w.blocks = w.blocks[:len(w.blocks)-1]
	return rec.hash, nil
}

// AddTx records an unconfirmed transaction: the wallet outputs it spends
// are no longer available and its outputs paying to wallet scripts become
// unconfirmed UTXOs. The order in which related transactions are added
// does not matter. Adding a transaction twice is a no-op.
func (w *Wallet) AddTx(tx *wire.MsgTx) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.addTx(tx)
}

func (w *Wallet) addTx(tx *wire.MsgTx) {
	txid := tx.TxHash()
	if _, ok := w.mempool[txid]; ok {
		return
	}
	w.mempool[txid] = tx
	for _, in := range tx.TxIn {
		w.spentBy[in.PreviousOutPoint] = txid
	}
	for vout, out := range tx.TxOut {
		if s, ok := w.scripts[string(out.PkScript)]; ok {
			op := wire.OutPoint{Hash: txid, Index: uint32(vout)}
			w.pending[op] = &UTXO{OutPoint: op, Value: out.Value, Script: s}
		}
	}
}

// ResetMempool forgets every unconfirmed transaction, for instance before
// reloading them from a node after a reorganisation.
func (w *Wallet) ResetMempool() {
	w.mu.Lock()
	defer w.mu.Unlock()
	clear(w.mempool)
	clear(w.pending)
	clear(w.spentBy)
}

// dropConfirmed removes a transaction that a block has confirmed from the
// unconfirmed set. Its children stay: they now spend confirmed outputs.
func (w *Wallet) dropConfirmed(txid chainhash.Hash) {
	tx := w.mempool[txid]
	delete(w.mempool, txid)
	for _, in := range tx.TxIn {
		if w.spentBy[in.PreviousOutPoint] == txid {
			delete(w.spentBy, in.PreviousOutPoint)
		}
	}
	for vout := range tx.TxOut {
		delete(w.pending, wire.OutPoint{Hash: txid, Index: uint32(vout)})
	}
}

// evict removes a transaction that can no longer confirm, and its
// descendants, from the unconfirmed set.
func (w *Wallet) evict(txid chainhash.Hash) {
	tx, ok := w.mempool[txid]
	if !ok {
		return
	}
	w.dropConfirmed(txid)
	for vout := range tx.TxOut {
		if child, ok := w.spentBy[wire.OutPoint{Hash: txid, Index: uint32(vout)}]; ok {
			w.evict(child)
		}
	}
}

// UTXOs returns the wallet's unspent outputs, confirmed ones first by
// height, then unconfirmed ones, each group ordered by outpoint.
func (w *Wallet) UTXOs() []*UTXO {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.utxos()
}

func (w *Wallet) utxos() []*UTXO {
	out := make([]*UTXO, 0, len(w.confirmed)+len(w.pending))
	for op, u := range w.confirmed {
		if _, spent := w.spentBy[op]; !spent {
			out = append(out, u)
		}
	}
	for op, u := range w.pending {
		if _, spent := w.spentBy[op]; !spent {
			out = append(out, u)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		ha, hb := a.Height, b.Height
		if ha == 0 {
			ha = 1<<31 - 1
		}
		if hb == 0 {
			hb = 1<<31 - 1
		}
		if ha != hb {
			return ha < hb
		}
		if c := bytes.Compare(a.OutPoint.Hash[:], b.OutPoint.Hash[:]); c != 0 {
			return c < 0
		}
		return a.OutPoint.Index < b.OutPoint.Index
	})
	return out
}

// Spendable returns the UTXOs that a transaction in the next block may
// spend: unconfirmed ones, and coinbase outputs only once mature.
func (w *Wallet) Spendable() []*UTXO {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.spendable()
}

func (w *Wallet) spendable() []*UTXO {
	next := int32(len(w.blocks))
	maturity := int32(w.params.CoinbaseMaturity)
	all := w.utxos()
	out := all[:0]
	for _, u := range all {
		if u.Coinbase && next-u.Height < maturity {
			continue
		}
		out = append(out, u)
	}
	return out
}

// UTXO returns the unspent wallet output at op, if there is one.
func (w *Wallet) UTXO(op wire.OutPoint) (*UTXO, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.unspent(op)
}

func (w *Wallet) unspent(op wire.OutPoint) (*UTXO, bool) {
	if _, spent := w.spentBy[op]; spent {
		return nil, false
	}
	if u, ok := w.confirmed[op]; ok {
		return u, true
	}
	u, ok := w.pending[op]
	return u, ok
}

// Balance returns the total value of the wallet's unspent outputs,
// immature coinbase outputs included.
func (w *Wallet) Balance() int64 {
	var sum int64
	for _, u := range w.UTXOs() {
		sum += u.Value
	}
	return sum
}
