package server_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/btcsuite/btcd/chainhash/v2"
	"github.com/btcsuite/btcd/wire/v2"
	"github.com/coder/websocket"
	"github.com/prometheus/client_golang/prometheus"

	"amber/internal/chain"
	"amber/internal/config"
	"amber/internal/merkle"
	"amber/internal/telemetry"
	"amber/internal/testenv"
	"amber/internal/testenv/naive"
	"amber/server"
)

// node is btcd with a little activity and an amber server on it,
// listening on loopback.
type node struct {
	r   *testenv.Regtest
	srv *server.Server
	// Bound listener addresses: tcp and ws always, ssl and wss with
	// nodeOptions.tls, tcp6 ([::1]) with nodeOptions.ipv6.
	tcp, ws, ssl, wss, tcp6 string
	// certs trusts the ssl and wss listeners' self-signed certificate.
	certs  *x509.CertPool
	reg    *prometheus.Registry
	cancel context.CancelFunc
	done   chan error
}

// nodeOptions configures startNode.
type nodeOptions struct {
	// env adds configuration values or overrides the defaults.
	env map[string]string
	// tls adds ssl and wss listeners serving a new self-signed
	// certificate for 127.0.0.1, ::1 and localhost.
	tls bool
	// ipv6 adds a tcp listener on [::1].
	ipv6 bool
	// log, when set, receives the server's log at info level.
	log *testenv.Buffer
	// core runs Bitcoin Core instead of btcd.
	core bool
	// prepare makes the chain before the server starts; nil means 105
	// blocks and one payment to a new script of every kind, mined.
	prepare func(r *testenv.Regtest)
}

// defaultActivity mines 105 blocks, pays a new script of every kind in
// one transaction and mines it.
func defaultActivity(r *testenv.Regtest) {
	r.Mine(105)
	var outs []*wire.TxOut
	for _, k := range testenv.AllKinds() {
		outs = append(outs, r.Wallet.NewScript(k).TxOut(70_000))
	}
	r.Pay(outs...)
	r.Mine(1)
}

func startNode(t *testing.T, opts nodeOptions) *node {
	t.Helper()
	// Core runs with -txindex here only because the tests' own helpers
	// look transactions up by txid; the server needs none.
	r := testenv.StartRegtest(t, testenv.RegtestOptions{Core: opts.core, Bitcoind: testenv.BitcoindOptions{TxIndex: true, OldTip: true}})
	if opts.prepare == nil {
		opts.prepare = defaultActivity
	}
	opts.prepare(r)
	services := []string{"tcp://127.0.0.1:0", "ws://127.0.0.1:0"}
	env := map[string]string{
		"NET": "regtest", "DB_DIRECTORY": t.TempDir(), "DAEMON_URL": r.URL(),
		"DAEMON_POLL_INTERVAL": "100ms", "PEER_DISCOVERY": "off",
	}
	n := &node{r: r, done: make(chan error, 1)}
	if opts.tls {
		services = append(services, "ssl://127.0.0.1:0", "wss://127.0.0.1:0")
		env["SSL_CERTFILE"], env["SSL_KEYFILE"], n.certs = selfSignedCert(t)
	}
	if opts.ipv6 {
		services = append(services, "tcp://[::1]:0")
	}
	env["SERVICES"] = strings.Join(services, ",")
	maps.Copy(env, opts.env)
	cfg, err := config.Load(config.Serve, nil, func(k string) string { return env[k] }, nil)
	if err != nil {
		t.Fatal(err)
	}
	logger := telemetry.Discard()
	if opts.log != nil {
		logger = telemetry.NewLogger(opts.log, new(slog.LevelVar), "text")
	}
	n.reg = telemetry.NewRegistry()
	srv := server.New(cfg, logger, n.reg, telemetry.NewHealth("starting"))
	ctx, cancel := context.WithCancel(context.Background())
	n.srv, n.cancel = srv, cancel
	go func() { n.done <- srv.Run(ctx) }()
	select {
	case <-srv.Ready():
	case err := <-n.done:
		t.Fatalf("server stopped: %v", err)
	case <-time.After(60 * time.Second):
		t.Fatal("server not ready in 60 s")
	}
	addrs := srv.Addrs()
	if len(addrs) != len(services) {
		t.Fatalf("listening on %v, want %d listeners", addrs, len(services))
	}
	n.tcp, n.ws = addrs[0], addrs[1]
	addrs = addrs[2:]
	if opts.tls {
		n.ssl, n.wss, addrs = addrs[0], addrs[1], addrs[2:]
	}
	if opts.ipv6 {
		n.tcp6 = addrs[0]
	}
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-n.done:
			if err != nil {
				t.Errorf("server returned %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("server did not stop")
		}
	})
	return n
}

