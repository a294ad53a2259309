package daemon

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"amber/internal/config"

	"github.com/btcsuite/btcd/chainhash/v2"
)

func TestNew(t *testing.T) {
	good := config.DaemonURL{Scheme: "http", Host: "127.0.0.1", Port: 8332, User: "u", Password: "secret"}
	cases := []struct {
		name    string
		urls    []config.DaemonURL
		wantErr string
	}{
		{"no urls", nil, "no daemon URLs"},
		{"bad scheme", []config.DaemonURL{{Scheme: "ftp", Host: "h", Port: 1}}, "scheme"},
		{"no port", []config.DaemonURL{{Scheme: "http", Host: "h"}}, "want a host and a port"},
		{"no host", []config.DaemonURL{{Scheme: "http", Port: 1}}, "want a host and a port"},
		{"one", []config.DaemonURL{good}, ""},
		{"empty scheme means http", []config.DaemonURL{{Host: "::1", Port: 8332}}, ""},
		{"two", []config.DaemonURL{good, {Scheme: "HTTPS", Host: "example.org", Port: 443}}, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := New(tc.urls, Options{})
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("New: %v, want an error containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.opts.RetryDelay != DefaultRetryDelay || c.opts.MaxRetryDelay != DefaultMaxRetryDelay ||
				c.opts.Timeout != DefaultTimeout || cap(c.sem) != DefaultConcurrency {
				t.Errorf("defaults not applied: %+v", c.opts)
			}
			for _, u := range c.URLs() {
				if strings.Contains(u, "secret") {
					t.Errorf("URLs() shows the password: %s", u)
				}
			}
			if c.URL() != c.URLs()[0] {
				t.Errorf("URL() = %s, want the first of %v", c.URL(), c.URLs())
			}
		})
	}
	t.Run("urls", func(t *testing.T) {
		c, err := New([]config.DaemonURL{good, {Host: "::1", Port: 18443}}, Options{})
		if err != nil {
			t.Fatal(err)
		}
		want := []string{"http://u@127.0.0.1:8332/", "http://[::1]:18443/"}
		if got := c.URLs(); !slices.Equal(got, want) {
			t.Errorf("URLs() = %v, want %v", got, want)
		}
		if c.eps[1].rpcURL != "http://[::1]:18443/" {
			t.Errorf("rpc URL %s", c.eps[1].rpcURL)
		}
	})
}

