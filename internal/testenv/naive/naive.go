// Package naive recomputes what an Electrum server should answer for each
// script straight from raw blocks: the slow, obvious way, with no tx_nums,
// lookups or undo data. Tests compare the index against it, so it shares
// no code with the index beyond block parsing.
package naive

import (
	"github.com/btcsuite/btcd/chainhash/v2"
	"github.com/btcsuite/btcd/wire/v2"

	"amber/internal/chain"
)

// Item is one confirmed transaction in a script's history.
type Item struct {
	Height int32
	TxID   chainhash.Hash
}

// Result is the state of every script after a chain of blocks.
type Result struct {
	history map[chain.HashX][]Item
	utxos   map[chain.HashX]map[wire.OutPoint]int64
	// Height is the height of the last block.
	Height int32
}

// Build replays blocks, where blocks[i] is at height i (block 0 is not
// indexed, as in ElectrumX).
func Build(blocks []*chain.Block) *Result {
	r := &Result{history: map[chain.HashX][]Item{}, utxos: map[chain.HashX]map[wire.OutPoint]int64{}, Height: int32(len(blocks) - 1)}
	owner := map[wire.OutPoint]chain.HashX{}
	for h, b := range blocks {
		if h == 0 {
			continue
		}
		for _, tx := range b.Txs {
			touched := map[chain.HashX]bool{}
			var order []chain.HashX
			touch := func(hx chain.HashX) {
				if !touched[hx] {
					touched[hx] = true
					order = append(order, hx)
				}
			}
			for _, in := range tx.Inputs {
				if in.Coinbase {
					continue
				}
				hx, ok := owner[in.Prev]
				if !ok {
					continue // an output that was never indexed
				}
				delete(owner, in.Prev)
				delete(r.utxos[hx], in.Prev)
				touch(hx)
			}
			for i, out := range tx.Outputs {
				if !chain.IsIndexed(out.PkScript) {
					continue
				}
				hx := chain.HashXOf(out.PkScript)
				op := wire.OutPoint{Hash: tx.TxID, Index: uint32(i)}
				owner[op] = hx
				if r.utxos[hx] == nil {
					r.utxos[hx] = map[wire.OutPoint]int64{}
				}
				r.utxos[hx][op] = out.Value
				touch(hx)
			}
			for _, hx := range order {
				r.history[hx] = append(r.history[hx], Item{Height: int32(h), TxID: tx.TxID})
			}
		}
	}
	return r
}

// Scripts lists every script that has history.
func (r *Result) Scripts() []chain.HashX {
	out := make([]chain.HashX, 0, len(r.history))
	for hx := range r.history {
		out = append(out, hx)
	}
	return out
}

// History is the script's confirmed history in chain order.
func (r *Result) History(hx chain.HashX) []Item { return r.history[hx] }

// UTXOs are the script's unspent outputs with their values.
func (r *Result) UTXOs(hx chain.HashX) map[wire.OutPoint]int64 { return r.utxos[hx] }

// Balance is the sum of the script's unspent outputs.
func (r *Result) Balance(hx chain.HashX) int64 {
	var sum int64
	for _, v := range r.utxos[hx] {
		sum += v
	}
	return sum
}

// UTXOStats counts every unspent output and sums their values.
func (r *Result) UTXOStats() (count uint64, total uint64) {
	for _, m := range r.utxos {
		for _, v := range m {
			count++
			total += uint64(v)
		}
	}
	return count, total
}
