package methods

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"strconv"
	"strings"

	"github.com/btcsuite/btcd/wire/v2"

	"amber/internal/chain"
	"amber/internal/config"
	"amber/server/cost"
	"amber/server/query"
	"amber/server/rpc"
	"amber/server/session"
)

// Protocol versions that change method sets or results.
var (
	V14  = rpc.MustParseVersion("1.4")
	V142 = rpc.MustParseVersion("1.4.2")
	V16  = rpc.MustParseVersion("1.6")
	V17  = rpc.MustParseVersion("1.7")
)

func older(v, than rpc.Version) bool { return v.Compare(than) < 0 }

// ServerInfo is what server.* methods report about this server.
type ServerInfo struct {
	Software        string // "Amber 0.1.0"
	ProtocolMin     string
	ProtocolMax     string
	DonationAddress string
	BannerFile      string
	ReportServices  []config.Service
	Genesis         string
}

// Handlers are the server-wide dependencies of the methods; the
// per-connection state comes with each call as a *session.Session.
type Handlers struct {
	Backend *query.Backend
	Info    *ServerInfo
	// Peers answers the peer methods; nil serves no peers.
	Peers Peers
}

// Peers is the peer list a server shares (spec §6); server/peers
// implements it.
type Peers interface {
	// Subscribe is the result of server.peers.subscribe.
	Subscribe() []any
	// AddPeer handles server.add_peer from the client at remote.
	AddPeer(ctx context.Context, remote netip.AddrPort, features json.RawMessage) (bool, error)
}

// Method is one entry of the method table.
type Method = rpc.Method[*session.Session]

// Table returns the method table of protocol 1.4 to 1.7 (except
// server.version, which the connection handles itself).
func (hs *Handlers) Table() (*rpc.Table[*session.Session], error) {
	return rpc.NewTable(hs.methods()...)
}

