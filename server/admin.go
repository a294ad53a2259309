package server

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"amber/internal/chain"
	"amber/internal/config"
	"amber/internal/daemon"
	"amber/internal/index"
	"amber/internal/version"
	"amber/server/cost"
	"amber/server/mempool"
	"amber/server/session"
	"amber/server/transport"
)

// PeerAdmin is what the admin RPC asks of peer discovery.
type PeerAdmin interface {
	// AdminList reports every known peer.
	AdminList() any
	// AdminAdd queues a peer given as ElectrumX's real_name
	// ("host s50002 t50001") for verification.
	AdminAdd(ctx context.Context, realName string) error
}

// banList is BAN_LIST, changed at run time by ban and unban.
type banList struct {
	mu       sync.RWMutex
	prefixes []netip.Prefix
}

func (b *banList) allow(a netip.Addr) bool {
	b.mu.RLock()
	defer b.mu.RUnlock()
	for _, p := range b.prefixes {
		if p.Contains(a) {
			return false
		}
	}
	return true
}

func (b *banList) list() []string {
	b.mu.RLock()
	defer b.mu.RUnlock()
	out := make([]string, len(b.prefixes))
	for i, p := range b.prefixes {
		out[i] = p.String()
	}
	return out
}

// admin answers the rpc:// service: newline-delimited JSON-RPC from
// `amber rpc`, without server.version, cost or size limits.
type admin struct {
	s        *Server
	level    *slog.LevelVar
	started  time.Time
	registry *session.Registry
	groups   *cost.Groups
	subs     *session.SubCounter
	bans     *banList
	peers    PeerAdmin
	f        *follower
	ix       *index.Index
	mp       *mempool.Mempool
	dc       *daemon.Client
	stop     func()
}

type adminRequest struct {
	ID     json.RawMessage `json:"id"`
	Method string          `json:"method"`
	Params json.RawMessage `json:"params"`
}

type adminError struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
}

// serve runs one admin connection.
func (a *admin) serve(ctx context.Context, c transport.Conn) {
	for {
		msg, err := c.ReadMessage(ctx)
		if err != nil {
			return
		}
		var req adminRequest
		resp := map[string]any{"jsonrpc": "2.0"}
		if err := json.Unmarshal(msg, &req); err != nil || req.Method == "" {
			resp["id"] = nil
			resp["error"] = adminError{Code: -32700, Message: "want a JSON-RPC request object with a method"}
		} else {
			resp["id"] = req.ID
			a.s.logger.Info("admin command", "command", req.Method)
			result, err := a.call(ctx, req.Method, args(req.Params))
			if err != nil {
				resp["error"] = adminError{Code: 1, Message: err.Error()}
			} else {
				resp["result"] = result
			}
		}
		out, err := json.Marshal(resp)
		if err != nil {
			out, _ = json.Marshal(map[string]any{"jsonrpc": "2.0", "id": req.ID, "error": adminError{Code: -32603, Message: err.Error()}})
		}
		if err := c.WriteMessage(ctx, out); err != nil {
			return
		}
	}
}

// args turns params into strings: a JSON array of strings or numbers, or
// an object of named parameters (ElectrumX's electrumx_rpc sends those).
func args(raw json.RawMessage) []string {
	var list []any
	if json.Unmarshal(raw, &list) != nil {
		var named map[string]any
		if json.Unmarshal(raw, &named) != nil {
			return nil
		}
		keys := make([]string, 0, len(named))
		for k := range named {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			list = append(list, named[k])
		}
	}
	var out []string
	for _, v := range list {
		switch v := v.(type) {
		case []any:
			for _, x := range v {
				out = append(out, fmt.Sprint(x))
			}
		case float64:
			out = append(out, strconv.FormatFloat(v, 'f', -1, 64))
		default:
			out = append(out, fmt.Sprint(v))
		}
	}
	return out
}

// adminCommands lists the commands for `amber rpc help`.
var adminCommands = map[string]string{
	"getinfo":      "a summary of the node",
	"sessions":     "every session with its address, client, cost and traffic",
	"groups":       "the cost groups (subnets) with their costs",
	"peers":        "the known peers and their state",
	"add_peer":     "HOST [sPORT] [tPORT]: queue a peer for verification",
	"disconnect":   "ID|GROUP|ADDRESS|all ...: close sessions",
	"ban":          "ADDRESS|PREFIX ...: refuse and disconnect clients",
	"unban":        "ADDRESS|PREFIX ...: lift bans",
	"log":          "[debug|info|warn|error]: show or set the log level",
	"daemon_url":   "URL[,URL...]: replace the daemon list (empty: back to DAEMON_URL)",
	"reorg":        "[N]: undo the top N blocks (default 3) and sync them again, for testing",
	"query":        "ADDRESS|SCRIPT_HEX ... [LIMIT]: history, UTXOs and balance",
	"snapshot":     "the snapshot this node restored",
	"debug_memory": "Go heap and per-session memory figures",
	"stop":         "shut down cleanly",
	"help":         "this list",
}