// client is a minimal Electrum client over TCP or WebSocket, independent
// of the server's code.
type client struct {
	t       *testing.T
	send    func([]byte) error
	mu      sync.Mutex
	replies map[string]chan json.RawMessage
	notes   chan map[string]json.RawMessage
	nextID  int
	closeFn func()
	// gone is closed when the server closes the connection.
	gone chan struct{}
	// backlog holds notifications read while waiting for others, oldest
	// first; only the test's goroutine uses it.
	backlog []notification
}

// notification is a notification the server sent.
type notification struct {
	method string
	params []json.RawMessage
}

func (n notification) String() string {
	var b strings.Builder
	b.WriteString(n.method)
	for _, p := range n.params {
		b.WriteByte(' ')
		b.Write(p)
	}
	return b.String()
}

func dialTCP(t *testing.T, addr string) *client {
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	return lineClient(t, conn)
}

// lineClient speaks newline-framed JSON-RPC over conn (tcp or ssl).
func lineClient(t *testing.T, conn net.Conn) *client {
	c := newClient(t, func(b []byte) error { _, err := conn.Write(append(b, '\n')); return err }, func() { conn.Close() })
	go func() {
		defer close(c.gone)
		sc := bufio.NewScanner(conn)
		sc.Buffer(make([]byte, 1<<20), 16<<20)
		for sc.Scan() {
			c.dispatch(append([]byte(nil), sc.Bytes()...))
		}
	}()
	return c
}

func dialWS(t *testing.T, addr string) *client {
	return dialWebSocket(t, "ws://"+addr+"/", nil)
}

// dialWebSocket connects to a ws:// or wss:// URL; opts may be nil.
func dialWebSocket(t *testing.T, url string, opts *websocket.DialOptions) *client {
	ctx := context.Background()
	ws, _, err := websocket.Dial(ctx, url, opts)
	if err != nil {
		t.Fatal(err)
	}
	ws.SetReadLimit(16 << 20)
	c := newClient(t, func(b []byte) error { return ws.Write(ctx, websocket.MessageText, b) }, func() { ws.CloseNow() })
	go func() {
		defer close(c.gone)
		for {
			_, b, err := ws.Read(ctx)
			if err != nil {
				return
			}
			c.dispatch(b)
		}
	}()
	return c
}

func newClient(t *testing.T, send func([]byte) error, closeFn func()) *client {
	c := &client{t: t, send: send, replies: map[string]chan json.RawMessage{}, notes: make(chan map[string]json.RawMessage, 100), closeFn: closeFn, gone: make(chan struct{})}
	t.Cleanup(closeFn)
	return c
}

// closedWithin reports whether the server closes the connection within d.
func (c *client) closedWithin(d time.Duration) bool {
	select {
	case <-c.gone:
		return true
	case <-time.After(d):
		return false
	}
}

func (c *client) dispatch(b []byte) {
	var m map[string]json.RawMessage
	if json.Unmarshal(b, &m) != nil {
		return
	}
	if _, ok := m["method"]; ok {
		c.notes <- m
		return
	}
	c.mu.Lock()
	ch := c.replies[string(m["id"])]
	c.mu.Unlock()
	if ch != nil {
		ch <- b
	}
}

// call sends a request and returns its result, or fails the test on an
// error reply unless wantErr.
func (c *client) raw(method string, params ...any) (result json.RawMessage, rpcErr map[string]any) {
	c.t.Helper()
	c.mu.Lock()
	c.nextID++
	id := c.nextID
	ch := make(chan json.RawMessage, 1)
	c.replies[fmt.Sprint(id)] = ch
	c.mu.Unlock()
	var p any = params
	if len(params) == 0 {
		p = []any{}
	} else if nm, ok := params[0].(named); len(params) == 1 && ok {
		p = nm
	}
	req, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": id, "method": method, "params": p})
	if err := c.send(req); err != nil {
		c.t.Fatal(err)
	}
	select {
	case b := <-ch:
		var m map[string]json.RawMessage
		json.Unmarshal(b, &m)
		if e, ok := m["error"]; ok {
			json.Unmarshal(e, &rpcErr)
			return nil, rpcErr
		}
		return m["result"], nil
	case <-time.After(30 * time.Second):
		c.t.Fatalf("no reply to %s", method)
	}
	return nil, nil
}

