package chaingen

import (
	"bytes"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/btcsuite/btcd/chaincfg/v2"
	"github.com/btcsuite/btcd/chainhash/v2"
	"github.com/btcsuite/btcd/txscript/v2"
	"github.com/btcsuite/btcd/wire/v2"

	"amber/internal/testenv"
)

// Chain is a generated regtest chain: raw blocks from height 1 up, on top
// of regtest's genesis block. A Chain is read-only and safe for
// concurrent use.
type Chain struct {
	// Spec is the spec the chain was made from, with its defaults filled
	// in.
	Spec Spec
	// Blocks holds the serialized blocks: Blocks[i] is the block at
	// height i+1. Do not modify them; a chain loaded from the cache
	// shares one buffer between them.
	Blocks [][]byte
	// Took is how long generation took, or zero for a chain read from a
	// cache file.
	Took time.Duration

	hashes []chainhash.Hash     // hashes[h] is the hash of height h, 0 being genesis
	kinds  []testenv.ScriptKind // the wallet's script kinds, in creation order
	txs    int                  // non-coinbase transactions

	statsOnce sync.Once
	stats     Stats
	scripts   []ScriptStat
	statsErr  error
}

// newChain checks that the blocks form a chain on regtest's genesis block
// and returns it.
func newChain(spec Spec, blocks [][]byte, kinds []testenv.ScriptKind, txs int, took time.Duration) (*Chain, error) {
	c := &Chain{Spec: spec, Blocks: blocks, Took: took, kinds: kinds, txs: txs}
	c.hashes = make([]chainhash.Hash, len(blocks)+1)
	c.hashes[0] = *chaincfg.RegressionNetParams.GenesisHash
	for i, b := range blocks {
		if len(b) < wire.MaxBlockHeaderPayload+1 {
			return nil, fmt.Errorf("%w: block %d is %d bytes long", ErrCorrupt, i+1, len(b))
		}
		if !bytes.Equal(b[4:36], c.hashes[i][:]) {
			return nil, fmt.Errorf("%w: block %d does not build on block %d", ErrCorrupt, i+1, i)
		}
		c.hashes[i+1] = chainhash.DoubleHashH(b[:wire.MaxBlockHeaderPayload])
	}
	return c, nil
}

// Height returns the height of the chain's last block.
func (c *Chain) Height() int { return len(c.Blocks) }

// Hash returns the hash of the block at height h, from 0 (regtest's
// genesis block) to Height.
func (c *Chain) Hash(h int) chainhash.Hash { return c.hashes[h] }

// TipHash returns the hash of the chain's last block.
func (c *Chain) TipHash() chainhash.Hash { return c.hashes[len(c.hashes)-1] }

// Txs returns the number of non-coinbase transactions in the chain.
func (c *Chain) Txs() int { return c.txs }

// Block parses and returns the block at height h, from 1 to Height.
//
// It panics if the block does not parse, which cannot happen to a chain
// made by Generate or read from a checksummed cache file.
func (c *Chain) Block(h int) *wire.MsgBlock {
	var b wire.MsgBlock
	if err := b.Deserialize(bytes.NewReader(c.Blocks[h-1])); err != nil {
		panic(fmt.Sprintf("chaingen: block %d of %s does not parse: %v", h, c.Spec.Name, err))
	}
	return &b
}

// Wallet returns a new testenv.Wallet, seeded with Spec.WalletSeed, that
// owns every output of the chain (all but OP_RETURN outputs) and has
// connected every block: its UTXOs are the chain's unspent outputs, so a
// test can spend them, from busy scripts or quiet ones, once the chain is
// submitted to a node. It derives every key again: about 0.3 s for Tiny
// and 3 s for Small.
func (c *Chain) Wallet() (*testenv.Wallet, error) {
	w := testenv.NewWallet(&chaincfg.RegressionNetParams, c.Spec.WalletSeed())
	for _, k := range c.kinds {
		w.NewScript(k)
	}
	for h := 1; h <= c.Height(); h++ {
		if err := w.ConnectBlock(c.Block(h)); err != nil {
			return nil, fmt.Errorf("chaingen: rebuild the wallet of %s: %w", c.Spec.Name, err)
		}
	}
	return w, nil
}

// ScriptStat is what the chain does with one output script, counted from
// the blocks alone, for comparison with an index.
type ScriptStat struct {
	// PkScript is the output script.
	PkScript []byte
	// Class is the script's standard class: every kind of
	// testenv.ScriptKind has its own (P2SH ones are all P2SH-P2WPKH),
	// and OP_RETURN outputs, the witness commitments included, are
	// txscript.NullDataTy.
	Class txscript.ScriptClass
	// Funded is the number of outputs paying to the script, coinbase
	// outputs included.
	Funded int
	// Coinbase is the number of those that are coinbase outputs.
	Coinbase int
	// Spent is the number of those spent within the chain.
	Spent int
	// History is the number of distinct transactions that pay to or
	// spend from the script: the length of its Electrum history once the
	// whole chain is indexed.
	History int
	// Balance is the value of its unspent outputs at the tip, in
	// satoshis.
	Balance int64
	// FirstHeight and LastHeight are the heights of the blocks holding
	// the first and last transactions of its history.
	FirstHeight, LastHeight int
}

