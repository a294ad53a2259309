package reliability

import (
	"context"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"amber/internal/testenv"
	"amber/internal/testenv/chaingen"
)

// injectAt runs each fault once the proxy has seen its request count,
// in order, until done; it returns when all ran or ctx ends.
type step struct {
	after int64 // requests since the start
	do    func()
}

func injectAt(ctx context.Context, px *testenv.FaultProxy, steps []step) {
	base := px.Requests()
	for _, s := range steps {
		if !px.WaitRequests(ctx, base+s.after) {
			return
		}
		s.do()
	}
}

// TestDaemonFaults puts the daemon behind a fault-injecting proxy: it
// fails requests with HTTP errors, answers slowly, and goes away and
// comes back, during a build and while a server follows the tip and a
// reorg. The builder retries and says so; the server keeps serving from
// its index while the daemon is away and catches up when it is back; both
// end with an uninterrupted run's index and answers.
func TestDaemonFaults(t *testing.T) {
	if testing.Short() {
		t.Skip("runs btcd and amber")
	}
	began := time.Now()
	for i := 0; rounds(i, began, faultShare/2); i++ {
		t.Run("round", daemonFaultRound)
		if t.Failed() {
			return
		}
	}
}

func daemonFaultRound(t *testing.T) {
	r := newRig(t, chaingen.Tiny, chaingen.Tiny.Blocks)
	d := r.daemon
	faults0 := d.Faults()

	// A build through faults.
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go injectAt(ctx, d, []step{
		{1, func() { d.FailNext(3, http.StatusServiceUnavailable) }},
		{6, func() { d.SetDelay(300 * time.Millisecond) }},
		{9, func() { d.Heal(); d.Stop(); time.AfterFunc(1500*time.Millisecond, d.Start) }},
		{12, func() { d.FailNext(2, http.StatusInternalServerError) }},
	})
	log := mustRun(t, 3*time.Minute, []string{"build", "--once"}, append(baseEnv(d.URL(), dir), "CACHE_MB=16")...)
	cancel()
	d.Heal()
	d.Start()
	for _, want := range []string{"daemon request failed; retrying", "daemon reachable", "index at daemon tip"} {
		if !strings.Contains(log, want) {
			t.Errorf("build log lacks %q:\n%s", want, tail(log, 20))
		}
	}
	sameDigest(t, "build through daemon faults", dir, r.reference())

	// A server follows through faults, and through a reorg of 5 blocks
	// made while the daemon is away.
	serveDir, addr := t.TempDir(), testenv.FreeAddr(t)
	p := start(t, []string{"serve"}, serveEnv(d.URL(), serveDir, addr)...)
	waitHeight(t, p, addr, chaingen.Tiny.Blocks, 2*time.Minute)
	fork := chaingen.Load(t, chaingen.Tiny.Branch(295, 25, 9))

	d.Stop()
	fork.Submit(t, r.btcd, 310)
	time.Sleep(1500 * time.Millisecond)
	// Still serving from the index while the daemon is away.
	waitHeight(t, p, addr, chaingen.Tiny.Blocks, 10*time.Second)
	d.Start()
	waitHeight(t, p, addr, 310, time.Minute)

	d.FailAll(http.StatusServiceUnavailable)
	fork.Submit(t, r.btcd, 315)
	time.Sleep(1500 * time.Millisecond)
	d.Heal()
	waitHeight(t, p, addr, 315, time.Minute)

	d.SetDelay(400 * time.Millisecond)
	fork.Submit(t, r.btcd, 320)
	waitHeight(t, p, addr, 320, time.Minute)
	d.Heal()
	for _, want := range []string{"daemon request failed; retrying", "daemon reachable", "chain reorganised"} {
		if !strings.Contains(p.log.String(), want) {
			t.Errorf("serve log lacks %q:\n%s", want, tail(p.log.String(), 20))
		}
	}

	ref, refAddr := r.reference(), testenv.FreeAddr(t)
	refServe := start(t, []string{"serve"}, serveEnv(r.btcd.URL(), ref, refAddr)...)
	waitHeight(t, refServe, refAddr, 320, 2*time.Minute)
	sameAnswers(t, "server through daemon faults", addr, refAddr, querySet(t, r))
	if err := p.stop(); err != nil {
		t.Fatal(err)
	}
	refServe.stop()
	sameDigest(t, "server through daemon faults", serveDir, ref)
	tally.fault("daemon: stopped, failing, slow", int(d.Faults()-faults0))
}

// TestBucketFaults stops MinIO in the middle of a snapshot upload and in
// the middle of a server's download. The upload fails with a clear error
// and leaves LATEST on a complete snapshot; the download is not mistaken
// for a corrupt snapshot; after MinIO is back a re-run publishes and a
// restarted server restores, and both indexes equal an uninterrupted
// build's.
func TestBucketFaults(t *testing.T) {
	if testing.Short() {
		t.Skip("runs btcd, MinIO and amber")
	}
	began := time.Now()
	for i := 0; rounds(i, began, faultShare/4); i++ {
		t.Run("round", bucketFaultRound)
		if t.Failed() {
			return
		}
	}
}