// TestMethods runs every method against the fake daemon.
func TestMethods(t *testing.T) {
	f := newFakeDaemon(t, 20, "user", "pass")
	tx := []byte("a fake transaction")
	txid := chainhash.DoubleHashH(tx)
	f.txs[txid] = tx
	c := newTestClient(t, fastOptions(nil), f)
	ctx := testContext(t, 10*time.Second)

	t.Run("BlockchainInfo", func(t *testing.T) {
		info, err := c.BlockchainInfo(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if info.Chain != "regtest" || info.Blocks != 20 || info.Headers != 20 || info.BestBlockHash != f.hashes[20] {
			t.Errorf("info %+v", info)
		}
		if info.InitialBlockDownload != nil || info.VerificationProgress != nil || info.Syncing() {
			t.Errorf("btcd-style info has IBD fields or syncs: %+v", info)
		}
	})
	t.Run("BestBlockHash", func(t *testing.T) {
		h, err := c.BestBlockHash(ctx)
		if err != nil || h != f.hashes[20] {
			t.Errorf("BestBlockHash = %s, %v; want %s", h, err, f.hashes[20])
		}
	})
	t.Run("BlockCount", func(t *testing.T) {
		n, err := c.BlockCount(ctx)
		if err != nil || n != 20 {
			t.Errorf("BlockCount = %d, %v", n, err)
		}
	})
	t.Run("BlockHash", func(t *testing.T) {
		h, err := c.BlockHash(ctx, 7)
		if err != nil || h != f.hashes[7] {
			t.Errorf("BlockHash(7) = %s, %v", h, err)
		}
		_, err = c.BlockHash(ctx, 21)
		var rpcErr *RPCError
		if !errors.As(err, &rpcErr) || rpcErr.Code != -8 {
			t.Errorf("BlockHash(21): %v, want RPC error -8", err)
		}
	})
	t.Run("BlockHashes", func(t *testing.T) {
		_, posts0, batches0 := f.stats()
		hs, err := c.BlockHashes(ctx, 0, 21)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(hs, f.hashes) {
			t.Errorf("BlockHashes differ from the chain")
		}
		if _, posts, batches := f.stats(); posts-posts0 != 1 || batches-batches0 != 1 {
			t.Errorf("BlockHashes made %d requests (%d batches), want one batch", posts-posts0, batches-batches0)
		}
		if hs, err := c.BlockHashes(ctx, 5, 0); err != nil || hs != nil {
			t.Errorf("BlockHashes(5, 0) = %v, %v", hs, err)
		}
		_, err = c.BlockHashes(ctx, 18, 5)
		if !strings.Contains(fmtErr(err), "getblockhash 21") || !errors.As(err, new(*RPCError)) {
			t.Errorf("BlockHashes past the tip: %v", err)
		}
	})
	t.Run("RawBlocks", func(t *testing.T) {
		raw, err := c.RawBlock(ctx, f.hashes[3])
		if err != nil || !bytes.Equal(raw, f.blocks[f.hashes[3]]) {
			t.Errorf("RawBlock: %v", err)
		}
		_, posts0, _ := f.stats()
		blocks, err := c.RawBlocks(ctx, f.hashes[5:15])
		if err != nil {
			t.Fatal(err)
		}
		for i, b := range blocks {
			if !bytes.Equal(b, f.blocks[f.hashes[5+i]]) {
				t.Errorf("block %d differs", 5+i)
			}
		}
		if _, posts, _ := f.stats(); posts-posts0 != 1 {
			t.Errorf("RawBlocks made %d requests, want one batch", posts-posts0)
		}
		_, err = c.RawBlock(ctx, txid)
		if !errors.Is(err, ErrNotFound) {
			t.Errorf("RawBlock of an unknown hash: %v, want ErrNotFound", err)
		}
		if blocks, err := c.RawBlocks(ctx, nil); err != nil || len(blocks) != 0 {
			t.Errorf("RawBlocks(nil) = %v, %v", blocks, err)
		}
	})
	t.Run("RawTransaction", func(t *testing.T) {
		raw, err := c.RawTransaction(ctx, txid)
		if err != nil || !bytes.Equal(raw, tx) {
			t.Errorf("RawTransaction = %x, %v", raw, err)
		}
		_, err = c.RawTransaction(ctx, f.hashes[1])
		if !errors.Is(err, ErrNotFound) {
			t.Errorf("RawTransaction of an unknown txid: %v", err)
		}
	})
	t.Run("RawTransactions", func(t *testing.T) {
		res, err := c.RawTransactions(ctx, []chainhash.Hash{txid, f.hashes[1], txid})
		if err != nil {
			t.Fatal(err)
		}
		if len(res) != 3 || !bytes.Equal(res[0].Raw, tx) || res[0].Err != nil || !bytes.Equal(res[2].Raw, tx) {
			t.Fatalf("results %+v", res)
		}
		var rpcErr *RPCError
		if res[1].Raw != nil || !errors.As(res[1].Err, &rpcErr) || rpcErr.Code != CodeNotFound {
			t.Errorf("missing transaction: %+v", res[1])
		}
	})
	t.Run("RawTransactionVerbose", func(t *testing.T) {
		raw, err := c.RawTransactionVerbose(ctx, txid)
		if err != nil {
			t.Fatal(err)
		}
		var v struct {
			TxID string `json:"txid"`
			Hex  string `json:"hex"`
		}
		if err := json.Unmarshal(raw, &v); err != nil || v.TxID != txid.String() || v.Hex != hex.EncodeToString(tx) {
			t.Errorf("verbose %s, %v", raw, err)
		}
	})
	t.Run("RawMempool", func(t *testing.T) {
		txids, err := c.RawMempool(ctx)
		if err != nil || len(txids) != 1 || txids[0] != txid {
			t.Errorf("RawMempool = %v, %v", txids, err)
		}
	})
	t.Run("SendRawTransaction", func(t *testing.T) {
		raw := bytes.Repeat([]byte{7}, 40)
		got, err := c.SendRawTransaction(ctx, hex.EncodeToString(raw))
		if err != nil || got != chainhash.DoubleHashH(raw) {
			t.Errorf("SendRawTransaction = %s, %v", got, err)
		}
		_, posts0, _ := f.stats()
		_, err = c.SendRawTransaction(ctx, "zz")
		var rpcErr *RPCError
		if !errors.As(err, &rpcErr) || rpcErr.Code != -22 || rpcErr.Message != "TX decode failed" {
			t.Errorf("SendRawTransaction of garbage: %v", err)
		}
		if _, posts, _ := f.stats(); posts-posts0 != 1 {
			t.Errorf("a rejection was retried: %d requests", posts-posts0)
		}
	})
	t.Run("Call", func(t *testing.T) {
		raw, err := c.Call(ctx, "getblockhash", 2)
		if err != nil || string(bytes.TrimSpace(raw)) != `"`+f.hashes[2].String()+`"` {
			t.Errorf("Call = %s, %v", raw, err)
		}
		_, err = c.Call(ctx, "nosuchmethod")
		if !errors.Is(err, ErrUnsupported) {
			t.Errorf("unknown method: %v, want ErrUnsupported", err)
		}
	})
}

// fmtErr returns err's text, or "" for nil.
func fmtErr(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func TestChainInfoCore(t *testing.T) {
	f := newFakeDaemon(t, 1, "", "")
	f.handle("getblockchaininfo", func([]json.RawMessage) (any, *RPCError) {
		return map[string]any{"chain": "main", "blocks": 1, "headers": 900000, "bestblockhash": f.hashes[1].String(),
			"initialblockdownload": true, "verificationprogress": 0.0001}, nil
	})
	c := newTestClient(t, fastOptions(nil), f)
	info, err := c.BlockchainInfo(testContext(t, 5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if info.InitialBlockDownload == nil || !*info.InitialBlockDownload || info.VerificationProgress == nil ||
		*info.VerificationProgress != 0.0001 || !info.Syncing() || info.Headers != 900000 {
		t.Errorf("info %+v", info)
	}

	for btcd, core := range chainNames {
		f.handle("getblockchaininfo", func([]json.RawMessage) (any, *RPCError) {
			return map[string]any{"chain": btcd, "blocks": 1, "headers": 1, "bestblockhash": f.hashes[1].String()}, nil
		})
		info, err := c.BlockchainInfo(testContext(t, 5*time.Second))
		if err != nil || info.Chain != core {
			t.Errorf("btcd chain %q: got %q, %v; want %q", btcd, info.Chain, err, core)
		}
	}
}

func TestEstimateFee(t *testing.T) {
	smart := func(res map[string]any) fakeMethod {
		return func([]json.RawMessage) (any, *RPCError) { return res, nil }
	}
	fixed := func(v float64) fakeMethod {
		return func([]json.RawMessage) (any, *RPCError) { return v, nil }
	}
	failing := func([]json.RawMessage) (any, *RPCError) {
		return nil, &RPCError{Code: -32600, Message: "Invalid request: malformed"}
	}
	cases := []struct {
		name      string
		methods   map[string]fakeMethod
		mode      string
		want      float64
		wantCalls []string // over two EstimateFee calls
	}{
		{
			name:      "core",
			methods:   map[string]fakeMethod{"estimatesmartfee": smart(map[string]any{"feerate": 0.00012, "blocks": 6})},
			want:      0.00012,
			wantCalls: []string{"estimatesmartfee", "estimatesmartfee"},
		},
		{
			name:      "core with mode",
			methods:   map[string]fakeMethod{"estimatesmartfee": smart(map[string]any{"feerate": 0.0002, "blocks": 6})},
			mode:      "ECONOMICAL",
			want:      0.0002,
			wantCalls: []string{"estimatesmartfee", "estimatesmartfee"},
		},
		{
			name:      "core without an estimate",
			methods:   map[string]fakeMethod{"estimatesmartfee": smart(map[string]any{"errors": []string{"Insufficient data or no feerate found"}, "blocks": 0})},
			want:      -1,
			wantCalls: []string{"estimatesmartfee", "estimatesmartfee"},
		},
		{
			name:      "btcd",
			methods:   map[string]fakeMethod{"estimatefee": fixed(0.0001)},
			want:      0.0001,
			wantCalls: []string{"estimatesmartfee", "estimatefee", "estimatefee"},
		},
		{
			name:      "btcd that has seen too few blocks",
			methods:   map[string]fakeMethod{"estimatefee": failing},
			want:      -1,
			wantCalls: []string{"estimatesmartfee", "estimatefee", "estimatefee"},
		},
		{
			name:      "legacy -1",
			methods:   map[string]fakeMethod{"estimatefee": fixed(-1)},
			want:      -1,
			wantCalls: []string{"estimatesmartfee", "estimatefee", "estimatefee"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeDaemon(t, 1, "", "")
			var mu sync.Mutex
			var params [][]json.RawMessage
			for m, fn := range tc.methods {
				f.handle(m, func(p []json.RawMessage) (any, *RPCError) {
					mu.Lock()
					params = append(params, p)
					mu.Unlock()
					return fn(p)
				})
			}
			c := newTestClient(t, fastOptions(nil), f)
			ctx := testContext(t, 5*time.Second)
			for range 2 {
				fee, err := c.EstimateFee(ctx, 6, tc.mode)
				if err != nil || fee != tc.want {
					t.Errorf("EstimateFee = %v, %v; want %v", fee, err, tc.want)
				}
			}
			if calls, _, _ := f.stats(); !slices.Equal(calls, tc.wantCalls) {
				t.Errorf("calls %v, want %v", calls, tc.wantCalls)
			}
			mu.Lock()
			defer mu.Unlock()
			wantParams := `[6]`
			if tc.mode != "" && strings.HasPrefix(tc.name, "core") {
				wantParams = `[6,"` + tc.mode + `"]`
			}
			if got, _ := json.Marshal(params[0]); string(got) != wantParams {
				t.Errorf("params %s, want %s", got, wantParams)
			}
		})
	}
}

func TestRelayFeeAndMempoolInfo(t *testing.T) {
	cases := []struct {
		name      string
		methods   map[string]fakeMethod
		wantRelay float64
		want      MempoolInfo
	}{
		{
			name: "core",
			methods: map[string]fakeMethod{
				"getnetworkinfo": func([]json.RawMessage) (any, *RPCError) {
					return map[string]any{"relayfee": 0.00001, "version": 280000}, nil
				},
				"getmempoolinfo": func([]json.RawMessage) (any, *RPCError) {
					return map[string]any{"size": 3, "bytes": 600, "mempoolminfee": 0.00002, "minrelaytxfee": 0.00001, "incrementalrelayfee": 0.000015}, nil
				},
			},
			wantRelay: 0.00001,
			want:      MempoolInfo{Size: 3, Bytes: 600, MempoolMinFee: 0.00002, MinRelayTxFee: 0.00001, IncrementalRelayFee: 0.000015},
		},
		{
			name: "btcd",
			methods: map[string]fakeMethod{
				"getnetworkinfo": func([]json.RawMessage) (any, *RPCError) {
					return nil, &RPCError{Code: -1, Message: "Command unimplemented"}
				},
				"getinfo": func([]json.RawMessage) (any, *RPCError) {
					return map[string]any{"version": 260200, "relayfee": 0.00001}, nil
				},
				"getmempoolinfo": func([]json.RawMessage) (any, *RPCError) {
					return map[string]any{"size": 2, "bytes": 400}, nil
				},
			},
			wantRelay: 0.00001,
			want:      MempoolInfo{Size: 2, Bytes: 400, MempoolMinFee: 0.00001, MinRelayTxFee: 0.00001, IncrementalRelayFee: 0.00001},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeDaemon(t, 1, "", "")
			for m, fn := range tc.methods {
				f.handle(m, fn)
			}
			c := newTestClient(t, fastOptions(nil), f)
			ctx := testContext(t, 5*time.Second)
			for range 2 {
				fee, err := c.RelayFee(ctx)
				if err != nil || fee != tc.wantRelay {
					t.Errorf("RelayFee = %v, %v", fee, err)
				}
			}
			info, err := c.MempoolInfo(ctx)
			if err != nil || *info != tc.want {
				t.Errorf("MempoolInfo = %+v, %v; want %+v", info, err, tc.want)
			}
			calls, _, _ := f.stats()
			if n := strings.Count(strings.Join(calls, " "), "getnetworkinfo"); n != 1 && tc.name == "btcd" {
				t.Errorf("getnetworkinfo asked %d times of btcd, want once: %v", n, calls)
			}
		})
	}
}

func TestSubmitPackage(t *testing.T) {
	f := newFakeDaemon(t, 1, "", "")
	c := newTestClient(t, fastOptions(nil), f)
	ctx := testContext(t, 5*time.Second)

	_, err := c.SubmitPackage(ctx, []string{"00", "01"})
	if !errors.Is(err, ErrUnsupported) {
		t.Fatalf("SubmitPackage on a daemon without it: %v, want ErrUnsupported", err)
	}

	reply := `{"package_msg":"transaction failed","tx-results":{` +
		`"ffff":{"txid":"bbbb","error":"min relay fee not met"},` +
		`"0000":{"txid":"aaaa","vsize":141,"fees":{"base":0.0001}}},"replaced-transactions":[]}`
	var mu sync.Mutex
	var got []json.RawMessage
	f.handle("submitpackage", func(p []json.RawMessage) (any, *RPCError) {
		mu.Lock()
		defer mu.Unlock()
		got = p
		return json.RawMessage(reply), nil
	})
	res, err := c.SubmitPackage(ctx, []string{"00", "01"})
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 1 || string(got[0]) != `["00","01"]` {
		t.Errorf("params %s", got)
	}
	want := []PackageTx{{WTxID: "ffff", TxID: "bbbb", Error: "min relay fee not met"}, {WTxID: "0000", TxID: "aaaa"}}
	if res.Message != "transaction failed" || !slices.Equal(res.Txs, want) {
		t.Errorf("result %+v", res)
	}
	var v map[string]any
	if err := json.Unmarshal(res.Raw, &v); err != nil || v["replaced-transactions"] == nil {
		t.Errorf("raw result %s", res.Raw)
	}
}

// TestTransportFaults checks that every kind of transport failure is
// retried until the request succeeds, and that daemon errors are not.
func TestTransportFaults(t *testing.T) {
	cases := []struct {
		name     string
		faults   []fault
		opts     func(*Options)
		wantErr  int // expected RPC error code; 0 means success
		wantLogs []string
	}{
		{name: "http 500 without json", faults: []fault{statusFault(500, "Internal Server Error")}, wantLogs: []string{"daemon request failed; retrying", "daemon reachable"}},
		{name: "work queue full", faults: []fault{statusFault(503, "Work queue depth exceeded"), statusFault(503, "Work queue depth exceeded")}},
		{name: "bad credentials", faults: []fault{statusFault(401, "")}},
		{name: "forbidden", faults: []fault{statusFault(403, "")}},
		{name: "hang-up", faults: []fault{hangupFault, hangupFault}},
		{name: "reply shorter than its length", faults: []fault{shortReplyFault}},
		{name: "not json-rpc", faults: []fault{statusFault(200, `{"hello":"world"}`)}},
		{
			name:   "slow reply times out",
			faults: []fault{slowFault(5 * time.Second)},
			opts:   func(o *Options) { o.Timeout = 100 * time.Millisecond },
		},
		{name: "slow reply within the timeout", faults: []fault{slowFault(50 * time.Millisecond)}},
		{name: "warming up", faults: []fault{warmupFault, warmupFault, warmupFault}, wantLogs: []string{"daemon warming up", "daemon warmed up"}},
		{name: "core error in http 500", faults: []fault{rpcErrorFault(-5, "Block not found")}, wantErr: -5},
		{name: "core error after a failure", faults: []fault{hangupFault, rpcErrorFault(-8, "Block height out of range")}, wantErr: -8},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeDaemon(t, 4, "user", "pass")
			f.inject(tc.faults...)
			log, logs := newLogger()
			opts := fastOptions(log)
			if tc.opts != nil {
				tc.opts(&opts)
			}
			c := newTestClient(t, opts, f)
			h, err := c.BlockHash(testContext(t, 10*time.Second), 4)
			if tc.wantErr != 0 {
				var rpcErr *RPCError
				if !errors.As(err, &rpcErr) || rpcErr.Code != tc.wantErr {
					t.Fatalf("BlockHash: %v, want RPC error %d", err, tc.wantErr)
				}
				if calls, _, _ := f.stats(); len(calls) != 0 {
					t.Errorf("the daemon error was retried: %v", calls)
				}
				return
			}
			if err != nil || h != f.hashes[4] {
				t.Fatalf("BlockHash = %s, %v", h, err)
			}
			for _, msg := range tc.wantLogs {
				if logs.count(msg) != 1 {
					t.Errorf("want one %q log line\n%s", msg, logs)
				}
			}
			f.mu.Lock()
			left := len(f.faults)
			f.mu.Unlock()
			if left != 0 {
				t.Errorf("%d faults not reached", left)
			}
		})
	}
}

// TestBatch checks batch requests: one HTTP request, replies matched by
// id in any order, per-call errors, warm-up and incomplete replies
// retried as a whole.
func TestBatch(t *testing.T) {
	reversed := func(w http.ResponseWriter, r *http.Request) bool {
		var items []json.RawMessage
		_ = json.NewDecoder(r.Body).Decode(&items)
		return writeReversed(w, items)
	}
	cases := []struct {
		name   string
		faults func(f *fakeDaemon) []fault
		posts  int
	}{
		{name: "plain", posts: 1},
		{name: "replies in reverse order", faults: func(f *fakeDaemon) []fault { return []fault{f.wrap(reversed)} }, posts: 1},
		{name: "warm-up", faults: func(*fakeDaemon) []fault { return []fault{warmupFault, warmupFault} }, posts: 1},
		{name: "short reply", faults: func(f *fakeDaemon) []fault { return []fault{f.wrap(dropLast)} }, posts: 2},
		{name: "one error for the batch", faults: func(*fakeDaemon) []fault {
			return []fault{statusFault(200, `{"result":null,"error":{"code":-28,"message":"Loading"},"id":null}`)}
		}, posts: 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeDaemon(t, 30, "", "")
			if tc.faults != nil {
				f.inject(tc.faults(f)...)
			}
			c := newTestClient(t, fastOptions(nil), f)
			hs, err := c.BlockHashes(testContext(t, 5*time.Second), 3, 25)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(hs, f.hashes[3:28]) {
				t.Errorf("hashes differ")
			}
			if _, posts, batches := f.stats(); posts != tc.posts || batches != tc.posts {
				t.Errorf("%d requests, %d batches; want %d", posts, batches, tc.posts)
			}
		})
	}
}

