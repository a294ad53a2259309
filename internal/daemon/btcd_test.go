package daemon

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"amber/internal/chain"
	"amber/internal/config"
	"amber/internal/testenv"

	"github.com/btcsuite/btcd/chainhash/v2"
	"github.com/btcsuite/btcd/wire/v2"
)

func skipShort(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("starts real daemons; skipped with -short")
	}
}

// btcdURL returns the daemon URL of a btcd started by the harness.
func btcdURL(t *testing.T, b *testenv.Btcd) config.DaemonURL {
	t.Helper()
	urls, err := config.ParseDaemonURLs(b.URL())
	if err != nil || len(urls) != 1 {
		t.Fatalf("parse %s: %v", b.RPCAddr(), err)
	}
	return urls[0]
}

// TestBtcd runs every method against a real regtest btcd.
func TestBtcd(t *testing.T) {
	skipShort(t)
	r := testenv.StartRegtest(t, testenv.RegtestOptions{})
	b, w := r.Btcd, r.Wallet
	r.Mine(110)

	log, logs := newLogger()
	c, err := New([]config.DaemonURL{btcdURL(t, b)}, Options{Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	ctx := testContext(t, time.Minute)

	// The chain as btcd's own rpcclient sees it.
	want := make([]chainhash.Hash, 111)
	for h := range want {
		hash, err := b.Client.GetBlockHash(int64(h))
		if err != nil {
			t.Fatal(err)
		}
		want[h] = *hash
	}

	// A transaction sent through the client stays in the mempool.
	tx, _, err := w.BuildTx(testenv.TxRequest{Outputs: []*wire.TxOut{w.NewScript(testenv.P2WPKH).TxOut(50_000)}})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := tx.Serialize(&buf); err != nil {
		t.Fatal(err)
	}
	rawTx := buf.Bytes()
	txid, err := c.SendRawTransaction(ctx, hex.EncodeToString(rawTx))
	if err != nil {
		t.Fatalf("SendRawTransaction: %v", err)
	}
	if txid != tx.TxHash() {
		t.Fatalf("SendRawTransaction = %s, want %s", txid, tx.TxHash())
	}
	w.AddTx(tx)

	t.Run("BlockchainInfo", func(t *testing.T) {
		info, err := c.BlockchainInfo(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if info.Chain != "regtest" || info.Blocks != 110 || info.Headers != 110 || info.BestBlockHash != want[110] || info.Syncing() {
			t.Errorf("info %+v", info)
		}
	})
	t.Run("BestBlockHash and BlockCount", func(t *testing.T) {
		h, err := c.BestBlockHash(ctx)
		if err != nil || h != want[110] {
			t.Errorf("BestBlockHash = %s, %v", h, err)
		}
		n, err := c.BlockCount(ctx)
		if err != nil || n != 110 {
			t.Errorf("BlockCount = %d, %v", n, err)
		}
	})
	t.Run("BlockHashes", func(t *testing.T) {
		hs, err := c.BlockHashes(ctx, 0, 111)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(hs, want) {
			t.Errorf("BlockHashes differ from getblockhash")
		}
		for _, h := range []int{0, 1, 55, 110} {
			one, err := c.BlockHash(ctx, h)
			if err != nil || one != hs[h] {
				t.Errorf("BlockHash(%d) = %s, %v; BlockHashes has %s", h, one, err, hs[h])
			}
		}
		_, err = c.BlockHashes(ctx, 100, 20)
		var rpcErr *RPCError
		if !errors.As(err, &rpcErr) {
			t.Errorf("BlockHashes past the tip: %v, want an RPC error", err)
		} else {
			t.Logf("btcd past the tip: %v", err)
		}
	})
	t.Run("RawBlocks", func(t *testing.T) {
		blocks, err := c.RawBlocks(ctx, want)
		if err != nil {
			t.Fatal(err)
		}
		for h, raw := range blocks {
			blk, err := chain.ParseBlock(raw)
			if err != nil {
				t.Fatalf("block %d: %v", h, err)
			}
			if blk.Hash != want[h] {
				t.Errorf("block %d hashes to %s, want %s", h, blk.Hash, want[h])
			}
		}
		raw, err := c.RawBlock(ctx, want[0])
		if err != nil || !bytes.Equal(raw, blocks[0]) {
			t.Errorf("RawBlock(genesis): %v", err)
		}
		if s := c.current().rest.Load(); s != restNo {
			t.Errorf("REST state %d on btcd, want no", s)
		}
		if _, err := c.RawBlock(ctx, chainhash.Hash{1}); !errors.Is(err, ErrNotFound) {
			t.Errorf("RawBlock of an unknown hash: %v, want ErrNotFound", err)
		}
	})
	t.Run("transactions", func(t *testing.T) {
		mempool, err := c.RawMempool(ctx)
		if err != nil || !slices.Contains(mempool, txid) {
			t.Errorf("RawMempool = %v, %v; want it to hold %s", mempool, err, txid)
		}
		raw, err := c.RawTransaction(ctx, txid)
		if err != nil || !bytes.Equal(raw, rawTx) {
			t.Errorf("RawTransaction: %v", err)
		}
		block1, err := c.RawBlock(ctx, want[1])
		if err != nil {
			t.Fatal(err)
		}
		blk, err := chain.ParseBlock(block1)
		if err != nil {
			t.Fatal(err)
		}
		coinbase := blk.Txs[0].TxID
		res, err := c.RawTransactions(ctx, []chainhash.Hash{txid, {2}, coinbase})
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(res[0].Raw, rawTx) || res[0].Err != nil {
			t.Errorf("mempool transaction: %+v", res[0])
		}
		if !errors.Is(res[1].Err, ErrNotFound) {
			t.Errorf("unknown transaction: %v, want ErrNotFound", res[1].Err)
		}
		if res[2].Err != nil || chainhash.DoubleHashH(res[2].Raw) != coinbase {
			t.Errorf("coinbase of block 1: %v", res[2].Err)
		}
		verbose, err := c.RawTransactionVerbose(ctx, txid)
		var v struct {
			TxID string `json:"txid"`
		}
		if err != nil || json.Unmarshal(verbose, &v) != nil || v.TxID != txid.String() {
			t.Errorf("RawTransactionVerbose = %.200s, %v", verbose, err)
		}
	})
	t.Run("SendRawTransaction rejections", func(t *testing.T) {
		cases := []struct {
			name, hex string
			code      int
			message   string // the start of btcd's message
		}{
			{"not hex", "zz", -22, "Argument must be hexadecimal string"},
			{"garbage", "deadbeef", -22, "TX decode failed"},
			{"already in the mempool", hex.EncodeToString(rawTx), -26, "TX rejected: already have transaction"},
		}
		for _, tc := range cases {
			_, err := c.SendRawTransaction(ctx, tc.hex)
			var rpcErr *RPCError
			if !errors.As(err, &rpcErr) || rpcErr.Code != tc.code || !strings.HasPrefix(rpcErr.Message, tc.message) {
				t.Errorf("%s: %v, want RPC error %d %q...", tc.name, err, tc.code, tc.message)
				continue
			}
			t.Logf("btcd rejects %s: %d %q", tc.name, rpcErr.Code, rpcErr.Message)
		}
	})
	t.Run("fees", func(t *testing.T) {
		fee, err := c.EstimateFee(ctx, 6, "")
		if err != nil || (fee != -1 && fee <= 0) {
			t.Errorf("EstimateFee = %v, %v", fee, err)
		}
		// btcd's own answer, which EstimateFee must pass on (0 means
		// no estimate).
		var direct float64
		if raw, err := b.Call("estimatefee", 6); err != nil || json.Unmarshal(raw, &direct) != nil {
			t.Fatalf("btcd estimatefee: %s, %v", raw, err)
		}
		if direct <= 0 {
			direct = -1
		}
		if fee != direct {
			t.Errorf("EstimateFee = %v, btcd's estimatefee says %v", fee, direct)
		}
		if !c.current().noSmartFee.Load() {
			t.Errorf("estimatesmartfee not detected as missing on btcd")
		}
		if fee, err := c.EstimateFee(ctx, 0, "CONSERVATIVE"); err != nil || fee != -1 {
			t.Errorf("EstimateFee(0) = %v, %v; want -1", fee, err)
		}
		relay, err := c.RelayFee(ctx)
		if err != nil || relay != 0.00001 {
			t.Errorf("RelayFee = %v, %v; want btcd's default 0.00001", relay, err)
		}
		info, err := c.MempoolInfo(ctx)
		if err != nil || info.Size != 1 || info.Bytes <= 0 || info.MinRelayTxFee != relay || info.MempoolMinFee != relay {
			t.Errorf("MempoolInfo = %+v, %v", info, err)
		}
	})
	t.Run("SubmitPackage", func(t *testing.T) {
		_, err := c.SubmitPackage(ctx, []string{hex.EncodeToString(rawTx)})
		if !errors.Is(err, ErrUnsupported) {
			t.Errorf("SubmitPackage on btcd: %v, want ErrUnsupported", err)
		}
	})
	t.Run("Call", func(t *testing.T) {
		raw, err := c.Call(ctx, "getblockcount")
		if err != nil || string(raw) != "110" {
			t.Errorf("Call(getblockcount) = %s, %v", raw, err)
		}
	})
	t.Run("mined", func(t *testing.T) {
		mined := b.Generate(1)
		raw, err := c.RawBlock(ctx, mined[0])
		if err != nil {
			t.Fatal(err)
		}
		blk, err := chain.ParseBlock(raw)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Contains(blk.TxIDs(), txid) {
			t.Errorf("the mined block does not hold %s", txid)
		}
	})
	if n := logs.count("daemon request failed; retrying"); n != 0 {
		t.Errorf("requests to a healthy btcd failed\n%s", logs)
	}
	t.Logf("log:\n%s", logs)
}

// TestBtcdFailover runs BlockHash in a loop against two btcd nodes on
// the same chain and stops the first mid-way: every call must succeed,
// through the second, with one failover log line. Then it checks that
// cancelling a request that is retrying against the stopped node returns
// at once.
func TestBtcdFailover(t *testing.T) {
	skipShort(t)
	r := testenv.StartRegtest(t, testenv.RegtestOptions{})
	first := r.Btcd
	first.Generate(20)
	second := testenv.StartBtcd(t, testenv.BtcdOptions{})

	// Give the second node the first one's chain.
	want := make([]chainhash.Hash, 21)
	for h := range want {
		hash, err := first.Client.GetBlockHash(int64(h))
		if err != nil {
			t.Fatal(err)
		}
		want[h] = *hash
		if h == 0 {
			continue
		}
		raw, err := first.Call("getblock", hash.String(), 0)
		if err != nil {
			t.Fatal(err)
		}
		var blockHex string
		if err := json.Unmarshal(raw, &blockHex); err != nil {
			t.Fatal(err)
		}
		if _, err := second.Call("submitblock", blockHex); err != nil {
			t.Fatalf("submitblock %d: %v", h, err)
		}
	}
	if best, err := second.Client.GetBestBlockHash(); err != nil || *best != want[20] {
		t.Fatalf("second node's best block %v, %v; want %s", best, err, want[20])
	}

	log, logs := newLogger()
	urls := []config.DaemonURL{btcdURL(t, first), btcdURL(t, second)}
	c, err := New(urls, Options{Logger: log, RetryDelay: 20 * time.Millisecond, MaxRetryDelay: 100 * time.Millisecond, Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ctx := testContext(t, time.Minute)

	var (
		calls atomic.Int64
		done  = make(chan struct{})
		wg    sync.WaitGroup
		mu    sync.Mutex
		errs  []error
	)
	wg.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-done:
				return
			default:
			}
			h := i % len(want)
			got, err := c.BlockHash(ctx, h)
			if err == nil && got != want[h] {
				err = fmt.Errorf("height %d: hash %s, want %s", h, got, want[h])
			}
			if err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
			calls.Add(1)
		}
	})
	waitCalls := func(n int64) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for calls.Load() < n {
			if time.Now().After(deadline) {
				close(done)
				wg.Wait()
				t.Fatalf("only %d calls made, want %d", calls.Load(), n)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	waitCalls(30)
	stopStart := time.Now()
	first.Stop()
	t.Logf("first node stopped in %v", time.Since(stopStart))
	waitCalls(calls.Load() + 50)
	close(done)
	wg.Wait()

	if len(errs) > 0 {
		t.Errorf("%d of %d calls failed, first: %v", len(errs), calls.Load(), errs[0])
	}
	if c.URL() != urls[1].String() {
		t.Errorf("URL() = %s, want the second node %s", c.URL(), urls[1])
	}
	if n := logs.count("daemon failover"); n != 1 {
		t.Errorf("%d failover log lines, want 1\n%s", n, logs)
	}
	t.Logf("%d calls; log:\n%s", calls.Load(), logs)

	// A request retrying against the stopped node ends when its context
	// does.
	alone, err := New(urls[:1], Options{MaxRetryDelay: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	cctx, cancel := context.WithCancel(ctx)
	time.AfterFunc(500*time.Millisecond, cancel)
	start := time.Now()
	_, err = alone.BlockHash(cctx, 1)
	took := time.Since(start)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("BlockHash against a stopped node: %v, want context.Canceled", err)
	}
	if took < 500*time.Millisecond || took > 700*time.Millisecond {
		t.Errorf("cancelled request returned after %v, want 500ms", took)
	}
	t.Logf("cancelled: %v", err)
}
