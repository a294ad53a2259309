package server_test

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"amber/internal/testenv"
)

// message is one line from the server: a reply (ID set) or a
// notification (Method set).
type message struct {
	ID     json.RawMessage            `json:"id"`
	Method string                     `json:"method"`
	Params []json.RawMessage          `json:"params"`
	Result json.RawMessage            `json:"result"`
	Error  map[string]json.RawMessage `json:"error"`
	raw    []byte
}

// readAll reads messages from l until want replies (not notifications)
// arrived, in wire order.
func (l *lineConn) readAll(t *testing.T, want int) []message {
	t.Helper()
	var out []message
	for replies := 0; replies < want; {
		b := l.line()
		if len(b) > 0 && b[0] == '[' {
			out = append(out, message{raw: b})
			replies++
			continue
		}
		var m message
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatalf("message %q: %v", b, err)
		}
		m.raw = b
		out = append(out, m)
		if m.Method == "" {
			replies++
		}
	}
	return out
}

// slowDaemonNode is a server whose daemon, real btcd, answers
// getrawtransaction only after delay (through a fault proxy); the
// default chain's payment is confirmed at height 106.
func slowDaemonNode(t *testing.T) (*node, *testenv.FaultProxy) {
	env := map[string]string{}
	var proxy *testenv.FaultProxy
	n := startNode(t, nodeOptions{env: env, prepare: func(r *testenv.Regtest) {
		defaultActivity(r)
		proxy = testenv.StartFaultProxy(t, r.Btcd.URL())
		env["DAEMON_URL"] = proxy.URL()
	}})
	return n, proxy
}

