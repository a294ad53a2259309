package builder_test

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"amber/internal/testenv"
	"amber/internal/testenv/chaingen"
)

// BenchmarkBuildRSS runs the real `amber build --once` against btcd at
// several CACHE_MB values and reports its peak RSS, the overhead above
// CACHE_MB, its wall time and its CPU time. AMBER_BENCH_CHAIN=peer310k
// uses the side-by-side chain (10,000 blocks, about 310,000 transactions;
// replaying it into btcd takes minutes), otherwise the Small workload.
// AMBER_BENCH_CACHES lists the CACHE_MB values (default "16,64,256,1200").
// AMBER_BENCH_DAEMON=core feeds it from Bitcoin Core (REST on) instead.
func BenchmarkBuildRSS(b *testing.B) {
	spec := chaingen.Small
	if os.Getenv("AMBER_BENCH_CHAIN") == "peer310k" {
		spec = chaingen.Spec{Name: "peer310k", Seed: 7, Blocks: 10_000, Txs: 300_000, BusyScripts: 8}
	}
	caches := "16,64,256,1200"
	if v := os.Getenv("AMBER_BENCH_CACHES"); v != "" {
		caches = v
	}
	c := chaingen.Load(b, spec)
	var node testenv.Node
	if os.Getenv("AMBER_BENCH_DAEMON") == "core" {
		node = testenv.StartBitcoind(b, testenv.BitcoindOptions{OldTip: true})
	} else {
		node = testenv.StartBtcd(b, testenv.BtcdOptions{})
	}
	c.Submit(b, node, c.Height())
	txs := float64(c.Txs() + c.Height() + 1)
	for _, mb := range strings.Split(caches, ",") {
		b.Run("CACHE_MB="+mb, func(b *testing.B) {
			var rss, wall, cpu float64
			for b.Loop() {
				dir := b.TempDir()
				cmd := exec.Command(amberBin, "build", "--once")
				cmd.Env = append(os.Environ(), "NET=regtest", "DB_DIRECTORY="+dir, "DAEMON_URL="+node.URL(),
					"HTTP_ADDR=off", "CACHE_MB="+mb)
				var stderr bytes.Buffer
				cmd.Stderr = &stderr
				start := time.Now()
				if err := cmd.Run(); err != nil {
					b.Fatalf("amber build: %v\n%s", err, tail(stderr.String(), 20))
				}
				wall += time.Since(start).Seconds()
				ru := cmd.ProcessState.SysUsage().(*syscall.Rusage)
				rss = max(rss, float64(ru.Maxrss)/1024) // KiB on Linux
				cpu += time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
			}
			n := float64(b.N)
			var cacheMB float64
			fmt.Sscan(mb, &cacheMB)
			b.ReportMetric(rss, "peak-rss-MiB")
			b.ReportMetric(rss-cacheMB, "rss-over-cache-MiB")
			b.ReportMetric(txs*n/wall, "tx/s")
			b.ReportMetric(txs*n/cpu, "tx/cpu-s")
		})
	}
}
