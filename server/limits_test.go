package server_test

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/btcsuite/btcd/chainhash/v2"

	"amber/internal/chain"
	"amber/internal/testenv"
)

// TestLimits runs a server with the smallest MAX_SEND (350,000 bytes) and
// MAX_RECV (1,000 bytes) on a chain whose every block pays the same
// script, so that script's history reaches the limit of
// (MAX_SEND - 100) / 99 = 3,534 entries: 3,533 are served, one more is
// "history too large".
func TestLimits(t *testing.T) {
	if testing.Short() {
		t.Skip("runs btcd")
	}
	const served = (350_000-100)/99 - 1
	n := startNode(t, nodeOptions{
		// A short REQUEST_SLEEP: the utxo cost test takes a session to
		// the hard limit through the throttled range.
		env:     map[string]string{"MAX_SEND": "350000", "MAX_RECV": "1000", "REQUEST_SLEEP": "5"},
		prepare: func(r *testenv.Regtest) { r.Btcd.Generate(served) },
	})
	b := n.r.Btcd
	mining := n.r.MiningScript.PkScript
	sh, spk := shOf(mining), hex.EncodeToString(mining)

	t.Run("headers", func(t *testing.T) {
		// A full chunk of 2,016 headers fits under the smallest MAX_SEND
		// in both forms.
		c := dialTCP(t, n.tcp)
		c.version("1.4")
		var old struct {
			Hex   string `json:"hex"`
			Count int    `json:"count"`
		}
		json.Unmarshal(c.call("blockchain.block.headers", 0, 5000), &old)
		raw, err := hex.DecodeString(old.Hex)
		if err != nil || old.Count != 2016 || len(raw) != 2016*80 {
			t.Fatalf("block.headers(0, 5000) at 1.4: count %d, %d bytes", old.Count, len(raw))
		}
		var hdrs [][]byte
		for i := range 2016 {
			hdrs = append(hdrs, raw[80*i:80*i+80])
		}
		checkHeaders(t, b, 0, hdrs)

		c = dialTCP(t, n.tcp)
		c.version("1.6")
		var cur struct {
			Count   int      `json:"count"`
			Max     int      `json:"max"`
			Headers []string `json:"headers"`
		}
		json.Unmarshal(c.call("blockchain.block.headers", served-2015, 2016), &cur)
		hdrs = nil
		for _, h := range cur.Headers {
			raw, _ := hex.DecodeString(h)
			hdrs = append(hdrs, raw)
		}
		if cur.Count != 2016 || cur.Max != 2016 || len(hdrs) != 2016 {
			t.Fatalf("block.headers(%d, 2016) at 1.6: count %d max %d, %d headers", served-2015, cur.Count, cur.Max, len(hdrs))
		}
		checkHeaders(t, b, served-2015, hdrs)
	})

	t.Run("response too large", func(t *testing.T) {
		l := dialLine(t, n.tcp)
		resultOf(t, l.call(0, "server.version", "t", "1.6"))
		// 3,533 unspent outputs take more than 350,000 bytes.
		if e := errorOf(t, l.call(1, "blockchain.scripthash.listunspent", sh)); e.Code != -32600 || e.Message != "response too large (over 350,000 bytes" {
			t.Errorf("listunspent of %d outputs: %+v", served, e)
		}
		// MAX_SEND counts a batch as a whole: the second chunk of
		// headers takes the reply over.
		l.send(`[{"jsonrpc":"2.0","id":2,"method":"blockchain.block.headers","params":[0,2016]},` +
			`{"jsonrpc":"2.0","id":3,"method":"blockchain.block.headers","params":[1000,2016]}]`)
		var items []map[string]json.RawMessage
		if line := l.line(); json.Unmarshal(line, &items) != nil || len(items) != 2 {
			t.Fatalf("batch reply of %d bytes is not two items", len(line))
		}
		for _, it := range items {
			switch string(it["id"]) {
			case "2":
				var r struct{ Count int }
				json.Unmarshal(resultOf(t, it), &r)
				if r.Count != 2016 {
					t.Errorf("first chunk in the batch has %d headers", r.Count)
				}
			case "3":
				if e := errorOf(t, it); e.Code != -32600 || !strings.HasPrefix(e.Message, "response too large (over 350,000 bytes") {
					t.Errorf("second chunk in the batch: %+v", e)
				}
			default:
				t.Errorf("batch item with id %s", it["id"])
			}
		}
		resultOf(t, l.call(4, "server.ping"))

		// server.ping's pong_len may reach MAX_SEND; the reply must still
		// fit.
		c := dialTCP(t, n.tcp)
		c.version("1.7")
		if p := get[map[string]string](c, "server.ping", 300_000); len(p["data"]) != 300_000 {
			t.Errorf("ping(300000) returned %d bytes", len(p["data"]))
		}
		c.fails(-32600, "response too large (over 350,000 bytes", "server.ping", 350_000)
		c.fails(1, "pong_len value too high", "server.ping", 350_001)
	})

	t.Run("max recv", func(t *testing.T) {
		l := dialLine(t, n.tcp)
		resultOf(t, l.call(0, "server.version", "t", "1.6"))
		pad := func(id, size int) string {
			s := fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"server.ping","params":[]`, id)
			return s + strings.Repeat(" ", size-len(s)-1) + "}"
		}
		// Over MAX_RECV: dropped without a reply; the session goes on.
		l.send(pad(1, 1500))
		l.send(pad(2, 1000))
		if m := l.reply(); string(m["id"]) != "2" {
			t.Errorf("after an oversized request the next reply has id %s, want 2", m["id"])
		}
		l.send(pad(3, 100_000))
		resultOf(t, l.call(4, "server.ping"))
	})

	t.Run("history limit", func(t *testing.T) {
		c16 := dialTCP(t, n.tcp)
		c16.version("1.6")
		c17 := dialTCP(t, n.tcp)
		c17.version("1.7")
		hist := get[[]entry](c16, "blockchain.scripthash.get_history", sh)
		if len(hist) != served {
			t.Fatalf("%d history entries, want %d", len(hist), served)
		}
		want := coinbaseHistory(t, b, served)
		for i, e := range hist {
			if e != want[i] {
				t.Fatalf("history entry %d: %+v, want %+v", i, e, want[i])
			}
		}
		status := statusOf(want...)
		if st := statusString(t, c16.call("blockchain.scripthash.subscribe", sh)); st != status {
			t.Errorf("status at the limit %s, want %s", st, status)
		}
		if st := statusString(t, c17.call("blockchain.scriptpubkey.subscribe", spk)); st != status {
			t.Errorf("1.7 status at the limit %s, want %s", st, status)
		}
		if bal := get[map[string]int64](c16, "blockchain.scripthash.get_balance", sh); bal["confirmed"] != subsidies(served) {
			t.Errorf("balance %v, want %d", bal, subsidies(served))
		}

		// One block more: too large. Subscribers are told with a null
		// status, and the subscriptions are dropped.
		n.await(t, func() { b.Generate(1) })
		c16.waitStatus("blockchain.scripthash.subscribe", sh, "", 20*time.Second)
		c17.waitStatus("blockchain.scriptpubkey.subscribe", sh, "", 20*time.Second)
		c16.fails(10001, "history too large", "blockchain.scripthash.get_history", sh)
		c16.fails(10001, "history too large", "blockchain.scripthash.subscribe", sh)
		c17.fails(10001, "history too large", "blockchain.scriptpubkey.get_history", spk)
		c17.fails(10001, "history too large", "blockchain.scriptpubkey.subscribe", spk)
		if raw := c17.call("blockchain.scriptpubkey.unsubscribe", spk); string(raw) != "false" {
			t.Errorf("unsubscribe after the subscription was dropped: %s", raw)
		}
		c14 := dialTCP(t, n.tcp)
		c14.version("1.4")
		c14.fails(10001, "history too large", "blockchain.scripthash.get_history", sh)
		if bal := get[map[string]int64](c14, "blockchain.scripthash.get_balance", sh); bal["confirmed"] != subsidies(served+1) {
			t.Errorf("balance %v, want %d", bal, subsidies(served+1))
		}
	})

	t.Run("utxo cost and bound", func(t *testing.T) {
		// The mining script now has 3,534 unspent outputs, the most one
		// request reads at this MAX_SEND. Each get_balance of it costs
		// 1 + 3,534/50 = 71.7, so a client asking again and again reaches
		// COST_HARD_LIMIT (10,000) in about 140 requests and is dropped;
		// the same requests for an empty script cost 1.0 each. Each client
		// is alone in its cost group.
		untilDropped := func(src, sh string, most int) int {
			conn := dialFrom(t, src, n.tcp)
			r := bufio.NewReader(conn)
			fmt.Fprintf(conn, `{"jsonrpc":"2.0","id":0,"method":"server.version","params":["t","1.4"]}`+"\n")
			if _, err := r.ReadBytes('\n'); err != nil {
				t.Fatal(err)
			}
			for i := 1; i <= most; i++ {
				fmt.Fprintf(conn, `{"jsonrpc":"2.0","id":%d,"method":"blockchain.scripthash.get_balance","params":["%s"]}`+"\n", i, sh)
				line, err := r.ReadBytes('\n')
				var m map[string]json.RawMessage
				if err != nil || json.Unmarshal(line, &m) != nil || m["error"] != nil {
					return i
				}
			}
			return 0
		}
		if got := untilDropped("127.0.3.1", sh, 400); got < 100 || got > 160 {
			t.Errorf("get_balance of 3,534 outputs: dropped at request %d, want about 140 (0: never)", got)
		}
		empty := chain.ScriptHashOf([]byte{0x51}).Hex()
		if got := untilDropped("127.0.4.1", empty, 400); got != 0 {
			t.Errorf("get_balance of an empty script: dropped at request %d, want never in 400", got)
		}

		// One output more than a request reads: the 10001 error, for
		// balance and unspent outputs at every version.
		n.await(t, func() { b.Generate(1) })
		c14 := dialTCP(t, n.tcp)
		c14.version("1.4")
		c14.fails(10001, "too many unspent outputs", "blockchain.scripthash.get_balance", sh)
		c14.fails(10001, "too many unspent outputs", "blockchain.scripthash.listunspent", sh)
		c17 := dialTCP(t, n.tcp)
		c17.version("1.7")
		c17.fails(10001, "too many unspent outputs", "blockchain.scriptpubkey.get_balance", spk)
		c17.fails(10001, "too many unspent outputs", "blockchain.scriptpubkey.listunspent", spk)
	})
}

// checkHeaders checks that hdrs are btcd's headers from height start on:
// the first and last are btcd's, and each links to the one before.
func checkHeaders(t *testing.T, b *testenv.Btcd, start int32, hdrs [][]byte) {
	t.Helper()
	last := start + int32(len(hdrs)) - 1
	first, _ := btcdHeader(t, b, start)
	end, _ := btcdHeader(t, b, last)
	if hex.EncodeToString(hdrs[0]) != first || hex.EncodeToString(hdrs[len(hdrs)-1]) != end {
		t.Fatalf("headers %d and %d differ from btcd's", start, last)
	}
	for i := 1; i < len(hdrs); i++ {
		prev := chainhash.DoubleHashH(hdrs[i-1])
		if !bytes.Equal(hdrs[i][4:36], prev[:]) {
			t.Fatalf("header %d does not link to header %d", start+int32(i), start+int32(i)-1)
		}
	}
}

// coinbaseHistory is the history of a script paid by the coinbase of
// every block from 1 to height and by nothing else, from btcd.
func coinbaseHistory(t *testing.T, b *testenv.Btcd, height int) []entry {
	t.Helper()
	out := make([]entry, height)
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	work := make(chan int)
	for range 4 {
		wg.Go(func() {
			for h := range work {
				raw, err := b.Call("getblockhash", h)
				var hash string
				if err == nil {
					err = json.Unmarshal(raw, &hash)
				}
				var blk struct {
					Tx []string `json:"tx"`
				}
				if err == nil {
					raw, err = b.Call("getblock", hash, 1)
				}
				if err == nil {
					err = json.Unmarshal(raw, &blk)
				}
				if err == nil && len(blk.Tx) != 1 {
					err = fmt.Errorf("block %d has %d transactions", h, len(blk.Tx))
				}
				if err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
					continue
				}
				out[h-1] = entry{TxHash: blk.Tx[0], Height: int32(h)}
			}
		})
	}
	for h := 1; h <= height; h++ {
		work <- h
	}
	close(work)
	wg.Wait()
	if len(errs) > 0 {
		t.Fatal(errs[0])
	}
	return out
}

// subsidies is the sum of regtest block subsidies from height 1 to
// height: 50 BTC halved every 150 blocks.
func subsidies(height int) int64 {
	var sum int64
	for h := 1; h <= height; h++ {
		sum += 50e8 >> (h / 150)
	}
	return sum
}
