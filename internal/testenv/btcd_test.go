package testenv

import (
	"encoding/json"
	"errors"
	"strings"
	"syscall"
	"testing"

	"github.com/btcsuite/btcd/btcjson"
	"github.com/btcsuite/btcd/chaincfg/v2"
	"github.com/btcsuite/btcd/wire/v2"
)

// TestBtcdRestartAndKill checks that Restart keeps the chain, that Kill
// leaves neither the process nor its group behind, and that btcd comes
// back with the same chain after a kill.
func TestBtcdRestartAndKill(t *testing.T) {
	skipShort(t)
	r := StartRegtest(t, RegtestOptions{})
	b := r.Btcd
	r.Mine(101)
	url := b.URL()

	first := b.Pid()
	b.Restart()
	if b.Pid() == first {
		t.Fatal("Restart kept the same process")
	}
	if h := b.Height(); h != 101 {
		t.Fatalf("after a restart btcd is at height %d, want 101", h)
	}
	if b.URL() != url {
		t.Fatalf("URL changed across a restart: %s, then %s", url, b.URL())
	}

	// An unconfirmed payment is lost with btcd's mempool.
	pay := r.Pay(r.Wallet.NewScript(P2PKH).TxOut(coin))
	payOut := wire.OutPoint{Hash: pay.TxHash(), Index: 0}
	mustUTXO(t, r.Wallet, payOut)

	pid := b.Pid()
	b.Kill()
	if b.Running() {
		t.Fatal("btcd still running after Kill")
	}
	if !processGone(pid) {
		t.Fatalf("process %d still exists after Kill", pid)
	}
	if err := syscall.Kill(-pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Fatalf("process group %d still has members after Kill (kill -0: %v)", pid, err)
	}
	if _, err := b.Call("getblockcount"); err == nil {
		t.Fatal("RPC answered after Kill")
	}

	tip := r.Wallet.TipHash()
	r.Restart()
	best, err := b.Client.GetBestBlockHash()
	if err != nil {
		t.Fatal(err)
	}
	if *best != tip || r.Wallet.TipHash() != tip {
		t.Fatalf("after a kill and restart the best block is %s, want %s", best, tip)
	}
	if _, ok := r.Wallet.UTXO(payOut); ok {
		t.Fatal("the wallet kept a payment btcd no longer has")
	}
	// The wallet follows on without a reorganisation, and can spend the
	// coins of the lost payment again.
	r.Pay(r.Wallet.NewScript(P2PKH).TxOut(coin))
	if got := len(r.Mine(1)); got != 1 {
		t.Fatalf("Sync after a restart connected %d blocks, want 1", got)
	}
}

// TestBtcdMainnet checks that btcd runs in mainnet mode, isolated, with
// the mainnet genesis block, and that Call reports RPC errors typed.
func TestBtcdMainnet(t *testing.T) {
	skipShort(t)
	b := StartBtcd(t, BtcdOptions{Network: "mainnet"})
	if b.Params != &chaincfg.MainNetParams {
		t.Fatalf("params are %s, want mainnet", b.Params.Name)
	}
	raw, err := b.Call("getblockhash", 0)
	if err != nil {
		t.Fatal(err)
	}
	var hash string
	if err := json.Unmarshal(raw, &hash); err != nil {
		t.Fatal(err)
	}
	if hash != chaincfg.MainNetParams.GenesisHash.String() {
		t.Fatalf("block 0 is %s, want the mainnet genesis %s", hash, chaincfg.MainNetParams.GenesisHash)
	}
	peers, err := b.Client.GetPeerInfo()
	if err != nil {
		t.Fatal(err)
	}
	if len(peers) != 0 {
		t.Fatalf("btcd has %d peers, want none", len(peers))
	}
	_, err = b.Call("getblockhash", 1)
	var rpcErr *btcjson.RPCError
	if !errors.As(err, &rpcErr) || rpcErr.Code != btcjson.ErrRPCOutOfRange {
		t.Fatalf("getblockhash 1 on an empty chain: %v, want an out-of-range RPC error", err)
	}
	if !strings.HasPrefix(b.URL(), "http://amber:") {
		t.Fatalf("URL %s lacks the credentials", b.URL())
	}

	// Mainnet data survives a restart untouched.
	b.Restart()
	if h := b.Height(); h != 0 {
		t.Fatalf("height %d after a restart, want 0", h)
	}
}