func (hs *Handlers) methods() []Method {
	return []Method{
		{Name: "server.banner", MinVersion: V14, Handler: hs.banner},
		{Name: "server.donation_address", MinVersion: V14, Handler: func(_ context.Context, s *session.Session, _ []json.RawMessage) (any, error) {
			return hs.Info.DonationAddress, nil
		}},
		{Name: "server.features", MinVersion: V14, Handler: hs.features},
		{Name: "server.peers.subscribe", MinVersion: V14, Handler: func(_ context.Context, s *session.Session, _ []json.RawMessage) (any, error) {
			if hs.Peers == nil {
				return []any{}, nil
			}
			return hs.Peers.Subscribe(), nil
		}},
		{Name: "server.add_peer", Params: []string{"hs.features"}, Required: 1, MinVersion: V14, Handler: func(ctx context.Context, s *session.Session, args []json.RawMessage) (any, error) {
			if hs.Peers == nil {
				return false, nil
			}
			return hs.Peers.AddPeer(ctx, s.Remote, args[0])
		}},
		{Name: "server.ping", Params: []string{"pong_len", "data"}, MinVersion: V14, IgnoreExtra: true, Handler: hs.ping},

		{Name: "blockchain.block.header", Params: []string{"height", "cp_height"}, Required: 1, MinVersion: V14, Handler: hs.blockHeader},
		{Name: "blockchain.block.headers", Params: []string{"start_height", "count", "cp_height"}, Required: 2, MinVersion: V14, Handler: hs.blockHeaders},
		{Name: "blockchain.headers.subscribe", MinVersion: V14, Handler: hs.headersSubscribe},
		{Name: "blockchain.estimatefee", Params: []string{"number", "mode"}, Required: 1, MinVersion: V14, Handler: hs.estimateFee},
		{Name: "blockchain.relayfee", MinVersion: V14, RemovedIn: V16, Handler: func(ctx context.Context, s *session.Session, _ []json.RawMessage) (any, error) {
			v, err := hs.Backend.Daemon.RelayFee(ctx)
			if err != nil {
				return nil, query.DaemonError(err)
			}
			return v, nil
		}},
		{Name: "mempool.get_fee_histogram", MinVersion: V14, Handler: func(_ context.Context, s *session.Session, _ []json.RawMessage) (any, error) {
			h := hs.Backend.Mempool.FeeHistogram()
			out := make([][2]any, len(h))
			for i, e := range h {
				out[i] = [2]any{e.Rate, e.VSize}
			}
			return out, nil
		}},
		{Name: "mempool.get_info", MinVersion: V16, Handler: func(ctx context.Context, s *session.Session, _ []json.RawMessage) (any, error) {
			mi, err := hs.Backend.Daemon.MempoolInfo(ctx)
			if err != nil {
				return nil, query.DaemonError(err)
			}
			return map[string]float64{"mempoolminfee": mi.MempoolMinFee, "minrelaytxfee": mi.MinRelayTxFee, "incrementalrelayfee": mi.IncrementalRelayFee}, nil
		}},

		{Name: "blockchain.scripthash.get_balance", Params: []string{"scripthash"}, Required: 1, MinVersion: V14, RemovedIn: V17, Handler: byScripthash(hs.getBalance)},
		{Name: "blockchain.scripthash.get_history", Params: []string{"scripthash"}, Required: 1, MinVersion: V14, RemovedIn: V17, Handler: byScripthash(hs.getHistory(false))},
		{Name: "blockchain.scripthash.get_mempool", Params: []string{"scripthash"}, Required: 1, MinVersion: V14, RemovedIn: V17, Handler: byScripthash(hs.getMempool(false))},
		{Name: "blockchain.scripthash.listunspent", Params: []string{"scripthash"}, Required: 1, MinVersion: V14, RemovedIn: V17, Handler: byScripthash(hs.listUnspent(false))},
		{Name: "blockchain.scripthash.subscribe", Params: []string{"scripthash"}, Required: 1, MinVersion: V14, RemovedIn: V17, Handler: byScripthash(hs.subscribe("blockchain.scripthash.subscribe"))},
		{Name: "blockchain.scripthash.unsubscribe", Params: []string{"scripthash"}, Required: 1, MinVersion: V142, RemovedIn: V17, Handler: byScripthash(hs.unsubscribe)},

		{Name: "blockchain.scriptpubkey.get_balance", Params: []string{"spk"}, Required: 1, MinVersion: V17, Handler: bySPK(hs.getBalance)},
		{Name: "blockchain.scriptpubkey.get_history", Params: []string{"spk"}, Required: 1, MinVersion: V17, Handler: bySPK(hs.getHistory(true))},
		{Name: "blockchain.scriptpubkey.get_mempool", Params: []string{"spk"}, Required: 1, MinVersion: V17, Handler: bySPK(hs.getMempool(true))},
		{Name: "blockchain.scriptpubkey.listunspent", Params: []string{"spk"}, Required: 1, MinVersion: V17, Handler: bySPK(hs.listUnspent(true))},
		{Name: "blockchain.scriptpubkey.subscribe", Params: []string{"spk"}, Required: 1, MinVersion: V17, Handler: bySPK(hs.subscribe("blockchain.scriptpubkey.subscribe"))},
		{Name: "blockchain.scriptpubkey.unsubscribe", Params: []string{"spk"}, Required: 1, MinVersion: V17, Handler: bySPK(hs.unsubscribe)},

		{Name: "blockchain.outpoint.subscribe", Params: []string{"tx_hash", "txout_idx", "spk_hint"}, Required: 3, MinVersion: V17, Handler: hs.outpointMethod(true)},
		{Name: "blockchain.outpoint.get_status", Params: []string{"tx_hash", "txout_idx", "spk_hint"}, Required: 3, MinVersion: V17, Handler: hs.outpointMethod(false)},
		{Name: "blockchain.outpoint.unsubscribe", Params: []string{"tx_hash", "txout_idx"}, Required: 2, MinVersion: V17, Handler: hs.outpointUnsubscribe},

		{Name: "blockchain.transaction.broadcast", Params: []string{"raw_tx"}, Required: 1, MinVersion: V14, Handler: hs.broadcast},
		{Name: "blockchain.transaction.broadcast_package", Params: []string{"raw_txs", "verbose"}, Required: 1, MinVersion: V16, Handler: hs.broadcastPackage},
		{Name: "blockchain.transaction.get", Params: []string{"tx_hash", "verbose"}, Required: 1, MinVersion: V14, Handler: hs.txGet},
		{Name: "blockchain.transaction.get_merkle", Params: []string{"tx_hash", "height"}, Required: 2, MinVersion: V14, Handler: hs.txGetMerkle},
		{Name: "blockchain.transaction.id_from_pos", Params: []string{"height", "tx_pos", "merkle"}, Required: 2, MinVersion: V14, Handler: hs.txIDFromPos},
		{Name: "blockchain.transaction.testmempoolaccept", Params: []string{"raw_txs"}, Required: 1, MinVersion: V17, Handler: hs.testMempoolAccept},
		{Name: "mempool.recent", MinVersion: V17, Handler: func(_ context.Context, s *session.Session, _ []json.RawMessage) (any, error) {
			return hs.Backend.Recent(), nil
		}},
	}
}

