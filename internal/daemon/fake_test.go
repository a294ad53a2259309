package daemon

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"amber/internal/config"

	"github.com/btcsuite/btcd/chainhash/v2"
)

// fakeDaemon is a small JSON-RPC server over httptest that behaves like
// the part of btcd and Bitcoin Core the client uses: methods answer from
// a fake chain, a test can replace any method, and faults (HTTP errors,
// warm-up, slow replies, hang-ups) can be queued for the next requests.
// Like btcd it ignores a request without a jsonrpc member and rejects a
// request whose params are missing; like both daemons it wants integer
// verbosity arguments.
type fakeDaemon struct {
	t    testing.TB
	srv  *httptest.Server
	user string
	pass string

	mu          sync.Mutex
	methods     map[string]fakeMethod
	faults      []fault
	delay       time.Duration // every JSON-RPC request waits this long first
	calls       []string      // methods called, batch items included
	posts       int           // JSON-RPC HTTP requests
	batches     int           // of which batches
	restGets    []string      // REST paths requested
	inFlight    int
	maxInFlight int

	// The fake chain.
	hashes []chainhash.Hash          // by height
	blocks map[chainhash.Hash][]byte // raw blocks
	txs    map[chainhash.Hash][]byte // raw transactions
	rest   bool                      // serve /rest/ like bitcoind -rest
	badRES map[chainhash.Hash][]byte // REST replies that differ from blocks
}

// fakeMethod answers one call.
type fakeMethod func(params []json.RawMessage) (any, *RPCError)

// fault replaces the handling of one HTTP request. It returns false to let
// the request be handled normally after it ran (a delay, say).
type fault func(w http.ResponseWriter, r *http.Request) bool

// newFakeDaemon starts a fake daemon with a chain of n blocks above a
// fake genesis, requiring the given credentials ("" for none).
func newFakeDaemon(t testing.TB, n int, user, pass string) *fakeDaemon {
	f := &fakeDaemon{
		t:       t,
		user:    user,
		pass:    pass,
		methods: map[string]fakeMethod{},
		blocks:  map[chainhash.Hash][]byte{},
		txs:     map[chainhash.Hash][]byte{},
		badRES:  map[chainhash.Hash][]byte{},
	}
	for i := 0; i <= n; i++ {
		raw := fakeBlock(t, i)
		h := chainhash.DoubleHashH(raw[:headerSize])
		f.hashes = append(f.hashes, h)
		f.blocks[h] = raw
	}
	f.defaultMethods()
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

// fakeBlock makes a block-like blob: an 80-byte header with random
// content followed by some bytes that depend on the height.
func fakeBlock(t testing.TB, height int) []byte {
	raw := make([]byte, headerSize+10+height)
	if _, err := rand.Read(raw[:headerSize]); err != nil {
		t.Fatal(err)
	}
	for i := headerSize; i < len(raw); i++ {
		raw[i] = byte(height)
	}
	return raw
}

// url returns the daemon's URL with its credentials.
func (f *fakeDaemon) url() config.DaemonURL {
	u, err := url.Parse(f.srv.URL)
	if err != nil {
		f.t.Fatal(err)
	}
	port, _ := strconv.Atoi(u.Port())
	f.mu.Lock()
	defer f.mu.Unlock()
	return config.DaemonURL{Scheme: "http", Host: u.Hostname(), Port: port, User: f.user, Password: f.pass}
}

// handle replaces or adds a method.
func (f *fakeDaemon) handle(method string, fn fakeMethod) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.methods[method] = fn
}

// inject queues faults for the next HTTP requests, one each.
func (f *fakeDaemon) inject(faults ...fault) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.faults = append(f.faults, faults...)
}

// stats returns the methods called and the JSON-RPC request counts.
func (f *fakeDaemon) stats() (calls []string, posts, batches int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.calls...), f.posts, f.batches
}

