package reliability

import (
	"math/rand/v2"
	"net/http"
	"strings"
	"testing"
	"time"

	"amber/internal/testenv"
	"amber/internal/testenv/chaingen"
)

// TestCrashes kills `amber build` and `amber serve` with SIGKILL at random
// moments of an initial sync, a snapshot publish, tip following, reorgs,
// a snapshot restore and the server's catch-up and tip following. Most
// kill points are a number of requests to the daemon or the bucket after
// which the process dies, drawn at random within what the moment needs,
// so that kills land inside their moment whatever the machine's speed. After
// each kill the index must reopen at a tip that did not go back and the
// bucket's LATEST must name a complete snapshot; at the end the builder's
// and the server's indexes must equal an uninterrupted build's row for
// row, and the server must answer a fixed query set exactly as a server
// on the uninterrupted index does.
func TestCrashes(t *testing.T) {
	if testing.Short() {
		t.Skip("runs btcd, MinIO and amber")
	}
	began := time.Now()
	// Every run has a round on each daemon; a soak alternates them.
	for i := 0; rounds(i, began, crashShare) || i < len(relDaemons); i++ {
		daemon := relDaemons[i%len(relDaemons)]
		perMoment := 1
		if soak.on {
			perMoment = 3
		}
		seed := uint64(time.Now().UnixNano())
		t.Logf("round %d on %s, seed %d", i+1, daemon, seed)
		t.Run("round-"+daemon, func(t *testing.T) { crashRound(t, rand.New(rand.NewPCG(seed, uint64(i))), perMoment, daemon) })
		if t.Failed() {
			return
		}
	}
}

