package chaingen_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"amber/internal/chain"
	"amber/internal/chainsync"
	"amber/internal/index"
	"amber/internal/store"
	"amber/internal/testenv/chaingen"
)

// TestMainnetShaped writes a mainnet-shaped chain twice (the same bytes
// each time), indexes it from the file with the real index, which refuses
// any input that does not spend an unspent output, and checks the shapes
// the spec promises: P2PK outputs in the first era, taproot in the last,
// and inputs and outputs per transaction near mainnet's means.
func TestMainnetShaped(t *testing.T) {
	spec := chaingen.MainnetSpec{Seed: 1, Txs: 30_000}
	dir := t.TempDir()
	path := filepath.Join(dir, "mainnet.blocks")
	var buf bytes.Buffer
	stats, err := chaingen.WriteMainnet(&buf, spec, nil)
	if err != nil {
		t.Fatal(err)
	}
	var again bytes.Buffer
	if _, err := chaingen.WriteMainnet(&again, spec, nil); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(buf.Bytes(), again.Bytes()) {
		t.Fatal("the same spec wrote different chains")
	}
	if stats.Txs != spec.Txs || stats.Bytes != int64(buf.Len()) {
		t.Fatalf("stats %+v for %d transactions and %d bytes", stats, spec.Txs, buf.Len())
	}
	if in, out := float64(stats.Inputs)/float64(stats.Txs), float64(stats.Outputs-stats.Blocks)/float64(stats.Txs); in < 1.8 || in > 3.2 || out < 2 || out > 3.6 {
		t.Errorf("%.2f inputs and %.2f outputs per transaction, want mainnet's 2-3", in, out)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}

	net, _ := chain.Lookup("Bitcoin", "regtest")
	bf, err := chaingen.OpenBlockFile(path, net)
	if err != nil {
		t.Fatal(err)
	}
	defer bf.Close()
	if int(bf.Height()) != stats.Blocks || bf.TxsTo(bf.Height()) != int64(stats.Txs+stats.Blocks) {
		t.Fatalf("block file: height %d, %d txs; wrote %d blocks, %d txs", bf.Height(), bf.TxsTo(bf.Height()), stats.Blocks, stats.Txs)
	}
	// Outputs of each kind in the first 1% of the transactions (the
	// P2PK era) and in the last 10% (the taproot era).
	kinds := map[string][2]int{}
	r := chain.NewBlockFileReader(bytes.NewReader(buf.Bytes()), net)
	txs := 0
	for h := 0; ; h++ {
		raw, err := r.Next()
		if err != nil {
			break
		}
		blk, err := chain.ParseBlock(raw)
		if err != nil {
			t.Fatalf("block %d: %v", h, err)
		}
		for _, tx := range blk.Txs[1:] {
			txs++
			for _, o := range tx.Outputs {
				k := kinds[kindName(o.PkScript)]
				switch {
				case txs < spec.Txs/100:
					k[0]++
				case txs > spec.Txs*9/10:
					k[1]++
				}
				kinds[kindName(o.PkScript)] = k
			}
		}
	}
	if txs != spec.Txs || kinds["p2pk"][0] == 0 || kinds["p2tr"][0] != 0 || kinds["p2wsh"][0] != 0 || kinds["p2tr"][1] == 0 ||
		kinds["p2wpkh"][1] < kinds["p2pkh"][1] || kinds["p2pk"][1] > kinds["p2pk"][0] {
		t.Errorf("%d transactions; output kinds (first 1%%, last 10%% of transactions): %v", txs, kinds)
	}

	// Index it in two steps, as the scaling benchmark does.
	db, err := store.Open(filepath.Join(dir, "db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ix, err := index.Open(db, net, index.Options{})
	if err != nil {
		t.Fatal(err)
	}
	half := bf.HeightForTxs(int64(stats.Txs / 2))
	for _, tip := range []int32{half, bf.Height()} {
		got, err := chainsync.New(ix, bf.Source(tip), chainsync.Options{}).SyncToTip(context.Background())
		if err != nil {
			t.Fatalf("sync to %d: %v", tip, err)
		}
		if got.Height != tip || got.TxCount != uint64(bf.TxsTo(tip)) {
			t.Fatalf("synced to %d with %d txs, want %d with %d", got.Height, got.TxCount, tip, bf.TxsTo(tip))
		}
	}
}

func kindName(s []byte) string {
	switch {
	case len(s) == 35 && s[34] == 0xac:
		return "p2pk"
	case len(s) == 25:
		return "p2pkh"
	case len(s) == 23:
		return "p2sh"
	case len(s) == 22 && s[0] == 0:
		return "p2wpkh"
	case len(s) == 34 && s[0] == 0:
		return "p2wsh"
	case len(s) == 34 && s[0] == 0x51:
		return "p2tr"
	}
	return "other"
}