func bucketFaultRound(t *testing.T) {
	r := newRig(t, chaingen.Tiny, 200)
	objects := r.objects()
	snap := r.snapEnv(true)
	dir := t.TempDir()
	b := r.bucket.Requests()
	mustRun(t, 3*time.Minute, []string{"build", "--once"}, append(baseEnv(r.btcd.URL(), dir), snap...)...)
	pubReqs := r.bucket.Requests() - b
	first := latestComplete(t, objects)

	// MinIO stops in the middle of the next upload.
	r.chain.Submit(t, r.btcd, 260)
	p := start(t, []string{"build", "--once"}, append(baseEnv(r.btcd.URL(), dir), snap...)...)
	p.waitLog("index at daemon tip", 2*time.Minute)
	killAfterStop := make(chan struct{})
	go func() {
		defer close(killAfterStop)
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		r.bucket.WaitRequests(ctx, r.bucket.Requests()+max(1, pubReqs/2))
	}()
	<-killAfterStop
	r.minio.Stop()
	tally.fault("bucket: stopped mid-upload", 1)
	err := p.wait(3 * time.Minute)
	log := p.log.String()
	if err == nil && !strings.Contains(log, "snapshot published") {
		t.Fatalf("build exited 0 without publishing:\n%s", tail(log, 10))
	}
	if err != nil && !strings.Contains(log, "publish") {
		t.Errorf("a failed publish does not say so:\n%s", tail(log, 10))
	}
	t.Logf("with MinIO stopped mid-upload: %v; %s", err, tail(log, 1))
	r.minio.Restart()
	if m := latestComplete(t, objects); m == nil || m.Height < first.Height {
		t.Fatalf("LATEST after the outage: %v", m)
	}
	mustRun(t, 3*time.Minute, []string{"build", "--once"}, append(baseEnv(r.btcd.URL(), dir), snap...)...)
	published := latestComplete(t, objects)
	if published.Height != 260 {
		t.Fatalf("LATEST at %d after the re-run, want 260", published.Height)
	}
	ref := r.reference()
	sameDigest(t, "builder after a bucket outage", dir, ref)

	// MinIO stops in the middle of a server's download, slowed down so
	// that there is a middle.
	serveDir, addr := t.TempDir(), testenv.FreeAddr(t)
	env := append(serveEnv(r.btcd.URL(), serveDir, addr), snap...)
	r.bucket.SetDelay(200 * time.Millisecond)
	var files atomic.Int64
	r.bucket.OnRequest(func(req *http.Request) {
		if req.Method == http.MethodGet && strings.Contains(req.URL.Path, "/sst/") {
			files.Add(1)
		}
	})
	p = start(t, []string{"serve"}, env...)
	// Half the files requested, the others not yet.
	for deadline := time.Now().Add(time.Minute); files.Load() < int64(max(1, len(published.Files)/2)) && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
	}
	r.bucket.OnRequest(nil)
	r.minio.Stop()
	tally.fault("bucket: stopped mid-download", 1)
	r.bucket.Heal()
	// The server retries with backoff instead of giving up the snapshot,
	// and finishes the restore itself once the bucket is back.
	p.waitLog("snapshot restore failed; retrying", 3*time.Minute)
	log = p.log.String()
	t.Logf("with MinIO stopped mid-download: %s", tail(log, 1))
	if strings.Contains(log, "syncing from genesis") {
		t.Fatalf("a bucket outage made the server give up the snapshot and sync from genesis:\n%s", tail(log, 10))
	}
	if !strings.Contains(log, "retry when the bucket is reachable") {
		t.Errorf("the log does not say the bucket failed:\n%s", tail(log, 10))
	}
	r.minio.Restart()
	waitHeight(t, p, addr, 260, 3*time.Minute)
	if !strings.Contains(p.log.String(), "restored snapshot") {
		t.Errorf("the server did not restore the snapshot after the outage:\n%s", tail(p.log.String(), 10))
	}
	refAddr := testenv.FreeAddr(t)
	refServe := start(t, []string{"serve"}, serveEnv(r.btcd.URL(), ref, refAddr)...)
	waitHeight(t, refServe, refAddr, 260, 2*time.Minute)
	sameAnswers(t, "server after a bucket outage", addr, refAddr, querySet(t, r))
	p.stop()
	refServe.stop()
	sameDigest(t, "server after a bucket outage", serveDir, ref)
}

// TestDiskFull runs a build whose DB directory is a small tmpfs. It must
// fail with a clear message, and after the filesystem grows a re-run must
// finish with an uninterrupted build's index: nothing corrupted.
func TestDiskFull(t *testing.T) {
	if testing.Short() {
		t.Skip("runs btcd and amber")
	}
	if os.Getuid() != 0 {
		t.Skip("needs root to mount a small tmpfs")
	}
	mnt := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=128k", "tmpfs", mnt).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs here: %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", mnt).Run() })

	r := newRig(t, chaingen.Tiny, chaingen.Tiny.Blocks)
	dir := mnt + "/db"
	p := start(t, []string{"build", "--once"}, append(baseEnv(r.btcd.URL(), dir), "CACHE_MB=16")...)
	err := p.wait(3 * time.Minute)
	log := p.log.String()
	tally.fault("disk full", 1)
	if err == nil {
		t.Fatalf("a build on a full disk succeeded:\n%s", tail(log, 10))
	}
	// Pebble cannot go on after a failed write (the process ends), but
	// the log must say what happened and what to do first.
	i := strings.Index(log, "disk full: ")
	if i < 0 || !strings.Contains(log[i:], "no space left on device") {
		t.Errorf("a build on a full disk does not say so:\n%s", tail(log, 40))
	} else {
		t.Logf("on a full disk: %v; %s", err, strings.SplitN(log[i:], "\n", 2)[0])
	}
	if hasIndex(dir) {
		t.Logf("the full disk's index reopens at %d", tipOf(t, dir).Height)
	}

	if out, err := exec.Command("mount", "-o", "remount,size=64m", mnt).CombinedOutput(); err != nil {
		t.Fatalf("grow the tmpfs: %v %s", err, out)
	}
	mustRun(t, 3*time.Minute, []string{"build", "--once"}, append(baseEnv(r.btcd.URL(), dir), "CACHE_MB=16")...)
	sameDigest(t, "build after a full disk", dir, r.reference())
}
