package server_test

import (
	"bufio"
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/btcsuite/btcd/chainhash/v2"
	"github.com/btcsuite/btcd/wire/v2"

	"amber/internal/testenv"
)

// Helpers shared by the protocol tests. Expected values are computed here
// from btcd or from raw transactions, never with Amber's own code.

// selfSignedCert writes a new self-signed ECDSA certificate for
// 127.0.0.1, ::1 and localhost and its key to PEM files, and returns
// their paths and a pool that trusts the certificate.
func selfSignedCert(t *testing.T) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "amber test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		DNSNames:              []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}

// lineConn is a raw newline-framed connection for tests that look at
// the bytes on the wire: replies in order, batches, disconnects.
type lineConn struct {
	t *testing.T
	c net.Conn
	r *bufio.Reader
}

func dialLine(t *testing.T, addr string) *lineConn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &lineConn{t: t, c: c, r: bufio.NewReaderSize(c, 1<<20)}
}

// send writes s and a newline.
func (l *lineConn) send(s string) {
	l.t.Helper()
	if _, err := io.WriteString(l.c, s+"\n"); err != nil {
		l.t.Fatalf("send: %v", err)
	}
}

// request sends a JSON-RPC 2.0 request with a numeric id.
func (l *lineConn) request(id int, method string, params ...any) {
	l.t.Helper()
	if params == nil {
		params = []any{}
	}
	b, err := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": id, "method": method, "params": params})
	if err != nil {
		l.t.Fatal(err)
	}
	l.send(string(b))
}

// line reads the next message, failing the test after 20 s or when the
// server closes the connection.
func (l *lineConn) line() []byte {
	l.t.Helper()
	b, err := l.readLine(20 * time.Second)
	if err != nil {
		l.t.Fatalf("reading a reply: %v", err)
	}
	return b
}

func (l *lineConn) readLine(within time.Duration) ([]byte, error) {
	l.c.SetReadDeadline(time.Now().Add(within))
	b, err := l.r.ReadBytes('\n')
	if err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b, []byte("\n")), nil
}

// reply reads the next message as a single response object.
func (l *lineConn) reply() map[string]json.RawMessage {
	l.t.Helper()
	b := l.line()
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		l.t.Fatalf("reply %q: %v", b, err)
	}
	return m
}

// call sends a request and returns its reply, which must carry its id.
func (l *lineConn) call(id int, method string, params ...any) map[string]json.RawMessage {
	l.t.Helper()
	l.request(id, method, params...)
	m := l.reply()
	if string(m["id"]) != fmt.Sprint(id) {
		l.t.Fatalf("%s: reply has id %s, want %d", method, m["id"], id)
	}
	return m
}

// closed asserts that the server closes the connection without sending
// anything more.
func (l *lineConn) closed() {
	l.t.Helper()
	b, err := l.readLine(10 * time.Second)
	var ne net.Error
	switch {
	case err == nil:
		l.t.Fatalf("connection still open; got %s", b)
	case errors.As(err, &ne) && ne.Timeout():
		l.t.Fatal("connection still open after 10 s")
	}
}

// named, as the only parameter of a client call, sends named parameters.
type named map[string]any

// rpcError is the error member of a reply.
type rpcError struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
}

// errorOf returns the reply's error, failing the test if it has none.
func errorOf(t *testing.T, m map[string]json.RawMessage) rpcError {
	t.Helper()
	raw, ok := m["error"]
	if !ok {
		t.Fatalf("want an error, got result %s", m["result"])
	}
	var e rpcError
	if err := json.Unmarshal(raw, &e); err != nil {
		t.Fatalf("error member %s: %v", raw, err)
	}
	return e
}

// resultOf returns the reply's result, failing the test on an error.
func resultOf(t *testing.T, m map[string]json.RawMessage) json.RawMessage {
	t.Helper()
	if e, ok := m["error"]; ok {
		t.Fatalf("want a result, got error %s", e)
	}
	return m["result"]
}

// get calls method on c and decodes the result into a T.
func get[T any](c *client, method string, params ...any) T {
	c.t.Helper()
	var v T
	raw := c.call(method, params...)
	if err := json.Unmarshal(raw, &v); err != nil {
		c.t.Fatalf("%s: result %s: %v", method, raw, err)
	}
	return v
}

