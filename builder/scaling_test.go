package builder_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"amber/builder"
	"amber/internal/chain"
	"amber/internal/chainsync"
	"amber/internal/config"
	"amber/internal/index"
	"amber/internal/store"
	"amber/internal/testenv"
	"amber/internal/testenv/chaingen"
)

// Environment of BenchmarkScaling.
const (
	// scaleTxsEnv lists the checkpoints, in transactions, at which the
	// curve is measured; the chain has as many transactions as the last.
	scaleTxsEnv = "AMBER_SCALE_TXS"
	// scaleSeedEnv seeds the chain (default 1).
	scaleSeedEnv = "AMBER_SCALE_SEED"
	// scaleCacheEnv is the CACHE_MB the index runs with (default
	// config.DefaultCacheMB).
	scaleCacheEnv = "AMBER_SCALE_CACHE_MB"
)

// BenchmarkScaling measures the index's scaling curve on a mainnet-shaped
// chain (chaingen.WriteMainnet) read from a block file on disk: one index,
// synced from genesis to each checkpoint of AMBER_SCALE_TXS in turn
// (default 1, 5 and 20 million transactions). For each segment between two
// checkpoints it reports the sync rate in tx/s of wall time and of CPU
// time (on a shared machine the second is the steadier), the peak RSS of this
// process and Pebble's write amplification (SST bytes written by flushes
// and compactions over those written by flushes, the checkpoint's flush
// included, its full compaction not); at each checkpoint, after a
// flush and a full compaction (not timed: a builder does it before
// publishing a snapshot), the SST bytes per transaction. The index runs as
// amber build does at the default CACHE_MB or AMBER_SCALE_CACHE_MB (block
// cache, UTXO cache and batch sizes from config.SplitCache) with mainnet's
// REORG_LIMIT. The
// block file is kept in the repository's bench cache, so later runs skip
// generating it.
func BenchmarkScaling(b *testing.B) {
	points := []int64{1_000_000, 5_000_000, 20_000_000}
	if v := os.Getenv(scaleTxsEnv); v != "" {
		points = nil
		for _, f := range strings.Split(v, ",") {
			n, err := strconv.ParseInt(strings.TrimSpace(f), 10, 64)
			if err != nil || n < 1 || (len(points) > 0 && n <= points[len(points)-1]) {
				b.Fatalf("%s=%q: want rising transaction counts separated by commas", scaleTxsEnv, v)
			}
			points = append(points, n)
		}
	}
	seed := uint64(1)
	if v := os.Getenv(scaleSeedEnv); v != "" {
		s, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			b.Fatalf("%s=%q: %v", scaleSeedEnv, v, err)
		}
		seed = s
	}
	cacheMB := config.DefaultCacheMB
	if v := os.Getenv(scaleCacheEnv); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 16 {
			b.Fatalf("%s=%q: want MiB, at least 16", scaleCacheEnv, v)
		}
		cacheMB = n
	}
	net, _ := chain.Lookup("Bitcoin", "regtest")
	mainnet, _ := chain.Lookup("Bitcoin", "mainnet")
	path := mainnetFile(b, chaingen.MainnetSpec{Seed: seed, Txs: int(points[len(points)-1])})
	bf, err := chaingen.OpenBlockFile(path, net)
	if err != nil {
		b.Fatal(err)
	}
	defer bf.Close()
	st, _ := os.Stat(path)
	logf("block file %s: %d blocks, %d transactions, %d bytes", filepath.Base(path), bf.Height(), bf.TxsTo(bf.Height()), st.Size())

	// amber build's Go memory limit (GOMEMLIMIT=off measures without).
	if limit, restore := builder.ApplyMemoryLimit(cacheMB); limit > 0 {
		defer restore()
		logf("Go memory limit %d MiB at CACHE_MB=%d", limit>>20, cacheMB)
	}
	for b.Loop() {
		// amber build's memory budget at CACHE_MB, and mainnet's
		// REORG_LIMIT: undo records for the last 200 blocks, not
		// regtest's 8,000 (more than this whole chain).
		split := config.SplitCache(cacheMB)
		db, ix, err := index.OpenDir(b.TempDir(), split.BlockCache, net,
			index.Options{UTXOCacheBytes: split.UTXOCache, ReorgLimit: mainnet.ReorgLimit, WriteMostly: true})
		if err != nil {
			b.Fatal(err)
		}
		var prevTxs int64
		var prevM store.Metrics
		var prevC index.CacheStats
		for i, p := range points {
			tip := bf.HeightForTxs(p)
			// The generator's freed heap must not count in the peak.
			debug.FreeOSMemory()
			resetPeakRSS(b)
			heap := watchHeap()
			profiled := false
			cpu0 := cpuTime(b)
			start := time.Now()
			got, err := chainsync.New(ix, bf.Source(tip), chainsync.Options{BatchBytes: split.Batch, Progress: func(pr chainsync.Progress) {
				// AMBER_SCALE_HEAPPROFILE: the live heap halfway through each segment.
				if dir := os.Getenv("AMBER_SCALE_HEAPPROFILE"); dir != "" && !profiled && int64(pr.Txs) >= (p-prevTxs)/2 {
					profiled = true
					writeHeapProfile(b, filepath.Join(dir, "heap-"+txLabel(p)+".pprof"))
				}
			}}).SyncToTip(context.Background())
			if err != nil {
				b.Fatal(err)
			}
			took := time.Since(start)
			cpu := cpuTime(b) - cpu0
			rss := peakRSS(b)
			heapPeak, livePeak := heap()
			// The flush a checkpoint makes anyway, so that the segment's
			// rows count as flushed bytes.
			if err := db.Flush(); err != nil {
				b.Fatal(err)
			}
			m := db.Metrics()
			cs := ix.CacheStats()
			lookups := float64(cs.Hits + cs.Misses - prevC.Hits - prevC.Misses)
			hit := float64(cs.Hits-prevC.Hits) / max(1, lookups)
			prevC = cs
			// Tables written new: flushed from memtables, or a sorted
			// batch's, taken in whole.
			flushed := float64(m.FlushedBytes + m.IngestedBytes - prevM.FlushedBytes - prevM.IngestedBytes)
			wamp := (flushed + float64(m.CompactedBytes-prevM.CompactedBytes)) / flushed
			txs := int64(got.TxCount)
			segTxs := float64(txs - prevTxs)
			rate := segTxs / took.Seconds()

			start = time.Now()
			size := measureSize(b, db)
			compactT := time.Since(start)
			prevM = db.Metrics()
			prevTxs = txs

			label := txLabel(p)
			b.ReportMetric(rate, label+"-tx/s")
			b.ReportMetric(segTxs/cpu.Seconds(), label+"-tx/cpu-s")
			b.ReportMetric(float64(size.sstBytes)/float64(txs), label+"-sst-bytes/tx")
			b.ReportMetric(float64(size.sstBytes)/(1<<20), label+"-sst-MiB")
			b.ReportMetric(float64(rss)/(1<<20), label+"-peak-RSS-MiB")
			b.ReportMetric(float64(heapPeak)/(1<<20), label+"-peak-Go-heap-MiB")
			b.ReportMetric(wamp, label+"-write-amp")
			b.ReportMetric(hit, label+"-utxo-cache-hit-ratio")
			for _, ps := range size.prefixes {
				if ps.Name == "spend index" || ps.Name == "history" || ps.Name == "undo" {
					b.ReportMetric(float64(ps.SSTBytes)/float64(txs), label+"-sst-"+strings.ReplaceAll(ps.Name, " ", "-")+"-bytes/tx")
				}
			}
			logf("segment %d to %s (height %d, %d tx): %.0f tx/s over %s using %s of CPU, peak RSS %d MiB (Go heap %d MiB, %d MiB live after a GC), write amplification %.2f, UTXO cache hit ratio %.3f; full compaction %s, SST %d bytes, %.1f bytes/tx",
				i+1, label, got.Height, txs, rate, took.Round(time.Second), cpu.Round(time.Second), rss>>20, heapPeak>>20, livePeak>>20, wamp, hit, compactT.Round(time.Second), size.sstBytes, float64(size.sstBytes)/float64(txs))
			for _, ps := range size.prefixes {
				logf("  %-16s %12d SST bytes, %.1f per tx", ps.Name, ps.SSTBytes, float64(ps.SSTBytes)/float64(txs))
			}
		}
		if err := db.Close(); err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(runtime.NumCPU()), "cores")
	}
}

