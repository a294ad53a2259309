package builder_test

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"amber/internal/chain"
	"amber/internal/chainsync"
	"amber/internal/config"
	"amber/internal/daemon"
	"amber/internal/index"
	"amber/internal/store"
	"amber/internal/testenv"
	"amber/internal/testenv/chaingen"
	"amber/snapshot"
	"amber/snapshot/objstore"
	"amber/snapshot/objstore/open"
)

// BenchmarkBuilder runs the builder's benchmarks (Sync, Bootstrap, Serve,
// Publish) on the generated chain
// AMBER_BENCH_WORKLOAD names (Small by default), replayed once into one
// btcd that both share: replaying the Large chain takes minutes. Machines
// here are noisy, so every figure comes with a baseline measured in the
// same run, and the ratios are what to compare between runs.
func BenchmarkBuilder(b *testing.B) {
	spec, err := chaingen.Workload(os.Getenv)
	if err != nil {
		b.Fatal(err)
	}
	c := chaingen.Load(b, spec)
	publish := func(m *testenv.Minio) {
		b.Run("Publish", func(b *testing.B) {
			benchPublish(b, c, func(prefix string) objstore.Bucket {
				bucket, err := open.Open(context.Background(), "minio://"+m.Endpoint+"/amber/"+prefix+"?secure=false", open.Options{Getenv: func(k string) string {
					return map[string]string{"MINIO_ACCESS_KEY": m.AccessKey, "MINIO_SECRET_KEY": m.SecretKey}[k]
				}})
				if err != nil {
					b.Fatal(err)
				}
				b.Cleanup(func() { bucket.Close() })
				return bucket
			})
		})
	}
	if os.Getenv("AMBER_BENCH_PUBLISH_ONLY") != "" {
		// Publish indexes from memory and needs no daemon: skip replaying
		// the chain into one (minutes for the Large chain).
		m := testenv.StartMinio(b, testenv.MinioOptions{})
		m.CreateBucket("amber")
		publish(m)
		return
	}
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
	b.Run("Sync", func(b *testing.B) { benchSync(b, c, dc) })
	b.Run("Bootstrap", func(b *testing.B) { benchBootstrap(b, dc) })
	m := testenv.StartMinio(b, testenv.MinioOptions{})
	m.CreateBucket("amber")
	b.Run("Serve", func(b *testing.B) { benchServe(b, c, node, m) })
	publish(m)
}

// benchSync measures the three rates that matter: parsing the raw blocks
// alone (the physical limit), indexing them from a local block source
// (the generator's raw blocks, no daemon), and a full sync from btcd over
// JSON-RPC; and the size of the index per transaction against the raw
// chain's.
func benchSync(b *testing.B, c *chaingen.Chain, dc *daemon.Client) {
	net, _ := chain.Lookup("Bitcoin", "regtest")
	var gbuf bytes.Buffer
	if err := net.Params.GenesisBlock.Serialize(&gbuf); err != nil {
		b.Fatal(err)
	}
	raw := append([][]byte{gbuf.Bytes()}, c.Blocks...)
	var rawBytes int64
	for _, r := range raw {
		rawBytes += int64(len(r))
	}
	txs := float64(c.Txs() + len(raw)) // with the coinbases
	blocks := float64(len(raw))

	var parseT, memT, btcdT time.Duration
	var size indexSize
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
		took, _ := timeSync(b, net, mem)
		memT += took

		took, db := syncDB(b, net, chainsync.DaemonSource{C: dc}, b.TempDir())
		btcdT += took
		size = measureSize(b, db)
		if err := db.Close(); err != nil {
			b.Fatal(err)
		}
	}
	n := float64(iters)
	rate := func(d time.Duration) float64 { return blocks * n / d.Seconds() }
	b.ReportMetric(blocks, "blocks")
	b.ReportMetric(txs, "txs")
	b.ReportMetric(rate(parseT), "parse-blocks/s")
	b.ReportMetric(txs*n/parseT.Seconds(), "parse-tx/s")
	b.ReportMetric(rate(memT), "local-blocks/s")
	b.ReportMetric(txs*n/memT.Seconds(), "local-tx/s")
	b.ReportMetric(rate(btcdT), "btcd-blocks/s")
	b.ReportMetric(txs*n/btcdT.Seconds(), "btcd-tx/s")
	b.ReportMetric(parseT.Seconds()/memT.Seconds(), "local/parse")
	b.ReportMetric(parseT.Seconds()/btcdT.Seconds(), "btcd/parse")
	b.ReportMetric(float64(rawBytes)/txs, "raw-bytes/tx")
	size.report(b, txs, rawBytes)
}