func (c *client) call(method string, params ...any) json.RawMessage {
	c.t.Helper()
	res, e := c.raw(method, params...)
	if e != nil {
		c.t.Fatalf("%s: error %v", method, e)
	}
	return res
}

// note returns the params of the oldest notification of method want not
// taken yet, waiting for one if need be.
func (c *client) note(want string, within time.Duration) []json.RawMessage {
	c.t.Helper()
	n, ok := c.awaitNote(within, func(n notification) bool { return n.method == want })
	if !ok {
		c.t.Fatalf("no %s notification within %v", want, within)
	}
	return n.params
}

// awaitNote takes the oldest notification, received already or within
// the time given, that match accepts; the others stay for later calls.
func (c *client) awaitNote(within time.Duration, match func(notification) bool) (notification, bool) {
	c.t.Helper()
	for i, n := range c.backlog {
		if match(n) {
			c.backlog = append(c.backlog[:i], c.backlog[i+1:]...)
			return n, true
		}
	}
	deadline := time.After(within)
	for {
		select {
		case m := <-c.notes:
			var n notification
			json.Unmarshal(m["method"], &n.method)
			json.Unmarshal(m["params"], &n.params)
			if match(n) {
				return n, true
			}
			c.backlog = append(c.backlog, n)
		case <-deadline:
			return notification{}, false
		}
	}
}

func scripthash(script []byte) string { return chain.ScriptHashOf(script).Hex() }

// chainFromBtcd reads btcd's best chain as parsed blocks.
func chainFromBtcd(t *testing.T, b *testenv.Btcd) []*chain.Block {
	t.Helper()
	var out []*chain.Block
	for h := int32(0); h <= b.Height(); h++ {
		raw, _ := b.Call("getblockhash", h)
		var hash string
		json.Unmarshal(raw, &hash)
		raw, _ = b.Call("getblock", hash, 0)
		var hx string
		json.Unmarshal(raw, &hx)
		bin, _ := hex.DecodeString(hx)
		blk, err := chain.ParseBlock(bin)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, blk)
	}
	return out
}