func (hs *Handlers) banner(_ context.Context, s *session.Session, _ []json.RawMessage) (any, error) {
	def := "You are connected to an " + hs.Info.Software + " server."
	if hs.Info.BannerFile == "" {
		return def, nil
	}
	b, err := os.ReadFile(hs.Info.BannerFile)
	if err != nil {
		return def, nil
	}
	text := string(b)
	ver := strings.TrimPrefix(hs.Info.Software, "Amber ")
	r := strings.NewReplacer("$SERVER_VERSION", ver, "$SERVER_SUBVERSION", hs.Info.Software, "$DONATION_ADDRESS", hs.Info.DonationAddress,
		"$DAEMON_VERSION", "", "$DAEMON_SUBVERSION", "")
	return r.Replace(text), nil
}

func (hs *Handlers) features(_ context.Context, s *session.Session, _ []json.RawMessage) (any, error) {
	hosts := map[string]map[string]int{}
	services := []string{}
	for _, svc := range hs.Info.ReportServices {
		if hosts[svc.Host] == nil {
			hosts[svc.Host] = map[string]int{}
		}
		hosts[svc.Host][svc.Proto+"_port"] = svc.Port
		services = append(services, svc.String())
	}
	f := map[string]any{
		"hosts":          hosts,
		"pruning":        nil,
		"server_version": hs.Info.Software,
		"protocol_min":   hs.Info.ProtocolMin,
		"protocol_max":   hs.Info.ProtocolMax,
		"genesis_hash":   hs.Info.Genesis,
		"services":       services,
	}
	if older(s.Proto, V17) {
		f["hash_function"] = "sha256"
	}
	return f, nil
}

func (hs *Handlers) ping(_ context.Context, s *session.Session, args []json.RawMessage) (any, error) {
	if older(s.Proto, V17) {
		return nil, nil
	}
	n, err := optNonNegInt(args[0], 0, maxAny)
	if err != nil {
		return nil, err
	}
	if args[1] != nil {
		var d string
		if json.Unmarshal(args[1], &d) != nil || !isHex(d) {
			return nil, badRequest("%s should be a hex string", shown(args[1]))
		}
	}
	if n > int64(hs.Backend.MaxSend) {
		return nil, badRequest("pong_len value too high")
	}
	return map[string]string{"data": strings.Repeat("0", int(n))}, nil
}

func isHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i] | 0x20
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