// timeSync indexes src into a fresh on-disk store and returns the time
// and the size of the store's directory once closed.
func timeSync(b *testing.B, net *chain.Network, src chainsync.Source) (time.Duration, int64) {
	b.Helper()
	dir := b.TempDir()
	took, db := syncDB(b, net, src, dir)
	if err := db.Close(); err != nil {
		b.Fatal(err)
	}
	return took, dirSize(b, dir)
}

// syncDB indexes src into a fresh on-disk store in dir and returns the
// time it took and the open store.
func syncDB(b *testing.B, net *chain.Network, src chainsync.Source, dir string) (time.Duration, *store.DB) {
	b.Helper()
	db, err := store.Open(dir, store.Options{WriteMostly: true}) // as amber build's
	if err != nil {
		b.Fatal(err)
	}
	ix, err := index.Open(db, net, index.Options{})
	if err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	if _, err := chainsync.New(ix, src, chainsync.Options{}).SyncToTip(context.Background()); err != nil {
		b.Fatal(err)
	}
	return time.Since(start), db
}

// indexSize is an index's size on disk once flushed and fully compacted.
type indexSize struct {
	// sstBytes is the bytes of the .sst files in the DB's directory,
	// which must equal the live tables Pebble counts.
	sstBytes int64
	// prefixes is each kind of row's share of them.
	prefixes []index.PrefixSize
}

// measureSize flushes and fully compacts db, then measures its SSTs: the
// .sst files in its directory, checked against Pebble's live tables (so
// no obsolete file waiting for deletion is counted), and each prefix's
// share as Pebble estimates it.
func measureSize(b *testing.B, db *store.DB) indexSize {
	b.Helper()
	if err := db.Compact(context.Background()); err != nil {
		b.Fatal(err)
	}
	var s indexSize
	// Pebble deletes the tables a compaction replaced in the background:
	// wait until the directory holds only live ones.
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		files, err := store.ListFiles(db.Dir())
		if errors.Is(err, fs.ErrNotExist) && time.Now().Before(deadline) {
			continue // a table deleted between listing and stat
		}
		if err != nil {
			b.Fatal(err)
		}
		s.sstBytes = 0
		for _, f := range files {
			if strings.HasSuffix(f.Name, ".sst") {
				s.sstBytes += f.Size
			}
		}
		live := db.Metrics().TableBytes
		if live == s.sstBytes {
			break
		}
		if time.Now().After(deadline) {
			b.Fatalf("the directory holds %d bytes of .sst files, Pebble's live tables %d", s.sstBytes, live)
		}
	}
	if m := db.Metrics(); m.ReadAmp != 1 {
		b.Fatalf("after a full compaction the DB has %d tables over a read amplification of %d, want one level", m.Tables, m.ReadAmp)
	}
	var err error
	if s.prefixes, err = index.PrefixSizes(db); err != nil {
		b.Fatal(err)
	}
	return s
}

// report reports the SST bytes per transaction, in all and per prefix
// ("sst-<name>-bytes/tx", spaces in the name as dashes); the rest
// ("sst-rest-bytes/tx"): the index, filter and property blocks of tables
// that hold several prefixes, less the data blocks that straddle two
// prefixes and so count in both, which can make it negative; and the raw
// key and value bytes of the rows per transaction.
func (s indexSize) report(b *testing.B, txs float64, rawBytes int64) {
	b.ReportMetric(float64(s.sstBytes)/txs, "sst-bytes/tx")
	b.ReportMetric(float64(s.sstBytes)/float64(rawBytes), "sst/raw")
	b.ReportMetric(float64(s.sstBytes)/(1<<20), "sst-MiB")
	var counted, raw int64
	for _, p := range s.prefixes {
		name := strings.ReplaceAll(p.Name, " ", "-")
		b.ReportMetric(float64(p.SSTBytes)/txs, "sst-"+name+"-bytes/tx")
		counted += p.SSTBytes
		raw += p.KeyBytes + p.ValueBytes
		b.Logf("%-16s %10d rows %12d key bytes %12d value bytes %12d SST bytes (%.1f per tx)",
			p.Name, p.Rows, p.KeyBytes, p.ValueBytes, p.SSTBytes, float64(p.SSTBytes)/txs)
	}
	b.ReportMetric(float64(s.sstBytes-counted)/txs, "sst-rest-bytes/tx")
	b.ReportMetric(float64(raw)/txs, "kv-bytes/tx")
}

