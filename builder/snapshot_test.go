package builder_test

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"amber/internal/testenv"
	"amber/internal/testenv/chaingen"
	"amber/snapshot"
)

// TestSnapshotToServer is the cloud path end to end with real processes:
// `amber build --once` indexes a generated chain and publishes a snapshot
// to MinIO; `amber serve` on an empty disk restores it, verifies it, and
// serves the chain; the restored index equals the builder's row for row.
func TestSnapshotToServer(t *testing.T) {
	if testing.Short() {
		t.Skip("runs btcd, MinIO and amber")
	}
	r := newRig(t, chaingen.Tiny, chaingen.Tiny.Blocks, "regtest")
	c, b, snapEnv := r.chain, r.btcd, r.env

	// A signing key made by the CLI; servers trust its public key.
	keyFile := t.TempDir() + "/signing.key"
	out, err := exec.Command(amberBin, "snapshot", "keygen", keyFile).CombinedOutput()
	if err != nil {
		t.Fatalf("keygen: %v\n%s", err, out)
	}
	pubKey := strings.TrimSpace(string(out[strings.LastIndex(string(out), ": ")+2:]))

	builderDB := t.TempDir()
	log := mustBuild(t, builderDB, []string{b.URL()}, append(snapEnv, "SNAPSHOT_SIGNING_KEY_FILE="+keyFile)...)
	if !strings.Contains(log, "snapshot published") {
		t.Fatalf("no snapshot published:\n%s", tail(log, 15))
	}
	// The CLI lists it as signed and verifies every file in the bucket.
	cli := func(args ...string) string {
		cmd := exec.Command(amberBin, append([]string{"snapshot"}, args...)...)
		cmd.Env = append(os.Environ(), append(snapEnv, "NET=regtest", "SNAPSHOT_TRUSTED_KEYS="+pubKey)...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("amber snapshot %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	if list := cli("list"); !strings.Contains(list, fmt.Sprintf("%d ", c.Height())) || !strings.Contains(list, "true") {
		t.Errorf("snapshot list:\n%s", list)
	}
	if v := cli("verify", "latest"); !strings.Contains(v, "every sha256 matches") {
		t.Errorf("snapshot verify: %s", v)
	}
	if out, err := exec.Command(amberBin, "snapshot", "list").CombinedOutput(); err == nil {
		t.Errorf("snapshot list without SNAPSHOT_URL succeeded: %s", out)
	}

	serverDB := t.TempDir()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	// serve starts amber serve on serverDB, checks that it restored the
	// snapshot and answers at the chain's tip, and stops it.
	serve := func() string {
		t.Helper()
		cmd := exec.Command(amberBin, "serve")
		cmd.Env = append(os.Environ(), append(snapEnv, "NET=regtest", "DB_DIRECTORY="+serverDB, "DAEMON_URL="+b.URL(),
			"SERVICES=tcp://"+addr, "HTTP_ADDR=off", "SNAPSHOT_TRUSTED_KEYS="+pubKey)...)
		var slog testenv.Buffer
		cmd.Stderr = &slog
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		stop := sync.OnceFunc(func() {
			cmd.Process.Signal(os.Interrupt)
			cmd.Wait()
		})
		defer func() {
			stop()
			if t.Failed() {
				t.Logf("amber serve log:\n%s", tail(slog.String(), 30))
			}
		}()
		var conn net.Conn
		deadline := time.Now().Add(60 * time.Second)
		for conn == nil {
			if conn, err = net.Dial("tcp", addr); err != nil {
				if time.Now().After(deadline) {
					t.Fatalf("amber serve never listened: %v", err)
				}
				conn = nil
				time.Sleep(100 * time.Millisecond)
			}
		}
		defer conn.Close()
		if !strings.Contains(slog.String(), "restored snapshot") || !strings.Contains(slog.String(), fmt.Sprintf("height=%d", c.Height())) {
			t.Fatalf("server did not restore the snapshot at %d:\n%s", c.Height(), tail(slog.String(), 20))
		}
		fmt.Fprintf(conn, `{"jsonrpc":"2.0","id":1,"method":"server.version","params":["snap","1.4"]}`+"\n")
		fmt.Fprintf(conn, `{"jsonrpc":"2.0","id":2,"method":"blockchain.headers.subscribe","params":[]}`+"\n")
		sc := bufio.NewScanner(conn)
		sc.Scan()
		sc.Scan()
		if want := fmt.Sprintf(`"height":%d`, c.Height()); !strings.Contains(sc.Text(), want) {
			t.Errorf("headers.subscribe = %s, want %s", sc.Text(), want)
		}
		stop() // its log ends with the shutdown
		return slog.String()
	}
	log = serve()
	// The node served before its restored files were known to be on
	// disk; by the time it stopped they were, and it said so.
	if !strings.Contains(log, "restored snapshot on disk") || snapshot.Unsynced(serverDB) {
		t.Errorf("the restored index was not made durable (marker left: %v):\n%s", snapshot.Unsynced(serverDB), tail(log, 20))
	}
	if got, want := testenv.DigestDir(t, serverDB), testenv.DigestDir(t, builderDB); got != want {
		t.Fatalf("restored index digest %s, builder's %s", got, want)
	}

	// A node that died before then (here: marked again, and a power cut
	// tore a table) restores the snapshot again at its next start.
	if err := os.WriteFile(filepath.Join(serverDB, snapshot.UnsyncedMarker), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	ssts, _ := filepath.Glob(filepath.Join(serverDB, "*.sst"))
	if len(ssts) == 0 {
		t.Fatal("no tables in the restored index")
	}
	if err := os.Truncate(ssts[0], 10); err != nil {
		t.Fatal(err)
	}
	log = serve()
	if !strings.Contains(log, "restoring the snapshot again") || snapshot.Unsynced(serverDB) {
		t.Errorf("a marked index was not restored again (marker left: %v):\n%s", snapshot.Unsynced(serverDB), tail(log, 20))
	}
}

// TestUntrustedSnapshotRefused: a server that trusts another key does not
// use an unsigned snapshot; it says so and syncs from the daemon instead.
func TestUntrustedSnapshotRefused(t *testing.T) {
	if testing.Short() {
		t.Skip("runs btcd, MinIO and amber")
	}
	r := newRig(t, chaingen.Tiny, chaingen.Tiny.Blocks, "x")
	b, snapEnv := r.btcd, r.env
	mustBuild(t, t.TempDir(), []string{b.URL()}, snapEnv...) // unsigned
	out, _ := exec.Command(amberBin, "snapshot", "keygen", t.TempDir()+"/k").CombinedOutput()
	trusted := strings.TrimSpace(string(out[strings.LastIndex(string(out), ": ")+2:]))
	log := mustBuild(t, t.TempDir(), []string{b.URL()}, append(snapEnv, "SNAPSHOT_TRUSTED_KEYS="+trusted)...)
	if !strings.Contains(log, "no snapshot to resume from") || !strings.Contains(log, "index at daemon tip") {
		t.Fatalf("untrusted snapshot not refused, or no sync from genesis:\n%s", tail(log, 15))
	}
}

// logInt reads the last "key=N" from a log.
func logInt(t *testing.T, log, key string) int64 {
	t.Helper()
	i := strings.LastIndex(log, " "+key+"=")
	if i < 0 {
		t.Fatalf("no %s in log:\n%s", key, tail(log, 10))
	}
	var n int64
	fmt.Sscanf(log[i+len(key)+2:], "%d", &n)
	return n
}

// TestSnapshotIncrementalAndReorg: a second publish 100 blocks later
// uploads only what changed; then the daemon reorganises 10 blocks below
// the newest snapshot, and a server bootstrapping from it unwinds them
// with the undo records and ends exactly where a fresh sync of the
// winning branch ends.
func TestSnapshotIncrementalAndReorg(t *testing.T) {
	if testing.Short() {
		t.Skip("runs btcd, Bitcoin Core, MinIO and amber")
	}
	for _, d := range daemons {
		t.Run(d, func(t *testing.T) { testSnapshotIncrementalAndReorg(t, d) })
	}
}

func testSnapshotIncrementalAndReorg(t *testing.T, daemon string) {
	r := newRigOn(t, chaingen.Tiny, 200, "inc", daemon)
	c, b, snapEnv := r.chain, r.btcd, r.env

	builderDB := t.TempDir()
	first := mustBuild(t, builderDB, []string{b.URL()}, snapEnv...)
	c.Submit(t, b, 300)
	second := mustBuild(t, builderDB, []string{b.URL()}, snapEnv...)
	up1, up2 := logInt(t, first, "uploaded_bytes"), logInt(t, second, "uploaded_bytes")
	total2 := logInt(t, second, "total_bytes")
	t.Logf("first publish uploaded %d bytes; 100 blocks later %d of %d", up1, up2, total2)
	if logInt(t, second, "skipped") == 0 || up2 >= total2 {
		t.Errorf("second publish re-uploaded everything: %d of %d bytes", up2, total2)
	}

	// The daemon switches to a branch forking 10 blocks below the
	// snapshot's tip (300).
	fork := chaingen.Load(t, chaingen.Tiny.Branch(290, 15, 7))
	fork.Submit(t, b, fork.Height())
	if h := len(chainBlocks(t, b)) - 1; h != 305 {
		t.Fatalf("%s at %d after the branch, want 305", daemon, h)
	}
	serverDB := t.TempDir()
	out := mustBuild(t, serverDB, []string{b.URL()}, snapEnv...) // bootstrap from the snapshot at 300, then catch up
	if !strings.Contains(out, "resumed from snapshot") || !strings.Contains(out, "chain reorganised") {
		t.Fatalf("no bootstrap and reorg in the log:\n%s", tail(out, 20))
	}
	fresh := t.TempDir()
	mustBuild(t, fresh, []string{b.URL()})
	if got, want := testenv.DigestDir(t, serverDB), testenv.DigestDir(t, fresh); got != want {
		t.Fatalf("bootstrapped-and-reorganised index %s, fresh sync %s", got, want)
	}
}

// TestPublishEveryBlocks: a following builder publishes again once
// SNAPSHOT_INTERVAL blocks have arrived.
func TestPublishEveryBlocks(t *testing.T) {
	if testing.Short() {
		t.Skip("runs btcd, MinIO and amber")
	}
	r := newRig(t, chaingen.Tiny, 250, "every")
	c, b := r.chain, r.btcd
	cmd := exec.Command(amberBin, "build")
	cmd.Env = append(append(os.Environ(), r.env...), "NET=regtest", "DB_DIRECTORY="+t.TempDir(), "DAEMON_URL="+b.URL(), "HTTP_ADDR=off",
		"DAEMON_POLL_INTERVAL=100ms", "SNAPSHOT_INTERVAL=20 blocks")
	var log testenv.Buffer
	cmd.Stderr = &log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Signal(os.Interrupt); cmd.Wait() }()
	waitLog := func(want string) {
		t.Helper()
		deadline := time.Now().Add(60 * time.Second)
		for !strings.Contains(log.String(), want) {
			if time.Now().After(deadline) {
				t.Fatalf("no %q in the log:\n%s", want, tail(log.String(), 15))
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	waitLog("height=250 files")
	c.Submit(t, b, 260) // fewer than 20 new blocks: no publish
	time.Sleep(2500 * time.Millisecond)
	if strings.Count(log.String(), "snapshot published") != 1 {
		t.Fatalf("published before 20 new blocks:\n%s", tail(log.String(), 10))
	}
	c.Submit(t, b, 275)
	waitLog("height=275 files")
}

// rig is a btcd holding part of a generated chain, and a MinIO bucket
// with the environment that points amber at it.
type rig struct {
	chain *chaingen.Chain
	btcd  testenv.Node // btcd, or Bitcoin Core for newRigOn(..., "core")
	minio *testenv.Minio
	env   []string // SNAPSHOT_URL and credentials
}

func newRig(t *testing.T, spec chaingen.Spec, upTo int, prefix string) *rig {
	t.Helper()
	return newRigOn(t, spec, upTo, prefix, "btcd")
}

// newRigOn is newRig on the named daemon, "btcd" or "core".
func newRigOn(t *testing.T, spec chaingen.Spec, upTo int, prefix, daemon string) *rig {
	t.Helper()
	c := chaingen.Load(t, spec)
	var b testenv.Node
	if daemon == "core" {
		b = testenv.StartBitcoind(t, testenv.BitcoindOptions{OldTip: true})
	} else {
		b = testenv.StartBtcd(t, testenv.BtcdOptions{})
	}
	c.Submit(t, b, upTo)
	m := testenv.StartMinio(t, testenv.MinioOptions{})
	m.CreateBucket("amber")
	return &rig{chain: c, btcd: b, minio: m, env: []string{
		"SNAPSHOT_URL=minio://" + m.Endpoint + "/amber/" + prefix + "?secure=false",
		"MINIO_ACCESS_KEY=" + m.AccessKey, "MINIO_SECRET_KEY=" + m.SecretKey,
	}}
}