func (hs *Handlers) blockHeader(_ context.Context, s *session.Session, args []json.RawMessage) (any, error) {
	height, err := nonNegInt(args[0], maxHeight)
	if err != nil {
		return nil, err
	}
	cp, err := optNonNegInt(args[1], 0, maxHeight)
	if err != nil {
		return nil, err
	}
	hdr, err := hs.Backend.HeaderHex(int32(height))
	if err != nil {
		return nil, err
	}
	if cp == 0 {
		return hdr, nil
	}
	s.Charge(cost.Proof)
	branch, root, err := hs.Backend.CheckpointProof(int32(height), int32(cp))
	if err != nil {
		return nil, err
	}
	return orderedMap{{"header", hdr}, {"branch", branch}, {"root", root}}, nil
}

// MaxHeaders is the most headers one blockchain.block.headers returns.
const MaxHeaders = query.HeaderChunk

func (hs *Handlers) blockHeaders(_ context.Context, s *session.Session, args []json.RawMessage) (any, error) {
	start, err := nonNegInt(args[0], maxHeight)
	if err != nil {
		return nil, err
	}
	count, err := nonNegInt(args[1], maxAny)
	if err != nil {
		return nil, err
	}
	cp, err := optNonNegInt(args[2], 0, maxHeight)
	if err != nil {
		return nil, err
	}
	tip := int64(hs.Backend.Index.Tip().Height)
	count = max(0, min(count, MaxHeaders, tip-start+1))
	s.Charge(float64(count) / cost.PerRows)
	all, err := hs.Backend.HeadersHex(int32(start), int(count))
	if err != nil {
		return nil, err
	}
	var out orderedMap
	if older(s.Proto, V16) {
		out = orderedMap{{"hex", rpc.Hex(all)}, {"count", count}, {"max", MaxHeaders}}
	} else {
		// Each header is a substring of the one hex string: no copies.
		const w = 2 * chain.HeaderSize
		hexes := make([]rpc.Hex, count)
		for i := range hexes {
			hexes[i] = rpc.Hex(all[i*w : (i+1)*w])
		}
		out = orderedMap{{"count", count}, {"max", MaxHeaders}, {"headers", hexes}}
	}
	if count > 0 && cp > 0 {
		s.Charge(cost.Proof)
		branch, root, err := hs.Backend.CheckpointProof(int32(start+count-1), int32(cp))
		if err != nil {
			return nil, err
		}
		out = append(out, kv{"root", root}, kv{"branch", branch})
	}
	return out, nil
}

func (hs *Handlers) headersSubscribe(ctx context.Context, s *session.Session, _ []json.RawMessage) (any, error) {
	return s.Subs.SubscribeHeaders(ctx, func() (any, error) {
		tip := hs.Backend.Index.Tip()
		raw, err := hs.Backend.Index.Header(tip.Height)
		if err != nil {
			return nil, err
		}
		return session.NewHeaderNotice(raw, tip.Height), nil
	})
}

func (hs *Handlers) estimateFee(ctx context.Context, s *session.Session, args []json.RawMessage) (any, error) {
	n, err := nonNegInt(args[0], maxAny)
	if err != nil {
		return nil, err
	}
	mode := ""
	if args[1] != nil {
		_ = json.Unmarshal(args[1], &mode) // non-strings count as absent
	}
	return hs.Backend.EstimateFee(ctx, n, mode)
}

// scriptHandler answers a method for a script given as hashX with the
// string to echo in notifications.
type scriptHandler func(ctx context.Context, s *session.Session, hx chain.HashX, echo string) (any, error)

func byScripthash(h scriptHandler) rpc.Handler[*session.Session] {
	return func(ctx context.Context, s *session.Session, args []json.RawMessage) (any, error) {
		sh, echo, err := scriptHashArg(args[0])
		if err != nil {
			return nil, err
		}
		return h(ctx, s, sh.HashX(), echo)
	}
}

func bySPK(h scriptHandler) rpc.Handler[*session.Session] {
	return func(ctx context.Context, s *session.Session, args []json.RawMessage) (any, error) {
		_, spk, err := hexString(args[0])
		if err != nil {
			return nil, err
		}
		sh := chain.ScriptHashOf(spk)
		return h(ctx, s, sh.HashX(), sh.Hex())
	}
}

