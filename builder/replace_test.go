package builder_test

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"amber/internal/testenv"
	"amber/internal/testenv/chaingen"
)

// serveNode is one `amber serve` process.
type serveNode struct {
	cmd  *exec.Cmd
	log  *testenv.Buffer
	addr string
}

func startServe(t *testing.T, env ...string) *serveNode {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	n := &serveNode{cmd: exec.Command(amberBin, "serve"), log: &testenv.Buffer{}, addr: addr}
	n.cmd.Env = append(os.Environ(), append(env, "NET=regtest", "SERVICES=tcp://"+addr, "HTTP_ADDR=off")...)
	n.cmd.Stderr = n.log
	if err := n.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.cmd.Process.Kill(); n.cmd.Wait() })
	return n
}

// waitLog waits for s in the node's log.
func (n *serveNode) waitLog(t *testing.T, s string, timeout time.Duration) {
	t.Helper()
	for deadline := time.Now().Add(timeout); !strings.Contains(n.log.String(), s); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no %q in the serve log:\n%s", s, tail(n.log.String(), 20))
		}
	}
}

// height asks the node for its tip over Electrum, waiting for it to listen.
func (n *serveNode) height(t *testing.T) string {
	t.Helper()
	var conn net.Conn
	var err error
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if conn, err = net.Dial("tcp", n.addr); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("amber serve never listened: %v\n%s", err, tail(n.log.String(), 20))
		}
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(conn, `{"jsonrpc":"2.0","id":1,"method":"server.version","params":["replace","1.4"]}`+"\n")
	fmt.Fprintf(conn, `{"jsonrpc":"2.0","id":2,"method":"blockchain.headers.subscribe","params":[]}`+"\n")
	sc := bufio.NewScanner(conn)
	sc.Buffer(nil, 1<<20)
	sc.Scan()
	sc.Scan()
	return sc.Text()
}

func (n *serveNode) kill() {
	n.cmd.Process.Signal(syscall.SIGKILL)
	n.cmd.Wait()
}

// TestStaleNodeReplacedSurvivesKill runs real processes: a node whose
// index is more than SNAPSHOT_MAX_BEHIND blocks behind the newest snapshot
// in MinIO replaces it with the snapshot, and killed with SIGKILL at
// moments spread over the replacement (download, verify, swap), the node
// restarts, finishes or redoes the job, and serves the snapshot's tip
// with nothing left beside its DB_DIRECTORY.
func TestStaleNodeReplacedSurvivesKill(t *testing.T) {
	if testing.Short() {
		t.Skip("runs btcd, MinIO and amber")
	}
	const staleAt = 150
	r := newRig(t, chaingen.Tiny, staleAt, "replace")
	stale := t.TempDir()
	mustBuild(t, stale, []string{r.btcd.URL()}) // no snapshot: the node's own index
	r.chain.Submit(t, r.btcd, chaingen.Tiny.Blocks)
	mustBuild(t, t.TempDir(), []string{r.btcd.URL()}, r.env...)
	want := fmt.Sprintf(`"height":%d`, chaingen.Tiny.Blocks)
	env := append([]string{"DAEMON_URL=" + r.btcd.URL(), "SNAPSHOT_MAX_BEHIND=100"}, r.env...)

	fresh := func() string {
		dir := filepath.Join(t.TempDir(), "db")
		if out, err := exec.Command("cp", "-a", stale, dir).CombinedOutput(); err != nil {
			t.Fatalf("cp: %v %s", err, out)
		}
		return dir
	}
	// Once undisturbed, to time the replacement.
	dir := fresh()
	n := startServe(t, append(env, "DB_DIRECTORY="+dir)...)
	n.waitLog(t, "far behind", time.Minute)
	began := time.Now()
	n.waitLog(t, "local index replaced", time.Minute)
	took := time.Since(began)
	if got := n.height(t); !strings.Contains(got, want) {
		t.Fatalf("after the replacement: %s, want %s", got, want)
	}
	n.kill()
	t.Logf("replacement took %v", took)

	// Killed exactly at each step of the replacement.
	for _, step := range []struct{ at, left string }{
		{"restored", "[db db.new]"},
		{"swap-old-moved", "[db.new db.old]"},
		{"swap-new-moved", "[db db.old]"},
	} {
		dir := fresh()
		n := startServe(t, append(env, "DB_DIRECTORY="+dir, "AMBER_TEST_KILL_AT="+step.at)...)
		err := n.cmd.Wait()
		if ws, ok := n.cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
			t.Fatalf("at %s: exit %v, want SIGKILL\n%s", step.at, err, tail(n.log.String(), 10))
		}
		if got := dirState(dir); got != step.left {
			t.Errorf("killed at %s: left %s, want %s", step.at, got, step.left)
		}
		n = startServe(t, append(env, "DB_DIRECTORY="+dir)...)
		if got := n.height(t); !strings.Contains(got, want) {
			t.Fatalf("killed at %s: restarted node answers %s, want %s\n%s", step.at, got, want, tail(n.log.String(), 20))
		}
		n.kill()
		if got := dirState(dir); got != "[db]" {
			t.Errorf("killed at %s: after the restart %s, want [db]", step.at, got)
		}
	}

	// Killed at moments spread over the replacement.
	for i, frac := range []float64{0.3, 0.9, 1.1} {
		dir := fresh()
		n := startServe(t, append(env, "DB_DIRECTORY="+dir)...)
		n.waitLog(t, "far behind", time.Minute)
		time.Sleep(time.Duration(frac * float64(took)))
		n.kill()
		state := dirState(dir)
		n = startServe(t, append(env, "DB_DIRECTORY="+dir)...)
		if got := n.height(t); !strings.Contains(got, want) {
			t.Fatalf("kill %d at %.0f%% (left %v): restarted node answers %s, want %s\n%s", i, 100*frac, state, got, want, tail(n.log.String(), 20))
		}
		n.kill()
		t.Logf("kill %d at %.0f%% of the replacement left %v; the restart serves height %d", i, 100*frac, state, chaingen.Tiny.Blocks)
		if got := dirState(dir); got != "[db]" {
			t.Errorf("kill %d: after the restart %s, want [db]", i, got)
		}
	}
}

// dirState names which of dir and its siblings of a replacement exist.
func dirState(dir string) string {
	var state []string
	for _, s := range []string{"", ".new", ".old", ".new.staging"} {
		if _, err := os.Stat(dir + s); err == nil {
			state = append(state, "db"+s)
		}
	}
	return fmt.Sprint(state)
}
