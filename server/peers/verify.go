package peers

import (
	"bufio"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"strconv"
	"strings"
	"time"
)

// badPeerError is a wrong answer: the peer is marked bad. Other errors
// (transport, timeouts, JSON-RPC error replies) only count as a failed
// try.
type badPeerError struct{ reason string }

func (e *badPeerError) Error() string { return e.reason }

func bad(format string, args ...any) error {
	return &badPeerError{reason: fmt.Sprintf(format, args...)}
}

// rpcError is a JSON-RPC error reply from a peer.
type rpcError struct {
	method  string
	code    int
	message string
}

func (e *rpcError) Error() string {
	return fmt.Sprintf("%s: error %d: %s", e.method, e.code, e.message)
}

// attempt is one way to reach a peer.
type attempt struct {
	tls  bool
	port int
}

// attempts are the peer's ports, TLS first, then ports someone else
// reported for it. Call with mu held.
func (p *peer) attempts() []attempt {
	var out []attempt
	add := func(tls bool, port int) {
		if port <= 0 {
			return
		}
		for _, a := range out {
			if a.tls == tls && a.port == port {
				return
			}
		}
		out = append(out, attempt{tls, port})
	}
	add(true, p.ssl)
	add(false, p.tcp)
	add(true, p.otherSSL)
	add(false, p.otherTCP)
	p.otherSSL, p.otherTCP = 0, 0
	return out
}

// verify connects to p and checks it (spec §6.3), then records the
// outcome and schedules its next verification or forgets it.
func (m *Manager) verify(ctx context.Context, p *peer) {
	m.mu.Lock()
	p.tries++
	tries := p.attempts()
	m.mu.Unlock()

	var res *checked
	var err error
	for _, a := range tries {
		m.mu.Lock()
		p.lastTry = m.o.Now()
		m.mu.Unlock()
		start := time.Now()
		res, err = m.check(ctx, p, a)
		if ctx.Err() != nil {
			m.mu.Lock()
			p.running = false
			m.mu.Unlock()
			return
		}
		if err == nil {
			m.log.Info("verified peer", "peer", p.host, "port", a.port, "tls", a.tls, "took", time.Since(start).Round(time.Millisecond).String())
			break
		}
		var b *badPeerError
		if errors.As(err, &b) {
			break
		}
		m.log.Info("peer not reached", "peer", p.host, "port", a.port, "tls", a.tls, "err", err)
	}
	if len(tries) == 0 {
		err = errors.New("no port to connect to")
	}

	m.mu.Lock()
	defer m.mu.Unlock()
	p.running = false
	now := m.o.Now()
	if err == nil {
		p.tries, p.reason = 0, ""
		p.lastGood = now
		p.ipAddr = res.ipAddr
		p.features = res.features
		p.serverVersion = res.serverVersion
		p.protocolMax = res.f.ProtocolMax
		p.pruning = res.f.Pruning
		p.tcp, p.ssl = res.f.TCPPort, res.f.SSLPort
		if k := m.keyOf(p.host, p.tcp, p.ssl); k != p.key {
			// Private peers are keyed by port: follow the new ones.
			if _, taken := m.peers[k]; taken {
				delete(m.peers, p.key)
				return
			}
			delete(m.peers, p.key)
			p.key = k
			m.peers[k] = p
		}
		p.next = now.Add(m.reverifyAfter())
		m.noteFromList(res.peers, "peer "+p.key)
		return
	}
	p.reason = err.Error()
	var b *badPeerError
	if errors.As(err, &b) {
		m.log.Info("marking peer bad", "peer", p.host, "reason", b.reason)
		p.bad = true
		// Remembered, so its peers cannot bring it back, for as long as
		// ElectrumX's three back-offs take; then forgotten.
		p.next = now.Add(14 * m.o.RetryInterval)
		return
	}
	limit := 3
	if !p.lastGood.IsZero() {
		limit = 10
	}
	if p.tries >= limit && !p.self {
		m.log.Info("forgetting unreachable peer", "peer", p.host, "tries", p.tries)
		delete(m.peers, p.key)
		return
	}
	wait := m.o.RetryInterval << min(p.tries, 16)
	if p.self {
		// Never forgotten, so never left unchecked for long either.
		wait = min(wait, m.o.VerifyInterval)
	}
	p.next = now.Add(wait)
}

// noteFromList adds at most two random unknown peers from a verified
// peer's list, with source from. Call with mu held.
func (m *Manager) noteFromList(list []realName, from string) {
	if m.o.Discovery != "on" {
		return
	}
	var fresh []realName
	for _, r := range list {
		if _, known := m.peers[m.keyOf(r.host, r.tcp, r.ssl)]; !known && m.allowed(r.host) && (!isOnion(r.host) || m.proxyAvailable()) {
			fresh = append(fresh, r)
		}
	}
	for i := 0; i < len(fresh) && i < newPeersPerList; i++ {
		j := i + rand.N(len(fresh)-i)
		fresh[i], fresh[j] = fresh[j], fresh[i]
		m.notePeer(fresh[i], from)
	}
}

