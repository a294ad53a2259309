package server_test

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/btcsuite/btcd/btcjson"
	"github.com/btcsuite/btcd/chainhash/v2"
	"github.com/btcsuite/btcd/wire/v2"

	"amber/internal/chain"
	"amber/internal/testenv"
	"amber/internal/testenv/naive"
)

// TestElectrumMethods runs every method of protocol 1.4 to 1.7 over TCP
// against one node, comparing results with btcd and the raw chain. The
// subtests run in order and some mine blocks, so each reads the heights
// it needs from btcd itself.
func TestElectrumMethods(t *testing.T) {
	if testing.Short() {
		t.Skip("runs btcd")
	}
	banner := filepath.Join(t.TempDir(), "banner.txt")
	if err := os.WriteFile(banner, []byte("$SERVER_VERSION|$SERVER_SUBVERSION|$DONATION_ADDRESS"), 0o600); err != nil {
		t.Fatal(err)
	}
	// Two large transactions wait in the mempool when the server starts,
	// so its first fee histogram has two buckets (PROTOCOL.md §5.8: the
	// first closes past 30,000 vB, the next past 33,000 vB).
	var histogram []feeBucket
	prepare := func(r *testenv.Regtest) {
		defaultActivity(r)
		many := r.Wallet.NewScript(testenv.P2WPKH)
		for _, tc := range []struct{ outputs, rate int }{{1000, 5}, {1500, 2}} {
			outs := make([]*wire.TxOut, tc.outputs)
			for i := range outs {
				outs[i] = many.TxOut(1000)
			}
			tx, spent := build(t, r, testenv.TxRequest{Outputs: outs, FeeRate: int64(tc.rate)})
			r.Broadcast(tx)
			// The rate is floored to tenths of a sat/vB.
			vsize := vsizeOf(tx)
			histogram = append(histogram, feeBucket{float64(feeOf(tx, spent)*10/vsize) / 10, vsize})
		}
	}
	n := startNode(t, nodeOptions{prepare: prepare, env: map[string]string{
		"DONATION_ADDRESS": "bcrt1qdonation",
		"BANNER_FILE":      banner,
		"DROP_CLIENT":      "evil",
		"REPORT_SERVICES":  "tcp://electrum.example.com:50001,ssl://electrum.example.com:50002",
	}})
	t.Run("negotiation", func(t *testing.T) { testNegotiation(t, n) })
	t.Run("handshake", func(t *testing.T) { testHandshake(t, n) })
	t.Run("availability", func(t *testing.T) { testAvailability(t, n) })
	t.Run("shapes", func(t *testing.T) { testShapes(t, n) })
	t.Run("server", func(t *testing.T) { testServerMethods(t, n) })
	t.Run("jsonrpc", func(t *testing.T) { testJSONRPC(t, n) })
	t.Run("scriptpubkey", func(t *testing.T) { testScriptPubKey(t, n) })
	t.Run("outpoint", func(t *testing.T) { testOutpoints(t, n) })
	t.Run("transactions", func(t *testing.T) { testTransactions(t, n) })
	t.Run("fees", func(t *testing.T) { testFees(t, n, histogram) })
}

// testNegotiation checks the rows of the negotiation table (PROTOCOL.md
// §3.2) over the wire, against a server of protocol 1.4 to 1.7.0.
func testNegotiation(t *testing.T, n *node) {
	for _, row := range []struct {
		params string // server.version's params
		want   string // negotiated version; empty for an error
	}{
		{`["t"]`, "1.4"},
		{`["t", null]`, "1.4"},
		{`["t", "1.4"]`, "1.4"},
		{`["t", ["1.4", "1.6"]]`, "1.6"},
		{`["t", ["1.4", "1.7"]]`, "1.7"},
		{`["t", ["1.4", "2.0"]]`, "1.7.0"},
		{`["t", "1.7"]`, "1.7"},
		{`["t", ["1.7", "1.7"]]`, "1.7"},
		{`["t", "1.4.2"]`, "1.4.2"},
		{`["t", "1.5"]`, "1.5"},
		{`["t", "1.4", "extra", 5]`, "1.4"},
		{`{"client_name": "t", "protocol_version": "1.6"}`, "1.6"},
		{`{"protocol_version": ["1.4", "1.6"], "other": true}`, "1.6"},
		{`["t", "1.3"]`, ""},
		{`["t", ["1.2", "1.3"]]`, ""},
		{`["t", "2.0"]`, ""},
		{`["t", ["1.4"]]`, ""},
		{`["t", "abc"]`, ""},
		{`["t", ["1.8", "1.9"]]`, ""},
	} {
		t.Run(row.params, func(t *testing.T) {
			l := dialLine(t, n.tcp)
			l.send(`{"jsonrpc":"2.0","id":1,"method":"server.version","params":` + row.params + `}`)
			m := l.reply()
			if row.want == "" {
				e := errorOf(t, m)
				if e.Code != 1 || !strings.HasPrefix(e.Message, "unsupported protocol version: ") {
					t.Errorf("error %+v, want code 1 unsupported protocol version", e)
				}
				l.closed()
				return
			}
			var v []string
			json.Unmarshal(resultOf(t, m), &v)
			if len(v) != 2 || v[1] != row.want || !strings.HasPrefix(v[0], "Amber ") {
				t.Fatalf("server.version → %v, want [Amber …, %s]", v, row.want)
			}
			// The session goes on at that version.
			resultOf(t, l.call(2, "blockchain.block.header", 0))
		})
	}
}

// testHandshake checks the rules around server.version: first and once,
// pipelining, DROP_CLIENT.
func testHandshake(t *testing.T, n *node) {
	genesis, _ := btcdHeader(t, n.r.Btcd, 0)
	t.Run("second version", func(t *testing.T) {
		l := dialLine(t, n.tcp)
		resultOf(t, l.call(1, "server.version", "t", "1.6"))
		if e := errorOf(t, l.call(2, "server.version", "t", "1.6")); e.Code != 1 || e.Message != "server.version already sent" {
			t.Errorf("second server.version: %+v", e)
		}
		resultOf(t, l.call(3, "server.ping"))
	})
	t.Run("request first", func(t *testing.T) {
		l := dialLine(t, n.tcp)
		if e := errorOf(t, l.call(1, "blockchain.block.header", 0)); e.Code != 1 || e.Message != "use server.version to identify client" {
			t.Errorf("request before server.version: %+v", e)
		}
		l.closed()
	})
	t.Run("notification first", func(t *testing.T) {
		l := dialLine(t, n.tcp)
		l.send(`{"jsonrpc":"2.0","method":"server.ping","params":[]}`)
		l.closed()
	})
	t.Run("pipelined", func(t *testing.T) {
		l := dialLine(t, n.tcp)
		l.send(`{"jsonrpc":"2.0","id":1,"method":"server.version","params":["t","1.6"]}` + "\n" +
			`{"jsonrpc":"2.0","id":2,"method":"blockchain.block.header","params":[0]}`)
		resultOf(t, l.reply())
		m := l.reply()
		var hdr string
		json.Unmarshal(resultOf(t, m), &hdr)
		if string(m["id"]) != "2" || hdr != genesis {
			t.Errorf("pipelined request: id %s header %s", m["id"], hdr)
		}
	})
	t.Run("drop client", func(t *testing.T) {
		l := dialLine(t, n.tcp)
		if e := errorOf(t, l.call(1, "server.version", "evil/1.0", "1.4")); e.Code != 1 || e.Message != "unsupported client: evil/1.0" {
			t.Errorf("dropped client: %+v", e)
		}
		l.closed()
		// DROP_CLIENT matches at the start of the name only.
		l = dialLine(t, n.tcp)
		resultOf(t, l.call(1, "server.version", "not-evil/1.0", "1.4"))
	})
}

