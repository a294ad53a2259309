package cost

import (
	"math"
	"net/netip"
	"testing"
	"time"
)

// TestCostModel follows spec §7.1 with a fake clock: throttling from the
// soft limit, disconnect at the hard limit, group sharing by subnet,
// decay, and cost retained by a group after a session leaves.
func TestCostModel(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	gs := NewGroups(Limits{SoftLimit: 1000, HardLimit: 10000, RequestSleep: 2500 * time.Millisecond,
		InitialConcurrent: 10, SubnetIPv4: 24, SubnetIPv6: 48})
	gs.now = func() time.Time { return now }
	near := func(a, b float64) bool { return math.Abs(a-b) < 1e-6 }

	a := gs.Join(netip.MustParseAddr("203.0.113.7"))
	if a.Group() != "203.0.113.0/24" || !near(a.Cost(), initialCost) {
		t.Fatalf("new session: group %q cost %v", a.Group(), a.Cost())
	}
	if th := a.Throttle(); th.Throttled() || th.Concurrent != 10 {
		t.Errorf("under the soft limit: %+v", th)
	}
	a.Charge(5500 - initialCost) // halfway from soft to hard
	th := a.Throttle()
	if th.Sleep != 1250*time.Millisecond || th.Concurrent != 5 {
		t.Errorf("halfway: %+v, want a 1.25 s sleep and 5 concurrent", th)
	}

	// Another session of the subnet pays for a's cost; one from another
	// subnet or from a private address does not.
	b := gs.Join(netip.MustParseAddr("203.0.113.200"))
	if th := b.Throttle(); !near(th.Effective, 5505) || !th.Throttled() {
		t.Errorf("same subnet: %+v", th)
	}
	if c := gs.Join(netip.MustParseAddr("198.51.100.1")); c.Throttle().Throttled() {
		t.Error("another subnet is throttled")
	}
	if p := gs.Join(netip.MustParseAddr("10.1.2.3")); p.Group() != "" {
		t.Errorf("a private address got group %q", p.Group())
	}
	if g := gs.Join(netip.MustParseAddr("2001:db8:1:2::9")); g.Group() != "2001:db8:1::/48" {
		t.Errorf("IPv6 group %q", g.Group())
	}
	priv := NewGroups(Limits{HardLimit: 10000, SubnetIPv4: 32, SubnetIPv6: 64, GroupPrivate: true})
	for addr, want := range map[string]string{"127.0.0.7": "127.0.0.7/32", "10.1.2.3": "10.1.2.3/32",
		"::ffff:192.168.1.2": "192.168.1.2/32", "fd00:1:2:3::4": "fd00:1:2:3::/64", "0.0.0.0": ""} {
		if g := priv.Join(netip.MustParseAddr(addr)).Group(); g != want {
			t.Errorf("with GroupPrivate, %s is in group %q, want %q", addr, g, want)
		}
	}

	// Decay: HARD/10000 = 1 per second without subscriptions, slower
	// with them.
	now = now.Add(100 * time.Second)
	if !near(a.Cost(), 5400) {
		t.Errorf("after 100 s: %v, want 5400", a.Cost())
	}
	a.SetSubs(2000) // HARD/(10000+5*2000): half the rate
	now = now.Add(100 * time.Second)
	if !near(a.Cost(), 5350) {
		t.Errorf("after 100 s with 2,000 subscriptions: %v, want 5350", a.Cost())
	}

	// Leaving keeps the cost in the group: reconnecting does not reset it.
	a.Leave()
	again := gs.Join(netip.MustParseAddr("203.0.113.7"))
	if th := again.Throttle(); th.Effective < 5000 || !th.Throttled() {
		t.Errorf("reconnected: %+v, want the group's retained cost", th)
	}
	// Retained cost decays by HARD/5000 per second.
	now = now.Add(1000 * time.Second)
	if got := again.ExtraCost(); got > 5350-1900 || got < 0 {
		t.Errorf("retained after 1,000 s: %v", got)
	}

	// At the hard limit: no concurrency left, the session is dropped.
	again.Charge(20000)
	if th := again.Throttle(); th.Concurrent != 0 || th.Sleep != 2500*time.Millisecond {
		t.Errorf("over the hard limit: %+v", th)
	}

	off := NewGroups(Limits{})
	if th := off.Join(netip.MustParseAddr("203.0.113.1")).Throttle(); th.Concurrent == 0 || th.Throttled() {
		t.Errorf("limits off: %+v", th)
	}
}