// fails calls method on c, expecting an error with the code whose
// message contains want.
func (c *client) fails(code int, want string, method string, params ...any) {
	c.t.Helper()
	res, e := c.raw(method, params...)
	if e == nil {
		c.t.Errorf("%s%v: want error %d, got result %.200s", method, params, code, res)
		return
	}
	if got, _ := e["code"].(float64); int(got) != code || !strings.Contains(fmt.Sprint(e["message"]), want) {
		c.t.Errorf("%s%v: error %v, want code %d containing %q", method, params, e, code, want)
	}
}

// version negotiates a protocol version, which must be the one asked for.
func (c *client) version(proto string) {
	c.t.Helper()
	v := get[[]string](c, "server.version", "amber-test", []string{proto, proto})
	if len(v) != 2 || v[1] != proto {
		c.t.Fatalf("server.version → %v, want %s", v, proto)
	}
}

// shOf is the Electrum script hash: SHA-256 of the script, reversed,
// in hex.
func shOf(script []byte) string {
	h := sha256.Sum256(script)
	slices.Reverse(h[:])
	return hex.EncodeToString(h[:])
}

// entry is a history item as the tests expect it.
type entry struct {
	TxHash string `json:"tx_hash"`
	Height int32  `json:"height"`
	Fee    *int64 `json:"fee,omitempty"`
}

// statusOf is the Electrum status of a history in the order given:
// SHA-256 of "txid:height:" for each entry; "" for no history (null).
func statusOf(h ...entry) string {
	if len(h) == 0 {
		return ""
	}
	var b strings.Builder
	for _, e := range h {
		fmt.Fprintf(&b, "%s:%d:", e.TxHash, e.Height)
	}
	sum := sha256.Sum256([]byte(b.String()))
	return hex.EncodeToString(sum[:])
}

// statusString decodes a status result or notification parameter:
// a string, or "" for null.
func statusString(t *testing.T, raw json.RawMessage) string {
	t.Helper()
	if string(raw) == "null" {
		return ""
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		t.Fatalf("status %s: %v", raw, err)
	}
	return s
}

// waitStatus waits for a notification of method for sh carrying want
// ("" for null); other notifications, such as intermediate statuses, are
// left for later calls.
func (c *client) waitStatus(method, sh, want string, within time.Duration) {
	c.t.Helper()
	_, ok := c.awaitNote(within, func(n notification) bool {
		if n.method != method || len(n.params) != 2 {
			return false
		}
		var got string
		json.Unmarshal(n.params[0], &got)
		return got == sh && (string(n.params[1]) == "null" && want == "" || string(n.params[1]) == fmt.Sprintf("%q", want))
	})
	if !ok {
		c.t.Fatalf("no %s notification of %s with status %q within %v; have %v", method, sh, want, within, c.backlog)
	}
}

// noNote asserts that no new notification arrives for a while.
func (c *client) noNote(within time.Duration) {
	c.t.Helper()
	select {
	case m := <-c.notes:
		c.t.Errorf("unexpected notification %s %s", m["method"], m["params"])
	case <-time.After(within):
	}
}

// txHex serializes a transaction with its witness.
func txHex(t *testing.T, tx *wire.MsgTx) string {
	t.Helper()
	var buf bytes.Buffer
	if err := tx.Serialize(&buf); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(buf.Bytes())
}

// vsizeOf is ceil(weight / 4) with weight = 3 * stripped size + full size.
func vsizeOf(tx *wire.MsgTx) int64 {
	w := int64(3*tx.SerializeSizeStripped() + tx.SerializeSize())
	return (w + 3) / 4
}

// feeOf is the fee of a wallet transaction: what its inputs spend minus
// what its outputs pay.
func feeOf(tx *wire.MsgTx, spent []*testenv.UTXO) int64 {
	var fee int64
	for _, u := range spent {
		fee += u.Value
	}
	for _, o := range tx.TxOut {
		fee -= o.Value
	}
	return fee
}

// btcdHeader returns the raw header of btcd's best-chain block at height
// as hex, and the block hash.
func btcdHeader(t *testing.T, b testenv.Node, height int32) (string, chainhash.Hash) {
	t.Helper()
	raw, err := b.Call("getblockhash", height)
	if err != nil {
		t.Fatal(err)
	}
	var hash string
	json.Unmarshal(raw, &hash)
	raw, err = b.Call("getblockheader", hash, false)
	if err != nil {
		t.Fatal(err)
	}
	var hdr string
	json.Unmarshal(raw, &hdr)
	h, err := chainhash.NewHashFromStr(hash)
	if err != nil {
		t.Fatal(err)
	}
	return hdr, *h
}