func (a *admin) call(ctx context.Context, cmd string, p []string) (any, error) {
	switch cmd {
	case "help":
		return adminCommands, nil
	case "getinfo":
		return a.getinfo(ctx), nil
	case "sessions":
		return a.registry.List(), nil
	case "groups":
		return a.groups.List(), nil
	case "peers":
		if a.peers == nil {
			return []any{}, nil
		}
		return a.peers.AdminList(), nil
	case "add_peer":
		if len(p) == 0 {
			return nil, errors.New("add_peer needs a peer, e.g. \"electrum.example.org s50002 t50001\"")
		}
		if a.peers == nil {
			return nil, errors.New("peer discovery is off (PEER_DISCOVERY)")
		}
		name := strings.Join(p, " ")
		if err := a.peers.AdminAdd(ctx, name); err != nil {
			return nil, err
		}
		return fmt.Sprintf("peer '%s' added", name), nil
	case "disconnect":
		if len(p) == 0 {
			return nil, errors.New("disconnect needs session ids, group names, addresses or all")
		}
		return a.registry.Disconnect(p), nil
	case "ban", "unban":
		return a.ban(cmd == "ban", p)
	case "log":
		if len(p) > 0 {
			var l slog.Level
			if err := l.UnmarshalText([]byte(p[0])); err != nil {
				return nil, fmt.Errorf("unknown log level %q; want debug, info, warn or error", p[0])
			}
			a.level.Set(l)
		}
		return "log level " + strings.ToLower(a.level.Level().String()), nil
	case "daemon_url":
		urls := a.s.cfg.DaemonURLs
		if len(p) > 0 && strings.Join(p, ",") != "" {
			var err error
			if urls, err = config.ParseDaemonURLs(strings.Join(p, ",")); err != nil {
				return nil, err
			}
		}
		if err := a.dc.SetURLs(urls); err != nil {
			return nil, err
		}
		return fmt.Sprintf("now using daemon at %s", a.dc.URL()), nil
	case "reorg":
		n := 3
		if len(p) > 0 {
			v, err := strconv.Atoi(p[0])
			if err != nil || v < 1 {
				return nil, fmt.Errorf("reorg count %q: want a whole number 1 or more", p[0])
			}
			n = v
		}
		tip, err := a.f.rewind(ctx, n)
		if err != nil {
			return nil, err
		}
		return fmt.Sprintf("undid %d blocks to height %d; syncing them again", n, tip.Height), nil
	case "query":
		return a.query(p)
	case "snapshot":
		a.s.mu.Lock()
		info := a.s.snapshot
		a.s.mu.Unlock()
		if info == nil {
			return map[string]any{"restored": false, "snapshot_url": a.s.cfg.SnapshotURL != ""}, nil
		}
		return map[string]any{"restored": true, "key": info.Key, "height": info.Height, "created": info.Created}, nil
	case "debug_memory":
		return a.memory(), nil
	case "stop":
		a.stop()
		return "stopping", nil
	}
	return nil, fmt.Errorf("unknown command %q; amber rpc help lists them", cmd)
}

func (a *admin) getinfo(ctx context.Context) map[string]any {
	tip := a.ix.Tip()
	info := map[string]any{
		"version":       version.Software(),
		"network":       a.s.cfg.Network.Name,
		"pid":           os.Getpid(),
		"uptime":        time.Since(a.started).Round(time.Second).String(),
		"daemon":        a.dc.URL(),
		"db_height":     tip.Height,
		"db_tip":        tip.Hash.String(),
		"sessions":      a.registry.Len(),
		"subscriptions": a.subs.Count(),
		"groups":        len(a.groups.List()),
		"mempool_txs":   a.mp.Size(),
		"banned":        a.bans.list(),
	}
	if pc, ok := a.peers.(interface{ Counts() map[string]int }); ok {
		info["peers"] = pc.Counts()
	}
	ready, reason := a.s.health.Ready()
	info["ready"] = ready
	info["ready_reason"] = reason
	dctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if h, err := a.dc.BlockCount(dctx); err == nil {
		info["daemon_height"] = h
	} else {
		info["daemon_error"] = err.Error()
	}
	return info
}

