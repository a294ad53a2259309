package cost

import (
	"math"
	"net/netip"
	"sort"
	"sync"
	"time"
)

// Limits are the session cost model of spec §7.1. Both limits zero turns
// throttling off.
type Limits struct {
	SoftLimit, HardLimit float64
	// DecayPerSec is how much cost a session with no subscriptions sheds
	// per second; zero means HardLimit/10000, as ElectrumX.
	DecayPerSec float64
	// BandwidthUnitCost is the bytes, in or out, that cost 1.0.
	BandwidthUnitCost int
	// RequestSleep is the delay given to each request at the hard limit.
	RequestSleep time.Duration
	// InitialConcurrent is the request concurrency of a session under
	// the soft limit; it shrinks to 0 (disconnect) at the hard limit.
	InitialConcurrent int
	// SubnetIPv4 and SubnetIPv6 are the prefix lengths of cost groups.
	SubnetIPv4, SubnetIPv6 int
	// GroupPrivate groups loopback and private addresses by subnet too,
	// for wallets that reach the node from a private network.
	GroupPrivate bool
}

// Cost charges of spec §7.1.
const (
	initialCost = 5.0
	// ErrorReply is charged for every error reply.
	ErrorReply = 100.0
	// Unparsable is charged for a message that is not JSON, on top of
	// ErrorReply.
	Unparsable    = 1000.0
	defaultMethod = 0.5 // methods missing from methodCost
)

// methodCost is the flat part of each method's cost (spec §4); the size
// of answers is charged through bandwidth.
var methodCost = map[string]float64{
	"server.version": 0.5, "server.banner": 0.5, "server.donation_address": 0.1,
	"server.features": 0.2, "server.peers.subscribe": 1.0, "server.add_peer": 100,
	"server.ping":                  0.1,
	"blockchain.headers.subscribe": 0.25, "blockchain.block.header": 0.25,
	"blockchain.block.headers": 0, "blockchain.estimatefee": 0.1, "blockchain.relayfee": 1.0,
	"mempool.get_fee_histogram": 1.0, "mempool.get_info": 1.0, "mempool.recent": 1.0,
	"blockchain.scripthash.get_balance": 1.0, "blockchain.scripthash.get_history": 0.5,
	"blockchain.scripthash.get_mempool": 0.25, "blockchain.scripthash.listunspent": 1.0,
	"blockchain.scripthash.subscribe": 0.3, "blockchain.scripthash.unsubscribe": 0.1,
	"blockchain.scriptpubkey.get_balance": 1.0, "blockchain.scriptpubkey.get_history": 0.5,
	"blockchain.scriptpubkey.get_mempool": 0.25, "blockchain.scriptpubkey.listunspent": 1.0,
	"blockchain.scriptpubkey.subscribe": 0.3, "blockchain.scriptpubkey.unsubscribe": 0.1,
	"blockchain.outpoint.subscribe": 1.0, "blockchain.outpoint.unsubscribe": 0.1,
	"blockchain.transaction.broadcast": 0.25, "blockchain.transaction.broadcast_package": 0.25,
	"blockchain.transaction.get": 0.25, "blockchain.transaction.get_merkle": 0.25,
	"blockchain.transaction.id_from_pos": 0.25, "blockchain.transaction.testmempoolaccept": 1.0,
}

// The parts of a cost that depend on the work done (spec §4), which the
// method handlers charge.
const (
	// Proof is a cp_height proof's cost on block.header(s).
	Proof = 1.0
	// PerRows divides the headers block.headers returns and the unspent
	// outputs get_balance and listunspent read.
	PerRows = 50.0
)

// Of is the flat cost of a request for method.
func Of(method string) float64 {
	if c, ok := methodCost[method]; ok {
		return c
	}
	return defaultMethod
}

// Known reports whether method is one the cost table names, so metrics
// can keep their labels bounded.
func Known(method string) bool {
	_, ok := methodCost[method]
	return ok
}

// Groups holds the cost groups: sessions from one subnet share a budget,
// and a session's cost stays with its group after it disconnects.
type Groups struct {
	limits Limits
	now    func() time.Time

	mu sync.Mutex
	m  map[string]*group
}