// dirSize returns the bytes of the regular files under dir.
func dirSize(b *testing.B, dir string) int64 {
	var n int64
	err := filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		fi, err := d.Info()
		n += fi.Size()
		return err
	})
	if err != nil {
		b.Fatal(err)
	}
	return n
}

// copyParallel is the snapshot restore's parallelism, which the plain
// copy baseline uses too.
const copyParallel = 8

// downloadSamples is how many verified restores and plain copies of the
// snapshot benchBootstrap times per iteration.
const downloadSamples = 5

// benchBootstrap measures a server node's bootstrap from a MinIO snapshot
// (download, verify, open, catch up with btcd) against a full sync of the
// same chain from btcd, and the snapshot download's throughput against a
// plain parallel minio-go copy of the same objects, downloadSamples
// times each.
func benchBootstrap(b *testing.B, dc *daemon.Client) {
	net, _ := chain.Lookup("Bitcoin", "regtest")
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
	mc, err := minio.New(m.Endpoint, &minio.Options{Creds: credentials.NewStaticV4(m.AccessKey, m.SecretKey, "")})
	if err != nil {
		b.Fatal(err)
	}
	// The builder's side, once: sync and publish, through the mirror as
	// amber build does.
	buildDir := filepath.Join(b.TempDir(), "db")
	db, ix, err := index.OpenDir(buildDir, 64<<20, net, index.Options{})
	if err != nil {
		b.Fatal(err)
	}
	mirror, err := snapshot.OpenMirror(db, nil)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := chainsync.New(ix, chainsync.DaemonSource{C: dc}, chainsync.Options{}).SyncToTip(ctx); err != nil {
		b.Fatal(err)
	}
	man, err := snapshot.PublishDB(ctx, db, net, &snapshot.Publisher{Bucket: bucket, Mirror: mirror}, nil)
	mirror.Close()
	db.Close()
	if err != nil {
		b.Fatal(err)
	}
	dbBytes := dirSize(b, buildDir)

	var bootT, restoreT, syncT, copyT time.Duration
	var copied int64
	iters, downloads := 0, 0
	for b.Loop() {
		iters++
		dir := b.TempDir() + "/db"
		start := time.Now()
		// As amber serve does: the restored files reach the disk while
		// the node opens and catches up.
		if _, err := snapshot.Bootstrap(ctx, bucket, dir, net, &snapshot.Restorer{Parallel: copyParallel, DeferSync: true}); err != nil {
			b.Fatal(err)
		}
		restoreT += time.Since(start)
		downloads++
		settled := make(chan error, 1)
		go func() { settled <- snapshot.Settle(dir) }()
		db, ix, err := index.OpenDir(dir, 64<<20, net, index.Options{})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := chainsync.New(ix, chainsync.DaemonSource{C: dc}, chainsync.Options{}).SyncToTip(ctx); err != nil {
			b.Fatal(err)
		}
		bootT += time.Since(start)
		db.Close()
		if err := <-settled; err != nil {
			b.Fatal(err)
		}
		took, _ := timeSync(b, net, chainsync.DaemonSource{C: dc})
		syncT += took

		// Download against plain copy, alternating, several times: one
		// pair of a few-MiB transfer is mostly noise on a shared machine.
		// The restore above is the first of the pairs.
		for i := range downloadSamples {
			if i > 0 {
				dir := b.TempDir() + "/db"
				start := time.Now()
				if _, err := snapshot.Bootstrap(ctx, bucket, dir, net, &snapshot.Restorer{Parallel: copyParallel, DeferSync: true}); err != nil {
					b.Fatal(err)
				}
				restoreT += time.Since(start)
				downloads++
				// Untimed, as for the copy: each sample starts with
				// no dirty pages of the one before.
				if err := snapshot.Settle(dir); err != nil {
					b.Fatal(err)
				}
			}
			took, n := plainCopy(b, mc, "amber", "bench/"+snapshot.SchemaPrefix(index.SchemaVersion), b.TempDir())
			copyT += took
			copied = n
			syscall.Sync()
		}
	}
	// Files with the same content share one object.
	objects := map[string]int64{}
	for _, f := range man.Files {
		objects[f.Key] = f.Size
	}
	var want int64
	for _, size := range objects {
		want += size
	}
	if copied != want {
		b.Fatalf("the plain copy fetched %d bytes, the snapshot's objects hold %d", copied, want)
	}
	n, d := float64(iters), float64(downloads)
	mib := float64(want) / (1 << 20)
	b.ReportMetric(bootT.Seconds()/n, "bootstrap-s")
	b.ReportMetric(syncT.Seconds()/n, "fullsync-s")
	b.ReportMetric(bootT.Seconds()/syncT.Seconds(), "bootstrap/fullsync")
	b.ReportMetric(mib*d/restoreT.Seconds(), "restore-MiB/s")
	b.ReportMetric(mib*d/copyT.Seconds(), "copy-MiB/s")
	b.ReportMetric(copyT.Seconds()/restoreT.Seconds(), "restore/copy")
	b.ReportMetric(float64(man.Size())/(1<<20), "snapshot-MiB")
	b.ReportMetric(float64(len(man.Files)), "snapshot-files")
	b.ReportMetric(float64(dbBytes)/(1<<20), "db-MiB")
}