func (a *admin) ban(ban bool, p []string) (any, error) {
	if len(p) == 0 {
		return a.bans.list(), nil
	}
	var ps []netip.Prefix
	for _, item := range p {
		pr, err := netip.ParsePrefix(item)
		if err != nil {
			ad, aerr := netip.ParseAddr(item)
			if aerr != nil {
				return nil, fmt.Errorf("%q is neither an address nor a CIDR prefix", item)
			}
			ad = ad.Unmap()
			pr = netip.PrefixFrom(ad, ad.BitLen())
		}
		ps = append(ps, pr.Masked())
	}
	var lines []string
	a.bans.mu.Lock()
	for _, pr := range ps {
		i := -1
		for j, have := range a.bans.prefixes {
			if have == pr {
				i = j
			}
		}
		switch {
		case ban && i < 0:
			a.bans.prefixes = append(a.bans.prefixes, pr)
		case !ban && i >= 0:
			a.bans.prefixes = append(a.bans.prefixes[:i], a.bans.prefixes[i+1:]...)
		case !ban:
			lines = append(lines, "not banned: "+pr.String())
			continue
		}
	}
	a.bans.mu.Unlock()
	for _, pr := range ps {
		if ban {
			n := a.registry.DisconnectBanned(pr)
			lines = append(lines, fmt.Sprintf("banned %s (%d sessions disconnected)", pr, n))
		} else {
			lines = append(lines, "unbanned "+pr.String())
		}
	}
	return lines, nil
}

// query answers like ElectrumX's: lines of history, UTXOs and balance
// for each address or script.
func (a *admin) query(p []string) (any, error) {
	limit := 1000
	if n := len(p); n > 1 {
		if v, err := strconv.Atoi(p[n-1]); err == nil {
			limit, p = v, p[:n-1]
		}
	}
	if len(p) == 0 {
		return nil, errors.New("query needs an address or a script in hex")
	}
	net := a.s.cfg.Network
	ix := a.ix
	var lines []string
	for _, item := range p {
		script, err := chain.AddressToScript(net, item)
		if err == nil {
			lines = append(lines, "Address: "+item)
		} else if b, herr := hex.DecodeString(item); herr == nil && len(b) > 0 {
			script = b
			lines = append(lines, "Script: "+item)
		} else {
			return nil, fmt.Errorf("%q is neither a %s address nor a hex script", item, net.Name)
		}
		hx := chain.HashXOf(script)
		hist, more, err := ix.History(hx, limit)
		if err != nil {
			return nil, err
		}
		if len(hist) == 0 {
			lines = append(lines, "No history found")
		}
		for i, h := range hist {
			lines = append(lines, fmt.Sprintf("History #%d: height %d txid %s", i, h.Height, h.TxID))
		}
		if more {
			lines = append(lines, fmt.Sprintf("(history cut at %d entries)", limit))
		}
		utxos, moreU, err := ix.UTXOs(hx, limit)
		if err != nil {
			return nil, err
		}
		if len(utxos) == 0 {
			lines = append(lines, "No UTXOs found")
		}
		for i, u := range utxos {
			lines = append(lines, fmt.Sprintf("UTXO #%d: txid %s tx_pos %d height %d value %d", i, u.TxID, u.Vout, u.Height, u.Value))
		}
		if moreU {
			lines = append(lines, fmt.Sprintf("(UTXOs cut at %d entries)", limit))
		}
		// The operator's query sums every output, however many.
		total, _, _, err := ix.Balance(hx, 0)
		if err != nil {
			return nil, err
		}
		lines = append(lines, fmt.Sprintf("Balance: %s BTC", strconv.FormatFloat(float64(total)/1e8, 'f', 8, 64)))
	}
	return lines, nil
}

func (a *admin) memory() map[string]any {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	n := a.registry.Len()
	out := map[string]any{
		"heap_alloc_bytes":  ms.HeapAlloc,
		"heap_inuse_bytes":  ms.HeapInuse,
		"heap_objects":      ms.HeapObjects,
		"sys_bytes":         ms.Sys,
		"stack_inuse_bytes": ms.StackInuse,
		"gc_cycles":         ms.NumGC,
		"goroutines":        runtime.NumGoroutine(),
		"sessions":          n,
	}
	if n > 0 {
		out["heap_and_stack_per_session_bytes"] = (ms.HeapInuse + ms.StackInuse) / uint64(n)
	}
	return out
}