// wrap turns a fault that gets the fake's batch handling into one that
// answers the request itself: handler sees the answers of the fake.
func (f *fakeDaemon) wrap(mangle fault) fault {
	return func(w http.ResponseWriter, r *http.Request) bool {
		rec := &replyRecorder{header: http.Header{}}
		f.serveUnfaulted(rec, r)
		r2 := r.Clone(r.Context())
		r2.Body = nopCloser{bytes.NewReader(rec.body.Bytes())}
		return mangle(w, r2)
	}
}

// serveUnfaulted handles a request normally, bypassing queued faults.
func (f *fakeDaemon) serveUnfaulted(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	saved := f.faults
	f.faults = nil
	f.mu.Unlock()
	f.serve(w, r)
	f.mu.Lock()
	f.faults = append(f.faults, saved...)
	f.mu.Unlock()
}

type nopCloser struct{ *bytes.Reader }

func (nopCloser) Close() error { return nil }

// replyRecorder keeps a reply in memory.
type replyRecorder struct {
	header http.Header
	body   bytes.Buffer
	status int
}

func (r *replyRecorder) Header() http.Header         { return r.header }
func (r *replyRecorder) Write(b []byte) (int, error) { return r.body.Write(b) }
func (r *replyRecorder) WriteHeader(status int)      { r.status = status }