func (f *fakeDaemon) serve(w http.ResponseWriter, r *http.Request) {
	// Reading the body first lets the server notice, through
	// r.Context(), a client that gives up while a reply is held back.
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	f.mu.Lock()
	var ft fault
	if len(f.faults) > 0 {
		ft, f.faults = f.faults[0], f.faults[1:]
	}
	f.inFlight++
	f.maxInFlight = max(f.maxInFlight, f.inFlight)
	delay := f.delay
	wantUser, wantPass := f.user, f.pass
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		f.inFlight--
		f.mu.Unlock()
	}()
	if ft != nil && ft(w, r) {
		return
	}
	if r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, "/rest/") {
		f.serveREST(w, r)
		return
	}
	if delay > 0 {
		select {
		case <-time.After(delay):
		case <-r.Context().Done():
			return
		}
	}
	user, pass, _ := r.BasicAuth()
	if (wantUser != "" || wantPass != "") && (user != wantUser || pass != wantPass) {
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	f.mu.Lock()
	f.posts++
	batch := bytes.HasPrefix(bytes.TrimSpace(body), []byte("["))
	if batch {
		f.batches++
	}
	f.mu.Unlock()
	if !batch {
		reply, ok := f.answer(body)
		if !ok {
			return // btcd sends nothing back
		}
		writeJSON(w, reply)
		return
	}
	var items []json.RawMessage
	if err := json.Unmarshal(body, &items); err != nil {
		writeJSON(w, map[string]any{"id": nil, "result": nil, "error": &RPCError{Code: -32700, Message: "Parse error"}})
		return
	}
	replies := []any{}
	for _, it := range items {
		if reply, ok := f.answer(it); ok {
			replies = append(replies, reply)
		}
	}
	writeJSON(w, replies)
}