func TestProtocolAgainstChain(t *testing.T) {
	if testing.Short() {
		t.Skip("runs btcd")
	}
	n := startNode(t, nodeOptions{tls: true})
	for _, tr := range n.transports() {
		t.Run(tr.name, func(t *testing.T) {
			c := tr.dial(t)
			var ver []string
			json.Unmarshal(c.call("server.version", "test/1.0", []string{"1.4", "1.6"}), &ver)
			if len(ver) != 2 || ver[1] != "1.6" || !strings.HasPrefix(ver[0], "Amber") {
				t.Fatalf("server.version = %v", ver)
			}
			var feat map[string]any
			json.Unmarshal(c.call("server.features"), &feat)
			if feat["genesis_hash"] != n.r.Btcd.Params.GenesisHash.String() || feat["hash_function"] != "sha256" {
				t.Errorf("features %v", feat)
			}
			blocks := chainFromBtcd(t, n.r.Btcd)
			tip := int32(len(blocks) - 1)
			var hs struct {
				Hex    string `json:"hex"`
				Height int32  `json:"height"`
			}
			json.Unmarshal(c.call("blockchain.headers.subscribe"), &hs)
			if hs.Height != tip || hs.Hex != hex.EncodeToString(blocks[tip].RawHeader[:]) {
				t.Errorf("headers.subscribe %+v, tip %d", hs, tip)
			}
			var hdrs struct {
				Count   int      `json:"count"`
				Max     int      `json:"max"`
				Headers []string `json:"headers"`
			}
			json.Unmarshal(c.call("blockchain.block.headers", 0, 5000), &hdrs)
			if hdrs.Count != int(tip)+1 || hdrs.Max != 2016 || hdrs.Headers[7] != hex.EncodeToString(blocks[7].RawHeader[:]) {
				t.Errorf("block.headers count %d max %d", hdrs.Count, hdrs.Max)
			}
			// Checkpoint proof of header 10 against cp 50, verified by hand.
			var proof struct {
				Header string   `json:"header"`
				Branch []string `json:"branch"`
				Root   string   `json:"root"`
			}
			json.Unmarshal(c.call("blockchain.block.header", 10, 50), &proof)
			var leaves []chainhash.Hash
			for _, b := range blocks[:51] {
				leaves = append(leaves, b.Hash)
			}
			root, _ := merkle.Root(leaves)
			if proof.Root != root.String() || proof.Header != hex.EncodeToString(blocks[10].RawHeader[:]) {
				t.Errorf("checkpoint proof root %s, want %s", proof.Root, root)
			}

			// Every script with history: history, balance and unspent
			// outputs against a naive recomputation from btcd's blocks.
			want := naive.Build(blocks)
			for hx, script := range indexedScripts(blocks) {
				var hist []struct {
					TxHash string `json:"tx_hash"`
					Height int32  `json:"height"`
				}
				json.Unmarshal(c.call("blockchain.scripthash.get_history", scripthash(script)), &hist)
				wh := want.History(hx)
				if len(hist) != len(wh) {
					t.Fatalf("script %x: %d history items, want %d", script, len(hist), len(wh))
				}
				for i := range hist {
					if hist[i].TxHash != wh[i].TxID.String() || hist[i].Height != wh[i].Height {
						t.Fatalf("script %x item %d differs", script, i)
					}
				}
				var bal struct {
					Confirmed   int64 `json:"confirmed"`
					Unconfirmed int64 `json:"unconfirmed"`
				}
				json.Unmarshal(c.call("blockchain.scripthash.get_balance", scripthash(script)), &bal)
				if bal.Confirmed != want.Balance(hx) || bal.Unconfirmed != 0 {
					t.Errorf("script %x balance %+v, want %d", script, bal, want.Balance(hx))
				}
				var utxos []map[string]any
				json.Unmarshal(c.call("blockchain.scripthash.listunspent", scripthash(script)), &utxos)
				if len(utxos) != len(want.UTXOs(hx)) {
					t.Errorf("script %x: %d utxos, want %d", script, len(utxos), len(want.UTXOs(hx)))
				}
			}

			// Merkle proofs of the last block's transactions verify
			// against its header, and transaction.get returns the bytes.
			last := blocks[tip]
			for i, tx := range last.Txs {
				var m struct {
					BlockHeight int32    `json:"block_height"`
					Merkle      []string `json:"merkle"`
					Pos         int      `json:"pos"`
				}
				json.Unmarshal(c.call("blockchain.transaction.get_merkle", tx.TxID.String(), tip), &m)
				var branch []chainhash.Hash
				for _, s := range m.Merkle {
					h, _ := chainhash.NewHashFromStr(s)
					branch = append(branch, *h)
				}
				if m.Pos != i || merkle.RootFromBranch(tx.TxID, branch, i) != last.Header.MerkleRoot {
					t.Errorf("merkle proof of %s does not verify", tx.TxID)
				}
				var id string
				json.Unmarshal(c.call("blockchain.transaction.id_from_pos", tip, i), &id)
				if id != tx.TxID.String() {
					t.Errorf("id_from_pos %d = %s", i, id)
				}
				var rawHex string
				json.Unmarshal(c.call("blockchain.transaction.get", tx.TxID.String()), &rawHex)
				var buf bytes.Buffer
				tx.Msg.Serialize(&buf)
				if rawHex != hex.EncodeToString(buf.Bytes()) {
					t.Errorf("transaction.get %s differs", tx.TxID)
				}
			}

			// Bad input gets errors and the session stays usable.
			if _, e := c.raw("blockchain.scripthash.get_history", "zz"); e == nil || e["code"].(float64) != 1 {
				t.Errorf("bad scripthash: %v", e)
			}
			if _, e := c.raw("no.such.method"); e == nil || e["code"].(float64) != -32601 {
				t.Errorf("unknown method: %v", e)
			}
			if _, e := c.raw("blockchain.block.header", 1_000_000); e == nil || !strings.Contains(fmt.Sprint(e["message"]), "1,000,000 out of range") {
				t.Errorf("header out of range: %v", e)
			}
			c.call("server.ping")
		})
	}
}