// NewGroups returns an empty set of groups.
func NewGroups(l Limits) *Groups {
	if l.DecayPerSec == 0 {
		l.DecayPerSec = l.HardLimit / 10000
	}
	if l.BandwidthUnitCost <= 0 {
		l.BandwidthUnitCost = 5000
	}
	if l.InitialConcurrent <= 0 {
		l.InitialConcurrent = 10
	}
	return &Groups{limits: l, now: time.Now, m: map[string]*group{}}
}

type group struct {
	name       string
	retained   float64
	retainedAt time.Time
	members    map[*Meter]struct{}

	// memberCost caches the members' summed cost for groupCostTTL, so a
	// request in a large group does not visit every member; joins and
	// leaves clear it.
	memberCost   float64
	memberCostAt time.Time
}

// groupCostTTL is how stale a group's cached member cost may be; ElectrumX
// recomputes far less often (on moves over 100, or every 300 s).
const groupCostTTL = time.Second

// retainedNow decays the cost left by departed sessions: ElectrumX
// refunds HARD/5000 per second. Callers hold Groups.mu.
func (g *group) retainedNow(l Limits, now time.Time) float64 {
	if g.retained > 0 {
		g.retained = math.Max(0, g.retained-now.Sub(g.retainedAt).Seconds()*l.HardLimit/5000)
	}
	g.retainedAt = now
	return g.retained
}

// GroupName is the cost group of a client address: its subnet, or ""
// for loopback and private addresses unless GroupPrivate is set, which
// ElectrumX leaves ungrouped (behind a load balancer without PROXY
// headers they are all one host).
func (gs *Groups) GroupName(a netip.Addr) string {
	a = a.Unmap()
	if !a.IsValid() {
		return "unknown_addr"
	}
	if a.IsUnspecified() {
		return ""
	}
	if !gs.limits.GroupPrivate && (a.IsLoopback() || a.IsPrivate() || a.IsLinkLocalUnicast()) {
		return ""
	}
	bits := gs.limits.SubnetIPv6
	if a.Is4() {
		bits = gs.limits.SubnetIPv4
	}
	p, err := a.Prefix(bits)
	if err != nil {
		return ""
	}
	return p.String()
}

// Meter is one session's cost.
type Meter struct {
	gs    *Groups
	group *group // nil when ungrouped

	mu   sync.Mutex
	cost float64
	at   time.Time // when cost was last decayed
	subs int       // subscriptions, which slow the decay

	share float64 // own cost in the group's cached sum; Groups.mu
}

// Join starts metering a session from addr.
func (gs *Groups) Join(addr netip.Addr) *Meter {
	m := &Meter{gs: gs, cost: initialCost, at: gs.now()}
	name := gs.GroupName(addr)
	if name == "" {
		return m
	}
	gs.mu.Lock()
	defer gs.mu.Unlock()
	g := gs.m[name]
	if g == nil {
		g = &group{name: name, members: map[*Meter]struct{}{}, retainedAt: gs.now()}
		gs.m[name] = g
	}
	g.members[m] = struct{}{}
	g.memberCostAt = time.Time{}
	m.group = g
	return m
}

// Leave moves the session's cost into its group's retained cost, so a
// reconnect does not reset the budget.
func (m *Meter) Leave() {
	if m.group == nil {
		return
	}
	cost := m.Cost()
	gs := m.gs
	gs.mu.Lock()
	defer gs.mu.Unlock()
	g := m.group
	delete(g.members, m)
	g.memberCostAt = time.Time{}
	g.retained = g.retainedNow(gs.limits, gs.now()) + cost
	if len(g.members) == 0 && g.retained == 0 {
		delete(gs.m, g.name)
	}
}

// Group is the session's cost group name, "" when ungrouped.
func (m *Meter) Group() string {
	if m.group == nil {
		return ""
	}
	return m.group.name
}

// decayLocked applies the decay since the last call; m.mu is held.
func (m *Meter) decayLocked(now time.Time) {
	l := m.gs.limits
	rate := l.DecayPerSec * 10000 / (10000 + 5*float64(m.subs))
	m.cost = math.Max(0, m.cost-now.Sub(m.at).Seconds()*rate)
	m.at = now
}

