package builder_test

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"testing"
	"time"

	"amber/internal/chain"
	"amber/internal/chainsync"
	"amber/internal/config"
	"amber/internal/daemon"
	"amber/internal/testenv"
	"amber/internal/testenv/chaingen"
)

// BenchmarkBuilderCore measures a full sync of the generated chain from
// Bitcoin Core, blocks over REST, over JSON-RPC (a second node started
// without -rest) and read from its block files, beside a sync from a
// local block source in the same run (BenchmarkBuilder/Sync has the btcd
// figure).
func BenchmarkBuilderCore(b *testing.B) {
	spec, err := chaingen.Workload(os.Getenv)
	if err != nil {
		b.Fatal(err)
	}
	c := chaingen.Load(b, spec)
	client := func(noREST bool) *daemon.Client {
		n := testenv.StartBitcoind(b, testenv.BitcoindOptions{OldTip: true, NoREST: noREST})
		c.Submit(b, n, c.Height())
		urls, err := config.ParseDaemonURLs(n.URL())
		if err != nil {
			b.Fatal(err)
		}
		dc, err := daemon.New(urls, daemon.Options{})
		if err != nil {
			b.Fatal(err)
		}
		return dc
	}
	rest, rpc := client(false), client(true)
	net, _ := chain.Lookup("Bitcoin", "regtest")
	b.Run("Sync", func(b *testing.B) {
		var gbuf bytes.Buffer
		if err := net.Params.GenesisBlock.Serialize(&gbuf); err != nil {
			b.Fatal(err)
		}
		raw := append([][]byte{gbuf.Bytes()}, c.Blocks...)
		txs := float64(c.Txs() + len(raw))
		blocks := float64(len(raw))
		var memT, restT, rpcT, filesT time.Duration
		iters := 0
		for b.Loop() {
			iters++
			mem, err := chainsync.NewMemorySource(raw)
			if err != nil {
				b.Fatal(err)
			}
			took, _ := timeSync(b, net, mem)
			memT += took
			took, _ = timeSync(b, net, chainsync.DaemonSource{C: rest})
			restT += took
			took, _ = timeSync(b, net, chainsync.DaemonSource{C: rpc})
			rpcT += took
			// The REST node's own block files, found as amber build
			// finds them; without them this row would measure REST.
			files, err := chainsync.OpenBlockFiles(context.Background(), rest, "", net, slog.New(slog.DiscardHandler))
			if err != nil || files == nil {
				b.Fatalf("Core's block files: %v", err)
			}
			took, _ = timeSync(b, net, chainsync.DaemonSource{C: rest, Files: files})
			files.Close()
			filesT += took
		}
		n := float64(iters)
		b.ReportMetric(blocks, "blocks")
		b.ReportMetric(blocks*n/memT.Seconds(), "local-blocks/s")
		b.ReportMetric(blocks*n/restT.Seconds(), "core-rest-blocks/s")
		b.ReportMetric(txs*n/restT.Seconds(), "core-rest-tx/s")
		b.ReportMetric(blocks*n/rpcT.Seconds(), "core-rpc-blocks/s")
		b.ReportMetric(txs*n/rpcT.Seconds(), "core-rpc-tx/s")
		b.ReportMetric(blocks*n/filesT.Seconds(), "core-files-blocks/s")
		b.ReportMetric(txs*n/filesT.Seconds(), "core-files-tx/s")
		b.ReportMetric(restT.Seconds()/filesT.Seconds(), "files/rest")
		b.ReportMetric(rpcT.Seconds()/restT.Seconds(), "rest/rpc")
		b.ReportMetric(memT.Seconds()/rpcT.Seconds(), "rpc/local")
	})
}