// txLabel names a checkpoint: "1M", "5M", "250k", "1.5M".
func txLabel(n int64) string {
	switch {
	case n >= 1_000_000 && n%1_000_000 == 0:
		return fmt.Sprintf("%dM", n/1_000_000)
	case n >= 1_000_000:
		return strconv.FormatFloat(float64(n)/1e6, 'f', -1, 64) + "M"
	case n%1000 == 0:
		return fmt.Sprintf("%dk", n/1000)
	}
	return strconv.FormatInt(n, 10)
}

// mainnetFile returns the path of the block file of spec in the bench
// cache, writing it first (to a temporary name, then renamed) if missing.
func mainnetFile(b *testing.B, spec chaingen.MainnetSpec) string {
	b.Helper()
	root, err := testenv.RepoRoot()
	if err != nil {
		b.Fatal(err)
	}
	dir := filepath.Join(root, chaingen.CacheDir)
	path := filepath.Join(dir, fmt.Sprintf("mainnet-%d-seed%d.blk", spec.Txs, spec.Seed))
	if _, err := os.Stat(path); err == nil {
		return path
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		b.Fatal(err)
	}
	tmp := path + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	last := start
	stats, err := chaingen.WriteMainnet(f, spec, func(s chaingen.MainnetStats) {
		if time.Since(last) > 30*time.Second {
			last = time.Now()
			logf("generating %s: %d of %d transactions, %.0f tx/s", filepath.Base(path), s.Txs, spec.Txs, float64(s.Txs)/time.Since(start).Seconds())
		}
	})
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		b.Fatal(err)
	}
	logf("generated %s in %s: %+v", filepath.Base(path), time.Since(start).Round(time.Second), stats)
	return path
}

