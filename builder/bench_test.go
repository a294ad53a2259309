package builder_test

import (
	"bytes"
	"context"
	"testing"
	"time"

	"amber/internal/chain"
	"amber/internal/chainsync"
	"amber/internal/config"
	"amber/internal/daemon"
	"amber/internal/index"
	"amber/internal/store"
	"amber/internal/testenv"
	"amber/internal/testenv/chaingen"
	"amber/snapshot"
	"amber/snapshot/objstore/open"
)

// BenchmarkSync measures, on the Small generated chain and in one run, the
// three rates that matter: parsing the raw blocks alone (the physical
// limit), indexing them from memory with no daemon, and a full sync from
// btcd over JSON-RPC. Machines here are noisy, so the figures to compare
// are the ratios, reported beside the rates.
func BenchmarkSync(b *testing.B) {
	c := chaingen.Load(b, chaingen.Small)
	net, _ := chain.Lookup("Bitcoin", "regtest")
	var gbuf bytes.Buffer
	if err := net.Params.GenesisBlock.Serialize(&gbuf); err != nil {
		b.Fatal(err)
	}
	raw := append([][]byte{gbuf.Bytes()}, c.Blocks...)
	txs := float64(c.Txs() + c.Height())
	blocks := float64(len(raw))

	node := testenv.StartBtcd(b, testenv.BtcdOptions{})
	c.Submit(b, node, c.Height())
	urls, err := config.ParseDaemonURLs(node.URL())
	if err != nil {
		b.Fatal(err)
	}

	var parseT, memT, btcdT time.Duration
	iters := 0
	for b.Loop() {
		iters++
		start := time.Now()
		for _, r := range raw {
			if _, err := chain.ParseBlock(r); err != nil {
				b.Fatal(err)
			}
		}
		parseT += time.Since(start)

		mem, err := chainsync.NewMemorySource(raw)
		if err != nil {
			b.Fatal(err)
		}
		memT += timeSync(b, net, mem)

		dc, err := daemon.New(urls, daemon.Options{})
		if err != nil {
			b.Fatal(err)
		}
		btcdT += timeSync(b, net, chainsync.DaemonSource{C: dc})
	}
	n := float64(iters)
	rate := func(d time.Duration) float64 { return blocks * n / d.Seconds() }
	b.ReportMetric(rate(parseT), "parse-blocks/s")
	b.ReportMetric(rate(memT), "index-blocks/s")
	b.ReportMetric(txs*n/memT.Seconds(), "index-tx/s")
	b.ReportMetric(rate(btcdT), "btcd-blocks/s")
	b.ReportMetric(txs*n/btcdT.Seconds(), "btcd-tx/s")
	b.ReportMetric(parseT.Seconds()/memT.Seconds(), "index/parse")
	b.ReportMetric(memT.Seconds()/btcdT.Seconds(), "btcd/index")
}

// timeSync indexes src into a fresh on-disk store and returns the time.
func timeSync(b *testing.B, net *chain.Network, src chainsync.Source) time.Duration {
	b.Helper()
	db, err := store.Open(b.TempDir(), store.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	ix, err := index.Open(db, net, index.Options{})
	if err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	if _, err := chainsync.New(ix, src, chainsync.Options{}).SyncToTip(context.Background()); err != nil {
		b.Fatal(err)
	}
	return time.Since(start)
}

// BenchmarkBootstrap measures, in one run on the Small chain, a server
// node's bootstrap from a MinIO snapshot (download, verify, open, catch
// up with btcd) against a full sync of the same chain from btcd, and
// reports the ratio.
func BenchmarkBootstrap(b *testing.B) {
	c := chaingen.Load(b, chaingen.Small)
	net, _ := chain.Lookup("Bitcoin", "regtest")
	node := testenv.StartBtcd(b, testenv.BtcdOptions{})
	c.Submit(b, node, c.Height())
	urls, err := config.ParseDaemonURLs(node.URL())
	if err != nil {
		b.Fatal(err)
	}
	dc, err := daemon.New(urls, daemon.Options{})
	if err != nil {
		b.Fatal(err)
	}
	m := testenv.StartMinio(b, testenv.MinioOptions{})
	m.CreateBucket("amber")
	ctx := context.Background()
	bucket, err := open.Open(ctx, "minio://"+m.Endpoint+"/amber/bench?secure=false", open.Options{Getenv: func(k string) string {
		return map[string]string{"MINIO_ACCESS_KEY": m.AccessKey, "MINIO_SECRET_KEY": m.SecretKey}[k]
	}})
	if err != nil {
		b.Fatal(err)
	}
	defer bucket.Close()
	// The builder's side, once: sync and publish.
	db, ix, err := index.OpenDir(b.TempDir(), 64<<20, net, index.Options{})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := chainsync.New(ix, chainsync.DaemonSource{C: dc}, chainsync.Options{}).SyncToTip(ctx); err != nil {
		b.Fatal(err)
	}
	man, err := snapshot.PublishDB(ctx, db, net, &snapshot.Publisher{Bucket: bucket}, nil)
	db.Close()
	if err != nil {
		b.Fatal(err)
	}

	var bootT, syncT time.Duration
	iters := 0
	for b.Loop() {
		iters++
		dir := b.TempDir() + "/db"
		start := time.Now()
		if _, err := snapshot.Bootstrap(ctx, bucket, dir, net, &snapshot.Restorer{}); err != nil {
			b.Fatal(err)
		}
		db, ix, err := index.OpenDir(dir, 64<<20, net, index.Options{})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := chainsync.New(ix, chainsync.DaemonSource{C: dc}, chainsync.Options{}).SyncToTip(ctx); err != nil {
			b.Fatal(err)
		}
		bootT += time.Since(start)
		db.Close()
		syncT += timeSync(b, net, chainsync.DaemonSource{C: dc})
	}
	n := float64(iters)
	b.ReportMetric(bootT.Seconds()/n, "bootstrap-s")
	b.ReportMetric(syncT.Seconds()/n, "fullsync-s")
	b.ReportMetric(bootT.Seconds()/syncT.Seconds(), "bootstrap/fullsync")
	b.ReportMetric(float64(man.Size())*n/bootT.Seconds()/(1<<20), "bootstrap-MiB/s")
}
