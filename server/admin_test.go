package server_test

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	proxyproto "github.com/pires/go-proxyproto"

	"amber/internal/testenv"
)

func TestMain(m *testing.M) {
	code := m.Run()
	if amberBuild.path != "" {
		os.RemoveAll(filepath.Dir(amberBuild.path))
	}
	os.Exit(code)
}

// served is a running `amber serve` binary with its listener addresses.
type served struct {
	cmd                *exec.Cmd
	log                *testenv.Buffer
	tcp, ws, rpc, http string
	r                  *testenv.Regtest
}

// startServed runs `amber serve` on a regtest chain with tcp, ws, rpc
// and http listeners on free ports and waits for /readyz.
func startServed(t *testing.T, r *testenv.Regtest, env ...string) *served {
	t.Helper()
	s := &served{r: r}
	addr := func() string { return fmt.Sprintf("127.0.0.1:%d", freePort(t)) }
	s.tcp, s.ws, s.rpc, s.http = addr(), addr(), addr(), addr()
	base := []string{"NET=regtest", "DB_DIRECTORY=" + t.TempDir(), "DAEMON_URL=" + r.Btcd.URL(),
		"DAEMON_POLL_INTERVAL=100ms", "PEER_DISCOVERY=off", "HTTP_ADDR=" + s.http,
		fmt.Sprintf("SERVICES=tcp://%s,ws://%s,rpc://%s", s.tcp, s.ws, s.rpc)}
	s.cmd, s.log = startServe(t, append(base, env...)...)
	waitFor(t, "amber serve to be ready", 60*time.Second, func() bool { return s.readyz() == http.StatusOK }, func() any {
		resp, err := http.Get("http://" + s.http + "/readyz")
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	})
	return s
}

