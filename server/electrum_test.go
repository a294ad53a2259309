package server_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/btcsuite/btcd/chaincfg/v2"
	"github.com/btcsuite/btcd/chainhash/v2"

	"amber/internal/testenv"
)

// electrum runs the Debian Electrum wallet in regtest against one data dir.
type electrum struct {
	t   *testing.T
	bin string
	dir string
}

func (e *electrum) run(args ...string) string {
	e.t.Helper()
	out, err := e.try(args...)
	if err != nil {
		e.t.Fatalf("electrum %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

func (e *electrum) try(args ...string) (string, error) {
	cmd := exec.Command(e.bin, append([]string{"--regtest", "-D", e.dir}, args...)...)
	cmd.Env = append(os.Environ(), "HOME="+e.dir)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return strings.TrimSpace(out.String()), err
}

// balance returns getbalance's fields as strings ("confirmed",
// "unconfirmed", "unmatured").
func (e *electrum) balance() map[string]string {
	e.t.Helper()
	out := e.run("getbalance")
	var m map[string]string
	if err := json.Unmarshal([]byte(out[strings.Index(out, "{"):]), &m); err != nil {
		e.t.Fatalf("getbalance output %q: %v", out, err)
	}
	return m
}

func waitFor(t *testing.T, what string, within time.Duration, cond func() bool, state ...func() any) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			var last []any
			for _, f := range state {
				last = append(last, f())
			}
			t.Fatalf("timed out after %v waiting for %s (last seen %v)", within, what, last)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// heightOf finds txid in getaddresshistory output; -2 when absent.
func heightOf(out, txid string) int {
	var hist []struct {
		TxHash string `json:"tx_hash"`
		Height int    `json:"height"`
	}
	if i := strings.Index(out, "["); i >= 0 {
		json.Unmarshal([]byte(out[i:]), &hist)
	}
	for _, h := range hist {
		if h.TxHash == txid {
			return h.Height
		}
	}
	return -2
}

// walletConfirmations is the wallet's count for txid; -1 when absent.
func walletConfirmations(e *electrum, txid string) int {
	out := e.run("onchain_history")
	var h struct {
		Transactions []struct {
			Txid          string `json:"txid"`
			Confirmations int    `json:"confirmations"`
		} `json:"transactions"`
	}
	if i := strings.Index(out, "{"); i >= 0 {
		json.Unmarshal([]byte(out[i:]), &h)
	}
	for _, tx := range h.Transactions {
		if tx.Txid == txid {
			return tx.Confirmations
		}
	}
	return -1
}

func num(s string) float64 {
	f, _ := strconv.ParseFloat(s, 64)
	return f
}

func tailLines(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// TestElectrumWallet runs the real Electrum wallet against `amber serve`
// (the binary, in its own process): it syncs, sees the coins mined to it,
// sends a payment that Amber broadcasts, sees it unconfirmed and then
// confirmed after a block.
func TestElectrumWallet(t *testing.T) {
	if testing.Short() {
		t.Skip("runs btcd, Bitcoin Core, amber and Electrum")
	}
	for _, d := range []string{"btcd", "core"} {
		t.Run(d, func(t *testing.T) { testElectrumWallet(t, d == "core") })
	}
}

// walletNode is the daemon under the Electrum test: btcd or Bitcoin Core.
type walletNode struct {
	testenv.Node
	generate func(n int)
	height   func() int32
}

func (w walletNode) inMempool(txid chainhash.Hash) bool {
	_, err := w.Call("getmempoolentry", txid.String())
	if err == nil {
		return true
	}
	// btcd has no getmempoolentry.
	raw, err := w.Call("getrawmempool")
	return err == nil && strings.Contains(string(raw), txid.String())
}

func testElectrumWallet(t *testing.T, core bool) {
	bin, err := exec.LookPath("electrum")
	if err != nil {
		t.Fatal("the electrum wallet is not installed; `make test` installs it (apt-get install electrum)")
	}
	e := &electrum{t: t, bin: bin, dir: t.TempDir()}
	e.run("--offline", "create")
	addr := e.run("--offline", "getunusedaddress")

	var b walletNode
	if core {
		c := testenv.StartBitcoind(t, testenv.BitcoindOptions{})
		b = walletNode{c, func(n int) { c.Generate(n, addr) }, c.Height}
	} else {
		d := testenv.StartBtcd(t, testenv.BtcdOptions{MiningAddr: addr})
		b = walletNode{d, func(n int) { d.Generate(n) }, d.Height}
	}
	b.generate(101)

	port := freePort(t)
	startServe(t, "NET=regtest", "DB_DIRECTORY="+t.TempDir(), "DAEMON_URL="+b.URL(),
		fmt.Sprintf("SERVICES=tcp://127.0.0.1:%d", port), "HTTP_ADDR=off", "DAEMON_POLL_INTERVAL=200ms", "PEER_DISCOVERY=off")
	waitFor(t, "amber to listen", 60*time.Second, func() bool {
		c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err == nil {
			c.Close()
		}
		return err == nil
	})

	e.run("--offline", "setconfig", "server", fmt.Sprintf("127.0.0.1:%d:t", port))
	e.run("--offline", "setconfig", "oneserver", "true")
	e.run("--offline", "setconfig", "auto_connect", "false")
	e.run("--offline", "setconfig", "log_to_file", "true")
	t.Cleanup(func() {
		if t.Failed() {
			logs, _ := filepath.Glob(filepath.Join(e.dir, "regtest", "logs", "*"))
			for _, l := range logs {
				b, _ := os.ReadFile(l)
				t.Logf("electrum log %s:\n%s", l, tailLines(string(b), 60))
			}
		}
	})
	e.run("daemon", "-d")
	t.Cleanup(func() { e.try("stop") })
	e.run("load_wallet")

	// 101 coinbases: one mature (50 BTC), 100 immature.
	// 101 coinbases of 50 BTC; Electrum counts those with 100
	// confirmations as mature.
	var bal map[string]string
	waitFor(t, "the wallet to see its mined coins", 60*time.Second, func() bool {
		bal = e.balance()
		return num(bal["confirmed"])+num(bal["unmatured"]) == 5050 && num(bal["confirmed"]) >= 50
	}, func() any { return bal })

	dest := testenv.NewWallet(&chaincfg.RegressionNetParams, []byte("electrum test payee")).NewScript(testenv.P2WPKH).Address.EncodeAddress()
	rawTx := e.run("payto", dest, "1.25")
	txid := e.run("broadcast", rawTx)
	id, err := chainhash.NewHashFromStr(txid)
	if err != nil {
		t.Fatalf("broadcast returned %q", txid)
	}
	if !b.inMempool(*id) {
		t.Fatalf("the daemon does not have the broadcast tx %s", txid)
	}
	// The server reports the payment unconfirmed, both when asked about
	// the payee directly and in the wallet's own history.
	waitFor(t, "the server to report the payment unconfirmed", 60*time.Second, func() bool {
		return heightOf(e.run("getaddresshistory", dest), txid) == 0
	})
	waitFor(t, "the wallet to list the payment unconfirmed", 60*time.Second, func() bool {
		return walletConfirmations(e, txid) == 0
	})

	b.generate(1)
	tip := int(b.height())
	waitFor(t, "the server to report the payment mined", 60*time.Second, func() bool {
		return heightOf(e.run("getaddresshistory", dest), txid) == tip
	})
	// One confirmation means the wallet took the new header and checked
	// the payment's merkle proof against it.
	waitFor(t, "the wallet to see one confirmation", 60*time.Second, func() bool {
		return walletConfirmations(e, txid) == 1
	})
	bal = e.balance()
	if _, ok := bal["unconfirmed"]; ok || num(bal["confirmed"])+num(bal["unmatured"]) > 5100-1.25 {
		t.Errorf("balance after the payment confirmed: %v", bal)
	}
	hist := e.run("onchain_history")
	if !strings.Contains(hist, txid) {
		t.Errorf("wallet history lacks %s", txid)
	}
}

var amberBuild struct {
	once sync.Once
	path string
	err  error
}

// amberBinary builds the amber command once per test run.
func amberBinary(t *testing.T) string {
	t.Helper()
	amberBuild.once.Do(func() {
		dir, err := os.MkdirTemp("", "amber-bin")
		if err != nil {
			amberBuild.err = err
			return
		}
		amberBuild.path = filepath.Join(dir, "amber")
		if out, err := exec.Command("go", "build", "-o", amberBuild.path, "amber/cmd/amber").CombinedOutput(); err != nil {
			amberBuild.err = fmt.Errorf("build amber: %v\n%s", err, out)
		}
	})
	if amberBuild.err != nil {
		t.Fatal(amberBuild.err)
	}
	return amberBuild.path
}

// startServe runs the real `amber serve` binary with env until the test
// ends, and returns the process and its log.
func startServe(t *testing.T, env ...string) (*exec.Cmd, *testenv.Buffer) {
	t.Helper()
	serve := exec.Command(amberBinary(t), "serve")
	serve.Env = append(os.Environ(), env...)
	log := &testenv.Buffer{}
	serve.Stderr = log
	if err := serve.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		serve.Process.Signal(os.Interrupt)
		serve.Wait()
		if t.Failed() {
			t.Logf("amber serve log:\n%s", log.String())
		}
	})
	return serve, log
}