// btcdBlock returns btcd's best-chain block at height.
func btcdBlock(t *testing.T, b testenv.Node, height int32) *wire.MsgBlock {
	t.Helper()
	_, hash := btcdHeader(t, b, height)
	raw, err := b.Call("getblock", hash.String(), 0)
	if err != nil {
		t.Fatal(err)
	}
	var hexBlock string
	json.Unmarshal(raw, &hexBlock)
	bin, err := hex.DecodeString(hexBlock)
	if err != nil {
		t.Fatal(err)
	}
	var blk wire.MsgBlock
	if err := blk.Deserialize(bytes.NewReader(bin)); err != nil {
		t.Fatal(err)
	}
	return &blk
}

// txHeight is the height of the block btcd confirmed txid in, from its
// verbose transaction.
func txHeight(t *testing.T, b testenv.Node, txid chainhash.Hash) int32 {
	t.Helper()
	raw, err := b.Call("getrawtransaction", txid.String(), 1)
	if err != nil {
		t.Fatal(err)
	}
	var v struct {
		BlockHash string `json:"blockhash"`
	}
	json.Unmarshal(raw, &v)
	raw, err = b.Call("getblockheader", v.BlockHash, true)
	if err != nil {
		t.Fatalf("tx %s: block %q: %v", txid, v.BlockHash, err)
	}
	var h struct {
		Height int32 `json:"height"`
	}
	json.Unmarshal(raw, &h)
	return h.Height
}

// eventually retries cond every 100 ms until it holds.
func eventually(t *testing.T, what string, within time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", within, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// foldBranch applies a merkle branch (hashes in display hex, deepest
// first) to the leaf at pos and returns the root.
func foldBranch(t *testing.T, leaf chainhash.Hash, branch []string, pos int) chainhash.Hash {
	t.Helper()
	h := leaf
	for _, s := range branch {
		sib, err := chainhash.NewHashFromStr(s)
		if err != nil {
			t.Fatalf("branch hash %q: %v", s, err)
		}
		var buf [64]byte
		if pos&1 == 0 {
			copy(buf[:32], h[:])
			copy(buf[32:], sib[:])
		} else {
			copy(buf[:32], sib[:])
			copy(buf[32:], h[:])
		}
		h = chainhash.DoubleHashH(buf[:])
		pos >>= 1
	}
	return h
}

// merkleRootOf is Bitcoin's merkle root of the leaves, the last node of
// an odd level paired with itself.
func merkleRootOf(leaves []chainhash.Hash) chainhash.Hash {
	level := slices.Clone(leaves)
	for len(level) > 1 {
		if len(level)%2 == 1 {
			level = append(level, level[len(level)-1])
		}
		next := make([]chainhash.Hash, len(level)/2)
		for i := range next {
			var buf [64]byte
			copy(buf[:32], level[2*i][:])
			copy(buf[32:], level[2*i+1][:])
			next[i] = chainhash.DoubleHashH(buf[:])
		}
		level = next
	}
	return level[0]
}

// mine mines k blocks (keeping the wallet in step) and waits until the
// server has processed them.
func (n *node) mine(t *testing.T, k int) int32 {
	t.Helper()
	return n.await(t, func() { n.r.Mine(k) })
}

// await runs f, which adds blocks to btcd's chain, and waits until the
// server has processed the new tip, index and mempool: it notifies
// headers only after both. It returns the new height.
func (n *node) await(t *testing.T, f func()) int32 {
	t.Helper()
	w := dialTCP(t, n.tcp)
	defer w.closeFn()
	w.version("1.4")
	w.call("blockchain.headers.subscribe")
	f()
	h := n.r.Height()
	w.waitHeader(h)
	return h
}

// waitHeader waits for a headers notification for height h, and
// returns its header.
func (c *client) waitHeader(h int32) string {
	c.t.Helper()
	var hdr struct {
		Hex    string `json:"hex"`
		Height int32  `json:"height"`
	}
	_, ok := c.awaitNote(20*time.Second, func(n notification) bool {
		return n.method == "blockchain.headers.subscribe" && len(n.params) == 1 &&
			json.Unmarshal(n.params[0], &hdr) == nil && hdr.Height == h
	})
	if !ok {
		c.t.Fatalf("no headers notification for height %d; have %v", h, c.backlog)
	}
	return hdr.Hex
}