// Charge adds cost.
func (m *Meter) Charge(c float64) {
	m.mu.Lock()
	m.decayLocked(m.gs.now())
	m.cost += c
	m.mu.Unlock()
}

// ChargeBytes charges bandwidth.
func (m *Meter) ChargeBytes(n int) {
	m.Charge(float64(n) / float64(m.gs.limits.BandwidthUnitCost))
}

// SetSubs records the subscription count, which slows the decay.
func (m *Meter) SetSubs(n int) {
	m.mu.Lock()
	m.decayLocked(m.gs.now())
	m.subs = n
	m.mu.Unlock()
}

// Cost is the session's own cost now.
func (m *Meter) Cost() float64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.decayLocked(m.gs.now())
	return m.cost
}

// ExtraCost is what the rest of the session's group costs: retained cost
// plus the other members' costs (their sum at most groupCostTTL old).
func (m *Meter) ExtraCost() float64 {
	if m.group == nil {
		return 0
	}
	gs := m.gs
	gs.mu.Lock()
	g := m.group
	now := gs.now()
	extra := g.retainedNow(gs.limits, now)
	if g.memberCostAt.IsZero() || now.Sub(g.memberCostAt) >= groupCostTTL {
		members := make([]*Meter, 0, len(g.members))
		for o := range g.members {
			members = append(members, o)
		}
		gs.mu.Unlock()
		costs := make([]float64, len(members))
		for i, o := range members {
			costs[i] = o.Cost()
		}
		gs.mu.Lock()
		g.memberCost, g.memberCostAt = 0, now
		for i, o := range members {
			o.share = costs[i]
			g.memberCost += costs[i]
		}
	}
	// The others' part of the cached sum: this session's own cost is
	// always counted fresh by the caller.
	extra += max(0, g.memberCost-m.share)
	gs.mu.Unlock()
	return extra
}

// Throttle is the session's standing: how long each request waits and
// how many may run at once; zero Concurrent means disconnect.
type Throttle struct {
	Effective  float64
	Sleep      time.Duration
	Concurrent int
}

// Throttled reports whether requests are being slowed.
func (t Throttle) Throttled() bool { return t.Sleep > 0 }

// Throttle computes the session's standing from its and its group's cost.
func (m *Meter) Throttle() Throttle {
	l := m.gs.limits
	if l.HardLimit == 0 && l.SoftLimit == 0 {
		return Throttle{Concurrent: l.InitialConcurrent}
	}
	eff := m.Cost() + m.ExtraCost()
	frac := math.Max(0, (eff-l.SoftLimit)/(l.HardLimit-l.SoftLimit))
	conc := int(math.Max(0, math.Ceil((1-frac)*float64(l.InitialConcurrent))))
	return Throttle{Effective: eff, Sleep: time.Duration(math.Min(frac, 1) * float64(l.RequestSleep)), Concurrent: conc}
}

// GroupInfo is one row of `amber rpc groups`.
type GroupInfo struct {
	Name         string  `json:"name"`
	Sessions     int     `json:"sessions"`
	SessionCost  float64 `json:"session_cost"`
	RetainedCost float64 `json:"retained_cost"`
}

// List reports every group, by name.
func (gs *Groups) List() []GroupInfo {
	gs.mu.Lock()
	type snap struct {
		info    GroupInfo
		members []*Meter
	}
	var snaps []snap
	now := gs.now()
	for name, g := range gs.m {
		s := snap{info: GroupInfo{Name: name, Sessions: len(g.members), RetainedCost: g.retainedNow(gs.limits, now)}}
		for m := range g.members {
			s.members = append(s.members, m)
		}
		if len(g.members) == 0 && g.retained == 0 {
			delete(gs.m, name)
			continue
		}
		snaps = append(snaps, s)
	}
	gs.mu.Unlock()
	out := make([]GroupInfo, 0, len(snaps))
	for _, s := range snaps {
		for _, m := range s.members {
			s.info.SessionCost += m.Cost()
		}
		out = append(out, s.info)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}
