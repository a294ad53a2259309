package methods

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/btcsuite/btcd/chainhash/v2"
	"github.com/btcsuite/btcd/wire/v2"

	"amber/internal/chain"
	"amber/internal/daemon"
	"amber/internal/index"
	"amber/internal/store"
	"amber/internal/testenv"
	"amber/server/mempool"
	"amber/server/mempool/mempooltest"
	"amber/server/query"
	"amber/server/rpc"
	"amber/server/session"
)

// fuzzDaemon answers the daemon calls the methods make from a fixed set
// of transactions, and with daemon errors otherwise, as btcd would.
type fuzzDaemon struct{ txs map[chainhash.Hash][]byte }

var errNoTx = &daemon.RPCError{Code: -5, Message: "No information available about transaction"}

func (d *fuzzDaemon) RawTransaction(_ context.Context, id chainhash.Hash) ([]byte, error) {
	if raw, ok := d.txs[id]; ok {
		return raw, nil
	}
	return nil, errNoTx
}

func (d *fuzzDaemon) RawTransactionVerbose(_ context.Context, id chainhash.Hash) (json.RawMessage, error) {
	if _, ok := d.txs[id]; ok {
		return json.RawMessage(`{"txid":"` + id.String() + `"}`), nil
	}
	return nil, errNoTx
}

func (d *fuzzDaemon) SendRawTransaction(context.Context, string) (chainhash.Hash, error) {
	return chainhash.Hash{}, &daemon.RPCError{Code: -22, Message: "TX decode failed"}
}

func (d *fuzzDaemon) SubmitPackage(context.Context, []string) (*daemon.PackageResult, error) {
	return nil, &daemon.RPCError{Code: -32601, Message: "Method not found"}
}

func (d *fuzzDaemon) EstimateFee(context.Context, int, string) (float64, error) { return 0.0001, nil }
func (d *fuzzDaemon) RelayFee(context.Context) (float64, error)                 { return 0.00001, nil }
func (d *fuzzDaemon) MempoolInfo(context.Context) (*daemon.MempoolInfo, error) {
	return &daemon.MempoolInfo{MempoolMinFee: 0.00001, MinRelayTxFee: 0.00001, IncrementalRelayFee: 0.00001}, nil
}

func (d *fuzzDaemon) Call(context.Context, string, ...any) (json.RawMessage, error) {
	return nil, &daemon.RPCError{Code: -32601, Message: "Method not found"}
}

// fuzzFixture is a backend over a small in-memory chain: genesis, a block
// paying two scripts and a block spending one of them, with one payment
// in the mempool.
type fuzzFixture struct {
	backend  *query.Backend
	table    *rpc.Table[*session.Session]
	names    []string
	spk      []byte // a script with confirmed and mempool history
	txid     chainhash.Hash
	blockTxs int
}