// writeReversed writes the batch replies in reverse order.
func writeReversed(w http.ResponseWriter, items []json.RawMessage) bool {
	slices.Reverse(items)
	writeJSON(w, items)
	return true
}

// dropLast writes the batch replies without the last one.
func dropLast(w http.ResponseWriter, r *http.Request) bool {
	var items []json.RawMessage
	_ = json.NewDecoder(r.Body).Decode(&items)
	writeJSON(w, items[:len(items)-1])
	return true
}

func TestBatchPerCallErrors(t *testing.T) {
	f := newFakeDaemon(t, 3, "", "")
	c := newTestClient(t, fastOptions(nil), f)
	ctx := testContext(t, 5*time.Second)
	_, err := c.RawBlocks(ctx, []chainhash.Hash{f.hashes[1], {1}, f.hashes[2]})
	if !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), (chainhash.Hash{1}).String()) {
		t.Errorf("RawBlocks with an unknown block: %v", err)
	}
	if _, posts, _ := f.stats(); posts != 1 {
		t.Errorf("%d requests, want 1 (daemon errors are not retried)", posts)
	}
}

func TestREST(t *testing.T) {
	restOpts := func(log *slog.Logger) Options {
		o := fastOptions(log)
		o.RESTMinBlock = 1 // the fake's blocks are small
		return o
	}
	t.Run("available", func(t *testing.T) {
		f := newFakeDaemon(t, 30, "user", "pass")
		f.rest = true
		log, logs := newLogger()
		c := newTestClient(t, restOpts(log), f)
		ctx := testContext(t, 5*time.Second)
		for range 2 {
			blocks, err := c.RawBlocks(ctx, f.hashes[1:21])
			if err != nil {
				t.Fatal(err)
			}
			for i, b := range blocks {
				if !bytes.Equal(b, f.blocks[f.hashes[1+i]]) {
					t.Errorf("block %d differs", 1+i)
				}
			}
		}
		if _, posts, _ := f.stats(); posts != 0 {
			t.Errorf("%d JSON-RPC requests, want none", posts)
		}
		f.mu.Lock()
		gets := slices.Clone(f.restGets)
		f.mu.Unlock()
		if len(gets) != 41 || gets[0] != "/rest/chaininfo.json" {
			t.Errorf("%d REST requests (want one probe and 40 blocks): %v", len(gets), gets[:min(3, len(gets))])
		}
		if logs.count("daemon rest interface found; fetching blocks over rest") != 1 {
			t.Errorf("no rest log line\n%s", logs)
		}
	})
	t.Run("not available", func(t *testing.T) {
		f := newFakeDaemon(t, 10, "", "")
		log, logs := newLogger()
		c := newTestClient(t, fastOptions(log), f)
		ctx := testContext(t, 5*time.Second)
		for range 3 {
			blocks, err := c.RawBlocks(ctx, f.hashes[1:4])
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(blocks[2], f.blocks[f.hashes[3]]) {
				t.Errorf("block differs")
			}
		}
		f.mu.Lock()
		gets := slices.Clone(f.restGets)
		f.mu.Unlock()
		if !slices.Equal(gets, []string{"/rest/chaininfo.json"}) {
			t.Errorf("REST requests %v, want one probe", gets)
		}
		if _, posts, _ := f.stats(); posts != 3 {
			t.Errorf("%d JSON-RPC requests, want 3", posts)
		}
		if logs.count("daemon has no rest interface; fetching blocks over json-rpc") != 1 {
			t.Errorf("no rest log line\n%s", logs)
		}
	})
	t.Run("wrong block falls back", func(t *testing.T) {
		f := newFakeDaemon(t, 10, "", "")
		f.rest = true
		f.badRES[f.hashes[2]] = f.blocks[f.hashes[3]]
		c := newTestClient(t, fastOptions(nil), f)
		ctx := testContext(t, 5*time.Second)
		blocks, err := c.RawBlocks(ctx, f.hashes[1:4])
		if err != nil {
			t.Fatal(err)
		}
		for i, b := range blocks {
			if !bytes.Equal(b, f.blocks[f.hashes[1+i]]) {
				t.Errorf("block %d differs", 1+i)
			}
		}
		if calls, _, _ := f.stats(); !slices.Equal(calls, []string{"getblock"}) {
			t.Errorf("calls %v, want one getblock for the bad block", calls)
		}
		if s := c.current().rest.Load(); s != restUnknown {
			t.Errorf("REST state %d after a bad block, want unknown (probe again)", s)
		}
	})
	t.Run("unreachable decides nothing", func(t *testing.T) {
		f := newFakeDaemon(t, 10, "", "")
		f.rest = true
		f.inject(hangupFault)
		c := newTestClient(t, restOpts(nil), f)
		ctx := testContext(t, 5*time.Second)
		if _, err := c.RawBlocks(ctx, f.hashes[1:2]); err != nil {
			t.Fatal(err)
		}
		if s := c.current().rest.Load(); s != restUnknown {
			t.Errorf("REST state %d after a failed probe, want unknown", s)
		}
		if _, err := c.RawBlocks(ctx, f.hashes[1:2]); err != nil {
			t.Fatal(err)
		}
		if s := c.current().rest.Load(); s != restYes {
			t.Errorf("REST state %d, want yes", s)
		}
	})
}