// TestSlowDaemonCallDoesNotHoldUpSession: a transaction.get waiting on
// the daemon does not delay the index-only requests pipelined behind it
// in the same session; each reply carries its request's id, and a batch
// is still answered as one array in request order.
func TestSlowDaemonCallDoesNotHoldUpSession(t *testing.T) {
	n, proxy := slowDaemonNode(t)
	blk := btcdBlock(t, n.r.Btcd, 106)
	tx := blk.Transactions[1]
	txid := tx.TxHash().String()
	var buf bytes.Buffer
	if err := tx.Serialize(&buf); err != nil {
		t.Fatal(err)
	}
	rawHex := hex.EncodeToString(buf.Bytes())
	hdr5, _ := btcdHeader(t, n.r.Btcd, 5)
	const delay = 3 * time.Second
	proxy.SetMethodDelay("getrawtransaction", delay)

	t.Run("pipelined", func(t *testing.T) {
		l := dialLine(t, n.tcp)
		l.call(0, "server.version", "test", "1.4")
		start := time.Now()
		l.request(1, "blockchain.transaction.get", txid)
		l.request(2, "blockchain.transaction.get_merkle", txid, 106)
		l.request(3, "blockchain.block.header", 5)
		l.request(4, "blockchain.headers.subscribe")
		l.request(5, "server.ping")
		msgs := l.readAll(t, 4)
		if took := time.Since(start); took >= delay {
			t.Errorf("the four index-only replies took %v: they waited for the daemon's %v", took, delay)
		}
		msgs = append(msgs, l.readAll(t, 1)...)
		var order []string
		for _, m := range msgs {
			if m.Method != "" {
				continue
			}
			order = append(order, string(m.ID))
			if m.Error != nil {
				t.Fatalf("reply %s is an error: %s", m.ID, m.raw)
			}
			switch string(m.ID) {
			case "1":
				if string(m.Result) != `"`+rawHex+`"` {
					t.Errorf("transaction.get = %s, want the transaction", m.Result)
				}
				if took := time.Since(start); took < delay {
					t.Errorf("transaction.get answered in %v, before the daemon's %v delay", took, delay)
				}
			case "2":
				var mk struct {
					BlockHeight int32 `json:"block_height"`
					Pos         int   `json:"pos"`
				}
				if json.Unmarshal(m.Result, &mk) != nil || mk.BlockHeight != 106 || mk.Pos != 1 {
					t.Errorf("get_merkle = %s, want position 1 at 106", m.Result)
				}
			case "3":
				if string(m.Result) != `"`+hdr5+`"` {
					t.Errorf("block.header(5) = %s, want %s", m.Result, hdr5)
				}
			}
		}
		if len(order) != 5 || order[4] != "1" {
			t.Fatalf("replies in the order %v: the index-only requests waited for the daemon call", order)
		}
	})

	// More sessions wait on the daemon than the server runs requests at
	// once: the waits give up their places, so another session's
	// index-only request is answered at once.
	t.Run("many sessions waiting", func(t *testing.T) {
		other := btcdBlock(t, n.r.Btcd, 105).Transactions[0].TxHash().String()
		const waiting = 64
		var lines []*lineConn
		for i := range waiting {
			l := dialLine(t, n.tcp)
			l.call(0, "server.version", "test", "1.4")
			l.request(i+1, "blockchain.transaction.get", other)
			lines = append(lines, l)
		}
		time.Sleep(300 * time.Millisecond) // let the requests reach the daemon
		start := time.Now()
		l := dialLine(t, n.tcp)
		l.call(0, "server.version", "test", "1.4")
		if r := l.call(1, "blockchain.block.header", 5); string(r["result"]) != `"`+hdr5+`"` {
			t.Fatalf("block.header(5) = %s", r["result"])
		}
		if took := time.Since(start); took >= delay/2 {
			t.Errorf("an index-only request on a new session took %v while %d sessions waited on the daemon", took, waiting)
		}
		for _, wl := range lines {
			if r := wl.reply(); r["error"] != nil {
				t.Errorf("a waiting transaction.get failed: %s", r["error"])
			}
		}
	})

	// The batch asks for the coinbase: the pipelined case left the
	// payment in the raw-transaction cache, and a cached answer would not
	// wait on the daemon.
	cb := blk.Transactions[0]
	cbid := cb.TxHash().String()
	buf.Reset()
	if err := cb.Serialize(&buf); err != nil {
		t.Fatal(err)
	}
	cbHex := hex.EncodeToString(buf.Bytes())

	t.Run("batch", func(t *testing.T) {
		l := dialLine(t, n.tcp)
		l.call(0, "server.version", "test", "1.4")
		l.send(`[{"jsonrpc":"2.0","id":"a","method":"blockchain.transaction.get","params":["` + cbid + `"]},` +
			`{"jsonrpc":"2.0","id":"b","method":"blockchain.block.header","params":[5]},` +
			`{"jsonrpc":"2.0","method":"server.ping","params":[]},` +
			`{"jsonrpc":"2.0","id":"c","method":"no.such.method","params":[]},` +
			`{"jsonrpc":"2.0","id":"d","method":"blockchain.transaction.get_merkle","params":["` + cbid + `",106]}]`)
		l.request(9, "blockchain.block.header", 5)
		msgs := l.readAll(t, 2)
		var single, batch []byte
		for _, m := range msgs {
			switch {
			case m.raw[0] == '[':
				batch = m.raw
			case string(m.ID) == "9":
				if batch != nil {
					t.Error("the request sent after the batch was answered after it, though the batch waits on the daemon")
				}
				single = m.raw
			}
		}
		if single == nil || batch == nil {
			t.Fatalf("got %d messages, want a reply to 9 and the batch's array", len(msgs))
		}
		var items []message
		if err := json.Unmarshal(batch, &items); err != nil {
			t.Fatalf("batch reply %s: %v", batch, err)
		}
		var ids []string
		for _, it := range items {
			ids = append(ids, strings.Trim(string(it.ID), `"`))
		}
		if strings.Join(ids, ",") != "a,b,c,d" {
			t.Fatalf("batch reply ids %v, want a,b,c,d in request order: %s", ids, batch)
		}
		if string(items[0].Result) != `"`+cbHex+`"` || string(items[1].Result) != `"`+hdr5+`"` || items[2].Error == nil || items[3].Result == nil {
			t.Errorf("batch reply %s", batch)
		}
	})
}

// TestPipelinedBurstIDs sends hundreds of requests at once on one
// session, with numeric and string ids, and checks that every reply
// carries the id of the request it answers.
func TestPipelinedBurstIDs(t *testing.T) {
	n := startNode(t, nodeOptions{})
	tip := n.r.Btcd.Height()
	headers := make([]string, tip+1)
	for h := range headers {
		headers[h], _ = btcdHeader(t, n.r.Btcd, int32(h))
	}
	l := dialLine(t, n.tcp)
	l.call(0, "server.version", "test", "1.4")
	const burst = 400
	var b strings.Builder
	want := map[string]string{} // id -> result
	for i := range burst {
		h := (i * 7) % len(headers)
		id := fmt.Sprint(1000 + i)
		if i%3 == 0 {
			id = fmt.Sprintf(`"s-%d"`, i)
		}
		method, params, result := "blockchain.block.header", fmt.Sprintf("[%d]", h), `"`+headers[h]+`"`
		if i%5 == 0 {
			// An error reply must carry its id too.
			method, params, result = "blockchain.block.header", fmt.Sprintf("[%d]", int(tip)+1+i), ""
		}
		want[id] = result
		fmt.Fprintf(&b, `{"jsonrpc":"2.0","id":%s,"method":"%s","params":%s}`+"\n", id, method, params)
	}
	if _, err := l.c.Write([]byte(b.String())); err != nil {
		t.Fatal(err)
	}
	for _, m := range l.readAll(t, burst) {
		if m.Method != "" {
			continue
		}
		id := string(m.ID)
		res, ok := want[id]
		if !ok {
			t.Fatalf("reply with unknown or repeated id %s: %s", id, m.raw)
		}
		delete(want, id)
		if res == "" {
			if m.Error == nil {
				t.Errorf("reply %s: want an error, got %s", id, m.raw)
			}
			continue
		}
		if string(m.Result) != res {
			t.Errorf("reply %s = %s, want %s", id, m.Result, res)
		}
	}
	if len(want) != 0 {
		t.Errorf("%d requests unanswered", len(want))
	}
}