func newFuzzFixture(t testing.TB) *fuzzFixture {
	t.Helper()
	net, _ := chain.Lookup("Bitcoin", "regtest")
	db, err := store.Open("", store.Options{InMemory: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	ix, err := index.Open(db, net, index.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var gbuf bytes.Buffer
	net.Params.GenesisBlock.Serialize(&gbuf)
	genesis, _ := chain.ParseBlock(gbuf.Bytes())
	spk := []byte{0x00, 0x14, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20}
	b1 := testenv.Block(t, genesis.Hash, 1)
	pay := wire.NewMsgTx(2)
	pay.AddTxIn(&wire.TxIn{PreviousOutPoint: wire.OutPoint{Hash: b1.Txs[0].TxID}})
	pay.AddTxOut(wire.NewTxOut(20e8, spk))
	pay.AddTxOut(wire.NewTxOut(29e8, []byte{0x52}))
	b2 := testenv.Block(t, b1.Hash, 2, pay)
	spend := wire.NewMsgTx(2)
	spend.AddTxIn(&wire.TxIn{PreviousOutPoint: wire.OutPoint{Hash: pay.TxHash(), Index: 1}})
	spend.AddTxOut(wire.NewTxOut(28e8, spk))
	b3 := testenv.Block(t, b2.Hash, 3, spend)
	w, err := ix.NewWriter()
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range []*chain.Block{genesis, b1, b2, b3} {
		if err := w.Connect(b); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Commit(true); err != nil {
		t.Fatal(err)
	}
	// An unconfirmed payment to spk, spending the confirmed one.
	pending := wire.NewMsgTx(2)
	pending.AddTxIn(&wire.TxIn{PreviousOutPoint: wire.OutPoint{Hash: spend.TxHash()}})
	pending.AddTxOut(wire.NewTxOut(27e8, spk))
	raw := func(tx *wire.MsgTx) []byte {
		var buf bytes.Buffer
		tx.Serialize(&buf)
		return buf.Bytes()
	}
	mp := mempool.New(&mempooltest.FixedMempool{Best: b3.Hash, Txs: map[chainhash.Hash][]byte{pending.TxHash(): raw(pending)}}, ix, mempool.Options{})
	if _, err := mp.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	d := &fuzzDaemon{txs: map[chainhash.Hash][]byte{pay.TxHash(): raw(pay), spend.TxHash(): raw(spend), pending.TxHash(): raw(pending)}}
	backend := query.NewBackend(ix, query.Synced(mp, ix), d, 100_000)
	hs := &Handlers{Backend: backend, Info: &ServerInfo{Software: "Amber fuzz", ProtocolMin: "1.4", ProtocolMax: "1.7"}}
	table, err := hs.Table()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, m := range hs.methods() {
		if !slices.Contains(names, m.Name) {
			names = append(names, m.Name)
		}
	}
	return &fuzzFixture{
		backend: backend,
		table:   table, names: names, spk: spk, txid: pay.TxHash(), blockTxs: 2,
	}
}

var fuzzVersions = []rpc.Version{V14, V142, V16, V17}

// FuzzMethodParams calls every Electrum method of the table, at every
// protocol version, with arbitrary params over a small indexed chain and
// mempool. Nothing may panic; a failure must be an Electrum error (never
// an internal error a client could trigger at will), and a result must
// encode into a valid reply within the response size limit or fail with
// the size error.
func FuzzMethodParams(f *testing.F) {
	fx := newFuzzFixture(f)
	sh := chain.ScriptHashOf(fx.spk).Hex()
	txid := fx.txid.String()
	seeds := map[string][]string{
		"server.ping":                              {`[]`, `[10, "00ff"]`, `[1e9]`, `{"pong_len": -1}`},
		"server.add_peer":                          {`[{"hosts":{}}]`},
		"blockchain.block.header":                  {`[0]`, `[3, 3]`, `[2, 1]`, `[-1]`, `[4]`, `{"height": "1"}`, `[1.5]`, `[1e30]`},
		"blockchain.block.headers":                 {`[0, 4]`, `[1, 2, 3]`, `[0, 100000000]`, `[3, 0]`, `[-5, 1]`},
		"blockchain.estimatefee":                   {`[2]`, `[2, "ECONOMICAL"]`, `[-1]`, `["x"]`},
		"blockchain.scripthash.get_balance":        {`["` + sh + `"]`, `["00"]`, `[null]`},
		"blockchain.scripthash.get_history":        {`["` + sh + `"]`, `{"scripthash":"` + sh + `"}`},
		"blockchain.scripthash.listunspent":        {`["` + sh + `"]`},
		"blockchain.scripthash.subscribe":          {`["` + sh + `"]`},
		"blockchain.scriptpubkey.get_history":      {`["0014` + "0102030405060708090a0b0c0d0e0f1011121314" + `"]`, `[""]`, `["zz"]`},
		"blockchain.scriptpubkey.listunspent":      {`["52"]`},
		"blockchain.outpoint.subscribe":            {`["` + txid + `", 0, "52"]`, `["` + txid + `", 4294967296, ""]`},
		"blockchain.outpoint.get_status":           {`["` + txid + `", 1, "52"]`},
		"blockchain.outpoint.unsubscribe":          {`["` + txid + `", 1]`},
		"blockchain.transaction.get":               {`["` + txid + `"]`, `["` + txid + `", true]`, `["00"]`},
		"blockchain.transaction.get_merkle":        {`["` + txid + `", 2]`, `["` + txid + `", 3]`, `["` + txid + `", -2]`},
		"blockchain.transaction.id_from_pos":       {`[2, 1]`, `[2, 1, true]`, `[3, 7]`, `[0, 0, true]`},
		"blockchain.transaction.broadcast":         {`["00"]`, `[""]`},
		"blockchain.transaction.broadcast_package": {`[["00", "01"]]`, `[[], true]`},
		"blockchain.transaction.testmempoolaccept": {`[["00"]]`, `[[]]`},
	}
	for i, name := range fx.names {
		ps := append([]string{`[]`, `{}`, `[null, null, null, null]`}, seeds[name]...)
		for j, p := range ps {
			f.Add(uint8(i), uint8(j%len(fuzzVersions)), []byte(p))
		}
	}
	codec := rpc.NewCodec(fx.backend.MaxSend)
	f.Fuzz(func(t *testing.T, sel, ver uint8, params []byte) {
		params = bytes.TrimSpace(params)
		if !json.Valid(params) || (params[0] != '[' && params[0] != '{') {
			return // the parser never hands a handler anything else
		}
		name := fx.names[int(sel)%len(fx.names)]
		v := fuzzVersions[int(ver)%len(fuzzVersions)]
		s := &session.Session{Subs: session.NewSubs(func(string, any) {}, 10), Proto: v}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		result, err := fx.table.Call(ctx, s, v, &rpc.Request{ID: json.RawMessage(`1`), Method: name, Params: params})
		if err == nil && hasHugeInt(name, params) {
			t.Fatalf("%s %s at %s: an integer past 2^32 was accepted (it wraps): %v", name, params, v, result)
		}
		if err != nil {
			var re *rpc.Error
			if !errors.As(err, &re) {
				t.Fatalf("%s %s at %s: %v is not an Electrum error", name, params, v, err)
			}
			if re.Code == rpc.CodeInternalError || re.Message == "" {
				t.Fatalf("%s %s at %s: error %+v", name, params, v, re)
			}
			return
		}
		reply := codec.Reply(json.RawMessage(`1`), result, nil)
		if !json.Valid(reply) {
			t.Fatalf("%s %s at %s: reply %q is not JSON", name, params, v, reply)
		}
		if len(reply) > fx.backend.MaxSend+200 {
			t.Fatalf("%s %s at %s: reply of %d bytes over MAX_SEND %d", name, params, v, len(reply), fx.backend.MaxSend)
		}
	})
}

// heightParams are, for the methods that take them, the parameters that
// are heights or positions (by position and by name), all of which must
// be under 2^32: a larger value accepted has wrapped.
var heightParams = map[string][]string{
	"blockchain.block.header":            {"height", "cp_height"},
	"blockchain.transaction.get_merkle":  {"", "height"},
	"blockchain.transaction.id_from_pos": {"height", "tx_pos"},
	"blockchain.outpoint.subscribe":      {"", "txout_idx"},
	"blockchain.outpoint.get_status":     {"", "txout_idx"},
	"blockchain.outpoint.unsubscribe":    {"", "txout_idx"},
}

// hasHugeInt reports a height parameter of method that reads as an
// integer of 2^32 or more, given as a number or a string.
func hasHugeInt(method string, params []byte) bool {
	names := heightParams[method]
	var vals []json.RawMessage
	var list []json.RawMessage
	var named map[string]json.RawMessage
	switch {
	case json.Unmarshal(params, &list) == nil:
		for i, name := range names {
			if name != "" && i < len(list) {
				vals = append(vals, list[i])
			}
		}
	case json.Unmarshal(params, &named) == nil:
		for _, name := range names {
			if v, ok := named[name]; ok && name != "" {
				vals = append(vals, v)
			}
		}
	}
	for _, raw := range vals {
		var str string
		text := string(raw)
		if json.Unmarshal(raw, &str) == nil {
			text = strings.TrimSpace(str)
		}
		if f, err := strconv.ParseFloat(text, 64); err == nil && f >= 1<<32 {
			return true
		}
	}
	return false
}

// TestFuzzFixture checks that the fuzz fixture is a working chain, so the
// fuzzer explores answers and not only errors.
func TestFuzzFixture(t *testing.T) {
	fx := newFuzzFixture(t)
	s := &session.Session{Subs: session.NewSubs(func(string, any) {}, 10), Proto: V14}
	call := func(method, params string) any {
		res, err := fx.table.Call(context.Background(), s, V14, &rpc.Request{Method: method, Params: json.RawMessage(params)})
		if err != nil {
			t.Fatalf("%s %s: %v", method, params, err)
		}
		return res
	}
	hist, _ := json.Marshal(call("blockchain.scripthash.get_history", `["`+chain.ScriptHashOf(fx.spk).Hex()+`"]`))
	// Confirmed at 2 and 3, then one unconfirmed payment.
	if n := bytes.Count(hist, []byte(`"tx_hash"`)); n != 3 || !bytes.Contains(hist, []byte(`"height":3`)) {
		t.Fatalf("history of the fixture's script: %s", hist)
	}
	if got, _ := json.Marshal(call("blockchain.transaction.id_from_pos", "[2, 1]")); string(got) != `"`+fx.txid.String()+`"` {
		t.Fatalf("id_from_pos(2, 1) = %s, want %s", got, fx.txid)
	}
}