func (hs *Handlers) getBalance(_ context.Context, s *session.Session, hx chain.HashX, _ string) (any, error) {
	bal, rows, err := hs.Backend.GetBalance(hx)
	s.Charge(float64(rows) / cost.PerRows)
	return bal, err
}

// historyItem is one get_history entry; Fee only for mempool entries.
type historyItem struct {
	TxHash string `json:"tx_hash"`
	Height int32  `json:"height"`
	Fee    *int64 `json:"fee,omitempty"`
}

func toItems(h []query.HistoryEntry) []historyItem {
	out := make([]historyItem, len(h))
	for i, e := range h {
		out[i] = historyItem{TxHash: e.TxID.String(), Height: e.Height}
		if e.Height <= 0 {
			fee := e.Fee
			out[i].Fee = &fee
		}
	}
	return out
}

func (hs *Handlers) getHistory(wrap bool) scriptHandler {
	return func(_ context.Context, s *session.Session, hx chain.HashX, _ string) (any, error) {
		h, err := hs.Backend.History(hx)
		if err != nil {
			return nil, err
		}
		if wrap {
			return map[string]any{"history": toItems(h)}, nil
		}
		return toItems(h), nil
	}
}

func (hs *Handlers) getMempool(wrap bool) scriptHandler {
	return func(_ context.Context, s *session.Session, hx chain.HashX, _ string) (any, error) {
		var h []query.HistoryEntry
		if hs.Backend.Mempool != nil {
			for _, e := range hs.Backend.Mempool.History(hx) {
				h = append(h, query.HistoryEntry{TxID: e.TxID, Height: e.Height, Fee: e.Fee})
			}
		}
		if wrap {
			return map[string]any{"history": toItems(h)}, nil
		}
		return toItems(h), nil
	}
}

func (hs *Handlers) listUnspent(wrap bool) scriptHandler {
	return func(_ context.Context, s *session.Session, hx chain.HashX, _ string) (any, error) {
		u, rows, err := hs.Backend.ListUnspent(hx)
		s.Charge(float64(rows) / cost.PerRows)
		if err != nil {
			return nil, err
		}
		if wrap {
			return map[string]any{"utxos": u}, nil
		}
		return u, nil
	}
}

func (hs *Handlers) subscribe(method string) scriptHandler {
	return func(ctx context.Context, s *session.Session, hx chain.HashX, echo string) (any, error) {
		return s.Subs.SubscribeScript(ctx, hs.Backend, hx, method, echo)
	}
}

func (hs *Handlers) unsubscribe(_ context.Context, s *session.Session, hx chain.HashX, _ string) (any, error) {
	return s.Subs.UnsubscribeScript(hx), nil
}

func outpointArgs(args []json.RawMessage) (wire.OutPoint, error) {
	id, err := txidArg(args[0])
	if err != nil {
		return wire.OutPoint{}, err
	}
	n, err := nonNegInt(args[1], maxOutIndex)
	if err != nil {
		return wire.OutPoint{}, err
	}
	return wire.OutPoint{Hash: id, Index: uint32(n)}, nil
}

func (hs *Handlers) outpointMethod(sub bool) rpc.Handler[*session.Session] {
	return func(ctx context.Context, s *session.Session, args []json.RawMessage) (any, error) {
		op, err := outpointArgs(args)
		if err != nil {
			return nil, err
		}
		if _, _, err := hexString(args[2]); err != nil {
			return nil, err
		}
		if sub {
			return s.Subs.SubscribeOutpoint(ctx, hs.Backend, op)
		}
		st, _, err := hs.Backend.OutpointStatus(op)
		return st, err
	}
}

func (hs *Handlers) outpointUnsubscribe(_ context.Context, s *session.Session, args []json.RawMessage) (any, error) {
	op, err := outpointArgs(args)
	if err != nil {
		return nil, err
	}
	return s.Subs.UnsubscribeOutpoint(op), nil
}

