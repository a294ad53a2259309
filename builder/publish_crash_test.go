package builder_test

import (
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"amber/internal/chain"
	"amber/internal/index"
	"amber/internal/testenv"
	"amber/internal/testenv/chaingen"
	"amber/snapshot"
	"amber/snapshot/objstore"
	"amber/snapshot/objstore/open"
)

// latestComplete checks the bucket's invariant: LATEST is absent or names
// a manifest whose every file is there with the right size and hash.
func latestComplete(t *testing.T, b objstore.Bucket) (string, bool) {
	t.Helper()
	// This build's schema publishes in its own part of the bucket; Verify
	// finds that part itself.
	whole := b
	b = snapshot.SchemaBucket(b, index.SchemaVersion)
	ctx := context.Background()
	r, err := b.Get(ctx, snapshot.LatestKey)
	if objstore.IsNotFound(err) {
		return "", false
	}
	if err != nil {
		t.Fatal(err)
	}
	key, _ := io.ReadAll(r)
	r.Close()
	mr, err := b.Get(ctx, string(key))
	if err != nil {
		t.Fatalf("LATEST names %s, which cannot be read: %v", key, err)
	}
	body, _ := io.ReadAll(mr)
	mr.Close()
	m, err := snapshot.ParseManifest(body)
	if err != nil {
		t.Fatalf("LATEST names a broken manifest %s: %v", key, err)
	}
	if err := (&snapshot.Restorer{Bucket: whole}).Verify(ctx, m); err != nil {
		t.Fatalf("LATEST names an incomplete snapshot %s: %v", key, err)
	}
	return string(key), true
}

// TestPublishSurvivesKillsAndOutages kills `amber build --once` at random
// moments of its sync and publish, and stops MinIO in the middle of one:
// LATEST never names an incomplete snapshot, and a re-run completes.
func TestPublishSurvivesKillsAndOutages(t *testing.T) {
	if testing.Short() {
		t.Skip("runs btcd, MinIO and amber")
	}
	r := newRig(t, chaingen.Small, chaingen.Small.Blocks, "crash")
	b, m := r.btcd, r.minio
	url := "minio://" + m.Endpoint + "/amber/crash?secure=false"
	env := append(append(os.Environ(), r.env...), "NET=regtest", "DAEMON_URL="+b.URL(), "HTTP_ADDR=off")
	bucket, err := open.Open(context.Background(), url, open.Options{Getenv: func(k string) string {
		return map[string]string{"MINIO_ACCESS_KEY": m.AccessKey, "MINIO_SECRET_KEY": m.SecretKey}[k]
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer bucket.Close()

	start := time.Now()
	mustBuild(t, t.TempDir(), []string{b.URL()}, r.env...)
	full := time.Since(start)
	first, ok := latestComplete(t, bucket)
	if !ok {
		t.Fatal("no LATEST after a complete build")
	}

	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 3))
	for i := range 5 {
		cmd := exec.Command(amberBin, "build", "--once")
		cmd.Env = append(env, "DB_DIRECTORY="+t.TempDir())
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		wait := time.Duration(float64(full) * (0.5 + 0.6*rng.Float64()))
		time.Sleep(wait)
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Wait()
		key, _ := latestComplete(t, bucket)
		t.Logf("kill %d after %v: LATEST %s", i+1, wait.Round(time.Millisecond), key)
	}

	// MinIO goes away in the middle of a publish.
	cmd := exec.Command(amberBin, "build", "--once")
	cmd.Env = append(env, "DB_DIRECTORY="+t.TempDir())
	var log testenv.Buffer
	cmd.Stderr = &log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	for !strings.Contains(log.String(), "index at daemon tip") {
		if time.Since(start) > 5*time.Minute {
			t.Fatal("build never reached the tip")
		}
		time.Sleep(5 * time.Millisecond)
	}
	m.Stop()
	err = cmd.Wait()
	m.Restart()
	if err == nil && !strings.Contains(log.String(), "snapshot published") {
		t.Fatalf("build exited 0 without publishing:\n%s", tail(log.String(), 10))
	}
	t.Logf("with MinIO stopped: %v; %s", err, lastLine(log.String()))
	latestComplete(t, bucket)

	// A re-run completes and publishes the same tip.
	mustBuild(t, t.TempDir(), []string{b.URL()}, r.env...)
	if key, ok := latestComplete(t, bucket); !ok || key != first {
		t.Fatalf("LATEST after the re-run %q, want %q", key, first)
	}
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

// TestMirrorUpdateSurvivesKill kills `amber build --once` with SIGKILL in
// the middle of updating its mirror, right after the layers are ingested
// and right after a range is rewritten: a re-run on the same disk carries
// on with the mirror it left (no whole upload), and what it publishes
// restores to exactly its index.
func TestMirrorUpdateSurvivesKill(t *testing.T) {
	if testing.Short() {
		t.Skip("runs btcd, MinIO and amber")
	}
	r := newRig(t, chaingen.Tiny, 150, "mirrorkill")
	ctx := context.Background()
	bucket, err := open.Open(ctx, "minio://"+r.minio.Endpoint+"/amber/mirrorkill?secure=false", open.Options{Getenv: func(k string) string {
		return map[string]string{"MINIO_ACCESS_KEY": r.minio.AccessKey, "MINIO_SECRET_KEY": r.minio.SecretKey}[k]
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer bucket.Close()
	net, _ := chain.Lookup("Bitcoin", "regtest")
	db := t.TempDir()
	mustBuild(t, db, []string{r.btcd.URL()}, r.env...)
	for i, step := range []string{"layers", "rewrite"} {
		r.chain.Submit(t, r.btcd, 150+50*(i+1))
		out, err := build(t, db, []string{r.btcd.URL()}, append(r.env, "AMBER_TEST_KILL_AT=mirror-"+step)...)
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
			t.Fatalf("amber build was not killed after the mirror's %s step: %v\n%s", step, err, tail(out, 10))
		}
		out = mustBuild(t, db, []string{r.btcd.URL()}, r.env...)
		if strings.Contains(out, "not at the index's state") || !strings.Contains(out, "snapshot published") {
			t.Fatalf("after a kill at %s the re-run did not carry on with its mirror:\n%s", step, tail(out, 10))
		}
		latestComplete(t, bucket)
		restored := filepath.Join(t.TempDir(), "db")
		if _, err := snapshot.Bootstrap(ctx, bucket, restored, net, &snapshot.Restorer{}); err != nil {
			t.Fatal(err)
		}
		if got, want := testenv.DigestDir(t, restored), testenv.DigestDir(t, db); got != want {
			t.Fatalf("after a kill at %s the snapshot restores to %s, the index is %s", step, got, want)
		}
	}
}
