package testenv

import (
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/btcsuite/btcd/chaincfg/v2"
)

// TestBitcoindRegtest checks that Core runs isolated on loopback with REST
// and ZMQ, mines, restarts with its chain and dies with Kill.
func TestBitcoindRegtest(t *testing.T) {
	skipShort(t)
	c := StartBitcoind(t, BitcoindOptions{OldTip: true})
	if c.Params != &chaincfg.RegressionNetParams {
		t.Fatalf("params %s, want regtest", c.Params.Name)
	}
	w := NewWallet(c.Params, []byte(DefaultSeed))
	addr := w.NewScript(P2WPKH).Address.EncodeAddress()
	hashes := c.Generate(5, addr)
	if len(hashes) != 5 || c.Height() != 5 || c.BestHash() != hashes[4] {
		t.Fatalf("after mining 5: height %d, best %s", c.Height(), c.BestHash())
	}
	if c.InIBD() {
		t.Fatal("regtest Core with fresh blocks reports initial block download")
	}
	var peers []any
	c.MustCall(&peers, "getpeerinfo")
	if len(peers) != 0 {
		t.Fatalf("bitcoind has %d peers, want none", len(peers))
	}
	// REST serves the raw block.
	resp, err := http.Get("http://" + c.RPCAddr() + "/rest/block/" + hashes[4].String() + ".bin")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || len(body) < 80 {
		t.Fatalf("REST block: %s, %d bytes", resp.Status, len(body))
	}
	// Both ZMQ publishers listen.
	for _, a := range []string{c.ZMQHashBlock, c.ZMQSequence} {
		conn, err := net.DialTimeout("tcp", strings.TrimPrefix(a, "tcp://"), 5*time.Second)
		if err != nil {
			t.Fatalf("ZMQ %s: %v", a, err)
		}
		conn.Close()
	}
	if strings.Contains(strings.Join(c.proc.cmd.Args, " "), c.RPCPass) {
		t.Fatal("the RPC password is on bitcoind's command line")
	}

	url := c.URL()
	c.Restart()
	if c.Height() != 5 || c.URL() != url {
		t.Fatalf("after a restart: height %d, URL %s (was %s)", c.Height(), c.URL(), url)
	}
	pid := c.Pid()
	c.Kill()
	if c.Running() || !processGone(pid) {
		t.Fatal("bitcoind still running after Kill")
	}
	if err := syscall.Kill(-pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Fatalf("process group %d still has members after Kill", pid)
	}
}

// TestBitcoindCookie checks that a cookie node answers with its cookie and
// writes a new one on restart.
func TestBitcoindCookie(t *testing.T) {
	skipShort(t)
	c := StartBitcoind(t, BitcoindOptions{Cookie: true})
	_, pass1, err := c.Cookie()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(c.URL(), "@") {
		t.Fatalf("cookie URL %s carries credentials", c.URL())
	}
	c.Restart()
	_, pass2, err := c.Cookie()
	if err != nil {
		t.Fatal(err)
	}
	if pass1 == pass2 {
		t.Fatal("the cookie did not change across a restart")
	}
	if h := c.Height(); h != 0 {
		t.Fatalf("height %d", h)
	}
}

// TestBitcoindMainnet loads btcd's real mainnet blocks into Core in
// mainnet mode.
func TestBitcoindMainnet(t *testing.T) {
	skipShort(t)
	f := MainnetBlocksFile(t)
	c := StartBitcoind(t, BitcoindOptions{Network: "mainnet", OldTip: true, LoadBlocks: []string{f}, LoadHeight: MainnetBlocksTip})
	var hash string
	c.MustCall(&hash, "getblockhash", 0)
	if hash != chaincfg.MainNetParams.GenesisHash.String() {
		t.Fatalf("block 0 is %s", hash)
	}
	if c.Height() != MainnetBlocksTip {
		t.Fatalf("height %d, want %d", c.Height(), MainnetBlocksTip)
	}
}