// Stats sums up a chain's content.
type Stats struct {
	// Txs is the number of transactions, coinbases excluded.
	Txs int
	// Inputs is the number of inputs of those transactions.
	Inputs int
	// Outputs is the number of outputs of all transactions, coinbase
	// and OP_RETURN outputs included.
	Outputs int
	// NullData is the number of OP_RETURN outputs other than witness
	// commitments.
	NullData int
	// InBlockSpends is the number of inputs spending an output created
	// earlier in the same block (chains of unconfirmed transactions).
	InBlockSpends int
	// MaxInputs and MaxOutputs are the largest input and output counts
	// of a non-coinbase transaction.
	MaxInputs, MaxOutputs int
	// Unspent is the number of unspent outputs at the tip, OP_RETURN
	// outputs excluded.
	Unspent int
	// Bytes is the size of all blocks.
	Bytes int64
}

// Scripts returns every distinct output script of the chain with its
// counts, busiest (longest history) first; ties go by Funded, then by
// script bytes. The first call parses every block; the result is kept.
// The slice is the caller's; the PkScripts are shared.
func (c *Chain) Scripts() ([]ScriptStat, error) {
	c.statsOnce.Do(c.computeStats)
	return slices.Clone(c.scripts), c.statsErr
}

// Stats returns the sums of the chain's content, computed with Scripts.
func (c *Chain) Stats() (Stats, error) {
	c.statsOnce.Do(c.computeStats)
	return c.stats, c.statsErr
}

// computeStats fills c.scripts and c.stats in one pass over the blocks.
func (c *Chain) computeStats() {
	type unspent struct {
		script int32
		value  int64
	}
	var (
		st       Stats
		scripts  []ScriptStat
		index    = map[string]int32{}
		utxos    = map[wire.OutPoint]unspent{}
		inBlock  = map[chainhash.Hash]bool{}
		touched  []int32
		isTouch  = map[int32]bool{}
		addTouch = func(i int32) {
			if !isTouch[i] {
				isTouch[i] = true
				touched = append(touched, i)
			}
		}
	)
	for h := 1; h <= c.Height(); h++ {
		st.Bytes += int64(len(c.Blocks[h-1]))
		var b wire.MsgBlock
		if err := b.Deserialize(bytes.NewReader(c.Blocks[h-1])); err != nil {
			c.statsErr = fmt.Errorf("%w: block %d: %v", ErrCorrupt, h, err)
			return
		}
		clear(inBlock)
		for ti, tx := range b.Transactions {
			touched = touched[:0]
			clear(isTouch)
			if ti > 0 {
				st.Txs++
				st.Inputs += len(tx.TxIn)
				st.MaxInputs = max(st.MaxInputs, len(tx.TxIn))
				st.MaxOutputs = max(st.MaxOutputs, len(tx.TxOut))
				for _, in := range tx.TxIn {
					u, ok := utxos[in.PreviousOutPoint]
					if !ok {
						c.statsErr = fmt.Errorf("%w: block %d spends %v, which is not an unspent output",
							ErrCorrupt, h, in.PreviousOutPoint)
						return
					}
					delete(utxos, in.PreviousOutPoint)
					if inBlock[in.PreviousOutPoint.Hash] {
						st.InBlockSpends++
					}
					s := &scripts[u.script]
					s.Spent++
					s.Balance -= u.value
					addTouch(u.script)
				}
			}
			txid := tx.TxHash()
			inBlock[txid] = true
			for vout, out := range tx.TxOut {
				st.Outputs++
				i, ok := index[string(out.PkScript)]
				if !ok {
					i = int32(len(scripts))
					index[string(out.PkScript)] = i
					scripts = append(scripts, ScriptStat{
						PkScript: out.PkScript,
						Class:    txscript.GetScriptClass(out.PkScript),
					})
				}
				s := &scripts[i]
				s.Funded++
				if ti == 0 {
					s.Coinbase++
				}
				addTouch(i)
				if s.Class == txscript.NullDataTy {
					if ti > 0 {
						st.NullData++
					}
					continue
				}
				s.Balance += out.Value
				utxos[wire.OutPoint{Hash: txid, Index: uint32(vout)}] = unspent{i, out.Value}
			}
			for _, i := range touched {
				s := &scripts[i]
				s.History++
				if s.FirstHeight == 0 {
					s.FirstHeight = h
				}
				s.LastHeight = h
			}
		}
	}
	st.Unspent = len(utxos)
	slices.SortFunc(scripts, func(a, b ScriptStat) int {
		if a.History != b.History {
			return b.History - a.History
		}
		if a.Funded != b.Funded {
			return b.Funded - a.Funded
		}
		return bytes.Compare(a.PkScript, b.PkScript)
	})
	c.stats, c.scripts = st, scripts
}