// testAvailability checks which methods exist at which version (PROTOCOL.md
// §4.0): an unavailable method is -32601 "unknown method", an available
// one anything else (called without arguments).
func testAvailability(t *testing.T, n *node) {
	versions := []string{"1.4", "1.4.2", "1.5", "1.6", "1.7"}
	all := map[string]bool{"1.4": true, "1.4.2": true, "1.5": true, "1.6": true, "1.7": true}
	upTo16 := map[string]bool{"1.4": true, "1.4.2": true, "1.5": true, "1.6": true}
	from16 := map[string]bool{"1.6": true, "1.7": true}
	only17 := map[string]bool{"1.7": true}
	none := map[string]bool{}
	methods := map[string]map[string]bool{
		"server.banner":                            all,
		"server.donation_address":                  all,
		"server.features":                          all,
		"server.peers.subscribe":                   all,
		"server.add_peer":                          all,
		"server.ping":                              all,
		"blockchain.block.header":                  all,
		"blockchain.block.headers":                 all,
		"blockchain.headers.subscribe":             all,
		"blockchain.estimatefee":                   all,
		"blockchain.relayfee":                      {"1.4": true, "1.4.2": true, "1.5": true},
		"mempool.get_fee_histogram":                all,
		"mempool.get_info":                         from16,
		"blockchain.scripthash.get_balance":        upTo16,
		"blockchain.scripthash.get_history":        upTo16,
		"blockchain.scripthash.get_mempool":        upTo16,
		"blockchain.scripthash.listunspent":        upTo16,
		"blockchain.scripthash.subscribe":          upTo16,
		"blockchain.scripthash.unsubscribe":        {"1.4.2": true, "1.5": true, "1.6": true},
		"blockchain.transaction.broadcast":         all,
		"blockchain.transaction.broadcast_package": from16,
		"blockchain.transaction.get":               all,
		"blockchain.transaction.get_merkle":        all,
		"blockchain.transaction.id_from_pos":       all,
		"blockchain.scriptpubkey.get_balance":      only17,
		"blockchain.scriptpubkey.get_history":      only17,
		"blockchain.scriptpubkey.get_mempool":      only17,
		"blockchain.scriptpubkey.listunspent":      only17,
		"blockchain.scriptpubkey.subscribe":        only17,
		"blockchain.scriptpubkey.unsubscribe":      only17,
		"blockchain.outpoint.subscribe":            only17,
		"blockchain.outpoint.get_status":           only17,
		"blockchain.outpoint.unsubscribe":          only17,
		"blockchain.transaction.testmempoolaccept": only17,
		"mempool.recent":                           only17,
		// Removed before 1.4.
		"blockchain.address.get_balance": none,
		"blockchain.block.get_chunk":     none,
		"blockchain.block.get_header":    none,
		"blockchain.numblocks.subscribe": none,
		"blockchain.utxo.get_address":    none,
	}
	names := slices.Sorted(func(yield func(string) bool) {
		for m := range methods {
			if !yield(m) {
				return
			}
		}
	})
	for _, v := range versions {
		t.Run(v, func(t *testing.T) {
			c := dialTCP(t, n.tcp)
			c.version(v)
			for _, m := range names {
				_, e := c.raw(m)
				missing := e != nil && e["code"].(float64) == -32601
				if missing && e["message"] != fmt.Sprintf("unknown method %q", m) {
					t.Errorf("%s: message %q", m, e["message"])
				}
				if want := methods[m][v]; missing == want {
					t.Errorf("at %s %s: available %v, want %v (error %v)", v, m, !missing, want, e)
				}
			}
		})
	}
}

// testShapes checks results whose form depends on the protocol version.
func testShapes(t *testing.T, n *node) {
	b := n.r.Btcd
	tip := b.Height()
	var hdrs []string
	var hashes []chainhash.Hash
	for h := range tip + 1 {
		hx, hash := btcdHeader(t, b, h)
		hdrs, hashes = append(hdrs, hx), append(hashes, hash)
	}
	var relay struct {
		RelayFee float64 `json:"relayfee"`
	}
	raw, err := b.Call("getinfo")
	if err != nil {
		t.Fatal(err)
	}
	json.Unmarshal(raw, &relay)

	t.Run("1.4", func(t *testing.T) {
		c := dialTCP(t, n.tcp)
		c.version("1.4")
		// block.headers: concatenated hex, members hex, count, max.
		raw := c.call("blockchain.block.headers", 0, 3)
		if want := fmt.Sprintf(`{"hex":%q,"count":3,"max":2016}`, strings.Join(hdrs[:3], "")); string(raw) != want {
			t.Errorf("block.headers(0, 3) = %s, want %s", raw, want)
		}
		got := get[map[string]any](c, "blockchain.block.headers", tip-1, 10)
		if got["count"] != 2.0 || got["hex"] != hdrs[tip-1]+hdrs[tip] {
			t.Errorf("block.headers at the tip: %v", got)
		}
		got = get[map[string]any](c, "blockchain.block.headers", tip+1, 10)
		if got["count"] != 0.0 || got["hex"] != "" {
			t.Errorf("block.headers beyond the tip: %v", got)
		}
		// relayfee is btcd's relay fee; mempool.get_info does not exist.
		if fee := get[float64](c, "blockchain.relayfee"); fee != relay.RelayFee || fee <= 0 {
			t.Errorf("relayfee %v, btcd says %v", fee, relay.RelayFee)
		}
		// headers.subscribe: exactly hex and height.
		raw = c.call("blockchain.headers.subscribe")
		if want := fmt.Sprintf(`{"hex":%q,"height":%d}`, hdrs[tip], tip); string(raw) != want {
			t.Errorf("headers.subscribe = %s, want %s", raw, want)
		}
		if raw := c.call("server.ping"); string(raw) != "null" {
			t.Errorf("server.ping at 1.4 = %s", raw)
		}
		// Extra arguments to ping are ignored before 1.7.
		c.call("server.ping", 1, "ab")
	})
	t.Run("1.6", func(t *testing.T) {
		c := dialTCP(t, n.tcp)
		c.version("1.6")
		raw := c.call("blockchain.block.headers", 0, 3)
		want, _ := json.Marshal(hdrs[:3])
		if string(raw) != fmt.Sprintf(`{"count":3,"max":2016,"headers":%s}`, want) {
			t.Errorf("block.headers(0, 3) = %s", raw)
		}
		if raw := c.call("blockchain.block.headers", tip+1, 3); string(raw) != `{"count":0,"max":2016,"headers":[]}` {
			t.Errorf("block.headers beyond the tip = %s", raw)
		}
		// A checkpoint proof of the last header returned, against every
		// block hash up to cp_height.
		var proof struct {
			Count   int      `json:"count"`
			Headers []string `json:"headers"`
			Root    string   `json:"root"`
			Branch  []string `json:"branch"`
		}
		json.Unmarshal(c.call("blockchain.block.headers", 2, 4, tip), &proof)
		root := merkleRootOf(hashes)
		if proof.Count != 4 || proof.Root != root.String() || foldBranch(t, hashes[5], proof.Branch, 5) != root {
			t.Errorf("block.headers(2, 4, %d) proof does not verify: %+v", tip, proof)
		}
		var hp struct {
			Header string   `json:"header"`
			Branch []string `json:"branch"`
			Root   string   `json:"root"`
		}
		json.Unmarshal(c.call("blockchain.block.header", 7, tip), &hp)
		if hp.Header != hdrs[7] || hp.Root != root.String() || foldBranch(t, hashes[7], hp.Branch, 7) != root {
			t.Errorf("block.header(7, %d) proof does not verify: %+v", tip, hp)
		}
		c.fails(1, fmt.Sprintf("require header height 7 <= cp_height 6 <= chain height %d", tip), "blockchain.block.header", 7, 6)
		c.fails(1, fmt.Sprintf("require header height 7 <= cp_height %d", tip+1), "blockchain.block.header", 7, tip+1)
		c.fails(1, fmt.Sprintf("height %d out of range", tip+1), "blockchain.block.header", tip+1)
		// relayfee is gone; mempool.get_info has btcd's relay fee for
		// each member (btcd reports no others).
		c.fails(-32601, `unknown method "blockchain.relayfee"`, "blockchain.relayfee")
		info := get[map[string]float64](c, "mempool.get_info")
		if len(info) != 3 || info["minrelaytxfee"] != relay.RelayFee || info["mempoolminfee"] != relay.RelayFee || info["incrementalrelayfee"] != relay.RelayFee {
			t.Errorf("mempool.get_info = %v, btcd relay fee %v", info, relay.RelayFee)
		}
	})
}