// TestNotificationOrderWithConcurrentRequests subscribes to a script
// over and over while it is paid and the payments mined, with requests
// running concurrently in the session: in wire order, the statuses the
// client sees (replies and notifications alike) never go back to an
// older state of the script.
func TestNotificationOrderWithConcurrentRequests(t *testing.T) {
	var x *testenv.Script
	n := startNode(t, nodeOptions{prepare: func(r *testenv.Regtest) {
		r.Mine(105)
		x = r.Wallet.NewScript(testenv.P2WPKH)
		r.Pay(x.TxOut(50_000))
		r.Mine(1)
	}})
	sh := shOf(x.PkScript)
	l := dialLine(t, n.tcp)
	l.call(0, "server.version", "test", "1.4")

	// The subscriber: re-subscribes in bursts and reads everything.
	var (
		mu      sync.Mutex
		seen    []string // statuses of sh in wire order
		stopped = make(chan struct{})
		done    = make(chan error, 1)
	)
	go func() {
		for {
			b, err := l.readLine(30 * time.Second)
			if err != nil {
				done <- err
				return
			}
			var m message
			if err := json.Unmarshal(b, &m); err != nil {
				done <- fmt.Errorf("message %q: %w", b, err)
				return
			}
			var status json.RawMessage
			switch {
			case m.Method == "blockchain.scripthash.subscribe" && len(m.Params) == 2:
				status = m.Params[1]
			case m.Method == "" && string(m.ID) == `"stop"`:
				done <- nil
				return
			case m.Method == "" && bytes.HasPrefix(m.ID, []byte(`"sub`)):
				status = m.Result
			default:
				continue
			}
			var s string
			json.Unmarshal(status, &s)
			mu.Lock()
			seen = append(seen, s)
			mu.Unlock()
		}
	}()
	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		for i := 0; ; i++ {
			select {
			case <-stopped:
				return
			default:
			}
			var b strings.Builder
			for j := range 8 {
				fmt.Fprintf(&b, `{"jsonrpc":"2.0","id":"sub-%d-%d","method":"blockchain.scripthash.subscribe","params":["%s"]}`+"\n", i, j, sh)
				fmt.Fprintf(&b, `{"jsonrpc":"2.0","id":"h-%d-%d","method":"blockchain.block.header","params":[%d]}`+"\n", i, j, j)
			}
			if _, err := l.c.Write([]byte(b.String())); err != nil {
				return
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()

	const rounds = 6
	for range rounds {
		n.r.Pay(x.TxOut(20_000))
		time.Sleep(300 * time.Millisecond) // a mempool round
		n.mine(t, 1)
	}
	time.Sleep(300 * time.Millisecond)
	close(stopped)
	<-writerDone
	l.send(`{"jsonrpc":"2.0","id":"stop","method":"server.ping","params":[]}`)
	if err := <-done; err != nil {
		t.Fatal(err)
	}

	// Rank every state the script went through: k confirmed payments,
	// then k confirmed and the next in the mempool.
	var hist []entry
	c := dialTCP(t, n.tcp)
	c.version("1.4")
	if err := json.Unmarshal(c.call("blockchain.scripthash.get_history", sh), &hist); err != nil {
		t.Fatal(err)
	}
	if len(hist) != rounds+1 {
		t.Fatalf("history of %d entries, want %d", len(hist), rounds+1)
	}
	rank := map[string]int{}
	for k := 1; k <= len(hist); k++ {
		rank[statusOf(hist[:k]...)] = 2 * k
		if k < len(hist) {
			for _, h := range []int32{0, -1} {
				rank[statusOf(append(slices.Clone(hist[:k]), entry{TxHash: hist[k].TxHash, Height: h})...)] = 2*k + 1
			}
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(seen) < 2*rounds {
		t.Fatalf("saw only %d statuses", len(seen))
	}
	last := 0
	for i, s := range seen {
		r, ok := rank[s]
		if !ok {
			t.Fatalf("status %d of %d, %q, is no state the script went through", i, len(seen), s)
		}
		if r < last {
			t.Fatalf("status %d of %d went back from state %d to %d", i, len(seen), last, r)
		}
		last = r
	}
	if last != 2*len(hist) {
		t.Errorf("last status seen is state %d, want the final %d", last, 2*len(hist))
	}
}
