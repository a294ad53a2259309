package statuspage_test

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"amber/internal/chain"
	"amber/internal/config"
	"amber/internal/telemetry"
	"amber/internal/testenv"
	"amber/server"
	"amber/server/statuspage"
)

var screenshot = flag.String("screenshot", "", "also save the status page's screenshot to this path (docs/status.png from the repository root)")

// TestStatusPageInChromium drives headless Chromium against the status
// page of a node on regtest: the tip shown is the server's, and a lookup
// through the box finds the balance of an address with history, over the
// node's WebSocket listener.
func TestStatusPageInChromium(t *testing.T) {
	if testing.Short() {
		t.Skip("starts btcd, a server node and Chromium")
	}
	chromium := findChromium(t)

	// One confirmed payment and one in the mempool to the same address.
	r := testenv.StartRegtest(t, testenv.RegtestOptions{})
	r.Mine(101)
	s := r.Wallet.NewScript(testenv.P2WPKH)
	r.Pay(s.TxOut(70_000))
	r.Mine(1)
	r.Pay(s.TxOut(20_000))
	addr := s.Address.EncodeAddress()

	env := map[string]string{
		"NET": "regtest", "DB_DIRECTORY": t.TempDir(), "DAEMON_URL": r.Btcd.URL(),
		"DAEMON_POLL_INTERVAL": "100ms", "PEER_DISCOVERY": "off",
		"SERVICES": "tcp://127.0.0.1:0,ws://127.0.0.1:0",
	}
	cfg, err := config.Load(config.Serve, nil, func(k string) string { return env[k] }, nil)
	if err != nil {
		t.Fatal(err)
	}
	reg, health := telemetry.NewRegistry(), telemetry.NewHealth("starting")
	node := server.New(cfg, telemetry.Discard(), reg, health)
	httpSrv := telemetry.NewHTTPServer("127.0.0.1:0", reg, health, telemetry.Discard())
	statuspage.New(node, cfg.Network).Register(httpSrv)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 2)
	go func() { done <- node.Run(ctx) }()
	go func() { done <- httpSrv.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		for range 2 {
			if err := <-done; err != nil {
				t.Errorf("stopped with %v", err)
			}
		}
	})
	select {
	case <-node.Ready():
	case err := <-done:
		t.Fatalf("stopped: %v", err)
	case <-time.After(60 * time.Second):
		t.Fatal("server not ready in 60 s")
	}
	base := "http://" + ln.Addr().String() + "/"

	// status.json agrees with the node.
	var st struct {
		Height     int32 `json:"height"`
		MempoolTxs int   `json:"mempool_txs"`
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		getJSON(t, base+"status.json", &st)
		if st.MempoolTxs >= 1 || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	want := node.Status(context.Background())
	if st.Height != want.Height || want.Height != 102 || st.MempoolTxs != 1 {
		t.Fatalf("status.json height %d, mempool %d; node at %d, want 102 and 1 unconfirmed", st.Height, st.MempoolTxs, want.Height)
	}

	// The page shows the tip, and the lookup box the balance.
	start := time.Now()
	dom := runChromium(t, chromium, "--dump-dom", base+"?lookup="+addr)
	t.Logf("chromium --dump-dom took %s", time.Since(start).Round(time.Millisecond))
	checks := []struct{ name, re, want string }{
		{"tip height", `id="tip-height">(\d+)<`, fmt.Sprint(want.Height)},
		{"tip hash", `id="tip-hash" class="mono">([0-9a-f]+)<`, want.Hash},
		{"confirmed", `id="balance-confirmed" data-sats="(\d+)"`, "70000"},
		{"unconfirmed", `id="balance-unconfirmed" data-sats="(-?\d+)"`, "20000"},
		{"history", `id="history-count">(\d+)<`, "2"},
	}
	for _, c := range checks {
		m := regexp.MustCompile(c.re).FindStringSubmatch(dom)
		if m == nil || m[1] != c.want {
			t.Errorf("%s: page shows %v, want %s", c.name, m, c.want)
		}
	}
	if t.Failed() {
		t.Fatalf("page after lookup:\n%s", dom)
	}

	// A screenshot, kept when -screenshot names a path.
	png := filepath.Join(t.TempDir(), "status.png")
	runChromium(t, chromium, "--screenshot="+png, "--window-size=1200,900", "--hide-scrollbars", base+"?lookup="+addr)
	b, err := os.ReadFile(png)
	if err != nil || !bytes.HasPrefix(b, []byte("\x89PNG")) {
		t.Fatalf("screenshot: %v (%d bytes)", err, len(b))
	}
	if *screenshot != "" {
		if err := os.WriteFile(*screenshot, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// findChromium returns Debian's chromium, installing it with apt-get when
// missing and running as root.
func findChromium(t *testing.T) string {
	t.Helper()
	if p, err := exec.LookPath("chromium"); err == nil {
		return p
	}
	if os.Geteuid() != 0 {
		t.Fatal("chromium is not installed; run 'sudo apt-get install chromium' (make tools does)")
	}
	t.Log("installing chromium (apt-get install chromium)")
	for _, args := range [][]string{{"update", "-qq"}, {"install", "-y", "-qq", "chromium"}} {
		cmd := exec.Command("apt-get", args...)
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("apt-get %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	p, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// runChromium runs headless Chromium with args and returns its stdout.
func runChromium(t *testing.T, bin string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	base := []string{
		"--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
		"--disable-background-networking", "--disable-component-update",
		"--disable-sync", "--disable-dev-shm-usage", "--user-data-dir=" + t.TempDir(),
		"--virtual-time-budget=10000",
	}
	cmd := exec.CommandContext(ctx, bin, append(base, args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("chromium %v: %v\n%s", args, err, stderr.String())
	}
	return stdout.String()
}

func getJSON(t *testing.T, url string, v any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("%s: %v", url, err)
	}
}

// fakeSource is a node with a fixed status.
type fakeSource struct{ st statuspage.Status }

func (f fakeSource) Status(context.Context) statuspage.Status { return f.st }

// TestFeeChartAndSnapshot renders a fee histogram and a restored
// snapshot from a fake node in Chromium.
func TestFeeChartAndSnapshot(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Chromium")
	}
	chromium := findChromium(t)
	src := fakeSource{statuspage.Status{
		Serving: true, Height: 900_000, Hash: strings.Repeat("ab", 32), DaemonHeight: 900_003, Lag: 3,
		Sessions:     map[string]int{"tcp": 4, "wss": 2},
		FeeHistogram: []statuspage.FeeBucket{{Rate: 20, VSize: 40_000}, {Rate: 5.1, VSize: 90_000}, {Rate: 1, VSize: 120_000}},
		Snapshot:     &statuspage.SnapshotInfo{Key: "manifests/000900000-x.json", Height: 899_990, Created: time.Now().Add(-3 * time.Hour)},
	}}
	mainnet, err := chain.Lookup("bitcoin", "mainnet")
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	statuspage.New(src, mainnet).Register(mux)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go hs.Serve(ln)
	t.Cleanup(func() { hs.Close() })

	dom := runChromium(t, chromium, "--dump-dom", "http://"+ln.Addr().String()+"/")
	for _, want := range []string{`id="lag">3 blocks<`, `manifests/000900000-x.json`, `3 h ago`, `id="sessions-wss">2<`} {
		if !strings.Contains(dom, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	if n := strings.Count(dom, `<rect class="bar"`); n != 3 {
		t.Errorf("fee chart has %d bars, want 3", n)
	}
	if t.Failed() {
		t.Log(dom)
	}
}