// TestSmallBlocksInBatches: once blocks are known to be small, they come
// in getblock batches even from a daemon with REST, a long batch split
// into parts that the daemon answers at once, in order.
func TestSmallBlocksInBatches(t *testing.T) {
	f := newFakeDaemon(t, 300, "", "")
	f.rest = true
	c := newTestClient(t, fastOptions(nil), f)
	ctx := testContext(t, 5*time.Second)
	check := func(from, to int) {
		t.Helper()
		blocks, err := c.RawBlocks(ctx, f.hashes[from:to])
		if err != nil {
			t.Fatal(err)
		}
		for i, b := range blocks {
			if !bytes.Equal(b, f.blocks[f.hashes[from+i]]) {
				t.Fatalf("block %d differs", from+i)
			}
		}
	}
	check(1, 21) // size unknown: REST
	f.mu.Lock()
	gets := len(f.restGets)
	f.mu.Unlock()
	if _, posts, _ := f.stats(); posts != 0 || gets != 21 {
		t.Fatalf("first fetch: %d JSON-RPC and %d REST requests, want 0 and 21", posts, gets)
	}
	check(21, 271) // 250 small blocks: three batches of about 83
	calls, posts, _ := f.stats()
	if posts != 3 || len(calls) != 250 {
		t.Errorf("small blocks: %d JSON-RPC requests of %d calls, want 3 of 250", posts, len(calls))
	}
	f.mu.Lock()
	gets = len(f.restGets)
	f.mu.Unlock()
	if gets != 21 {
		t.Errorf("small blocks: %d REST requests after the first fetch, want none", gets-21)
	}
}