// testServerMethods checks the server.* methods.
func testServerMethods(t *testing.T, n *node) {
	for _, v := range []string{"1.4", "1.6", "1.7"} {
		t.Run(v, func(t *testing.T) {
			c := dialTCP(t, n.tcp)
			ver := get[[]string](c, "server.version", "t", []string{v, v})
			software := ver[0]
			f := get[map[string]any](c, "server.features")
			want := map[string]any{
				"hosts":    map[string]any{"electrum.example.com": map[string]any{"tcp_port": 50001.0, "ssl_port": 50002.0}},
				"services": []any{"tcp://electrum.example.com:50001", "ssl://electrum.example.com:50002"},
				"pruning":  nil, "server_version": software, "protocol_min": "1.4", "protocol_max": "1.7.0",
				"genesis_hash": n.r.Btcd.Params.GenesisHash.String(),
			}
			if v != "1.7" {
				want["hash_function"] = "sha256"
			}
			if !reflect.DeepEqual(f, want) {
				t.Errorf("features\n got %v\nwant %v", f, want)
			}
			short := strings.TrimPrefix(software, "Amber ")
			if b := get[string](c, "server.banner"); b != short+"|"+software+"|bcrt1qdonation" || short == software {
				t.Errorf("banner %q (software %q)", b, software)
			}
			if d := get[string](c, "server.donation_address"); d != "bcrt1qdonation" {
				t.Errorf("donation_address %q", d)
			}
			if p := c.call("server.peers.subscribe"); string(p) != "[]" {
				t.Errorf("peers.subscribe = %s", p)
			}
			if p := c.call("server.add_peer", map[string]any{"hosts": map[string]any{}}); string(p) != "false" {
				t.Errorf("add_peer = %s", p)
			}
		})
	}
	t.Run("ping 1.7", func(t *testing.T) {
		c := dialTCP(t, n.tcp)
		c.version("1.7")
		for _, tc := range []struct {
			params []any
			want   int
		}{{nil, 0}, {[]any{5}, 5}, {[]any{3, "abc"}, 3}, {[]any{0, "00ff"}, 0}, {[]any{2_000_000}, 2_000_000}} {
			got := get[map[string]string](c, "server.ping", tc.params...)
			if len(got) != 1 || got["data"] != strings.Repeat("0", tc.want) {
				t.Errorf("ping%v: %d members, data of %d bytes", tc.params, len(got), len(got["data"]))
			}
		}
		if got := get[map[string]string](c, "server.ping", named{"pong_len": 4, "data": "ff"}); got["data"] != "0000" {
			t.Errorf("ping with named params = %v", got)
		}
		c.fails(1, "pong_len value too high", "server.ping", 8_100_001)
		c.fails(1, "zz should be a hex string", "server.ping", 1, "zz")
		c.fails(1, "should be a non-negative integer", "server.ping", -1)
		// A ping notification gets no answer.
		if err := c.send([]byte(`{"jsonrpc":"2.0","method":"server.ping","params":["00"]}`)); err != nil {
			t.Fatal(err)
		}
		c.call("server.ping")
	})
}

