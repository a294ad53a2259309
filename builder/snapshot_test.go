package builder_test

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"amber/internal/testenv"
	"amber/internal/testenv/chaingen"
)

// TestSnapshotToServer is the cloud path end to end with real processes:
// `amber build --once` indexes a generated chain and publishes a snapshot
// to MinIO; `amber serve` on an empty disk restores it, verifies it, and
// serves the chain; the restored index equals the builder's row for row.
func TestSnapshotToServer(t *testing.T) {
	if testing.Short() {
		t.Skip("runs btcd, MinIO and amber")
	}
	c := chaingen.Load(t, chaingen.Tiny)
	b := testenv.StartBtcd(t, testenv.BtcdOptions{})
	c.Submit(t, b, c.Height())
	m := testenv.StartMinio(t, testenv.MinioOptions{})
	m.CreateBucket("amber")
	snapEnv := []string{
		"SNAPSHOT_URL=minio://" + m.Endpoint + "/amber/regtest?secure=false",
		"MINIO_ACCESS_KEY=" + m.AccessKey, "MINIO_SECRET_KEY=" + m.SecretKey,
	}

	builderDB := t.TempDir()
	out := mustBuild(t, builderDB, []string{b.URL()}, snapEnv...)
	if !strings.Contains(out, "snapshot published") {
		t.Fatalf("no snapshot published:\n%s", tail(out, 15))
	}

	serverDB := t.TempDir()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	serve := exec.Command(amberBin, "serve")
	serve.Env = append(os.Environ(), append(snapEnv, "NET=regtest", "DB_DIRECTORY="+serverDB, "DAEMON_URL="+b.URL(),
		"SERVICES=tcp://"+addr, "HTTP_ADDR=off")...)
	var log testenv.Buffer
	serve.Stderr = &log
	if err := serve.Start(); err != nil {
		t.Fatal(err)
	}
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			serve.Process.Signal(os.Interrupt)
			serve.Wait()
		}
	}
	t.Cleanup(func() {
		stop()
		if t.Failed() {
			t.Logf("amber serve log:\n%s", tail(log.String(), 30))
		}
	})
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
	if !strings.Contains(log.String(), "restored snapshot") || !strings.Contains(log.String(), fmt.Sprintf("height=%d", c.Height())) {
		t.Fatalf("server did not restore the snapshot at %d:\n%s", c.Height(), tail(log.String(), 20))
	}
	fmt.Fprintf(conn, `{"jsonrpc":"2.0","id":1,"method":"server.version","params":["snap","1.4"]}`+"\n")
	fmt.Fprintf(conn, `{"jsonrpc":"2.0","id":2,"method":"blockchain.headers.subscribe","params":[]}`+"\n")
	sc := bufio.NewScanner(conn)
	sc.Scan()
	sc.Scan()
	if want := fmt.Sprintf(`"height":%d`, c.Height()); !strings.Contains(sc.Text(), want) {
		t.Errorf("headers.subscribe = %s, want %s", sc.Text(), want)
	}
	stop()
	if got, want := digestOf(t, serverDB), digestOf(t, builderDB); got != want {
		t.Fatalf("restored index digest %s, builder's %s", got, want)
	}
}