func (hs *Handlers) broadcast(ctx context.Context, s *session.Session, args []json.RawMessage) (any, error) {
	raw, _, err := hexString(args[0])
	if err != nil {
		return nil, err
	}
	return hs.Backend.Broadcast(ctx, raw)
}

// rawTxsArg reads a non-empty list of hex transactions.
func rawTxsArg(raw json.RawMessage) ([]string, error) {
	var raws []string
	if json.Unmarshal(raw, &raws) != nil || len(raws) == 0 {
		return nil, badRequest("raw_txs should be a non-empty list of hex strings")
	}
	for _, r := range raws {
		if _, err := hex.DecodeString(r); err != nil {
			return nil, badRequest("%s should be a hex string", r)
		}
	}
	return raws, nil
}

func (hs *Handlers) broadcastPackage(ctx context.Context, s *session.Session, args []json.RawMessage) (any, error) {
	raws, err := rawTxsArg(args[0])
	if err != nil {
		return nil, err
	}
	verbose, err := boolArg(args[1], "verbose")
	if err != nil {
		return nil, err
	}
	return hs.Backend.BroadcastPackage(ctx, raws, verbose)
}

func (hs *Handlers) testMempoolAccept(ctx context.Context, s *session.Session, args []json.RawMessage) (any, error) {
	raws, err := rawTxsArg(args[0])
	if err != nil {
		return nil, err
	}
	return hs.Backend.TestMempoolAccept(ctx, raws)
}

func (hs *Handlers) txGet(ctx context.Context, s *session.Session, args []json.RawMessage) (any, error) {
	id, err := txidArg(args[0])
	if err != nil {
		return nil, err
	}
	verbose, err := boolArg(args[1], "verbose")
	if err != nil {
		return nil, err
	}
	return hs.Backend.GetTransaction(ctx, id, verbose)
}

func (hs *Handlers) txGetMerkle(_ context.Context, s *session.Session, args []json.RawMessage) (any, error) {
	id, err := txidArg(args[0])
	if err != nil {
		return nil, err
	}
	h, err := nonNegInt(args[1], maxHeight)
	if err != nil {
		return nil, err
	}
	branch, pos, c, err := hs.Backend.TxMerkle(id, int32(h))
	s.Charge(c)
	if err != nil {
		return nil, err
	}
	return orderedMap{{"block_height", h}, {"merkle", branch}, {"pos", pos}}, nil
}

func (hs *Handlers) txIDFromPos(_ context.Context, s *session.Session, args []json.RawMessage) (any, error) {
	h, err := nonNegInt(args[0], maxHeight)
	if err != nil {
		return nil, err
	}
	pos, err := nonNegInt(args[1], maxHeight)
	if err != nil {
		return nil, err
	}
	wantMerkle, err := boolArg(args[2], "merkle")
	if err != nil {
		return nil, err
	}
	id, branch, err := hs.Backend.IDFromPos(int32(h), int(pos), wantMerkle)
	if err != nil {
		return nil, err
	}
	if !wantMerkle {
		return id.String(), nil
	}
	return orderedMap{{"tx_hash", id.String()}, {"merkle", branch}}, nil
}

// kv and orderedMap keep JSON member order where ElectrumX's is
// documented.
type kv struct {
	k string
	v any
}

type orderedMap []kv

// MarshalJSON writes the members in order, for maps nested in other
// results.
func (m orderedMap) MarshalJSON() ([]byte, error) { return m.AppendJSON(nil) }

// AppendJSON implements rpc.Appender: the members in order.
func (m orderedMap) AppendJSON(buf []byte) ([]byte, error) {
	buf = append(buf, '{')
	for i, e := range m {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = strconv.AppendQuote(buf, e.k)
		buf = append(buf, ':')
		var err error
		if buf, err = rpc.AppendValue(buf, e.v); err != nil {
			return nil, fmt.Errorf("methods: encode %s: %w", e.k, err)
		}
	}
	return append(buf, '}'), nil
}