// testJSONRPC checks the JSON-RPC layer over TCP: malformed messages,
// parameter binding, ids and batches.
func testJSONRPC(t *testing.T, n *node) {
	b := n.r.Btcd
	h1, _ := btcdHeader(t, b, 1)
	h5, _ := btcdHeader(t, b, 5)
	l := dialLine(t, n.tcp)
	resultOf(t, l.call(0, "server.version", "t", "1.6"))

	wantErr := func(m map[string]json.RawMessage, id string, code int, msg string) {
		t.Helper()
		e := errorOf(t, m)
		if string(m["id"]) != id || e.Code != code || !strings.Contains(e.Message, msg) {
			t.Errorf("reply %s %+v, want id %s code %d with %q", m["id"], e, id, code, msg)
		}
	}
	wantHeader := func(m map[string]json.RawMessage, id, hdr string) {
		t.Helper()
		var got string
		json.Unmarshal(resultOf(t, m), &got)
		if string(m["id"]) != id || got != hdr {
			t.Errorf("reply %s %q, want id %s %q", m["id"], got, id, hdr)
		}
	}
	send := func(s string) map[string]json.RawMessage {
		t.Helper()
		l.send(s)
		return l.reply()
	}

	wantErr(send(`{"jsonrpc":"2.0","id":1,"method":"blockchain.block.header","params":[1}`), "null", -32700, "invalid JSON")
	wantErr(send(`[]`), "null", -32600, "batch is empty")
	wantErr(send(`5`), "null", -32600, "request object must be a dictionary")
	wantErr(send(`{"jsonrpc":"2.0","id":2,"method":5}`), "2", -32601, "method must be a string")
	wantErr(send(`{"jsonrpc":"2.0","id":3,"method":"no.such.method","params":[]}`), "3", -32601, `unknown method "no.such.method"`)
	wantErr(send(`{"jsonrpc":"2.0","id":4,"method":"blockchain.block.header","params":["zz"]}`), "4", 1, "zz should be a non-negative integer")
	wantErr(send(`{"jsonrpc":"2.0","id":5,"method":"blockchain.block.header","params":[-1]}`), "5", 1, "-1 should be a non-negative integer")
	wantErr(send(`{"jsonrpc":"2.0","id":6,"method":"blockchain.block.header","params":[1,0,0]}`), "6", -32602,
		"3 arguments passed to method blockchain.block.header taking at most 2")
	wantErr(send(`{"jsonrpc":"2.0","id":7,"method":"blockchain.block.header","params":[]}`), "7", -32602,
		`0 arguments passed to method "blockchain.block.header" but it requires 1`)
	wantErr(send(`{"jsonrpc":"2.0","id":8,"method":"blockchain.block.header","params":{"height":1,"bogus":2}}`), "8", -32602,
		`method "blockchain.block.header" does not take parameter "bogus"`)
	wantErr(send(`{"jsonrpc":"2.0","id":9,"method":"blockchain.block.header","params":{"cp_height":0}}`), "9", -32602,
		`method "blockchain.block.header" requires parameter "height"`)
	wantErr(send(`{"jsonrpc":"2.0","id":10,"method":"blockchain.block.header","params":"1"}`), "10", -32602, "invalid request arguments")
	// Integers past their parameter's range are refused before any
	// conversion: "4294967296" once wrapped to height 0 and returned the
	// genesis header.
	cb1 := btcdBlock(t, b, 1).Transactions[0].TxHash().String()
	for i, req := range []string{
		`"blockchain.block.header","params":["4294967296"]`,
		`"blockchain.block.header","params":[4294967296]`,
		`"blockchain.block.header","params":["2147483648"]`,
		`"blockchain.block.header","params":[2147483648.5]`,
		`"blockchain.block.header","params":[1e19]`,
		`"blockchain.block.header","params":["9223372036854775808"]`,
		`"blockchain.block.header","params":[1, "4294967297"]`,
		`"blockchain.block.headers","params":["4294967296", 1]`,
		`"blockchain.block.headers","params":[0, 1, 4294967296]`,
		`"blockchain.transaction.get_merkle","params":["` + cb1 + `", "4294967297"]`,
		`"blockchain.transaction.id_from_pos","params":[4294967297, 0]`,
		`"blockchain.transaction.id_from_pos","params":[1, "4294967296"]`,
	} {
		id := fmt.Sprint(100 + i)
		wantErr(send(`{"jsonrpc":"2.0","id":`+id+`,"method":`+req+`}`), id, 1, "should be a non-negative integer")
	}
	// The largest height is accepted as a height, past the tip.
	wantErr(send(`{"jsonrpc":"2.0","id":120,"method":"blockchain.block.header","params":["2147483647"]}`), "120", 1, "height 2,147,483,647 out of range")
	l17 := dialLine(t, n.tcp)
	resultOf(t, l17.call(0, "server.version", "t", "1.7"))
	if e := errorOf(t, l17.call(1, "blockchain.outpoint.get_status", cb1, 4294967296, "51")); e.Code != 1 || !strings.Contains(e.Message, "should be a non-negative integer") {
		t.Errorf("outpoint index 2^32: %+v, want the non-negative integer error", e)
	}
	if st := resultOf(t, l17.call(2, "blockchain.outpoint.get_status", cb1, 4294967295, "51")); string(st) != "{}" {
		t.Errorf("outpoint index 2^32-1 of a one-output tx: %s, want {}", st)
	}
	// The session survived all of that. Named parameters, integer
	// strings (Python's int()), string and fractional ids, padding.
	wantHeader(send(`{"jsonrpc":"2.0","id":11,"method":"blockchain.block.header","params":{"height":5}}`), "11", h5)
	wantHeader(send(`{"jsonrpc":"2.0","id":"abc","method":"blockchain.block.header","params":["5"]}`), `"abc"`, h5)
	wantHeader(send(`{"jsonrpc":"2.0","id":1.5,"method":"blockchain.block.header","params":[1]}`), "1.5", h1)
	wantHeader(send(`{"jsonrpc":"2.0","id":12,"method":"blockchain.block.header","params":[1]`+strings.Repeat(" ", 3000)+`}`), "12", h1)
	// A notification gets no reply: the next line answers the next
	// request.
	l.send(`{"jsonrpc":"2.0","method":"blockchain.block.header","params":[1]}`)
	l.send(`{"jsonrpc":"2.0","id":null,"method":"blockchain.block.header","params":[1]}`)
	wantHeader(send(`{"jsonrpc":"2.0","id":14,"method":"blockchain.block.header","params":[5]}`), "14", h5)

	// A batch of valid, invalid, notification and malformed items is
	// answered with one array holding a reply per item with an id.
	l.send(`[{"jsonrpc":"2.0","id":1,"method":"blockchain.block.header","params":[1]},` +
		`{"jsonrpc":"2.0","id":2,"method":"no.such.method"},` +
		`{"jsonrpc":"2.0","method":"blockchain.block.header","params":[1]},` +
		`7,` +
		`{"jsonrpc":"2.0","id":"x","method":"blockchain.block.header","params":["zz"]},` +
		`{"jsonrpc":"2.0","id":3,"method":"blockchain.block.header","params":{"height":5}}]`)
	line := l.line()
	var items []map[string]json.RawMessage
	if err := json.Unmarshal(line, &items); err != nil {
		t.Fatalf("batch reply %s: %v", line, err)
	}
	byID := map[string]map[string]json.RawMessage{}
	for _, it := range items {
		byID[string(it["id"])] = it
	}
	if len(items) != 5 || len(byID) != 5 {
		t.Fatalf("batch reply has %d items: %s", len(items), line)
	}
	wantHeader(byID["1"], "1", h1)
	wantErr(byID["2"], "2", -32601, "unknown method")
	wantErr(byID["null"], "null", -32600, "request object must be a dictionary")
	wantErr(byID[`"x"`], `"x"`, 1, "should be a non-negative integer")
	wantHeader(byID["3"], "3", h5)
	// A batch of notifications only gets no reply at all.
	l.send(`[{"jsonrpc":"2.0","method":"server.ping"},{"jsonrpc":"2.0","method":"blockchain.block.header","params":[1]}]`)
	wantHeader(send(`{"jsonrpc":"2.0","id":15,"method":"blockchain.block.header","params":[1]}`), "15", h1)
	// Strict 2.0 from the first message on: a later message without
	// "jsonrpc" is refused.
	wantErr(send(`{"id":16,"method":"blockchain.block.header","params":[1]}`), "16", -32600, `"jsonrpc" is not "2.0"`)
	wantErr(send(``), "null", -32700, "invalid JSON")
	wantHeader(send(`{"jsonrpc":"2.0","id":17,"method":"blockchain.block.header","params":[1]}`), "17", h1)
}

// indexedScripts maps every indexed output script of the blocks (but the
// genesis block) by hashX.
func indexedScripts(blocks []*chain.Block) map[chain.HashX][]byte {
	scripts := map[chain.HashX][]byte{}
	for _, b := range blocks[1:] {
		for _, tx := range b.Txs {
			for _, o := range tx.Outputs {
				if chain.IsIndexed(o.PkScript) {
					scripts[chain.HashXOf(o.PkScript)] = o.PkScript
				}
			}
		}
	}
	return scripts
}