func crashRound(t *testing.T, rng *rand.Rand, perMoment int, daemon string) {
	const first = 150
	r := newRigOn(t, chaingen.Tiny, first, daemon)
	d := r.daemon
	kills := 0
	killed := func(moment string, ok bool) {
		if ok {
			kills++
			tally.kill(moment)
		}
	}

	// How many daemon requests a sync from genesis makes here.
	base := d.Requests()
	ref0 := t.TempDir()
	mustRun(t, 5*time.Minute, []string{"build", "--once"}, baseEnv(d.URL(), ref0)...)
	syncReqs := d.Requests() - base
	t.Logf("a sync of %d blocks makes %d daemon requests", first, syncReqs)

	// Initial sync: each kill lands in a sync from genesis (twice as
	// many: it is the longest moment); the resumed sync must end with the
	// uninterrupted one's index.
	var dir string
	for range 2 * perMoment {
		dir = t.TempDir()
		p := start(t, []string{"build", "--once"}, append(baseEnv(d.URL(), dir), "CACHE_MB=16")...)
		killed("builder: initial sync", killAfterRequests(p, d, d.Requests(), randomAfter(rng, 1, syncReqs-1)))
		if hasIndex(dir) {
			tipOf(t, dir)
		}
		mustRun(t, 5*time.Minute, []string{"build", "--once"}, append(baseEnv(d.URL(), dir), "CACHE_MB=16")...)
		sameDigest(t, "initial sync after a kill", dir, ref0)
	}
	last := int32(-1)
	checkTip := func(what string) {
		t.Helper()
		tip := tipOf(t, dir)
		if tip.Height < last {
			t.Fatalf("%s: the tip went back from %d to %d", what, last, tip.Height)
		}
		last = tip.Height
	}

	// Snapshot publish: each run syncs 10 new blocks, then publishes;
	// the kill comes within the bucket requests of a publish.
	objects := r.objects()
	snap := r.snapEnv(true)
	height := first
	b := r.bucket.Requests()
	mustRun(t, 5*time.Minute, []string{"build", "--once"}, append(baseEnv(d.URL(), dir), snap...)...)
	pubReqs := r.bucket.Requests() - b
	latestComplete(t, objects)
	for range perMoment {
		height += 10
		r.chain.Submit(t, r.btcd, height)
		p := start(t, []string{"build", "--once"}, append(baseEnv(d.URL(), dir), snap...)...)
		p.waitLog("index at daemon tip", 2*time.Minute)
		killed("builder: snapshot publish", killAfterRequests(p, r.bucket, r.bucket.Requests(), randomAfter(rng, 1, pubReqs)))
		checkTip("kill during a publish")
		latestComplete(t, objects)
	}

	// Tip following: the builder follows, blocks arrive, it dies while
	// indexing them.
	follow := append(baseEnv(d.URL(), dir), "DAEMON_POLL_INTERVAL=100ms", "SNAPSHOT_INTERVAL=20 blocks")
	follow = append(follow, snap...)
	for height < 280 {
		p := start(t, []string{"build"}, follow...)
		p.waitLog("index at daemon tip", 2*time.Minute)
		height = min(height+25, 280)
		n := d.Requests()
		r.chain.Submit(t, r.btcd, height)
		killed("builder: tip following", killAfterRequests(p, d, n, randomAfter(rng, 1, 20)))
		checkTip("kill while following the tip")
		latestComplete(t, objects)
	}
	r.chain.Submit(t, r.btcd, r.chain.Height())

	// Reorgs: each branch forks lower and is longer than the last.
	var fork *chaingen.Chain
	for k := range perMoment {
		p := start(t, []string{"build"}, follow...)
		p.waitLog("index at daemon tip", 2*time.Minute)
		fork = chaingen.Load(t, chaingen.Tiny.Branch(290-5*k, 15+15*k+20, uint64(100+k)))
		n := d.Requests()
		fork.Submit(t, r.btcd, 305+10*k)
		killed("builder: reorg", killAfterRequests(p, d, n, randomAfter(rng, 1, 25)))
		last = -1 // a reorg may lower the tip
		checkTip("kill during a reorg")
		latestComplete(t, objects)
	}
	// The builder finishes; its index must be an uninterrupted build's.
	mustRun(t, 5*time.Minute, []string{"build", "--once"}, append(baseEnv(d.URL(), dir), snap...)...)
	published := latestComplete(t, objects)
	sameDigest(t, "builder after kills", dir, r.reference())

	// The server bootstraps from that snapshot while 10 more blocks
	// arrive: kills in the middle of the download (slowed, so that there
	// is a middle), then during the catch-up from the daemon.
	final := int(published.Height) + 10
	fork.Submit(t, r.btcd, final)
	serveDir, addr := t.TempDir(), testenv.FreeAddr(t)
	env := append(serveEnv(d.URL(), serveDir, addr), snap...)
	r.bucket.SetDelay(100 * time.Millisecond)
	for range perMoment {
		got := make(chan struct{}, 1)
		r.bucket.OnRequest(func(req *http.Request) {
			if strings.Contains(req.URL.Path, "/sst/") {
				select {
				case got <- struct{}{}:
				default:
				}
			}
		})
		p := start(t, []string{"serve"}, env...)
		select {
		case <-got:
			time.Sleep(time.Duration(rng.Int64N(int64(250 * time.Millisecond))))
			killed("server: snapshot restore", p.kill() && !hasIndex(serveDir))
		case <-time.After(time.Minute):
			t.Logf("no file download within a minute; log:\n%s", tail(p.log.String(), 5))
			p.kill()
		}
		r.bucket.OnRequest(nil)
	}
	r.bucket.Heal()
	d.SetDelay(20 * time.Millisecond)
	for range perMoment {
		p := start(t, []string{"serve"}, env...)
		for !strings.Contains(p.log.String(), "restored snapshot") && !strings.Contains(p.log.String(), "keeping the local index") && !p.exited() {
			time.Sleep(time.Millisecond)
		}
		time.Sleep(time.Duration(rng.Int64N(int64(200 * time.Millisecond))))
		killed("server: catch-up", p.kill())
		tipOf(t, serveDir)
	}
	d.Heal()
	// Tip following: blocks arrive while it serves.
	for range perMoment {
		p := start(t, []string{"serve"}, env...)
		waitHeight(t, p, addr, final, 2*time.Minute)
		final += 3
		fork.Submit(t, r.btcd, final)
		time.Sleep(time.Duration(rng.Int64N(int64(300 * time.Millisecond))))
		killed("server: tip following", p.kill())
		tipOf(t, serveDir)
	}
	p := start(t, []string{"serve"}, env...)
	waitHeight(t, p, addr, final, 2*time.Minute)

	ref, refAddr := r.reference(), testenv.FreeAddr(t)
	refServe := start(t, []string{"serve"}, serveEnv(r.btcd.URL(), ref, refAddr)...)
	waitHeight(t, refServe, refAddr, final, 2*time.Minute)
	sameAnswers(t, "server after kills", addr, refAddr, querySet(t, r))
	if err := p.stop(); err != nil {
		t.Fatalf("stop amber serve: %v", err)
	}
	if err := refServe.stop(); err != nil {
		t.Fatalf("stop the reference amber serve: %v", err)
	}
	sameDigest(t, "server after kills", serveDir, ref)
	t.Logf("%d kill points survived", kills)
	if kills < 3*perMoment {
		t.Errorf("only %d kills interrupted anything", kills)
	}
}
