package builder_test

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"amber/internal/chain"
	"amber/internal/chainsync"
	"amber/internal/index"
	"amber/internal/testenv"
	"amber/internal/testenv/chaingen"
	"amber/snapshot"
	"amber/snapshot/objstore"
	"amber/snapshot/objstore/open"
)

// serveSamples is how many times each way to ready is timed.
const serveSamples = 3

// benchServe times the real `amber serve` from an empty DB_DIRECTORY to
// /readyz green: with SNAPSHOT_URL on MinIO holding a snapshot taken 1% of
// the chain's blocks before btcd's tip (download, verify, open, catch up
// those blocks from btcd, first mempool refresh, listeners up), against
// the same binary with no snapshot (a full sync from btcd). It reports
// the means over serveSamples runs of each, and the snapshot's size
// against the same DB fully compacted.
func benchServe(b *testing.B, c *chaingen.Chain, node *testenv.Btcd, m *testenv.Minio) {
	ctx := context.Background()
	net0, _ := chain.Lookup("Bitcoin", "regtest")
	var gbuf bytes.Buffer
	if err := net0.Params.GenesisBlock.Serialize(&gbuf); err != nil {
		b.Fatal(err)
	}
	raw := append([][]byte{gbuf.Bytes()}, c.Blocks...)
	behind := max(1, len(raw)/100)
	url := "minio://" + m.Endpoint + "/amber/serve?secure=false"
	creds := map[string]string{"MINIO_ACCESS_KEY": m.AccessKey, "MINIO_SECRET_KEY": m.SecretKey}
	bucket, err := open.Open(ctx, url, open.Options{Getenv: func(k string) string { return creds[k] }})
	if err != nil {
		b.Fatal(err)
	}
	defer bucket.Close()

	// The builder's side, once, as amber build publishes: through its
	// mirror, first at 90% of the chain short of the last 1%, then five
	// times as it grows to there, so the snapshot has the layers of
	// incremental publishes.
	db, ix, err := index.OpenDir(filepath.Join(b.TempDir(), "db"), 256<<20, net0, index.Options{})
	if err != nil {
		b.Fatal(err)
	}
	mirror, err := snapshot.OpenMirror(db, nil)
	if err != nil {
		b.Fatal(err)
	}
	pub := &snapshot.Publisher{Bucket: bucket, Mirror: mirror}
	end := len(raw) - behind
	var man *snapshot.Manifest
	for step := 5; step >= 0; step-- {
		src, err := chainsync.NewMemorySource(raw[:end-step*end/50])
		if err != nil {
			b.Fatal(err)
		}
		if _, err := chainsync.New(ix, src, chainsync.Options{}).SyncToTip(ctx); err != nil {
			b.Fatal(err)
		}
		if man, err = snapshot.PublishDB(ctx, db, net0, pub, nil); err != nil {
			b.Fatal(err)
		}
	}
	if err := mirror.Close(); err != nil {
		b.Fatal(err)
	}
	compacted := compactedSize(b, db, filepath.Join(b.TempDir(), "compacted"))
	db.Close()

	env := []string{"NET=regtest", "DAEMON_URL=" + node.URL(), "PEER_DISCOVERY=off", "LOG_LEVEL=warn",
		"MINIO_ACCESS_KEY=" + m.AccessKey, "MINIO_SECRET_KEY=" + m.SecretKey}
	var bootT, syncT time.Duration
	for b.Loop() {
		for range serveSamples {
			bootT += timeServe(b, append(env, "SNAPSHOT_URL="+url), c.Height())
			syncT += timeServe(b, env, c.Height())
		}
	}
	n := float64(b.N * serveSamples)
	b.ReportMetric(bootT.Seconds()/n, "serve-snapshot-s")
	b.ReportMetric(syncT.Seconds()/n, "serve-fullsync-s")
	b.ReportMetric(bootT.Seconds()/syncT.Seconds(), "serve-snapshot/fullsync")
	b.ReportMetric(float64(behind), "catchup-blocks")
	b.ReportMetric(float64(man.Size())/(1<<20), "snapshot-MiB")
	b.ReportMetric(float64(compacted)/(1<<20), "compacted-MiB")
	b.ReportMetric(float64(man.Size())/float64(compacted), "snapshot/compacted")
}

// timeServe starts `amber serve` on an empty DB_DIRECTORY and returns the
// time until /readyz answers 200 (ready at the daemon's tip, height).
func timeServe(b *testing.B, env []string, height int) time.Duration {
	b.Helper()
	addrs := make([]string, 2)
	for i := range addrs {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		addrs[i] = ln.Addr().String()
		ln.Close()
	}
	cmd := exec.Command(amberBin, "serve")
	cmd.Env = append(os.Environ(), append(env, "DB_DIRECTORY="+filepath.Join(b.TempDir(), "db"),
		"SERVICES=tcp://"+addrs[0], "HTTP_ADDR="+addrs[1])...)
	var log testenv.Buffer
	cmd.Stderr = &log
	start := time.Now()
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	hc := &http.Client{Timeout: time.Second}
	for {
		resp, err := hc.Get("http://" + addrs[1] + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return time.Since(start)
			}
		}
		if time.Since(start) > 30*time.Minute || cmd.ProcessState != nil {
			b.Fatalf("amber serve not ready at height %d:\n%s", height, tail(log.String(), 20))
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// benchPublish reports what publishing costs as the chain grows: the
// snapshot against the same DB fully compacted, and the bytes each
// publish after 1% more blocks uploads against the snapshot's size
// (growPublish). Rows: the largest snapshot/compacted ratio, and the
// mean and largest upload share over all publishes, and over the last
// ten (the largest DB).
func benchPublish(b *testing.B, c *chaingen.Chain, bucket func(prefix string) objstore.Bucket) {
	var steps []publishStep
	i := 0
	for b.Loop() {
		i++
		steps = growPublish(b, c, bucket(fmt.Sprintf("publish%d", i)))
	}
	var worst, mean, top, last10 float64
	incr := steps[1:] // the first publish uploads everything
	for j, s := range incr {
		share := float64(s.upload) / float64(s.snapshot)
		mean += share / float64(len(incr))
		top = max(top, share)
		if j >= len(incr)-10 {
			last10 += share / float64(min(10, len(incr)))
		}
	}
	rebuilds := 0
	for _, s := range steps {
		worst = max(worst, float64(s.snapshot)/float64(s.compacted))
		if s.rebuilt {
			rebuilds++
		}
		b.Logf("publish at %d: snapshot %d bytes (compacted %d, x%.3f), uploaded %d (%.1f%%)",
			s.height, s.snapshot, s.compacted, float64(s.snapshot)/float64(s.compacted), s.upload,
			100*float64(s.upload)/float64(s.snapshot))
	}
	b.ReportMetric(float64(len(incr)), "publishes")
	b.ReportMetric(worst, "max-snapshot/compacted")
	b.ReportMetric(mean, "upload/snapshot-mean")
	b.ReportMetric(top, "upload/snapshot-max")
	b.ReportMetric(last10, "upload/snapshot-last10")
	b.ReportMetric(float64(rebuilds), "whole-uploads")
}