// answer handles one JSON-RPC request object. ok is false when btcd would
// not reply.
func (f *fakeDaemon) answer(body []byte) (reply map[string]any, ok bool) {
	var req struct {
		JSONRPC *string           `json:"jsonrpc"`
		ID      json.RawMessage   `json:"id"`
		Method  string            `json:"method"`
		Params  []json.RawMessage `json:"params"`
	}
	if err := json.Unmarshal(body, &req); err != nil {
		return map[string]any{"id": nil, "result": nil, "error": &RPCError{Code: -32700, Message: "Parse error"}}, true
	}
	if req.JSONRPC == nil || len(req.ID) == 0 || string(req.ID) == "null" {
		return nil, false
	}
	id := json.RawMessage(req.ID)
	if req.Params == nil {
		return map[string]any{"id": id, "result": nil, "error": &RPCError{Code: -32600, Message: "Invalid request: malformed"}}, true
	}
	f.mu.Lock()
	f.calls = append(f.calls, req.Method)
	fn := f.methods[req.Method]
	f.mu.Unlock()
	if fn == nil {
		return map[string]any{"id": id, "result": nil, "error": &RPCError{Code: CodeMethodNotFound, Message: "Method not found"}}, true
	}
	res, rpcErr := fn(req.Params)
	if rpcErr != nil {
		return map[string]any{"id": id, "result": nil, "error": rpcErr}, true
	}
	return map[string]any{"id": id, "result": res, "error": nil}, true
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

func (f *fakeDaemon) serveREST(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.restGets = append(f.restGets, r.URL.Path)
	rest := f.rest
	f.mu.Unlock()
	if !rest {
		http.NotFound(w, r)
		return
	}
	if r.URL.Path == "/rest/chaininfo.json" {
		writeJSON(w, map[string]any{"chain": "regtest", "blocks": len(f.hashes) - 1})
		return
	}
	name, ok := strings.CutPrefix(r.URL.Path, "/rest/block/")
	if !ok || !strings.HasSuffix(name, ".bin") {
		http.NotFound(w, r)
		return
	}
	var h chainhash.Hash
	if err := chainhash.DecodeStrict(&h, strings.TrimSuffix(name, ".bin")); err != nil {
		http.Error(w, "Invalid hash", http.StatusBadRequest)
		return
	}
	f.mu.Lock()
	raw, ok := f.blocks[h]
	if bad, isBad := f.badRES[h]; isBad {
		raw = bad
	}
	f.mu.Unlock()
	if !ok {
		http.Error(w, h.String()+" not found", http.StatusNotFound)
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	_, _ = w.Write(raw)
}

// defaultMethods answers from the fake chain.
func (f *fakeDaemon) defaultMethods() {
	tip := func() int { return len(f.hashes) - 1 }
	f.methods["getblockcount"] = func([]json.RawMessage) (any, *RPCError) { return tip(), nil }
	f.methods["getbestblockhash"] = func([]json.RawMessage) (any, *RPCError) { return f.hashes[tip()].String(), nil }
	f.methods["getblockchaininfo"] = func([]json.RawMessage) (any, *RPCError) {
		return map[string]any{"chain": "regtest", "blocks": tip(), "headers": tip(), "bestblockhash": f.hashes[tip()].String()}, nil
	}
	f.methods["getblockhash"] = func(p []json.RawMessage) (any, *RPCError) {
		var h int
		if len(p) != 1 || json.Unmarshal(p[0], &h) != nil {
			return nil, &RPCError{Code: -32602, Message: "Invalid params"}
		}
		if h < 0 || h > tip() {
			return nil, &RPCError{Code: -8, Message: "Block height out of range"}
		}
		return f.hashes[h].String(), nil
	}
	f.methods["getblock"] = func(p []json.RawMessage) (any, *RPCError) {
		var hs string
		var verbosity int
		if len(p) != 2 || json.Unmarshal(p[0], &hs) != nil || json.Unmarshal(p[1], &verbosity) != nil || verbosity != 0 {
			return nil, &RPCError{Code: -32602, Message: "Invalid params"}
		}
		var h chainhash.Hash
		if chainhash.DecodeStrict(&h, hs) != nil {
			return nil, &RPCError{Code: -8, Message: "hash must be of length 64"}
		}
		raw, ok := f.blocks[h]
		if !ok {
			return nil, &RPCError{Code: CodeNotFound, Message: "Block not found"}
		}
		return hex.EncodeToString(raw), nil
	}
	f.methods["getrawtransaction"] = func(p []json.RawMessage) (any, *RPCError) {
		var hs string
		var verbose int
		if len(p) != 2 || json.Unmarshal(p[0], &hs) != nil || json.Unmarshal(p[1], &verbose) != nil {
			return nil, &RPCError{Code: -32602, Message: "Invalid params"}
		}
		var h chainhash.Hash
		if chainhash.DecodeStrict(&h, hs) != nil {
			return nil, &RPCError{Code: -8, Message: "txid must be of length 64"}
		}
		f.mu.Lock()
		raw, ok := f.txs[h]
		f.mu.Unlock()
		if !ok {
			return nil, &RPCError{Code: CodeNotFound, Message: "No such mempool or blockchain transaction. Use gettransaction for wallet transactions."}
		}
		if verbose == 1 {
			return map[string]any{"txid": h.String(), "hex": hex.EncodeToString(raw)}, nil
		}
		return hex.EncodeToString(raw), nil
	}
	f.methods["getrawmempool"] = func([]json.RawMessage) (any, *RPCError) {
		f.mu.Lock()
		defer f.mu.Unlock()
		out := []string{}
		for h := range f.txs {
			out = append(out, h.String())
		}
		return out, nil
	}
	f.methods["sendrawtransaction"] = func(p []json.RawMessage) (any, *RPCError) {
		var s string
		if len(p) != 1 || json.Unmarshal(p[0], &s) != nil {
			return nil, &RPCError{Code: -32602, Message: "Invalid params"}
		}
		raw, err := hex.DecodeString(s)
		if err != nil || len(raw) < 10 {
			return nil, &RPCError{Code: -22, Message: "TX decode failed"}
		}
		return chainhash.DoubleHashH(raw).String(), nil
	}
}

// logBuffer is a slog handler target that tests can search.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// count returns how many log lines contain msg="<msg>".
func (b *logBuffer) count(msg string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return strings.Count(b.buf.String(), "msg=\""+msg+"\"")
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// newLogger returns a debug-level text logger writing to a logBuffer.
func newLogger() (*slog.Logger, *logBuffer) {
	b := &logBuffer{}
	return slog.New(slog.NewTextHandler(b, &slog.HandlerOptions{Level: slog.LevelDebug})), b
}

// fastOptions are Options with short delays for tests against fakes.
func fastOptions(log *slog.Logger) Options {
	return Options{
		Logger:        log,
		Timeout:       2 * time.Second,
		RetryDelay:    5 * time.Millisecond,
		MaxRetryDelay: 20 * time.Millisecond,
	}
}

// newTestClient returns a client for the fakes, failing the test on error.
func newTestClient(t testing.TB, opts Options, fakes ...*fakeDaemon) *Client {
	t.Helper()
	urls := make([]config.DaemonURL, len(fakes))
	for i, f := range fakes {
		urls[i] = f.url()
	}
	c, err := New(urls, opts)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// testContext returns a context that ends with the test or after d.
func testContext(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// Faults.

// statusFault answers with an HTTP status and a plain body.
func statusFault(code int, body string) fault {
	return func(w http.ResponseWriter, r *http.Request) bool {
		http.Error(w, body, code)
		return true
	}
}

// rpcErrorFault answers a single request with a JSON-RPC error in the way
// Bitcoin Core does before version 28: HTTP 500 with a JSON body.
func rpcErrorFault(code int, msg string) fault {
	return func(w http.ResponseWriter, r *http.Request) bool {
		body, _ := io.ReadAll(r.Body)
		var req struct {
			ID json.RawMessage `json:"id"`
		}
		_ = json.Unmarshal(body, &req)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusInternalServerError)
		_ = json.NewEncoder(w).Encode(map[string]any{"id": req.ID, "result": nil, "error": &RPCError{Code: code, Message: msg}})
		return true
	}
}

// warmupFault answers every call of the request, batch or not, with -28.
func warmupFault(w http.ResponseWriter, r *http.Request) bool {
	body, _ := io.ReadAll(r.Body)
	werr := &RPCError{Code: CodeWarmingUp, Message: "Loading block index…"}
	if bytes.HasPrefix(bytes.TrimSpace(body), []byte("[")) {
		var reqs []struct {
			ID json.RawMessage `json:"id"`
		}
		_ = json.Unmarshal(body, &reqs)
		out := []any{}
		for _, q := range reqs {
			out = append(out, map[string]any{"id": q.ID, "result": nil, "error": werr})
		}
		writeJSON(w, out)
		return true
	}
	var req struct {
		ID json.RawMessage `json:"id"`
	}
	_ = json.Unmarshal(body, &req)
	w.WriteHeader(http.StatusInternalServerError)
	writeJSON(w, map[string]any{"id": req.ID, "result": nil, "error": werr})
	return true
}

// hangupFault closes the connection without a reply.
func hangupFault(w http.ResponseWriter, r *http.Request) bool {
	conn, _, err := w.(http.Hijacker).Hijack()
	if err == nil {
		_ = conn.Close()
	}
	return true
}

// shortReplyFault promises a reply longer than it sends, then hangs up:
// the part sent is valid JSON-RPC, and must not be taken for the reply.
func shortReplyFault(w http.ResponseWriter, r *http.Request) bool {
	var req struct {
		ID json.RawMessage `json:"id"`
	}
	body, _ := io.ReadAll(r.Body)
	_ = json.Unmarshal(body, &req)
	conn, buf, err := w.(http.Hijacker).Hijack()
	if err != nil {
		return true
	}
	part := fmt.Sprintf(`{"id":%s,"result":"%064x","error":null}`, req.ID, 7)
	fmt.Fprintf(buf, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", len(part)+100, part)
	_ = buf.Flush()
	_ = conn.Close()
	return true
}

// slowFault holds the request for d (or until the client gives up) and
// then handles it normally.
func slowFault(d time.Duration) fault {
	return func(w http.ResponseWriter, r *http.Request) bool {
		select {
		case <-time.After(d):
			return false
		case <-r.Context().Done():
			return true
		}
	}
}