// build makes a signed wallet transaction without broadcasting it, and
// returns it with the outputs it spends.
func build(t *testing.T, r *testenv.Regtest, req testenv.TxRequest) (*wire.MsgTx, []*testenv.UTXO) {
	t.Helper()
	tx, spent, err := r.Wallet.BuildTx(req)
	if err != nil {
		t.Fatal(err)
	}
	return tx, spent
}

// walletUTXO returns the wallet's output op, which must exist.
func walletUTXO(t *testing.T, r *testenv.Regtest, op wire.OutPoint) *testenv.UTXO {
	t.Helper()
	u, ok := r.Wallet.UTXO(op)
	if !ok {
		t.Fatalf("wallet has no output %v", op)
	}
	return u
}

func ptr[T any](v T) *T { return &v }

// testScriptPubKey checks the 1.7 scriptpubkey methods against the chain,
// then a script's life through the mempool (heights 0 and -1) and a block,
// with its notifications keyed by scripthash.
func testScriptPubKey(t *testing.T, n *node) {
	r := n.r
	c := dialTCP(t, n.tcp)
	c.version("1.7")
	old := dialTCP(t, n.tcp)
	old.version("1.6")

	// Every script against the chain, with the mempool mined first.
	n.mine(t, 1)
	blocks := chainFromBtcd(t, r.Btcd)
	want := naive.Build(blocks)
	for hx, script := range indexedScripts(blocks) {
		spk := hex.EncodeToString(script)
		hist := get[struct {
			History []entry `json:"history"`
		}](c, "blockchain.scriptpubkey.get_history", spk)
		wh := want.History(hx)
		heights := map[string]int32{}
		if len(hist.History) != len(wh) {
			t.Fatalf("script %x: %d history items, want %d", script, len(hist.History), len(wh))
		}
		for i, e := range hist.History {
			if e.TxHash != wh[i].TxID.String() || e.Height != wh[i].Height || e.Fee != nil {
				t.Fatalf("script %x item %d: %+v, want %s at %d", script, i, e, wh[i].TxID, wh[i].Height)
			}
			heights[e.TxHash] = e.Height
		}
		bal := get[map[string]int64](c, "blockchain.scriptpubkey.get_balance", spk)
		if len(bal) != 2 || bal["confirmed"] != want.Balance(hx) || bal["unconfirmed"] != 0 {
			t.Errorf("script %x: balance %v, want %d", script, bal, want.Balance(hx))
		}
		var us struct {
			UTXOs []struct {
				TxHash string `json:"tx_hash"`
				TxPos  uint32 `json:"tx_pos"`
				Height int32  `json:"height"`
				Value  int64  `json:"value"`
			} `json:"utxos"`
		}
		json.Unmarshal(c.call("blockchain.scriptpubkey.listunspent", spk), &us)
		wu := want.UTXOs(hx)
		if len(us.UTXOs) != len(wu) {
			t.Errorf("script %x: %d utxos, want %d", script, len(us.UTXOs), len(wu))
		}
		for i, u := range us.UTXOs {
			id, _ := chainhash.NewHashFromStr(u.TxHash)
			if v, ok := wu[wire.OutPoint{Hash: *id, Index: u.TxPos}]; !ok || v != u.Value || u.Height != heights[u.TxHash] ||
				(i > 0 && u.Height < us.UTXOs[i-1].Height) {
				t.Errorf("script %x: utxo %+v not unspent, or out of order", script, u)
			}
		}
		if raw := c.call("blockchain.scriptpubkey.get_mempool", spk); string(raw) != `{"history":[]}` {
			t.Errorf("script %x: get_mempool %s", script, raw)
		}
		// The same answers at 1.6 by scripthash.
		if raw := old.call("blockchain.scripthash.get_history", shOf(script)); !jsonEqual(raw, mustJSON(t, hist.History)) {
			t.Errorf("script %x: 1.6 history %s differs from 1.7's", script, raw)
		}
	}
	c.fails(1, "zz should be a hex string", "blockchain.scriptpubkey.get_balance", "zz")
	c.fails(1, "should be a hex string", "blockchain.scriptpubkey.get_history", "abc")
	c.fails(1, "should be a hex string", "blockchain.scriptpubkey.subscribe", 5)
	if raw := c.call("blockchain.scriptpubkey.get_balance", named{"spk": "51"}); string(raw) != `{"confirmed":0,"unconfirmed":0}` {
		t.Errorf("balance of an unused script by named param: %s", raw)
	}

	// A new script: subscribed while unused, paid by tx1, then by its
	// child tx2 while tx1 is unconfirmed, then both are mined.
	target := r.Wallet.NewScript(testenv.P2WPKH)
	spk := hex.EncodeToString(target.PkScript)
	sh := shOf(target.PkScript)
	const method = "blockchain.scriptpubkey.subscribe"
	if st := c.call(method, spk); string(st) != "null" {
		t.Fatalf("status of an unused script: %s", st)
	}
	if st := old.call("blockchain.scripthash.subscribe", sh); string(st) != "null" {
		t.Fatalf("status of an unused script at 1.6: %s", st)
	}
	tx1, spent1 := build(t, r, testenv.TxRequest{Outputs: []*wire.TxOut{target.TxOut(100_000)}})
	r.Broadcast(tx1)
	e1 := entry{TxHash: tx1.TxHash().String(), Height: 0, Fee: ptr(feeOf(tx1, spent1))}
	c.waitStatus(method, sh, statusOf(e1), 20*time.Second)
	old.waitStatus("blockchain.scripthash.subscribe", sh, statusOf(e1), 20*time.Second)

	u1 := walletUTXO(t, r, wire.OutPoint{Hash: tx1.TxHash(), Index: 0})
	tx2, spent2 := build(t, r, testenv.TxRequest{Inputs: []*testenv.UTXO{u1}, NoSelect: true, Outputs: []*wire.TxOut{target.TxOut(40_000)}})
	r.Broadcast(tx2)
	e2 := entry{TxHash: tx2.TxHash().String(), Height: -1, Fee: ptr(feeOf(tx2, spent2))}
	// Height 0 sorts before -1 whatever the txids.
	c.waitStatus(method, sh, statusOf(e1, e2), 20*time.Second)
	wantMempool := mustJSON(t, map[string]any{"history": []entry{e1, e2}})
	if raw := c.call("blockchain.scriptpubkey.get_mempool", spk); !jsonEqual(raw, wantMempool) {
		t.Errorf("get_mempool %s, want %s", raw, wantMempool)
	}
	if raw := c.call("blockchain.scriptpubkey.get_history", spk); !jsonEqual(raw, wantMempool) {
		t.Errorf("get_history %s, want %s", raw, wantMempool)
	}
	if raw := old.call("blockchain.scripthash.get_mempool", sh); !jsonEqual(raw, mustJSON(t, []entry{e1, e2})) {
		t.Errorf("get_mempool at 1.6 %s", raw)
	}
	// tx2 spends tx1's 100,000 and pays back 40,000.
	if raw := c.call("blockchain.scriptpubkey.get_balance", spk); string(raw) != `{"confirmed":0,"unconfirmed":40000}` {
		t.Errorf("balance in the mempool: %s", raw)
	}
	wantUTXOs := fmt.Sprintf(`{"utxos":[{"tx_hash":%q,"tx_pos":0,"height":0,"value":40000}]}`, e2.TxHash)
	if raw := c.call("blockchain.scriptpubkey.listunspent", spk); string(raw) != wantUTXOs {
		t.Errorf("listunspent in the mempool: %s, want %s", raw, wantUTXOs)
	}

	r.Mine(1)
	h := r.Btcd.Height()
	blk := btcdBlock(t, r.Btcd, h)
	var mined []entry
	for _, tx := range blk.Transactions {
		if id := tx.TxHash().String(); id == e1.TxHash || id == e2.TxHash {
			mined = append(mined, entry{TxHash: id, Height: h})
		}
	}
	if len(mined) != 2 {
		t.Fatalf("block %d does not hold both transactions", h)
	}
	c.waitStatus(method, sh, statusOf(mined...), 20*time.Second)
	old.waitStatus("blockchain.scripthash.subscribe", sh, statusOf(mined...), 20*time.Second)
	if raw := c.call("blockchain.scriptpubkey.get_history", spk); !jsonEqual(raw, mustJSON(t, map[string]any{"history": mined})) {
		t.Errorf("get_history after the block: %s", raw)
	}
	if raw := c.call("blockchain.scriptpubkey.get_balance", spk); string(raw) != `{"confirmed":40000,"unconfirmed":0}` {
		t.Errorf("balance after the block: %s", raw)
	}
	wantUTXOs = fmt.Sprintf(`{"utxos":[{"tx_hash":%q,"tx_pos":0,"height":%d,"value":40000}]}`, e2.TxHash, h)
	if raw := c.call("blockchain.scriptpubkey.listunspent", spk); string(raw) != wantUTXOs {
		t.Errorf("listunspent after the block: %s, want %s", raw, wantUTXOs)
	}

	// Unsubscribed, the script is no longer notified.
	if raw := c.call("blockchain.scriptpubkey.unsubscribe", spk); string(raw) != "true" {
		t.Errorf("unsubscribe = %s", raw)
	}
	if raw := c.call("blockchain.scriptpubkey.unsubscribe", spk); string(raw) != "false" {
		t.Errorf("second unsubscribe = %s", raw)
	}
	if raw := old.call("blockchain.scripthash.unsubscribe", sh); string(raw) != "true" {
		t.Errorf("unsubscribe at 1.6 = %s", raw)
	}
	r.Pay(target.TxOut(20_000))
	c.noNote(time.Second)
	old.noNote(100 * time.Millisecond)
}

