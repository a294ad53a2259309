// Command histpack measures what packing history rows would save: it
// reads a mainnet-shaped block file (the scaling benchmark's), collects
// every script's history as the index does (one entry per transaction
// that funds or spends the script), and prints its bytes per transaction
// written three ways, raw and compressed with zstd in 4 KiB blocks as an
// SST data block is: one key per entry (hashX, tx_num, as Amber's rows),
// one row per script with 5-byte tx_nums, and one row per script with
// uvarint deltas. bench/PROJECTION.md quotes it.
//
//	go run ./internal/testenv/cmd/histpack -blk .bench-cache/mainnet-1000000-seed1.blk -txs 1000000
package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"

	"github.com/btcsuite/btcd/wire/v2"
	"github.com/klauspost/compress/zstd"

	"amber/internal/chain"
	"amber/internal/testenv/chaingen"
)

func main() {
	path := flag.String("blk", "", "mainnet-shaped block file (required)")
	txs := flag.Int64("txs", 1_000_000, "transactions to read")
	flag.Parse()
	if *path == "" {
		flag.Usage()
		os.Exit(2)
	}
	if err := run(*path, *txs, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "histpack:", err)
		os.Exit(1)
	}
}

func run(path string, txs int64, out io.Writer) error {
	net, _ := chain.Lookup("Bitcoin", "regtest")
	bf, err := chaingen.OpenBlockFile(path, net)
	if err != nil {
		return err
	}
	defer bf.Close()
	tip := bf.HeightForTxs(txs)
	src := bf.Source(tip)
	outs := map[wire.OutPoint]chain.HashX{}
	hist := map[chain.HashX][]uint64{}
	var txNum uint64
	for h := int32(1); h <= tip; h++ {
		hashes, err := src.BlockHashes(context.Background(), h, 1)
		if err != nil {
			return err
		}
		raws, err := src.RawBlocks(context.Background(), hashes)
		if err != nil {
			return err
		}
		blk, err := net.ParseBlock(raws[0])
		if err != nil {
			return err
		}
		for _, tx := range blk.Txs {
			seen := map[chain.HashX]bool{}
			for _, in := range tx.Inputs {
				if hx, ok := outs[in.Prev]; ok && !in.Coinbase {
					delete(outs, in.Prev)
					seen[hx] = true
				}
			}
			for i, o := range tx.Outputs {
				if chain.IsIndexed(o.PkScript) {
					hx := chain.HashXOf(o.PkScript)
					outs[wire.OutPoint{Hash: tx.TxID, Index: uint32(i)}] = hx
					seen[hx] = true
				}
			}
			for hx := range seen {
				hist[hx] = append(hist[hx], txNum)
			}
			txNum++
		}
	}
	keys := make([]chain.HashX, 0, len(hist))
	entries := 0
	for k, v := range hist {
		keys = append(keys, k)
		entries += len(v)
	}
	slices.SortFunc(keys, func(a, b chain.HashX) int { return bytes.Compare(a[:], b[:]) })
	var flat, packed5, packedDelta bytes.Buffer
	var num [5]byte
	put := func(t uint64) []byte {
		num[0] = byte(t >> 32)
		binary.BigEndian.PutUint32(num[1:], uint32(t))
		return num[:]
	}
	for _, k := range keys {
		packed5.Write(k[:])
		packedDelta.Write(k[:])
		prev := uint64(0)
		for _, t := range hist[k] {
			flat.Write(k[:])
			flat.Write(put(t))
			packed5.Write(put(t))
			packedDelta.Write(binary.AppendUvarint(nil, t-prev))
			prev = t
		}
	}
	enc, err := zstd.NewWriter(nil)
	if err != nil {
		return err
	}
	zstdBytes := func(b []byte) int {
		n := 0
		for i := 0; i < len(b); i += 4096 {
			n += len(enc.EncodeAll(b[i:min(len(b), i+4096)], nil))
		}
		return n
	}
	per := func(n int) float64 { return float64(n) / float64(txNum) }
	fmt.Fprintf(out, "%d transactions (coinbases included), %d scripts, %d history entries (%.2f per tx, %.2f per script)\n",
		txNum, len(hist), entries, float64(entries)/float64(txNum), float64(entries)/float64(len(hist)))
	for _, r := range []struct {
		name string
		b    []byte
	}{{"one key per entry (hashX, tx_num)", flat.Bytes()}, {"a row per script, 5-byte tx_nums", packed5.Bytes()},
		{"a row per script, uvarint deltas", packedDelta.Bytes()}} {
		fmt.Fprintf(out, "%-36s raw %5.1f bytes/tx, zstd %5.1f\n", r.name, per(len(r.b)), per(zstdBytes(r.b)))
	}
	return nil
}