func TestCookie(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, ".cookie")
	write := func(s string) {
		if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	f := newFakeDaemon(t, 2, "__cookie__", "first")
	u := f.url()
	u.User, u.Password = "", ""
	log, logs := newLogger()
	opts := fastOptions(log)
	opts.CookieFile = path
	c, err := New([]config.DaemonURL{u}, opts)
	if err != nil {
		t.Fatal(err)
	}

	// The cookie file does not exist yet: retried until it does.
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, err = c.BlockCount(ctx)
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "cookie") {
		t.Errorf("BlockCount without a cookie file: %v", err)
	}

	write("__cookie__:first")
	ctx = testContext(t, 5*time.Second)
	if n, err := c.BlockCount(ctx); err != nil || n != 2 {
		t.Fatalf("BlockCount = %d, %v", n, err)
	}

	// bitcoind restarts with a new cookie: one 401, then the file is read
	// again.
	f.mu.Lock()
	f.pass = "second"
	f.mu.Unlock()
	write("__cookie__:second\n")
	if n, err := c.BlockCount(ctx); err != nil || n != 2 {
		t.Fatalf("BlockCount after a new cookie = %d, %v", n, err)
	}
	if strings.Contains(logs.String(), "second") || strings.Contains(logs.String(), "first") {
		t.Errorf("log shows the cookie\n%s", logs)
	}

	// A password in the URL wins over the cookie.
	f.mu.Lock()
	f.user, f.pass = "user", "pass"
	f.mu.Unlock()
	if err := c.SetURLs([]config.DaemonURL{f.url()}); err != nil {
		t.Fatal(err)
	}
	if n, err := c.BlockCount(ctx); err != nil || n != 2 {
		t.Fatalf("BlockCount with URL credentials = %d, %v", n, err)
	}

	write("no colon here")
	k := &cookie{path: path}
	if _, _, err := k.get(); err == nil || !strings.Contains(err.Error(), "user:password") {
		t.Errorf("malformed cookie: %v", err)
	}
}