// checked is what a successful verification learned.
type checked struct {
	ipAddr        string
	serverVersion string
	features      json.RawMessage
	f             Features
	peers         []realName
}

// check runs the verification sequence on one connection.
func (m *Manager) check(ctx context.Context, p *peer, a attempt) (*checked, error) {
	timeout := m.o.RequestTimeout
	if isOnion(p.host) {
		timeout *= 4
	}
	conn, proxied, err := m.dial(ctx, p.host, a.port, a.tls, timeout)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	c := &client{conn: conn, r: bufio.NewReaderSize(conn, 64<<10), timeout: timeout}
	res := &checked{}
	if !proxied {
		if ap, err := netipAddrPort(conn.RemoteAddr()); err == nil {
			res.ipAddr = ap.Addr().Unmap().String()
		}
	} else if ip, ok := hostAddr(p.host); ok {
		res.ipAddr = ip.String()
	}
	if err := m.checkBucket(p, res.ipAddr); err != nil {
		return nil, err
	}

	// server.version goes first.
	raw, err := c.call("server.version", []any{m.o.Software, []string{m.o.ProtocolMin, m.o.ProtocolMax}})
	if err != nil {
		return nil, err
	}
	var ver []any
	if json.Unmarshal(raw, &ver) != nil || len(ver) != 2 {
		return nil, bad("bad server.version result: %.100s", raw)
	}
	for _, v := range ver {
		if _, ok := v.(string); !ok {
			return nil, bad("bad server.version result: %.100s", raw)
		}
	}
	res.serverVersion = ver[0].(string)

	// Features first: a peer of another network is rejected for its
	// genesis, the real reason, rather than for its height.
	raw, err = c.call("server.features", []any{})
	if err != nil {
		return nil, err
	}
	f, err := parseFeatures(raw, p.host)
	if err != nil {
		return nil, bad("%v", err)
	}
	if f.GenesisHash != m.o.Network.Genesis.String() {
		return nil, bad("incorrect genesis hash %.64q", f.GenesisHash)
	}
	if !f.listsHost(p.host) {
		return nil, bad("not listed in its own hosts %v", f.Hosts)
	}
	if f.TCPPort == 0 && f.SSLPort == 0 {
		// It lists itself with no port we could use: keep what worked.
		if a.tls {
			f.SSLPort = a.port
		} else {
			f.TCPPort = a.port
		}
	}
	res.f, res.features = f, raw

	if err := m.checkHeaders(c); err != nil {
		return nil, err
	}

	raw, err = c.call("server.peers.subscribe", []any{})
	if err != nil {
		return nil, err
	}
	res.peers, err = m.parsePeerList(raw)
	if err != nil {
		return nil, err
	}

	if feats, ok := m.toAnnounce(p, res.peers); ok {
		m.log.Info("announcing ourselves", "peer", p.host)
		if _, err := c.call("server.add_peer", []any{feats}); err != nil {
			var re *rpcError
			if !errors.As(err, &re) {
				return nil, err
			}
			m.log.Info("peer refused our add_peer", "peer", p.host, "err", err)
		}
	}
	return res, nil
}