// testOutpoints checks blockchain.outpoint.*: unknown outpoints, out of
// range indexes, unspent and spent outputs, and one outpoint's life from
// before its transaction exists to a mined spend.
func testOutpoints(t *testing.T, n *node) {
	r := n.r
	c := dialTCP(t, n.tcp)
	c.version("1.7")
	status := func(txid chainhash.Hash, vout uint32) string {
		t.Helper()
		return string(c.call("blockchain.outpoint.get_status", txid.String(), vout, "51"))
	}

	s1 := r.Wallet.NewScript(testenv.P2TR)
	txP := r.Pay(s1.TxOut(50_000), testenv.NullDataOutput([]byte("amber")))
	hP := n.mine(t, 1)
	prev := txP.TxIn[0].PreviousOutPoint
	hPrev := txHeight(t, r.Btcd, prev.Hash)
	for _, tc := range []struct {
		name string
		txid chainhash.Hash
		vout uint32
		want string
	}{
		{"unknown tx", chainhash.Hash{1, 2, 3}, 0, `{}`},
		{"index out of range", txP.TxHash(), uint32(len(txP.TxOut)), `{}`},
		{"unspent", txP.TxHash(), 0, fmt.Sprintf(`{"funder_height":%d}`, hP)},
		{"OP_RETURN", txP.TxHash(), 1, fmt.Sprintf(`{"funder_height":%d}`, hP)},
		{"spent", prev.Hash, prev.Index, fmt.Sprintf(`{"funder_height":%d,"spender_txhash":%q,"spender_height":%d}`, hPrev, txP.TxHash(), hP)},
	} {
		if got := status(tc.txid, tc.vout); !jsonEqual([]byte(got), []byte(tc.want)) {
			t.Errorf("%s: get_status = %s, want %s", tc.name, got, tc.want)
		}
	}
	named := c.call("blockchain.outpoint.get_status", named{"tx_hash": txP.TxHash().String(), "txout_idx": 0, "spk_hint": hex.EncodeToString(s1.PkScript)})
	if !jsonEqual(named, []byte(fmt.Sprintf(`{"funder_height":%d}`, hP))) {
		t.Errorf("get_status with named params = %s", named)
	}
	c.fails(1, "should be a transaction hash", "blockchain.outpoint.get_status", "xyz", 0, "51")
	c.fails(1, "should be a non-negative integer", "blockchain.outpoint.get_status", txP.TxHash().String(), -1, "51")
	c.fails(1, "should be a hex string", "blockchain.outpoint.subscribe", txP.TxHash().String(), 0, "zz")
	c.fails(-32602, "requires 3", "blockchain.outpoint.subscribe", txP.TxHash().String(), 0)

	// txA pays s2. Subscribed before txA exists, the outpoint is {} and
	// is notified once txA enters the mempool.
	s2, s3, s4 := r.Wallet.NewScript(testenv.P2WPKH), r.Wallet.NewScript(testenv.P2PKH), r.Wallet.NewScript(testenv.P2WSHMultisig)
	txA, _ := build(t, r, testenv.TxRequest{Outputs: []*wire.TxOut{s2.TxOut(60_000)}})
	a := txA.TxHash()
	if raw := c.call("blockchain.outpoint.subscribe", a.String(), 0, hex.EncodeToString(s2.PkScript)); string(raw) != "{}" {
		t.Fatalf("subscribe before the tx exists = %s", raw)
	}
	r.Broadcast(txA)
	c.waitOutpoint(a, 0, `{"funder_height":0}`)

	// txB spends it while txA is unconfirmed: spender height -1, and
	// txB's own output is funded at -1.
	txB, _ := build(t, r, testenv.TxRequest{Inputs: []*testenv.UTXO{walletUTXO(t, r, wire.OutPoint{Hash: a})}, NoSelect: true,
		Outputs: []*wire.TxOut{s3.TxOut(30_000)}})
	b := txB.TxHash()
	r.Broadcast(txB)
	c.waitOutpoint(a, 0, fmt.Sprintf(`{"funder_height":0,"spender_txhash":%q,"spender_height":-1}`, b))
	if raw := c.call("blockchain.outpoint.subscribe", b.String(), 0, hex.EncodeToString(s3.PkScript)); string(raw) != `{"funder_height":-1}` {
		t.Errorf("subscribe to a child's output = %s", raw)
	}

	// Both mined.
	r.Mine(1)
	h := r.Btcd.Height()
	c.waitOutpoint(a, 0, fmt.Sprintf(`{"funder_height":%d,"spender_txhash":%q,"spender_height":%d}`, h, b, h))
	c.waitOutpoint(b, 0, fmt.Sprintf(`{"funder_height":%d}`, h))

	// txC spends txB's confirmed output: spender height 0, then mined.
	txC, _ := build(t, r, testenv.TxRequest{Inputs: []*testenv.UTXO{walletUTXO(t, r, wire.OutPoint{Hash: b})}, NoSelect: true,
		Outputs: []*wire.TxOut{s4.TxOut(10_000)}})
	r.Broadcast(txC)
	c.waitOutpoint(b, 0, fmt.Sprintf(`{"funder_height":%d,"spender_txhash":%q,"spender_height":0}`, h, txC.TxHash()))
	r.Mine(1)
	c.waitOutpoint(b, 0, fmt.Sprintf(`{"funder_height":%d,"spender_txhash":%q,"spender_height":%d}`, h, txC.TxHash(), h+1))

	for _, tc := range []struct {
		txid chainhash.Hash
		want string
	}{{b, "true"}, {b, "false"}, {a, "true"}, {chainhash.Hash{9}, "false"}} {
		if raw := c.call("blockchain.outpoint.unsubscribe", tc.txid.String(), 0); string(raw) != tc.want {
			t.Errorf("unsubscribe %s:0 = %s, want %s", tc.txid, raw, tc.want)
		}
	}
}