// plainCopy downloads every object under prefix into dir with minio-go,
// copyParallel at a time, and returns the time and the bytes copied.
func plainCopy(b *testing.B, mc *minio.Client, bucket, prefix, dir string) (time.Duration, int64) {
	b.Helper()
	ctx := context.Background()
	var keys []string
	var total int64
	start := time.Now()
	for obj := range mc.ListObjects(ctx, bucket, minio.ListObjectsOptions{Prefix: prefix + snapshot.ObjectPrefix, Recursive: true}) {
		if obj.Err != nil {
			b.Fatal(obj.Err)
		}
		keys = append(keys, obj.Key)
		total += obj.Size
	}
	sem := make(chan struct{}, copyParallel)
	var wg sync.WaitGroup
	errs := make([]error, len(keys))
	for i, key := range keys {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			errs[i] = mc.FGetObject(ctx, bucket, key, filepath.Join(dir, filepath.Base(key)), minio.GetObjectOptions{})
		})
	}
	wg.Wait()
	took := time.Since(start)
	for _, err := range errs {
		if err != nil {
			b.Fatalf("plain copy: %v", err)
		}
	}
	return took, total
}

// BenchmarkIndexSize indexes the AMBER_BENCH_WORKLOAD chain from a local
// block source (no daemon) and reports the index's size once flushed and
// fully compacted, in all and per key prefix: the size rows of
// BenchmarkBuilder/Sync without its daemon, for tuning the layout.
func BenchmarkIndexSize(b *testing.B) {
	spec, err := chaingen.Workload(os.Getenv)
	if err != nil {
		b.Fatal(err)
	}
	c := chaingen.Load(b, spec)
	net, _ := chain.Lookup("Bitcoin", "regtest")
	var gbuf bytes.Buffer
	if err := net.Params.GenesisBlock.Serialize(&gbuf); err != nil {
		b.Fatal(err)
	}
	raw := append([][]byte{gbuf.Bytes()}, c.Blocks...)
	var rawBytes int64
	for _, r := range raw {
		rawBytes += int64(len(r))
	}
	txs := float64(c.Txs() + len(raw))
	var size indexSize
	var syncT time.Duration
	for b.Loop() {
		mem, err := chainsync.NewMemorySource(raw)
		if err != nil {
			b.Fatal(err)
		}
		took, db := syncDB(b, net, mem, b.TempDir())
		syncT += took
		size = measureSize(b, db)
		if err := db.Close(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(txs, "txs")
	b.ReportMetric(txs*float64(b.N)/syncT.Seconds(), "local-tx/s")
	b.ReportMetric(float64(rawBytes)/txs, "raw-bytes/tx")
	size.report(b, txs, rawBytes)
}