// checkBucket refuses a blacklisted peer, a second recently good peer
// on one IPv4 address or IPv6 /64, and onion peers beyond half of many
// (anti-sybil).
func (m *Manager) checkBucket(p *peer, ipAddr string) error {
	if p.self {
		return nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.blacklisted(p.host, ipAddr) {
		return bad("blacklisted")
	}
	cutoff := m.stale(m.o.Now())
	probe := &peer{ipAddr: ipAddr}
	mine := m.internalBucket(probe)
	var recent, onions int
	for _, o := range m.peers {
		if o == p || o.self || o.bad || !o.lastGood.After(cutoff) || !m.allowed(o.host) {
			continue
		}
		recent++
		if isOnion(o.host) {
			onions++
			continue
		}
		if mine != "" && !isOnion(p.host) && m.internalBucket(o) == mine {
			return bad("too many peers already in bucket %s", mine)
		}
	}
	if isOnion(p.host) && recent/2 >= 100 && onions > recent/2 {
		return bad("too many onion peers already")
	}
	return nil
}

// checkHeaders compares the peer's tip height with ours and its header
// a few blocks below the lower of the two with ours.
func (m *Manager) checkHeaders(c *client) error {
	raw, err := c.call("blockchain.headers.subscribe", []any{})
	if err != nil {
		return err
	}
	var tip struct {
		Height *json.Number `json:"height"`
	}
	if json.Unmarshal(raw, &tip) != nil || tip.Height == nil {
		return bad("blockchain.headers.subscribe returned no height: %.100s", raw)
	}
	theirs, err := strconv.ParseInt(tip.Height.String(), 10, 32)
	if err != nil {
		return bad("invalid height %s", tip.Height)
	}
	ours := int64(m.o.Chain.Tip().Height)
	if theirs-ours > maxTipDiff || ours-theirs > maxTipDiff {
		return bad("bad height %d (ours: %d)", theirs, ours)
	}
	h := max(0, min(ours, theirs)-maxChainSplit)
	want, err := m.o.Chain.Header(int32(h))
	if err != nil {
		return fmt.Errorf("our header at %d: %w", h, err)
	}
	raw, err = c.call("blockchain.block.header", []any{h})
	if err != nil {
		return err
	}
	if got := jsonString(raw); got != hex.EncodeToString(want) {
		return bad("our header %x and theirs %.200s differ at height %d", want, raw, h)
	}
	return nil
}

// parsePeerList reads a server.peers.subscribe reply: entries
// [ip, host, [details...]].
func (m *Manager) parsePeerList(raw json.RawMessage) ([]realName, error) {
	var entries []json.RawMessage
	if json.Unmarshal(raw, &entries) != nil {
		return nil, bad("bad server.peers.subscribe response")
	}
	out := make([]realName, 0, len(entries))
	for _, e := range entries {
		var parts []json.RawMessage
		var host string
		var det []string
		if json.Unmarshal(e, &parts) != nil || len(parts) < 3 || json.Unmarshal(parts[1], &host) != nil || json.Unmarshal(parts[2], &det) != nil {
			return nil, bad("bad server.peers.subscribe entry %.100s", e)
		}
		for _, d := range det {
			if d == "" {
				return nil, bad("bad server.peers.subscribe entry %.100s", e)
			}
		}
		r, err := parseRealName(strings.Join(append([]string{host}, det...), " "), m.o.Network)
		if err != nil {
			continue // an invalid host is never used; the rest of the list is fine
		}
		out = append(out, r)
	}
	return out, nil
}

// toAnnounce returns our features to send with server.add_peer when the
// peer does not list us with our ports.
func (m *Manager) toAnnounce(p *peer, list []realName) (json.RawMessage, bool) {
	if !m.o.Announce || p.self || m.o.Discovery != "on" {
		return nil, false
	}
	me, ok := m.myClearnet()
	if !ok {
		return nil, false
	}
	for _, r := range list {
		if r.host == me.host && r.tcp == me.tcp && r.ssl == me.ssl {
			return nil, false
		}
	}
	return m.ourFeatures(), true
}

// client is a minimal Electrum client: one request at a time,
// notifications skipped.
type client struct {
	conn    net.Conn
	r       *bufio.Reader
	timeout time.Duration
	id      int
}

// maxLine bounds one reply; a peer list of thousands fits.
const maxLine = 4 << 20

func (c *client) call(method string, params []any) (json.RawMessage, error) {
	c.id++
	req, err := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": c.id, "method": method, "params": params})
	if err != nil {
		return nil, fmt.Errorf("encode %s: %w", method, err)
	}
	if err := c.conn.SetDeadline(time.Now().Add(c.timeout)); err != nil {
		return nil, err
	}
	if _, err := c.conn.Write(append(req, '\n')); err != nil {
		return nil, fmt.Errorf("%s: %w", method, err)
	}
	for {
		line, err := c.readLine()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", method, err)
		}
		var msg struct {
			ID     json.RawMessage `json:"id"`
			Result json.RawMessage `json:"result"`
			Error  *struct {
				Code    int    `json:"code"`
				Message string `json:"message"`
			} `json:"error"`
			Method string `json:"method"`
		}
		if json.Unmarshal(line, &msg) != nil {
			return nil, bad("%s: reply is not JSON: %.100s", method, line)
		}
		if msg.Method != "" || string(msg.ID) != strconv.Itoa(c.id) {
			continue // a notification, or a stray reply
		}
		if msg.Error != nil {
			return nil, &rpcError{method: method, code: msg.Error.Code, message: msg.Error.Message}
		}
		return msg.Result, nil
	}
}

// readLine reads one non-blank line of at most maxLine bytes.
func (c *client) readLine() ([]byte, error) {
	var buf []byte
	for {
		chunk, err := c.r.ReadSlice('\n')
		buf = append(buf, chunk...)
		if len(buf) > maxLine {
			return nil, bad("reply longer than %d bytes", maxLine)
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if line := strings.TrimSpace(string(buf)); line != "" {
			return []byte(line), nil
		}
		buf = buf[:0]
	}
}