// waitOutpoint waits for an outpoint notification for txid:vout
// carrying the status want (JSON); others stay for later calls.
func (c *client) waitOutpoint(txid chainhash.Hash, vout uint32, want string) {
	c.t.Helper()
	_, ok := c.awaitNote(20*time.Second, func(n notification) bool {
		return n.method == "blockchain.outpoint.subscribe" && len(n.params) == 3 &&
			string(n.params[0]) == fmt.Sprintf("%q", txid) && string(n.params[1]) == fmt.Sprint(vout) && jsonEqual(n.params[2], []byte(want))
	})
	if !ok {
		c.t.Fatalf("no notification of %s:%d with %s; have %v", txid, vout, want, c.backlog)
	}
}

// jsonEqual reports whether two JSON texts hold the same value.
func jsonEqual(a, b []byte) bool {
	var va, vb any
	if json.Unmarshal(a, &va) != nil || json.Unmarshal(b, &vb) != nil {
		return false
	}
	return reflect.DeepEqual(va, vb)
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// btcdError makes a call to btcd that must fail and returns its message.
func btcdError(t *testing.T, b *testenv.Btcd, method string, params ...any) string {
	t.Helper()
	raw, err := b.Call(method, params...)
	if err == nil {
		t.Fatalf("btcd %s accepted: %s", method, raw)
	}
	var re *btcjson.RPCError
	if !errors.As(err, &re) {
		t.Fatalf("btcd %s: %v", method, err)
	}
	return re.Message
}

// acceptResult turns btcd's testmempoolaccept items into what the
// Electrum method answers: txid, wtxid, allowed when given, and the first
// non-empty reason.
func acceptResult(t *testing.T, raw json.RawMessage) []map[string]any {
	t.Helper()
	var items []map[string]any
	if err := json.Unmarshal(raw, &items); err != nil {
		t.Fatal(err)
	}
	var out []map[string]any
	for _, it := range items {
		m := map[string]any{"txid": it["txid"], "wtxid": it["wtxid"]}
		if a, ok := it["allowed"]; ok {
			m["allowed"] = a
		}
		for _, k := range []string{"package-error", "reject-details", "reject-reason"} {
			if s, _ := it[k].(string); s != "" {
				m["reason"] = s
				break
			}
		}
		out = append(out, m)
	}
	return out
}

// testTransactions checks the blockchain.transaction.* methods, and
// mempool.recent, with a transaction broadcast through the server.
func testTransactions(t *testing.T, n *node) {
	r, b := n.r, n.r.Btcd
	c := dialTCP(t, n.tcp)
	c.version("1.6")
	c7 := dialTCP(t, n.tcp)
	c7.version("1.7")

	payee := r.Wallet.NewScript(testenv.P2SHP2WPKH)
	tx, spent := build(t, r, testenv.TxRequest{Outputs: []*wire.TxOut{payee.TxOut(75_000)}})
	raw, id := txHex(t, tx), tx.TxHash().String()
	fee := feeOf(tx, spent)

	// testmempoolaccept answers as btcd does, and changes nothing.
	btcdAccept, err := b.Call("testmempoolaccept", []string{raw}, 0.1)
	if err != nil {
		t.Fatal(err)
	}
	want := acceptResult(t, btcdAccept)
	if len(want) != 1 || want[0]["allowed"] != true || want[0]["txid"] != id || want[0]["wtxid"] != tx.WitnessHash().String() {
		t.Fatalf("btcd testmempoolaccept: %s", btcdAccept)
	}
	if got := get[[]map[string]any](c7, "blockchain.transaction.testmempoolaccept", []string{raw}); !reflect.DeepEqual(got, want) {
		t.Errorf("testmempoolaccept = %v, want %v", got, want)
	}
	if b.InMempool(tx.TxHash()) {
		t.Fatal("testmempoolaccept put the tx in the mempool")
	}

	// Broadcast: the txid comes back and the tx shows in the mempool.
	if got := get[string](c, "blockchain.transaction.broadcast", raw); got != id {
		t.Fatalf("broadcast returned %q, want %s", got, id)
	}
	r.Wallet.AddTx(tx)
	if !b.InMempool(tx.TxHash()) {
		t.Fatal("btcd does not have the broadcast tx")
	}
	wantMempool := mustJSON(t, []entry{{TxHash: id, Height: 0, Fee: &fee}})
	eventually(t, "the broadcast tx in get_mempool", 20*time.Second, func() bool {
		return jsonEqual(c.call("blockchain.scripthash.get_mempool", shOf(payee.PkScript)), wantMempool)
	})
	if got := get[string](c, "blockchain.transaction.get", id); got != raw {
		t.Errorf("transaction.get of a mempool tx = %s, want %s", got, raw)
	}
	btcdVerbose, err := b.Call("getrawtransaction", id, 1)
	if err != nil {
		t.Fatal(err)
	}
	if got := c.call("blockchain.transaction.get", id, true); !jsonEqual(got, btcdVerbose) {
		t.Errorf("verbose transaction.get of a mempool tx\n got %s\nwant %s", got, btcdVerbose)
	}
	recent := get[[]map[string]any](c7, "mempool.recent")
	wantRecent := map[string]any{"txid": id, "fee": float64(fee), "vsize": float64(vsizeOf(tx))}
	if len(recent) == 0 || len(recent) > 10 || !reflect.DeepEqual(recent[0], wantRecent) {
		t.Errorf("mempool.recent = %v, want %v first", recent, wantRecent)
	}

	// Rejections carry btcd's reason and the raw tx.
	again := btcdError(t, b, "sendrawtransaction", raw)
	c.fails(1, "the transaction was rejected by network rules.\n\n"+again+"\n["+raw+"]", "blockchain.transaction.broadcast", raw)
	btcdAccept, err = b.Call("testmempoolaccept", []string{raw}, 0.1)
	if err != nil {
		t.Fatal(err)
	}
	want = acceptResult(t, btcdAccept)
	if got := get[[]map[string]any](c7, "blockchain.transaction.testmempoolaccept", []string{raw}); !reflect.DeepEqual(got, want) || want[0]["reason"] == nil {
		t.Errorf("testmempoolaccept of a tx in the mempool = %v, want %v", got, want)
	}
	bad := btcdError(t, b, "sendrawtransaction", "00")
	c.fails(1, "the transaction was rejected by network rules.\n\n"+bad+"\n[00]", "blockchain.transaction.broadcast", "00")
	c.fails(1, "zz should be a hex string", "blockchain.transaction.broadcast", "zz")
	c7.fails(1, "should be a hex string", "blockchain.transaction.testmempoolaccept", []string{"zz"})
	c7.fails(2, "daemon error", "blockchain.transaction.testmempoolaccept", []string{"00"})
	// btcd has no submitpackage.
	c.fails(1, "the tx package was rejected by network rules.", "blockchain.transaction.broadcast_package", []string{raw})
	c.fails(1, "", "blockchain.transaction.broadcast_package", []string{})
	c.fails(1, "should be a hex string", "blockchain.transaction.broadcast_package", []string{"zz"})
	c.fails(2, "daemon error", "blockchain.transaction.get", chainhash.Hash{7}.String())
	c.fails(1, "xyz should be a transaction hash", "blockchain.transaction.get", "xyz")
	c.fails(1, `"verbose" must be a boolean`, "blockchain.transaction.get", id, "yes")

	// Mined: verbose as btcd gives it, merkle proofs against the header.
	h := n.mine(t, 1)
	blk := btcdBlock(t, b, h)
	pos := slices.IndexFunc(blk.Transactions, func(x *wire.MsgTx) bool { return x.TxHash() == tx.TxHash() })
	if pos < 0 {
		t.Fatalf("tx not in block %d", h)
	}
	btcdVerbose, err = b.Call("getrawtransaction", id, 1)
	if err != nil {
		t.Fatal(err)
	}
	if got := c.call("blockchain.transaction.get", id, true); !jsonEqual(got, btcdVerbose) {
		t.Errorf("verbose transaction.get of a mined tx\n got %s\nwant %s", got, btcdVerbose)
	}
	var m struct {
		BlockHeight int32    `json:"block_height"`
		Merkle      []string `json:"merkle"`
		Pos         int      `json:"pos"`
	}
	rawMerkle := c.call("blockchain.transaction.get_merkle", id, h)
	json.Unmarshal(rawMerkle, &m)
	if !strings.HasPrefix(string(rawMerkle), fmt.Sprintf(`{"block_height":%d,"merkle":[`, h)) || m.Pos != pos ||
		foldBranch(t, tx.TxHash(), m.Merkle, pos) != blk.Header.MerkleRoot {
		t.Errorf("get_merkle = %s does not prove position %d", rawMerkle, pos)
	}
	var withMerkle struct {
		TxHash string   `json:"tx_hash"`
		Merkle []string `json:"merkle"`
	}
	rawPos := c.call("blockchain.transaction.id_from_pos", h, pos, true)
	json.Unmarshal(rawPos, &withMerkle)
	if !strings.HasPrefix(string(rawPos), fmt.Sprintf(`{"tx_hash":%q,"merkle":[`, id)) ||
		foldBranch(t, tx.TxHash(), withMerkle.Merkle, pos) != blk.Header.MerkleRoot {
		t.Errorf("id_from_pos(%d, %d, true) = %s does not verify", h, pos, rawPos)
	}
	if got := get[string](c, "blockchain.transaction.id_from_pos", h, pos); got != id {
		t.Errorf("id_from_pos(%d, %d) = %s", h, pos, got)
	}
	// Block 1 holds only its coinbase: an empty branch.
	cb := btcdBlock(t, b, 1).Transactions[0].TxHash().String()
	if raw := c.call("blockchain.transaction.get_merkle", cb, 1); string(raw) != `{"block_height":1,"merkle":[],"pos":0}` {
		t.Errorf("get_merkle of block 1's coinbase = %s", raw)
	}
	c.fails(1, fmt.Sprintf("tx %s not in block at height %d", id, h-1), "blockchain.transaction.get_merkle", id, h-1)
	c.fails(1, fmt.Sprintf("height %d out of range", h+100), "blockchain.transaction.get_merkle", id, h+100)
	c.fails(1, "should be a non-negative integer", "blockchain.transaction.get_merkle", id, "zz")
	c.fails(1, fmt.Sprintf("no tx at position %d in block at height %d", len(blk.Transactions), h),
		"blockchain.transaction.id_from_pos", h, len(blk.Transactions))
	c.fails(1, "no tx at position 0 in block at height 0", "blockchain.transaction.id_from_pos", 0, 0)
	c.fails(1, "not on disk", "blockchain.transaction.id_from_pos", h+5, 0)
	c.fails(1, `"merkle" must be a boolean`, "blockchain.transaction.id_from_pos", h, 0, "yes")
}

// feeBucket is a fee histogram entry: a rate in sat/vB and a size.
type feeBucket struct {
	rate  float64
	vsize int64
}

// testFees checks estimatefee against btcd's estimatefee, and the fee
// histogram of the mempool the server started with.
func testFees(t *testing.T, n *node, histogram []feeBucket) {
	b := n.r.Btcd
	c := dialTCP(t, n.tcp)
	c.version("1.6")
	btcdFee := func(blocks int) string {
		raw, err := b.Call("estimatefee", blocks)
		var f float64
		if err != nil || json.Unmarshal(raw, &f) != nil || f <= 0 {
			return "-1"
		}
		return string(raw)
	}
	for _, tc := range []struct {
		params []any
		target int // the bucketed target btcd is asked about
	}{
		{[]any{6}, 6},
		{[]any{6, "economical"}, 6},
		{[]any{6, "CONSERVATIVE"}, 6},
		{[]any{6, 5}, 6}, // a mode that is not a string counts as absent
		{[]any{0}, 1},
		{[]any{145}, 144},
		{[]any{5000}, 1008},
	} {
		want := btcdFee(tc.target)
		if got := c.call("blockchain.estimatefee", tc.params...); !jsonEqual(got, []byte(want)) {
			t.Errorf("estimatefee%v = %s, btcd says %s", tc.params, got, want)
		}
	}
	c.fails(1, "unknown estimatefee mode: BOGUS", "blockchain.estimatefee", 6, "bogus")
	c.fails(1, "x should be a non-negative integer", "blockchain.estimatefee", "x")

	var hist [][]json.Number
	raw := c.call("mempool.get_fee_histogram")
	if err := json.Unmarshal(raw, &hist); err != nil || len(hist) != len(histogram) {
		t.Fatalf("fee histogram %s, want %v: %v", raw, histogram, err)
	}
	for i, e := range hist {
		if len(e) != 2 {
			t.Fatalf("histogram entry %v", e)
		}
		rate, _ := e[0].Float64()
		size, err := e[1].Int64()
		if err != nil || rate != histogram[i].rate || size != histogram[i].vsize {
			t.Errorf("histogram entry %d: %v, want %v", i, e, histogram[i])
		}
	}
}