// readyz is the status of GET /readyz, 0 when unreachable.
func (s *served) readyz() int {
	resp, err := http.Get("http://" + s.http + "/readyz")
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// amberRPC runs `amber rpc args...` against the node and returns its
// stdout, stderr and exit code.
func (s *served) amberRPC(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(amberBinary(t), append([]string{"rpc"}, args...)...)
	cmd.Env = append(os.Environ(), "RPC_ADDR="+s.rpc)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return stdout.String(), stderr.String(), code
}

// admin runs an admin command that must succeed and decodes its output.
func (s *served) admin(t *testing.T, out any, args ...string) {
	t.Helper()
	stdout, stderr, code := s.amberRPC(t, args...)
	if code != 0 {
		t.Fatalf("amber rpc %s: exit %d: %s", strings.Join(args, " "), code, stderr)
	}
	if err := json.Unmarshal([]byte(stdout), out); err != nil {
		t.Fatalf("amber rpc %s printed %q: %v", strings.Join(args, " "), stdout, err)
	}
}

// adminLines runs an admin command whose answer is a list of lines.
func (s *served) adminLines(t *testing.T, args ...string) string {
	t.Helper()
	var lines []string
	s.admin(t, &lines, args...)
	return strings.Join(lines, "\n")
}

type sessionRow struct {
	ID     uint64 `json:"id"`
	Remote string `json:"remote"`
	Group  string `json:"group"`
	Client string `json:"client"`
}

func (s *served) sessions(t *testing.T) []sessionRow {
	t.Helper()
	var rows []sessionRow
	s.admin(t, &rows, "sessions")
	return rows
}

// proxied connects to the tcp listener as if through a load balancer
// that forwards from client, with a PROXY header of the given version,
// and identifies as name.
func (s *served) proxied(t *testing.T, version byte, from string, name string) *client {
	t.Helper()
	conn, err := net.Dial("tcp", s.tcp)
	if err != nil {
		t.Fatal(err)
	}
	src := net.TCPAddrFromAddrPort(netip.MustParseAddrPort(from))
	h := proxyproto.HeaderProxyFromAddrs(version, src, conn.RemoteAddr())
	if _, err := h.WriteTo(conn); err != nil {
		t.Fatal(err)
	}
	c := lineClient(t, conn)
	c.call("server.version", name, "1.4")
	return c
}

func hasSession(rows []sessionRow, remote, client string) bool {
	for _, r := range rows {
		if r.Remote == remote && r.Client == client {
			return true
		}
	}
	return false
}

// TestAdminRPC drives every admin command through `amber rpc` against
// the real binary, with PROXY protocol on, and scrapes /metrics.
func TestAdminRPC(t *testing.T) {
	if testing.Short() {
		t.Skip("runs btcd and amber")
	}
	r := testenv.StartRegtest(t, testenv.RegtestOptions{})
	defaultActivity(r)
	paid := r.Wallet.NewScript(testenv.P2WPKH)
	payTx := r.Pay(paid.TxOut(123_456))
	r.Mine(1)
	height := r.Btcd.Height()
	r.Pay(r.Wallet.NewScript(testenv.P2WPKH).TxOut(50_000)) // for the fee histogram
	s := startServed(t, r, "PROXY_PROTOCOL=on")

	t.Run("help", func(t *testing.T) {
		var cmds map[string]string
		s.admin(t, &cmds, "help")
		for _, c := range []string{"getinfo", "sessions", "groups", "peers", "add_peer", "disconnect", "log", "daemon_url", "reorg", "query", "snapshot", "debug_memory"} {
			if cmds[c] == "" {
				t.Errorf("help lacks %s: %v", c, cmds)
			}
		}
		if _, stderr, code := s.amberRPC(t, "frobnicate"); code != 1 || !strings.Contains(stderr, `unknown command "frobnicate"`) {
			t.Errorf("unknown command: exit %d, %q", code, stderr)
		}
	})

	t.Run("getinfo", func(t *testing.T) {
		var info map[string]any
		s.admin(t, &info, "getinfo")
		if peers, ok := info["peers"].(map[string]any); !ok || peers["total"] != float64(0) {
			t.Errorf("getinfo peers = %v with discovery off", info["peers"])
		}
		if info["network"] != "regtest" || info["db_height"] != float64(height) || info["daemon_height"] != float64(height) || info["ready"] != true {
			t.Errorf("getinfo: %v (btcd at %d)", info, height)
		}
	})

	// PROXY v1 and v2 from two addresses of one /24 and one of another:
	// sessions shows the forwarded addresses, groups joins the first two.
	v1 := s.proxied(t, 1, "203.0.113.7:40000", "proxied-v1")
	v2 := s.proxied(t, 2, "203.0.113.99:40001", "proxied-v2")
	other := s.proxied(t, 2, "198.51.100.9:40002", "proxied-other")
	direct := dialTCP(t, s.tcp)
	direct.call("server.version", "direct", "1.4")
	t.Run("sessions", func(t *testing.T) {
		rows := s.sessions(t)
		for _, want := range [][2]string{{"203.0.113.7:40000", "proxied-v1"}, {"203.0.113.99:40001", "proxied-v2"}, {"198.51.100.9:40002", "proxied-other"}} {
			if !hasSession(rows, want[0], want[1]) {
				t.Errorf("sessions lacks %s from %s: %+v", want[1], want[0], rows)
			}
		}
		found := false
		for _, row := range rows {
			found = found || (row.Client == "direct" && strings.HasPrefix(row.Remote, "127.0.0.1:"))
		}
		if !found {
			t.Errorf("sessions lacks the direct session from 127.0.0.1: %+v", rows)
		}
	})
	t.Run("groups", func(t *testing.T) {
		var groups []struct {
			Name     string `json:"name"`
			Sessions int    `json:"sessions"`
		}
		s.admin(t, &groups, "groups")
		got := map[string]int{}
		for _, g := range groups {
			got[g.Name] = g.Sessions
		}
		if got["203.0.113.0/24"] != 2 || got["198.51.100.0/24"] != 1 {
			t.Errorf("groups: %+v, want 203.0.113.0/24 with 2 sessions and 198.51.100.0/24 with 1", groups)
		}
	})
	t.Run("disconnect", func(t *testing.T) {
		out := s.adminLines(t, "disconnect", "198.51.100.9")
		if !strings.Contains(out, "198.51.100.9:40002") {
			t.Errorf("disconnect answered %q", out)
		}
		if !other.closedWithin(10 * time.Second) {
			t.Error("the disconnected session is still open")
		}
		if out := s.adminLines(t, "disconnect", "192.0.2.1"); !strings.Contains(out, "unknown: 192.0.2.1") {
			t.Errorf("disconnect of an unknown address answered %q", out)
		}
	})
	t.Run("ban", func(t *testing.T) {
		out := s.adminLines(t, "ban", "203.0.113.0/24")
		if !strings.Contains(out, "banned 203.0.113.0/24 (2 sessions disconnected)") {
			t.Errorf("ban answered %q", out)
		}
		for _, c := range []*client{v1, v2} {
			if !c.closedWithin(10 * time.Second) {
				t.Error("a banned session is still open")
			}
		}
		if !refused(t, s, "203.0.113.50:1234") {
			t.Error("a new connection from a banned subnet was served")
		}
		if refused(t, s, "192.0.2.60:1234") {
			t.Error("a connection from another subnet was refused")
		}
		var info map[string]any
		s.admin(t, &info, "getinfo")
		if fmt.Sprint(info["banned"]) != "[203.0.113.0/24]" {
			t.Errorf("getinfo banned = %v", info["banned"])
		}
		if out := s.adminLines(t, "unban", "203.0.113.0/24"); out != "unbanned 203.0.113.0/24" {
			t.Errorf("unban answered %q", out)
		}
		if refused(t, s, "203.0.113.50:1234") {
			t.Error("still refused after unban")
		}
		if _, stderr, code := s.amberRPC(t, "ban", "not-an-address"); code != 1 || !strings.Contains(stderr, "neither an address nor a CIDR prefix") {
			t.Errorf("ban of garbage: exit %d, %q", code, stderr)
		}
	})
	t.Run("log", func(t *testing.T) {
		var level string
		s.admin(t, &level, "log")
		if level != "log level info" {
			t.Errorf("log = %q", level)
		}
		s.admin(t, &level, "log", "debug")
		if level != "log level debug" {
			t.Errorf("log debug = %q", level)
		}
		before := strings.Count(s.log.String(), "level=DEBUG")
		c := dialTCP(t, s.tcp)
		c.call("server.version", "debug-me", "1.4")
		c.closeFn()
		waitFor(t, "debug lines in the log", 10*time.Second, func() bool { return strings.Count(s.log.String(), "level=DEBUG") > before })
		s.admin(t, &level, "log", "info")
		if _, stderr, code := s.amberRPC(t, "log", "loud"); code != 1 || !strings.Contains(stderr, "unknown log level") {
			t.Errorf("log loud: exit %d, %q", code, stderr)
		}
	})
	t.Run("query", func(t *testing.T) {
		out := s.adminLines(t, "query", paid.Address.EncodeAddress())
		for _, want := range []string{"Address: " + paid.Address.EncodeAddress(), fmt.Sprintf("History #0: height %d txid %s", height, payTx.TxHash()), "Balance: 0.00123456 BTC"} {
			if !strings.Contains(out, want) {
				t.Errorf("query answered %q, lacks %q", out, want)
			}
		}
		out = s.adminLines(t, "query", hex.EncodeToString(r.MiningScript.PkScript), "3")
		if !strings.Contains(out, "History #2:") || strings.Contains(out, "History #3:") || !strings.Contains(out, "(history cut at 3 entries)") {
			t.Errorf("query with a limit of 3 answered %q", out)
		}
		if _, stderr, code := s.amberRPC(t, "query", "zz-not-an-address"); code != 1 || !strings.Contains(stderr, "neither a regtest address nor a hex script") {
			t.Errorf("query of garbage: exit %d, %q", code, stderr)
		}
	})
	t.Run("snapshot", func(t *testing.T) {
		var snap map[string]any
		s.admin(t, &snap, "snapshot")
		if snap["restored"] != false {
			t.Errorf("snapshot = %v on a node that synced from the daemon", snap)
		}
	})
	t.Run("debug_memory", func(t *testing.T) {
		var mem map[string]float64
		s.admin(t, &mem, "debug_memory")
		if mem["heap_alloc_bytes"] <= 0 || mem["goroutines"] <= 0 || mem["sessions"] < 1 || mem["heap_and_stack_per_session_bytes"] <= 0 {
			t.Errorf("debug_memory = %v", mem)
		}
	})
	t.Run("peers", func(t *testing.T) {
		var peers []any
		s.admin(t, &peers, "peers")
		if len(peers) != 0 {
			t.Errorf("peers = %v with discovery off", peers)
		}
		if _, stderr, code := s.amberRPC(t, "add_peer", "electrum.example.org", "s50002"); code != 1 || !strings.Contains(stderr, "peer discovery is off") {
			t.Errorf("add_peer with discovery off: exit %d, %q", code, stderr)
		}
	})
	t.Run("reorg", func(t *testing.T) {
		c := dialTCP(t, s.tcp)
		c.call("server.version", "reorg-watcher", "1.4")
		c.call("blockchain.headers.subscribe")
		var out string
		s.admin(t, &out, "reorg", "2")
		if out != fmt.Sprintf("undid 2 blocks to height %d; syncing them again", height-2) {
			t.Errorf("reorg answered %q", out)
		}
		// The node syncs the undone blocks again: the same tip comes back.
		waitFor(t, "the node back at the tip", 30*time.Second, func() bool {
			var info map[string]any
			s.admin(t, &info, "getinfo")
			return info["db_height"] == float64(height)
		})
		hdr, _ := btcdHeader(t, r.Btcd, height)
		c.waitHeader(height)
		if got := get[string](c, "blockchain.block.header", height); got != hdr {
			t.Errorf("header at %d after the forced reorg: %s, want %s", height, got, hdr)
		}
		if _, stderr, code := s.amberRPC(t, "reorg", "-1"); code != 1 || !strings.Contains(stderr, "want a whole number") {
			t.Errorf("reorg -1: exit %d, %q", code, stderr)
		}
	})
	t.Run("daemon_url", func(t *testing.T) {
		dead := fmt.Sprintf("http://u:p@127.0.0.1:%d", freePort(t))
		var out string
		s.admin(t, &out, "daemon_url", dead)
		if !strings.Contains(out, "now using daemon at") {
			t.Errorf("daemon_url answered %q", out)
		}
		// With its daemon gone the node must leave the load balancer.
		waitFor(t, "/readyz to go red with the daemon gone", 30*time.Second, func() bool { return s.readyz() == http.StatusServiceUnavailable })
		var info map[string]any
		s.admin(t, &info, "getinfo")
		if info["daemon_error"] == nil || info["ready"] != false {
			t.Errorf("getinfo with a dead daemon: %v", info)
		}
		s.admin(t, &out, "daemon_url")
		waitFor(t, "/readyz green again on DAEMON_URL", 30*time.Second, func() bool { return s.readyz() == http.StatusOK })
		if _, stderr, code := s.amberRPC(t, "daemon_url", "ftp://nowhere"); code != 1 || stderr == "" {
			t.Errorf("daemon_url ftp://nowhere: exit %d, %q", code, stderr)
		}
	})
	t.Run("metrics", func(t *testing.T) {
		c := dialTCP(t, s.tcp)
		c.call("server.version", "metrics", "1.4")
		if _, e := c.raw("blockchain.block.header", -1); e == nil {
			t.Fatal("block.header(-1) did not fail")
		}
		resp, err := http.Get("http://" + s.http + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		for _, name := range []string{
			`amber_sessions{transport="tcp"}`, `amber_requests_total{method="server.version"}`,
			`amber_request_errors_total{method="blockchain.block.header"}`, `amber_request_duration_seconds_bucket{`,
			`amber_received_bytes_total{transport="tcp"}`, `amber_sent_bytes_total{transport="tcp"}`,
			"amber_throttled_requests_total", "amber_session_disconnects_total{", "amber_subscriptions",
			"amber_index_height", "amber_daemon_height", "amber_index_lag_blocks",
			"amber_mempool_transactions", `amber_mempool_fee_histogram_vbytes{fee_rate="0"}`, "amber_block_apply_seconds_bucket",
			"amber_db_size_bytes", "amber_db_compactions_total", "amber_daemon_requests_total", "amber_daemon_failovers_total",
			`amber_snapshot_bytes_total{op="restore"}`, `amber_snapshot_errors_total{op="restore"}`,
			`amber_cache_requests_total{cache="raw_tx",result="hit"}`, `amber_cache_requests_total{cache="block_merkle",result="miss"}`,
			`amber_cache_bytes{cache="block_merkle"}`,
		} {
			if !bytes.Contains(body, []byte(name)) {
				t.Errorf("/metrics lacks %s", name)
			}
		}
		// The alerting rules and the dashboard use only metrics that exist.
		exported := map[string]bool{}
		for _, line := range strings.Split(string(body), "\n") {
			if rest, ok := strings.CutPrefix(line, "# TYPE "); ok {
				exported[strings.Fields(rest)[0]] = true
			}
		}
		for _, f := range []string{"../infra/prometheus/rules.yml", "../infra/grafana/dashboards/amber.json"} {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			for _, name := range metricName.FindAllString(string(b), -1) {
				base := strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(name, "_bucket"), "_sum"), "_count")
				if !exported[name] && !exported[base] && !builderOnly[name] {
					t.Errorf("%s uses %s, which amber serve does not export", f, name)
				}
			}
		}
		var feeSize float64
		for _, line := range strings.Split(string(body), "\n") {
			if rest, ok := strings.CutPrefix(line, "amber_mempool_fee_histogram_vbytes{"); ok {
				var v float64
				fmt.Sscan(rest[strings.IndexByte(rest, ' ')+1:], &v)
				feeSize += v
			}
		}
		if feeSize <= 0 {
			t.Error("the mempool fee metric shows no vsize with a payment in the mempool")
		}
	})
	t.Run("stop", func(t *testing.T) {
		var out string
		s.admin(t, &out, "stop")
		done := make(chan error, 1)
		go func() { done <- s.cmd.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("amber serve after rpc stop: %v", err)
			}
		case <-time.After(60 * time.Second):
			t.Fatal("amber serve still running 60 s after rpc stop")
		}
	})
}

var metricName = regexp.MustCompile(`\bamber_[a-z_]+`)

// builderOnly are the metrics only `amber build` exports: sync progress
// and the snapshot gauges, set once it publishes.
var builderOnly = map[string]bool{
	"amber_sync_blocks_total": true, "amber_sync_transactions_total": true,
	"amber_snapshot_last_success_timestamp_seconds": true, "amber_snapshot_duration_seconds": true,
}

// refused reports whether the server closes a PROXY connection from
// `from` without answering server.version.
func refused(t *testing.T, s *served, from string) bool {
	t.Helper()
	conn, err := net.Dial("tcp", s.tcp)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	src := net.TCPAddrFromAddrPort(netip.MustParseAddrPort(from))
	if _, err := proxyproto.HeaderProxyFromAddrs(1, src, conn.RemoteAddr()).WriteTo(conn); err != nil {
		return true
	}
	_, _ = conn.Write([]byte(`{"jsonrpc":"2.0","id":1,"method":"server.version","params":["x","1.4"]}` + "\n"))
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 256)
	n, _ := conn.Read(buf)
	return !bytes.Contains(buf[:n], []byte(`"result"`))
}
