package peers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/netip"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"amber/internal/chain"
	"amber/internal/config"
	"amber/internal/index"
)

// ElectrumX's numbers (spec §6).
const (
	defaultVerifyInterval = 3 * time.Hour     // STALE_SECS
	defaultRetryInterval  = 300 * time.Second // WAKEUP_SECS
	defaultAddPause       = 600 * time.Second // PEER_ADD_PAUSE
	defaultRequestTimeout = 30 * time.Second  // 120 s for onion peers
	onionPermitWindow     = 1200 * time.Second
	maxTipDiff            = 5  // blocks between our tip and a peer's
	maxChainSplit         = 10 // the header checked is this far below
	newPeersPerList       = 2  // unknown peers taken from one peer's list
	perBucket             = 2  // peers listed per /16 (IPv4) or /56 (IPv6)
	maxConcurrent         = 8  // verifications at once
	defaultMaxPeers       = 1000
)

// Chain is the index the header check reads; *index.Index implements
// it.
type Chain interface {
	Tip() index.Tip
	Header(height int32) ([]byte, error)
}

// Options configure a Manager. Zero durations take ElectrumX's values.
type Options struct {
	Network *chain.Network
	Chain   Chain
	// Software is our server.version name; ProtocolMin and ProtocolMax
	// the versions we speak.
	Software, ProtocolMin, ProtocolMax string
	// ReportServices are our own identities (REPORT_SERVICES).
	ReportServices []config.Service
	// Services are our listeners: outgoing connections bind to the first
	// IP-literal host so peers see the address we report.
	Services []config.Service
	// Discovery is on, self or off (PEER_DISCOVERY).
	Discovery string
	// Announce sends server.add_peer to verified peers (PEER_ANNOUNCE).
	Announce bool
	// Seeds are real names to start from; nil means the network's
	// built-in list.
	Seeds []string
	// AllowPrivate accepts private and loopback peers, told apart by
	// port (PEER_ALLOW_PRIVATE).
	AllowPrivate bool
	// ProxyHost and ProxyPort are the SOCKS5 proxy. With a port every
	// peer goes through it; without one, .onion peers use a proxy found
	// on ports 9050, 9150 or 1080.
	ProxyHost string
	ProxyPort int
	// BlacklistURL serves a JSON list of peers never to use or list
	// (BLACKLIST_URL); "" means none.
	BlacklistURL string
	// VerifyInterval is how long a verification stays good.
	VerifyInterval time.Duration
	// RetryInterval is the back-off unit after a failed try.
	RetryInterval time.Duration
	// RequestTimeout bounds each request to a peer (4x for onions).
	RequestTimeout time.Duration
	// AddPause is the server.add_peer rate limit per bucket.
	AddPause time.Duration
	// MaxPeers bounds the peers remembered.
	MaxPeers int
	// Ready, when set, delays the first verification until our
	// listeners are up, so we can verify ourselves.
	Ready  <-chan struct{}
	Logger *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Resolve looks up a host's addresses for server.add_peer; nil
	// means the system resolver.
	Resolve func(ctx context.Context, host string) ([]netip.Addr, error)
}

// FromConfig returns the Options of a server with configuration cfg,
// software name, protocol range and index ch; ready is closed once it
// listens.
func FromConfig(cfg *config.Config, software, protocolMin, protocolMax string, ch Chain, ready <-chan struct{}, logger *slog.Logger) Options {
	return Options{
		Network: cfg.Network, Chain: ch,
		Software: software, ProtocolMin: protocolMin, ProtocolMax: protocolMax,
		ReportServices: cfg.ReportServices, Services: cfg.Services,
		Discovery: cfg.PeerDiscovery, Announce: cfg.PeerAnnounce, Seeds: cfg.PeerSeeds,
		AllowPrivate: cfg.PeerAllowPrivate, ProxyHost: cfg.TorProxyHost, ProxyPort: cfg.TorProxyPort,
		BlacklistURL:   cfg.BlacklistURL,
		VerifyInterval: cfg.PeerVerifyInterval, RetryInterval: cfg.PeerRetryInterval,
		Ready: ready, Logger: logger,
	}
}