// logf prints a progress line to stderr, indented as a test log is. The
// testing package keeps only the first ten lines a benchmark logs, and a
// scaling run has more than that.
func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "    "+format+"\n", args...)
}

// cpuTime returns the user and system CPU time this process has used.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatalf("getrusage: %v", err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// resetPeakRSS resets the kernel's peak RSS of this process (VmHWM).
func resetPeakRSS(b *testing.B) {
	if err := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0); err != nil {
		b.Fatalf("reset peak RSS: %v", err)
	}
}

// watchHeap samples the Go heap until the returned function is called,
// which reports the peak bytes of heap objects (what the Go part of the
// RSS follows) and the peak live heap after a GC (what the GC must keep).
// The rest of the RSS is Pebble's block cache and memtables, allocated
// outside the Go heap.
func watchHeap() func() (heap, live uint64) {
	samples := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}, {Name: "/gc/heap/live:bytes"}}
	var heap, live uint64
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			metrics.Read(samples)
			heap, live = max(heap, samples[0].Value.Uint64()), max(live, samples[1].Value.Uint64())
			select {
			case <-stop:
				return
			case <-t.C:
			}
		}
	}()
	return func() (uint64, uint64) {
		close(stop)
		<-done
		return heap, live
	}
}

// writeHeapProfile writes the live heap's allocation sites to path.
func writeHeapProfile(b *testing.B, path string) {
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	if err := pprof.Lookup("heap").WriteTo(f, 0); err != nil {
		b.Fatal(err)
	}
}

// peakRSS returns this process's peak RSS since the last reset, in bytes.
func peakRSS(b *testing.B) int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				b.Fatalf("VmHWM %q: %v", v, err)
			}
			return kb << 10
		}
	}
	b.Fatal("no VmHWM in /proc/self/status")
	return 0
}
