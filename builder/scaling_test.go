package builder_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"amber/internal/chain"
	"amber/internal/chainsync"
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
// publishing a snapshot), the SST bytes per transaction. The block file is
// kept in the repository's bench cache, so later runs skip generating it.
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
	net, _ := chain.Lookup("Bitcoin", "regtest")
	path := mainnetFile(b, chaingen.MainnetSpec{Seed: seed, Txs: int(points[len(points)-1])})
	bf, err := chaingen.OpenBlockFile(path, net)
	if err != nil {
		b.Fatal(err)
	}
	defer bf.Close()
	st, _ := os.Stat(path)
	b.Logf("block file %s: %d blocks, %d transactions, %d bytes", filepath.Base(path), bf.Height(), bf.TxsTo(bf.Height()), st.Size())

	for b.Loop() {
		dir := b.TempDir()
		db, err := store.Open(dir, store.Options{})
		if err != nil {
			b.Fatal(err)
		}
		ix, err := index.Open(db, net, index.Options{})
		if err != nil {
			b.Fatal(err)
		}
		var prevTxs int64
		var prevM store.Metrics
		for i, p := range points {
			tip := bf.HeightForTxs(p)
			// The generator's freed heap must not count in the peak.
			debug.FreeOSMemory()
			resetPeakRSS(b)
			cpu0 := cpuTime(b)
			start := time.Now()
			got, err := chainsync.New(ix, bf.Source(tip), chainsync.Options{}).SyncToTip(context.Background())
			if err != nil {
				b.Fatal(err)
			}
			took := time.Since(start)
			cpu := cpuTime(b) - cpu0
			rss := peakRSS(b)
			// The flush a checkpoint makes anyway, so that the segment's
			// rows count as flushed bytes.
			if err := db.Flush(); err != nil {
				b.Fatal(err)
			}
			m := db.Metrics()
			flushed := float64(m.FlushedBytes - prevM.FlushedBytes)
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
			b.ReportMetric(wamp, label+"-write-amp")
			for _, ps := range size.prefixes {
				if ps.Name == "spend index" || ps.Name == "history" || ps.Name == "undo" {
					b.ReportMetric(float64(ps.SSTBytes)/float64(txs), label+"-sst-"+strings.ReplaceAll(ps.Name, " ", "-")+"-bytes/tx")
				}
			}
			b.Logf("segment %d to %s (height %d, %d tx): %.0f tx/s over %s using %s of CPU, peak RSS %d MiB, write amplification %.2f; full compaction %s, SST %d bytes, %.1f bytes/tx",
				i+1, label, got.Height, txs, rate, took.Round(time.Second), cpu.Round(time.Second), rss>>20, wamp, compactT.Round(time.Second), size.sstBytes, float64(size.sstBytes)/float64(txs))
			for _, ps := range size.prefixes {
				b.Logf("  %-16s %12d SST bytes, %.1f per tx", ps.Name, ps.SSTBytes, float64(ps.SSTBytes)/float64(txs))
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
			b.Logf("generating %s: %d of %d transactions, %.0f tx/s", filepath.Base(path), s.Txs, spec.Txs, float64(s.Txs)/time.Since(start).Seconds())
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
	b.Logf("generated %s in %s: %+v", filepath.Base(path), time.Since(start).Round(time.Second), stats)
	return path
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
