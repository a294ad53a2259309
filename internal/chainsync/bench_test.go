package chainsync_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strconv"
	"syscall"
	"testing"
	"time"

	"amber/internal/chain"
	"amber/internal/chainsync"
	"amber/internal/config"
	"amber/internal/index"
	"amber/internal/testenv/chaingen"
)

// peer310k is the chain of the side-by-side comparison with ElectrumX
// and Fulcrum (the issue #19 table): 10,000 blocks, about 310,000
// transactions with the coinbases, 8 busy scripts.
var peer310k = chaingen.Spec{Name: "peer310k", Seed: 7, Blocks: 10_000, Txs: 300_000, BusyScripts: 8}

// BenchmarkSyncSegments indexes a generated chain from a local block
// source (no daemon) with the builder's options for CACHE_MB
// (AMBER_BENCH_CACHE_MB, 1200 by default, ElectrumX's default) and
// reports the rate of each tenth of the chain, the slowest tenth and the
// overall rate. A tenth's time includes the commits made in it, the last
// one's the final durable commit. AMBER_BENCH_CHAIN=peer310k picks the
// side-by-side chain, otherwise the Small workload is used.
func BenchmarkSyncSegments(b *testing.B) {
	spec := chaingen.Small
	if os.Getenv("AMBER_BENCH_CHAIN") == "peer310k" {
		spec = peer310k
	}
	cacheMB := config.DefaultCacheMB
	if v := os.Getenv("AMBER_BENCH_CACHE_MB"); v != "" {
		var err error
		if cacheMB, err = strconv.Atoi(v); err != nil {
			b.Fatal(err)
		}
	}
	split := config.SplitCache(cacheMB)
	batchBytes := split.Batch
	if v := os.Getenv("AMBER_BENCH_BATCH_MB"); v != "" {
		mb, err := strconv.Atoi(v)
		if err != nil {
			b.Fatal(err)
		}
		batchBytes = mb << 20
	}
	c := chaingen.Load(b, spec)
	net, _ := chain.Lookup("Bitcoin", "regtest")
	var gbuf bytes.Buffer
	if err := net.Params.GenesisBlock.Serialize(&gbuf); err != nil {
		b.Fatal(err)
	}
	raw := append([][]byte{gbuf.Bytes()}, c.Blocks...)
	// txsUpTo[h] is the transactions in blocks 0..h.
	txsUpTo := make([]int, len(raw))
	for h, r := range raw {
		blk, err := chain.ParseBlock(r)
		if err != nil {
			b.Fatal(err)
		}
		txsUpTo[h] = len(blk.Txs)
		if h > 0 {
			txsUpTo[h] += txsUpTo[h-1]
		}
	}
	const segments = 10
	seg := len(raw) / segments
	segT := make([]time.Duration, segments)
	segCPU := make([]time.Duration, segments)
	var total, totalCPU time.Duration
	var hitRatio float64
	for b.Loop() {
		dir := b.TempDir()
		db, ix, err := index.OpenDir(dir, split.BlockCache, net, index.Options{UTXOCacheBytes: split.UTXOCache})
		if err != nil {
			b.Fatal(err)
		}
		src, err := chainsync.NewMemorySource(raw)
		if err != nil {
			b.Fatal(err)
		}
		// Times at which each height was first reached; progress comes
		// every 100 blocks and at each commit.
		start, cpu0 := time.Now(), cpuTime(b)
		last := 0
		at := make([]time.Duration, segments+1)
		cpuAt := make([]time.Duration, segments+1)
		s := chainsync.New(ix, src, chainsync.Options{
			BatchBytes: batchBytes,
			Progress: func(p chainsync.Progress) {
				for last < segments && int(p.Height) >= (last+1)*seg {
					last++
					at[last], cpuAt[last] = time.Since(start), cpuTime(b)-cpu0
				}
			},
		})
		if _, err := s.SyncToTip(context.Background()); err != nil {
			b.Fatal(err)
		}
		took, tookCPU := time.Since(start), cpuTime(b)-cpu0
		at[segments], cpuAt[segments] = took, tookCPU
		for i := range segments {
			segT[i] += at[i+1] - at[i]
			segCPU[i] += cpuAt[i+1] - cpuAt[i]
		}
		total += took
		totalCPU += tookCPU
		st := ix.CacheStats()
		hitRatio = float64(st.Hits) / float64(max(1, st.Hits+st.Misses))
		if err := db.Close(); err != nil {
			b.Fatal(err)
		}
	}
	n := float64(b.N)
	slowest, slowestCPU := 0.0, 0.0
	for i := range segments {
		from, to := i*seg, (i+1)*seg
		if i == segments-1 {
			to = len(raw) - 1
		}
		txs := float64(txsUpTo[to] - txsUpTo[from])
		rate := txs * n / segT[i].Seconds()
		if i == 0 || rate < slowest {
			slowest = rate
		}
		if r := txs * n / segCPU[i].Seconds(); i == 0 || r < slowestCPU {
			slowestCPU = r
		}
		b.ReportMetric(rate, fmt.Sprintf("seg%d-tx/s", i))
	}
	b.ReportMetric(slowest, "slowest-seg-tx/s")
	b.ReportMetric(slowestCPU, "slowest-seg-tx/cpu-s")
	b.ReportMetric(float64(txsUpTo[len(raw)-1])*n/total.Seconds(), "tx/s")
	b.ReportMetric(float64(txsUpTo[len(raw)-1])*n/totalCPU.Seconds(), "tx/cpu-s")
	// Spends of outputs committed in an earlier batch answered by the
	// UTXO cache; the rest were looked up in Pebble.
	b.ReportMetric(hitRatio, "cache-hit-ratio")
}

// cpuTime is the CPU time (user and system) the process has used: on a
// machine shared with other work it measures cost where wall time
// measures the neighbours.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