// Manager keeps the peer list. It implements methods.Peers.
type Manager struct {
	o   Options
	log *slog.Logger

	mu          sync.Mutex
	peers       map[string]*peer // by key
	recentAdds  map[string]time.Time
	onionPermit time.Time
	proxyAddr   string // detected proxy for onion peers, if any
	blacklist   map[string]bool
	wake        chan struct{}
}

// peer is one known server.
type peer struct {
	key      string
	host     string // lowercased
	tcp, ssl int
	// other ports to try once, when someone reported different ones.
	otherTCP, otherSSL int
	protocolMax        string
	pruning            int
	serverVersion      string
	features           json.RawMessage // its last server.features reply
	source             string
	ipAddr             string
	lastGood, lastTry  time.Time
	tries              int
	bad                bool
	reason             string // why bad, or the last failure
	self               bool   // one of our own identities
	next               time.Time
	running            bool
}

// New returns a Manager; Run starts discovery.
func New(o Options) *Manager {
	if o.VerifyInterval <= 0 {
		o.VerifyInterval = defaultVerifyInterval
	}
	if o.RetryInterval <= 0 {
		o.RetryInterval = defaultRetryInterval
	}
	if o.RequestTimeout <= 0 {
		o.RequestTimeout = defaultRequestTimeout
	}
	if o.AddPause <= 0 {
		o.AddPause = defaultAddPause
	}
	if o.MaxPeers <= 0 {
		o.MaxPeers = defaultMaxPeers
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Resolve == nil {
		o.Resolve = func(ctx context.Context, host string) ([]netip.Addr, error) {
			return net.DefaultResolver.LookupNetIP(ctx, "ip", host)
		}
	}
	if o.ProxyHost == "" {
		o.ProxyHost = "localhost"
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return &Manager{
		o: o, log: o.Logger.With("component", "peers"),
		peers: map[string]*peer{}, recentAdds: map[string]time.Time{},
		wake: make(chan struct{}, 1),
	}
}

// Run discovers and verifies peers until ctx ends. With discovery off it
// returns at once; sessions then get an empty peer list.
func (m *Manager) Run(ctx context.Context) error {
	if m.o.Discovery != "on" && m.o.Discovery != "self" {
		m.log.Info("peer discovery off")
		return nil
	}
	if m.o.Ready != nil {
		select {
		case <-m.o.Ready:
		case <-ctx.Done():
			return nil
		}
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	if m.o.BlacklistURL != "" {
		// Fetched before the first verification, so no peer listed by
		// name is ever contacted.
		m.updateBlacklist(ctx)
		wg.Go(func() { m.refreshBlacklist(ctx, blacklistInterval) })
	}
	names := m.seedNames()
	if m.o.ProxyPort == 0 && m.o.Discovery == "on" && hasOnion(names) {
		// Find the proxy before importing, so onion seeds are kept.
		if !m.detectProxy(ctx) {
			wg.Go(func() { m.detectLoop(ctx) })
		}
	}
	m.importPeers(names)
	m.log.Info("peer discovery started", "mode", m.o.Discovery, "announce", m.o.Announce, "peers", m.Counts()["total"])

	sem := make(chan struct{}, maxConcurrent)
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		next := m.startDue(ctx, sem, &wg)
		timer.Reset(max(next, time.Millisecond))
		select {
		case <-ctx.Done():
			return nil
		case <-timer.C:
		case <-m.wake:
		}
	}
}

// startDue starts the verifications that are due, as far as sem allows,
// forgets bad peers whose time is up, and returns how long until the
// next one is due.
func (m *Manager) startDue(ctx context.Context, sem chan struct{}, wg *sync.WaitGroup) time.Duration {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.o.Now()
	next := time.Hour
	var due []*peer
	for _, p := range m.peers {
		switch {
		case p.running:
		case !p.next.After(now):
			due = append(due, p)
		default:
			next = min(next, p.next.Sub(now))
		}
	}
	sort.Slice(due, func(i, j int) bool { return due[i].next.Before(due[j].next) })
	for _, p := range due {
		if p.bad {
			m.log.Info("forgetting bad peer", "peer", p.host, "reason", p.reason)
			delete(m.peers, p.key)
			continue
		}
		select {
		case sem <- struct{}{}:
		default:
			return next // a finishing verification wakes the loop
		}
		p.running = true
		wg.Go(func() {
			defer func() { <-sem; m.poke() }()
			m.verify(ctx, p)
		})
	}
	return next
}

func (m *Manager) poke() {
	select {
	case m.wake <- struct{}{}:
	default:
	}
}

// seedNames are our own identities' real names and, in on mode, the
// seeds.
func (m *Manager) seedNames() []string {
	if m.o.Discovery != "on" {
		return nil
	}
	if m.o.Seeds != nil {
		return m.o.Seeds
	}
	return seeds[m.o.Network.String()]
}

func hasOnion(names []string) bool {
	for _, n := range names {
		if f := strings.Fields(n); len(f) > 0 && isOnion(f[0]) {
			return true
		}
	}
	return false
}

// importPeers adds our identities and the seeds, with no limit.
func (m *Manager) importPeers(names []string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, id := range m.identities() {
		r := id.realName
		if p := m.notePeer(r, "self"); p != nil {
			p.self = true
		}
	}
	for _, n := range names {
		r, err := parseRealName(n, m.o.Network)
		if err != nil {
			m.log.Warn("ignoring a seed peer", "peer", n, "err", err)
			continue
		}
		m.notePeer(r, "seed")
	}
}

// identity is one host of ours with the ports reported for it.
type identity struct {
	realName
	ws, wss int
}

// identities are our REPORT_SERVICES grouped by host, in order, with the
// clearnet ones first (peers look only at the first host of add_peer).
func (m *Manager) identities() []identity {
	var out []identity
	idx := map[string]int{}
	for _, s := range m.o.ReportServices {
		h := strings.ToLower(s.Host)
		i, ok := idx[h]
		if !ok {
			i = len(out)
			idx[h] = i
			out = append(out, identity{realName: realName{host: h, protocolMax: normVersion(m.o.ProtocolMax)}})
		}
		switch s.Proto {
		case "tcp":
			out[i].tcp = s.Port
		case "ssl":
			out[i].ssl = s.Port
		case "ws":
			out[i].ws = s.Port
		case "wss":
			out[i].wss = s.Port
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return !isOnion(out[i].host) && isOnion(out[j].host) })
	return out
}

// ourFeatures is our server.features as we announce it, hosts in
// identities order.
func (m *Manager) ourFeatures() json.RawMessage {
	var hosts strings.Builder
	hosts.WriteByte('{')
	for i, id := range m.identities() {
		if i > 0 {
			hosts.WriteByte(',')
		}
		ports := map[string]int{}
		for k, v := range map[string]int{"tcp_port": id.tcp, "ssl_port": id.ssl, "ws_port": id.ws, "wss_port": id.wss} {
			if v > 0 {
				ports[k] = v
			}
		}
		b, _ := json.Marshal(ports)
		hosts.WriteString(strconv.Quote(id.host) + ":" + string(b))
	}
	hosts.WriteByte('}')
	f := struct {
		Hosts         json.RawMessage `json:"hosts"`
		Pruning       any             `json:"pruning"`
		ServerVersion string          `json:"server_version"`
		ProtocolMin   string          `json:"protocol_min"`
		ProtocolMax   string          `json:"protocol_max"`
		GenesisHash   string          `json:"genesis_hash"`
		HashFunction  string          `json:"hash_function"`
	}{json.RawMessage(hosts.String()), nil, m.o.Software, m.o.ProtocolMin, m.o.ProtocolMax, m.o.Network.Genesis.String(), "sha256"}
	b, _ := json.Marshal(f)
	return b
}

// myClearnet is our first clearnet identity that peers may accept.
func (m *Manager) myClearnet() (identity, bool) {
	for _, id := range m.identities() {
		if !isOnion(id.host) && m.allowed(id.host) {
			return id, true
		}
	}
	return identity{}, false
}

// allowed reports whether host may be a peer: public, or private with
// AllowPrivate; never localhost.
func (m *Manager) allowed(host string) bool {
	if !validHost(host) || host == "localhost" {
		return false
	}
	if ip, ok := hostAddr(host); ok {
		if privateAddr(ip) {
			return m.o.AllowPrivate
		}
		return ip.IsGlobalUnicast()
	}
	return true
}

// keyOf identifies a peer: its host, and for private addresses (several
// servers on one machine) its ports too.
func (m *Manager) keyOf(host string, tcp, ssl int) string {
	if ip, ok := hostAddr(host); !ok || !privateAddr(ip) {
		return host
	}
	key := host
	if ssl > 0 {
		key += " s" + strconv.Itoa(ssl)
	}
	if tcp > 0 {
		key += " t" + strconv.Itoa(tcp)
	}
	return key
}

// notePeer adds r if it is new and acceptable and returns it, or nil.
// A known host reported with other ports gets those ports tried at its
// next verification, which is brought forward. Call with mu held.
func (m *Manager) notePeer(r realName, source string) *peer {
	if !m.allowed(r.host) || isOnion(r.host) && !m.proxyAvailable() || m.blacklisted(r.host, "") {
		return nil
	}
	key := m.keyOf(r.host, r.tcp, r.ssl)
	if p, ok := m.peers[key]; ok {
		if (r.tcp != p.tcp || r.ssl != p.ssl) && !p.bad && !p.running {
			m.log.Info("peer reported with other ports", "peer", p.host, "tcp", r.tcp, "ssl", r.ssl)
			p.otherTCP, p.otherSSL = r.tcp, r.ssl
			p.next = m.o.Now()
		}
		return nil
	}
	if len(m.peers) >= m.o.MaxPeers {
		return nil
	}
	p := &peer{key: key, host: r.host, tcp: r.tcp, ssl: r.ssl, protocolMax: r.protocolMax, pruning: r.pruning,
		source: source, next: m.o.Now()}
	m.peers[key] = p
	m.log.Info("new peer", "peer", r.host, "tcp", r.tcp, "ssl", r.ssl, "source", source)
	m.poke()
	return p
}

// proxyAvailable reports whether onion peers can be reached. Call with
// mu held.
func (m *Manager) proxyAvailable() bool { return m.o.ProxyPort != 0 || m.proxyAddr != "" }

// stale is the time before which a verification no longer counts.
func (m *Manager) stale(now time.Time) time.Time { return now.Add(-m.o.VerifyInterval) }

// reverifyAfter is when a good peer is verified again: shortly before
// its verification goes stale.
func (m *Manager) reverifyAfter() time.Duration {
	d := m.o.VerifyInterval - 2*m.o.RetryInterval
	return max(d, m.o.VerifyInterval/2)
}

// Subscribe is the server.peers.subscribe result (spec §6.5): peers
// verified recently, at most two per /16 (IPv4) or /56 (IPv6) network,
// a limited share of onion peers, and ourselves if we verified
// ourselves recently.
func (m *Manager) Subscribe() []any {
	m.mu.Lock()
	defer m.mu.Unlock()
	cutoff := m.stale(m.o.Now())
	var chosen, onions []*peer
	buckets := map[string][]*peer{}
	var order []string
	for _, p := range m.peers {
		if p.bad || !p.lastGood.After(cutoff) || !m.allowed(p.host) || m.blacklisted(p.host, p.ipAddr) {
			continue
		}
		switch {
		case p.self:
			chosen = append(chosen, p)
		case isOnion(p.host):
			onions = append(onions, p)
		default:
			b := m.externalBucket(p)
			if _, ok := buckets[b]; !ok {
				order = append(order, b)
			}
			buckets[b] = append(buckets[b], p)
		}
	}
	for _, b := range order {
		ps := buckets[b]
		rand.Shuffle(len(ps), func(i, j int) { ps[i], ps[j] = ps[j], ps[i] })
		chosen = append(chosen, ps[:min(len(ps), perBucket)]...)
	}
	rand.Shuffle(len(onions), func(i, j int) { onions[i], onions[j] = onions[j], onions[i] })
	chosen = append(chosen, onions[:min(len(onions), max(10, len(chosen)/4))]...)
	out := make([]any, 0, len(chosen))
	for _, p := range chosen {
		addr := p.ipAddr
		if addr == "" {
			addr = p.host
		}
		out = append(out, []any{addr, p.host, details(p.protocolMax, p.pruning, p.ssl, p.tcp)})
	}
	return out
}

// externalBucket groups peers for the subscribe reply: /16 for IPv4,
// /56 for IPv6; each private peer (with AllowPrivate) on its own.
func (m *Manager) externalBucket(p *peer) string {
	ip, ok := netip.Addr{}, false
	if p.ipAddr != "" {
		ip, ok = hostAddr(p.ipAddr)
	} else {
		ip, ok = hostAddr(p.host)
	}
	switch {
	case !ok:
		return p.host
	case privateAddr(ip):
		return p.key
	case ip.Is4():
		return netip.PrefixFrom(ip, 16).Masked().String()
	default:
		return netip.PrefixFrom(ip, 56).Masked().String()
	}
}

// internalBucket is the anti-sybil group of a peer being verified: its
// IPv4 address or IPv6 /64; "" when there is no limit.
func (m *Manager) internalBucket(p *peer) string {
	ip, ok := hostAddr(p.ipAddr)
	if !ok || privateAddr(ip) && m.o.AllowPrivate {
		return ""
	}
	if ip.Is4() {
		return ip.String()
	}
	return netip.PrefixFrom(ip, 64).Masked().String()
}

// AddPeer handles server.add_peer from the client at remote (spec §6.4):
// only the first host of features counts; one attempt per bucket
// (domain, or all IP literals together) per AddPause; a clearnet host
// must resolve to the caller's address; onion hosts are let in at most
// once per random window. An accepted peer is only queued for
// verification.
func (m *Manager) AddPeer(ctx context.Context, remote netip.AddrPort, features json.RawMessage) (bool, error) {
	if m.o.Discovery != "on" || !remote.IsValid() {
		return false, nil
	}
	source := remote.Addr().Unmap()
	var f map[string]json.RawMessage
	if json.Unmarshal(features, &f) != nil {
		return false, nil
	}
	hosts, err := orderedHosts(f["hosts"])
	if err != nil || len(hosts) == 0 || !validHost(strings.ToLower(hosts[0].name)) {
		m.log.Info("ignored add_peer: no valid host", "source", source.String())
		return false, nil
	}
	h := hosts[0]
	r := realName{host: strings.ToLower(h.name), protocolMax: normVersion(jsonString(f["protocol_max"])),
		tcp: h.port("tcp_port"), ssl: h.port("ssl_port")}
	if p, ok := jsonInt(f["pruning"]); ok && p > 0 {
		r.pruning = p
	}

	now := m.o.Now()
	bucket := "ip_addr"
	if _, ok := hostAddr(r.host); !ok {
		labels := strings.Split(strings.TrimSuffix(r.host, "."), ".")
		bucket = strings.Join(labels[max(0, len(labels)-2):], ".")
	}
	m.mu.Lock()
	last, seen := m.recentAdds[bucket]
	m.recentAdds[bucket] = now
	if len(m.recentAdds) > 10_000 {
		m.trimRecentAdds(now)
	}
	m.mu.Unlock()
	if seen && !last.Add(m.o.AddPause).Before(now) {
		m.log.Info("rejected add_peer: rate limited", "source", source.String(), "peer", r.host, "bucket", bucket)
		return false, nil
	}

	permit, reason := false, ""
	switch {
	case !m.allowed(r.host):
		reason = "not a public host"
	case isOnion(r.host):
		m.mu.Lock()
		if !now.Before(m.onionPermit) {
			permit = true
			m.onionPermit = now.Add(rand.N(onionPermitWindow))
		}
		m.mu.Unlock()
		reason = "rate limited"
	default:
		rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		addrs, err := m.o.Resolve(rctx, r.host)
		cancel()
		if err != nil {
			reason = "address resolution failure"
			break
		}
		for _, a := range addrs {
			if a.Unmap() == source {
				permit = true
			}
		}
		reason = "source-destination mismatch"
	}
	if !permit {
		m.log.Info("rejected add_peer", "source", source.String(), "peer", r.host, "reason", reason)
		return false, nil
	}
	m.log.Info("accepted add_peer", "source", source.String(), "peer", r.host)
	m.mu.Lock()
	m.notePeer(r, source.String())
	m.mu.Unlock()
	return true, nil
}

// trimRecentAdds drops rate-limit entries that no longer limit
// anything. Call with mu held.
func (m *Manager) trimRecentAdds(now time.Time) {
	for k, t := range m.recentAdds {
		if t.Add(m.o.AddPause).Before(now) {
			delete(m.recentAdds, k)
		}
	}
}

// ErrDiscoveryOff is returned by AddByOperator when PEER_DISCOVERY is
// not on, so nothing would verify the peer.
var ErrDiscoveryOff = errors.New("peers: peer discovery is off; set PEER_DISCOVERY=on to add peers")

// AddByOperator queues a peer given by the operator (admin RPC) as a
// real name, "host [s[port]] [t[port]]" (a bare letter is the network's
// default port), for verification at once: trusted, so no rate limit and
// no address check. A known host gets the new ports tried.
func (m *Manager) AddByOperator(name string) error {
	if m.o.Discovery != "on" {
		return ErrDiscoveryOff
	}
	r, err := parseRealName(name, m.o.Network)
	if err != nil {
		return err
	}
	if r.tcp == 0 && r.ssl == 0 {
		return fmt.Errorf("peers: %q names no port; want host s[port] and/or t[port]", name)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.allowed(r.host) {
		return fmt.Errorf("peers: %s is not a public host (PEER_ALLOW_PRIVATE=on accepts private addresses)", r.host)
	}
	if isOnion(r.host) && !m.proxyAvailable() {
		return fmt.Errorf("peers: %s needs a SOCKS5 proxy, and none was found; set TOR_PROXY_HOST and TOR_PROXY_PORT", r.host)
	}
	if p, ok := m.peers[m.keyOf(r.host, r.tcp, r.ssl)]; ok {
		p.otherTCP, p.otherSSL = r.tcp, r.ssl
		p.next = m.o.Now()
		m.poke()
		return nil
	}
	if m.notePeer(r, "operator") == nil {
		return fmt.Errorf("peers: %s not added; %d peers are known already", r.host, len(m.peers))
	}
	return nil
}

// AdminList is List for the admin RPC's peers command.
func (m *Manager) AdminList() any { return m.List() }

// AdminAdd is AddByOperator for the admin RPC's add_peer command; name
// is ElectrumX's real_name form, "host s50002 t50001".
func (m *Manager) AdminAdd(_ context.Context, name string) error { return m.AddByOperator(name) }

// Status of a peer, as ElectrumX reports it.
const (
	StatusGood  = "good"  // verified within the verify interval
	StatusStale = "stale" // verified once, longer ago
	StatusNever = "never" // not verified yet
	StatusBad   = "bad"   // answered wrongly; never listed
)

// PeerInfo is one known peer, for the admin RPC.
type PeerInfo struct {
	Host     string
	IPAddr   string // the address last connected to; "" if unknown
	TCPPort  int
	SSLPort  int
	Features json.RawMessage // its last server.features reply; nil before
	// ServerVersion and ProtocolMax are what it reported.
	ServerVersion string
	ProtocolMax   string
	// Source is how we learned of it: self, seed, operator, "peer "
	// and the peer that listed it, or the add_peer caller's address.
	Source   string
	LastGood time.Time
	LastTry  time.Time
	Failures int // consecutive failed tries
	Status   string
	Reason   string // why it is bad, or the last failure
}

// String is a one-line summary for logs and test failures.
func (p PeerInfo) String() string {
	s := fmt.Sprintf("%s t%d s%d %s source=%s failures=%d", p.Host, p.TCPPort, p.SSLPort, p.Status, p.Source, p.Failures)
	if p.Reason != "" {
		s += " reason=" + strconv.Quote(p.Reason)
	}
	return s
}

// MarshalJSON writes ElectrumX's peers RPC shape: times as Unix seconds,
// 0 for never.
func (p PeerInfo) MarshalJSON() ([]byte, error) {
	unix := func(t time.Time) float64 {
		if t.IsZero() {
			return 0
		}
		return float64(t.UnixMilli()) / 1000
	}
	features := p.Features
	if features == nil {
		features = json.RawMessage("null")
	}
	return json.Marshal(struct {
		Host          string          `json:"host"`
		IPAddr        string          `json:"ip_addr,omitempty"`
		TCPPort       int             `json:"tcp_port,omitempty"`
		SSLPort       int             `json:"ssl_port,omitempty"`
		ServerVersion string          `json:"server_version,omitempty"`
		ProtocolMax   string          `json:"protocol_max"`
		Features      json.RawMessage `json:"features"`
		Source        string          `json:"source"`
		LastGood      float64         `json:"last_good"`
		LastTry       float64         `json:"last_try"`
		TryCount      int             `json:"try_count"`
		Status        string          `json:"status"`
		Reason        string          `json:"reason,omitempty"`
	}{p.Host, p.IPAddr, p.TCPPort, p.SSLPort, p.ServerVersion, p.ProtocolMax, features, p.Source,
		unix(p.LastGood), unix(p.LastTry), p.Failures, p.Status, p.Reason})
}

// List returns every known peer with its state, bad ones last, then the
// most recently verified first.
func (m *Manager) List() []PeerInfo {
	m.mu.Lock()
	defer m.mu.Unlock()
	cutoff := m.stale(m.o.Now())
	out := make([]PeerInfo, 0, len(m.peers))
	for _, p := range m.peers {
		out = append(out, PeerInfo{
			Host: p.host, IPAddr: p.ipAddr, TCPPort: p.tcp, SSLPort: p.ssl, Features: p.features,
			ServerVersion: p.serverVersion, ProtocolMax: p.protocolMax, Source: p.source,
			LastGood: p.lastGood, LastTry: p.lastTry, Failures: p.tries, Status: status(p, cutoff), Reason: p.reason,
		})
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if (a.Status == StatusBad) != (b.Status == StatusBad) {
			return b.Status == StatusBad
		}
		if !a.LastGood.Equal(b.LastGood) {
			return a.LastGood.After(b.LastGood)
		}
		return a.Host+strconv.Itoa(a.TCPPort) < b.Host+strconv.Itoa(b.TCPPort)
	})
	return out
}

// Counts are the number of peers by status, and the total: ElectrumX's
// getinfo "peers" member.
func (m *Manager) Counts() map[string]int {
	m.mu.Lock()
	defer m.mu.Unlock()
	cutoff := m.stale(m.o.Now())
	out := map[string]int{StatusBad: 0, StatusGood: 0, StatusNever: 0, StatusStale: 0, "total": len(m.peers)}
	for _, p := range m.peers {
		out[status(p, cutoff)]++
	}
	return out
}

func status(p *peer, cutoff time.Time) string {
	switch {
	case p.bad:
		return StatusBad
	case p.lastGood.After(cutoff):
		return StatusGood
	case !p.lastGood.IsZero():
		return StatusStale
	}
	return StatusNever
}