func TestConcurrencyLimit(t *testing.T) {
	f := newFakeDaemon(t, 40, "", "")
	f.rest = true
	f.delay = 30 * time.Millisecond
	opts := fastOptions(nil)
	opts.Concurrency = 3
	c := newTestClient(t, opts, f)
	ctx := testContext(t, 10*time.Second)
	var wg sync.WaitGroup
	for range 12 {
		wg.Go(func() {
			if _, err := c.BlockCount(ctx); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if _, err := c.RawBlocks(ctx, f.hashes[1:40]); err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.maxInFlight != 3 {
		t.Errorf("at most %d requests in flight, want 3", f.maxInFlight)
	}
}

func TestFailoverFake(t *testing.T) {
	a := newFakeDaemon(t, 5, "user", "pass-a")
	b := newFakeDaemon(t, 5, "user", "pass-b")
	log, logs := newLogger()
	var hooked []string
	var requests, failed int
	var mu sync.Mutex
	opts := fastOptions(log)
	opts.Hooks = Hooks{
		Request: func(method string, n int, took time.Duration, err error) {
			mu.Lock()
			defer mu.Unlock()
			requests++
			if err != nil {
				failed++
			}
		},
		Failover: func(from, to string) {
			mu.Lock()
			defer mu.Unlock()
			hooked = append(hooked, from+" -> "+to)
		},
	}
	c := newTestClient(t, opts, a, b)
	ctx := testContext(t, 10*time.Second)
	if h, err := c.BestBlockHash(ctx); err != nil || h != a.hashes[5] {
		t.Fatalf("BestBlockHash = %s, %v; want the first daemon's", h, err)
	}
	a.srv.Close()
	for range 5 {
		if h, err := c.BestBlockHash(ctx); err != nil || h != b.hashes[5] {
			t.Fatalf("BestBlockHash = %s, %v; want the second daemon's", h, err)
		}
	}
	if c.URL() != b.url().String() {
		t.Errorf("URL() = %s, want %s", c.URL(), b.url())
	}
	if n := logs.count("daemon failover"); n != 1 {
		t.Errorf("%d failover log lines, want 1\n%s", n, logs)
	}
	if !strings.Contains(logs.String(), "from="+a.url().String()) || strings.Contains(logs.String(), "pass-") {
		t.Errorf("failover log line lacks from= or shows a password\n%s", logs)
	}
	mu.Lock()
	if len(hooked) != 1 || requests < 8 || failed < 3 {
		t.Errorf("hooks: failovers %v, %d requests, %d failed", hooked, requests, failed)
	}
	mu.Unlock()

	// SetURLs puts a new list in place at once.
	if err := c.SetURLs([]config.DaemonURL{a.url(), b.url()}); err != nil {
		t.Fatal(err)
	}
	if c.URL() != a.url().String() {
		t.Errorf("URL() after SetURLs = %s", c.URL())
	}
	if h, err := c.BestBlockHash(ctx); err != nil || h != b.hashes[5] {
		t.Fatalf("BestBlockHash after SetURLs = %s, %v", h, err)
	}
	if err := c.SetURLs(nil); !errors.Is(err, ErrNoURLs) {
		t.Errorf("SetURLs(nil): %v", err)
	}
}

// TestCancelPrompt checks, over real sockets, that cancelling the context
// ends a request at once, whether it is waiting between retries or
// waiting for a slow daemon.
func TestCancelPrompt(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := config.DaemonURL{Scheme: "http", Host: "127.0.0.1", Port: ln.Addr().(*net.TCPAddr).Port}
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	slow := newFakeDaemon(t, 1, "", "")
	slow.delay = time.Minute

	cases := []struct {
		name string
		url  config.DaemonURL
	}{
		{"connection refused", closed},
		{"slow daemon", slow.url()},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := New([]config.DaemonURL{tc.url}, Options{MaxRetryDelay: 30 * time.Second, Timeout: time.Minute})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			time.AfterFunc(300*time.Millisecond, cancel)
			start := time.Now()
			_, err = c.BlockCount(ctx)
			took := time.Since(start)
			if !errors.Is(err, context.Canceled) {
				t.Errorf("BlockCount: %v, want context.Canceled", err)
			}
			if took > time.Second {
				t.Errorf("returned %v after the start, want about 300ms", took)
			}
		})
	}
}

// TestTxLocatorOnlyWhereTaken: a daemon that refuses the block hash in
// getrawtransaction (btcd) is asked without it from then on, and the
// transaction's block is no longer looked up for it: that lookup reads
// the index on every transaction.get.
func TestTxLocatorOnlyWhereTaken(t *testing.T) {
	f := newFakeDaemon(t, 3, "", "")
	tx := []byte("a fake transaction")
	txid := chainhash.DoubleHashH(tx)
	f.txs[txid] = tx
	c := newTestClient(t, fastOptions(nil), f)
	ctx := testContext(t, 10*time.Second)
	var lookups atomic.Int32
	c.SetTxLocator(func(chainhash.Hash) (chainhash.Hash, bool) {
		lookups.Add(1)
		return f.hashes[2], true
	})
	for range 3 {
		raw, err := c.RawTransaction(ctx, txid)
		if err != nil || string(raw) != string(tx) {
			t.Fatalf("RawTransaction = %q, %v", raw, err)
		}
	}
	if n := lookups.Load(); n != 1 {
		t.Errorf("the block was looked up %d times, want once (before the daemon refused it)", n)
	}
	calls, posts, _ := f.stats()
	if posts != 4 {
		t.Errorf("%d requests (%v), want 4: one refused with the block hash, three without", posts, calls)
	}
}