// TestNotifications: a payment to a subscribed script is notified from
// the mempool, again when mined, with the new header.
func TestNotifications(t *testing.T) {
	if testing.Short() {
		t.Skip("runs btcd and Bitcoin Core")
	}
	for _, d := range []string{"btcd", "core"} {
		t.Run(d, func(t *testing.T) { testNotifications(t, d == "core") })
	}
}

func testNotifications(t *testing.T, core bool) {
	n := startNode(t, nodeOptions{tls: true, core: core})
	for _, tr := range n.transports() {
		t.Run(tr.name, func(t *testing.T) {
			c := tr.dial(t)
			c.call("server.version", "test", "1.4")
			c.call("blockchain.headers.subscribe")
			target := n.r.Wallet.NewScript(testenv.P2TR)
			sh := scripthash(target.PkScript)
			if st := c.call("blockchain.scripthash.subscribe", sh); string(st) != "null" {
				t.Fatalf("fresh script status %s", st)
			}
			tx := n.r.Pay(target.TxOut(55_555))
			params := c.note("blockchain.scripthash.subscribe", 20*time.Second)
			var gotSH, status string
			json.Unmarshal(params[0], &gotSH)
			json.Unmarshal(params[1], &status)
			var mp []struct {
				TxHash string `json:"tx_hash"`
				Height int32  `json:"height"`
				Fee    int64  `json:"fee"`
			}
			json.Unmarshal(c.call("blockchain.scripthash.get_mempool", sh), &mp)
			if gotSH != sh || len(mp) != 1 || mp[0].TxHash != tx.TxHash().String() || mp[0].Height != 0 || mp[0].Fee <= 0 {
				t.Fatalf("mempool notification %s %s, get_mempool %+v", gotSH, status, mp)
			}
			var bal map[string]int64
			json.Unmarshal(c.call("blockchain.scripthash.get_balance", sh), &bal)
			if bal["confirmed"] != 0 || bal["unconfirmed"] != 55_555 {
				t.Errorf("balance while unconfirmed %v", bal)
			}
			n.r.Mine(1)
			hdr := c.note("blockchain.headers.subscribe", 20*time.Second)
			var h struct {
				Height int32 `json:"height"`
			}
			json.Unmarshal(hdr[0], &h)
			if h.Height != n.r.Height() {
				t.Errorf("header notification height %d, daemon %d", h.Height, n.r.Height())
			}
			params = c.note("blockchain.scripthash.subscribe", 20*time.Second)
			var status2 string
			json.Unmarshal(params[1], &status2)
			if status2 == status {
				t.Error("status did not change on confirmation")
			}
			json.Unmarshal(c.call("blockchain.scripthash.get_balance", sh), &bal)
			if bal["confirmed"] != 55_555 || bal["unconfirmed"] != 0 {
				t.Errorf("balance after the block %v", bal)
			}
		})
	}
}

// dialSSL connects over TLS, trusting the node's self-signed certificate.
func (n *node) dialSSL(t *testing.T, addr string) *client {
	conn, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: n.certs, ServerName: "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	return lineClient(t, conn)
}

// dialWSS connects over secure WebSocket, trusting the node's certificate.
func (n *node) dialWSS(t *testing.T, addr string) *client {
	return dialWebSocket(t, "wss://"+addr+"/", &websocket.DialOptions{HTTPClient: &http.Client{
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: n.certs, ServerName: "127.0.0.1"}},
	}})
}

// transport is one way to reach a node, with its dialer.
type transport struct {
	name string
	dial func(*testing.T) *client
}

// transports lists tcp and ws, and ssl and wss when the node has TLS.
func (n *node) transports() []transport {
	out := []transport{
		{"tcp", func(t *testing.T) *client { return dialTCP(t, n.tcp) }},
		{"ws", func(t *testing.T) *client { return dialWS(t, n.ws) }},
	}
	if n.ssl != "" {
		out = append(out,
			transport{"ssl", func(t *testing.T) *client { return n.dialSSL(t, n.ssl) }},
			transport{"wss", func(t *testing.T) *client { return n.dialWSS(t, n.wss) }})
	}
	return out
}
