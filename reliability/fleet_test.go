package reliability

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"

	"amber/internal/chain"
	"amber/internal/testenv"
)

// Fleet settings: short enough for make test, the same in the soak.
const (
	fleetSlots      = 4               // HAProxy servers: three nodes and the slot a new node takes
	fleetWallets    = 12              // long-lived wallets, three per source address, one of them WebSocket
	fleetScripts    = 3               // scripts every wallet subscribes to
	fleetDrainDelay = 3 * time.Second // DRAIN_DELAY of every node
	fleetQuiet      = 2 * time.Second // no block mined this close to the end of a drain
	fleetGrace      = 2 * time.Second // SHUTDOWN_GRACE
	fleetSyncWait   = 45 * time.Second
)

// TestFleet runs amber the way operators do: HAProxy in TCP mode with
// PROXY v2 and /readyz health checks in front of three `amber serve`
// nodes that bootstrapped from the snapshots an `amber build` publishes
// to MinIO while following btcd. Electrum-like wallets connect through
// HAProxy's TCP or WebSocket frontend from several loopback addresses
// while blocks and mempool transactions arrive. A new node joins on an
// empty disk and must get no wallet before its /readyz is green; then
// the oldest node gets SIGTERM: it must turn not-ready, get no new
// wallet, close its sessions after DRAIN_DELAY, and its wallets must
// reconnect to the others and resubscribe. Every answer a wallet gets is
// checked against the chain, every wallet must see every block, and
// `amber rpc sessions` on each node must list exactly the wallets
// HAProxy sent it, with their own addresses and transports. The soak
// repeats join and leave while its share lasts.
func TestFleet(t *testing.T) {
	if testing.Short() {
		t.Skip("runs btcd, MinIO, HAProxy, amber build and four amber serve")
	}
	testenv.HAProxyBinary(t) // skip (or fail under CI) before starting anything
	began := time.Now()
	f := newFleet(t)
	for range 3 {
		f.round()
	}
	// Two cycles: the second new node takes the slot the first leaver
	// freed, and restores a newer snapshot.
	for cycle := 0; cycle < 2 || rounds(cycle, began, fleetShare); cycle++ {
		f.joinAndLeave(cycle)
	}
	for _, tr := range fleetTransports {
		if f.figures.moved[tr] == 0 {
			f.errorf("no %s wallet was on a node that drained: their reconnect went untested", tr)
		}
	}
	f.checkSessions(true)
	f.checkEveryBlockNotified()
	f.stopAll()
	f.report(time.Since(began))
}

// truth is what the chain holds, as the test made it; wallets check every
// answer against it. It only grows (no reorgs here), so an answer checked
// against a newer truth is judged fairly.
type truth struct {
	mu      sync.Mutex
	version int // bumped on each change; wallets report the version they match
	tip     int
	headers map[int]string     // height -> header hex
	txs     map[string]*paidTx // txid -> payment
	scripts []string           // scripthashes every wallet subscribes to
}

type paidTx struct {
	txid   string
	sh     string
	height int // 0 while in the mempool
}

// history is the expected get_history of sh: confirmed by height, then
// the mempool.
func (tr *truth) history(sh string) []histEntry {
	var out []histEntry
	for _, p := range tr.txs {
		if p.sh == sh {
			out = append(out, histEntry{TxHash: p.txid, Height: p.height})
		}
	}
	sortHistory(out)
	return out
}

type histEntry struct {
	TxHash string `json:"tx_hash"`
	Height int    `json:"height"`
}

func sortHistory(h []histEntry) {
	sort.Slice(h, func(i, j int) bool {
		hi, hj := h[i].Height, h[j].Height
		if (hi > 0) != (hj > 0) {
			return hi > 0
		}
		if hi != hj {
			return hi < hj
		}
		return h[i].TxHash < h[j].TxHash
	})
}

// statusOf is the Electrum status of a history (spec: sha256 of
// "tx_hash:height:" for every entry), "" for none.
func statusOf(h []histEntry) string {
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

// node is one `amber serve` instance in a HAProxy slot.
type node struct {
	name     string // instance, as its banner tells wallets
	slot     int
	dir      string
	tcp, ws  string // Electrum listeners, behind HAProxy's frontends of the same names
	rpc, web string
	p        *proc
	started  time.Time

	mu         sync.Mutex
	greenAt    time.Time // first green /readyz
	lastRed    time.Time // last red /readyz seen before greenAt
	termAt     time.Time // SIGTERM sent
	redAfter   time.Time // first red /readyz seen after SIGTERM
	lbEarly    int       // connections HAProxy had sent the slot while /readyz was red during startup
	pollerDone chan struct{}
}

type slotPorts struct{ tcp, ws, rpc, web string }

// fleetTransports are HAProxy's frontends, named as the nodes' services.
var fleetTransports = []string{"tcp", "ws"}

type fleet struct {
	t       *testing.T
	r       *testenv.Regtest
	minio   *testenv.Minio
	builder *proc
	lb      *testenv.HAProxy
	slots   []slotPorts
	nodes   []*node // every instance ever started, in order
	live    []*node // serving or draining
	leaving *node   // got SIGTERM, not yet exited
	mined   []int   // heights of the blocks the test mined
	truth   *truth
	scripts []*testenv.Script
	wallets []*fleetWallet
	gen     int

	stop    atomic.Bool
	pause   atomic.Bool // the probe opens no session
	wg      sync.WaitGroup
	errs    atomic.Int64
	probes  atomic.Int64
	landed  sync.Map // instance name -> *landing
	rounds  int
	figures fleetFigures
}

// landing is when wallets first and last reached an instance.
type landing struct {
	mu          sync.Mutex
	first, last time.Time
	count       int
}

type fleetFigures struct {
	readyTimes   []time.Duration // new node: start to /readyz green
	caughtUp     []int           // blocks a new node synced after its snapshot
	drainCloses  []time.Duration // SIGTERM to a wallet's session closing
	exitTimes    []time.Duration // SIGTERM to exit 0
	unreadyTimes []time.Duration // SIGTERM to /readyz red
	lbDownTimes  []time.Duration // SIGTERM to HAProxy marking the node down
	moved        map[string]int  // wallets that reconnected after a drain, by transport
}

func (f *fleet) errorf(format string, args ...any) {
	f.errs.Add(1)
	f.t.Errorf(format, args...)
}

func newFleet(t *testing.T) *fleet {
	f := &fleet{t: t, truth: &truth{headers: map[int]string{}, txs: map[string]*paidTx{}}}
	f.r = testenv.StartRegtest(t, testenv.RegtestOptions{})
	f.r.Mine(110)
	f.truth.tip = int(f.r.Btcd.Height())
	for range fleetScripts {
		s := f.r.Wallet.NewScript(testenv.P2WPKH)
		f.scripts = append(f.scripts, s)
		f.truth.scripts = append(f.truth.scripts, chain.ScriptHashOf(s.PkScript).Hex())
	}
	f.minio = testenv.StartMinio(t, testenv.MinioOptions{})
	f.minio.CreateBucket("amber")

	// The builder follows btcd and publishes at once, then every 5 blocks.
	f.builder = start(t, []string{"build"}, append(f.snapEnv(t.TempDir()), "SNAPSHOT_INTERVAL=5 blocks")...)
	f.builder.waitLog("snapshot published", 2*time.Minute)

	for range fleetSlots {
		f.slots = append(f.slots, slotPorts{tcp: testenv.FreeAddr(t), ws: testenv.FreeAddr(t), rpc: testenv.FreeAddr(t), web: testenv.FreeAddr(t)})
	}
	for slot := range fleetSlots - 1 {
		n := f.startNode(slot)
		f.waitGreen(n, 2*time.Minute)
	}
	var backends, wsBackends []testenv.HAProxyBackend
	for i, s := range f.slots {
		_, port, _ := net.SplitHostPort(s.web)
		p, _ := strconv.Atoi(port)
		backends = append(backends, testenv.HAProxyBackend{Name: fmt.Sprintf("slot%d", i), Addr: s.tcp, CheckPort: p})
		wsBackends = append(wsBackends, testenv.HAProxyBackend{Name: fmt.Sprintf("slot%d", i), Addr: s.ws, CheckPort: p})
	}
	f.lb = testenv.StartHAProxy(t, testenv.HAProxyOptions{Backends: backends,
		Frontends: []testenv.HAProxyFrontend{{Name: "ws", Backends: wsBackends}}})
	f.waitLB(func(st map[string]testenv.HAProxyServer) bool {
		return strings.HasPrefix(st["slot0"].Status, "UP") && strings.HasPrefix(st["slot1"].Status, "UP") &&
			strings.HasPrefix(st["slot2"].Status, "UP") && strings.HasPrefix(st["slot3"].Status, "DOWN")
	}, "three nodes up, the free slot down")

	for i := range fleetWallets {
		w := &fleetWallet{f: f, id: i, src: net.IPv4(127, 0, 0, byte(2+i/3)), transport: "tcp",
			hist: map[string][]histEntry{}, status: map[string]string{}}
		if i%3 == 2 {
			w.transport = "ws"
		}
		f.wallets = append(f.wallets, w)
		f.wg.Add(1)
		go w.run()
	}
	f.wg.Add(1)
	go f.probe()
	t.Cleanup(f.halt)
	f.waitSynced("wallets connected")
	return f
}

// snapEnv is the environment of an amber process on dir that reads or
// writes the fleet's bucket.
func (f *fleet) snapEnv(dir string) []string {
	return append(baseEnv(f.r.Btcd.URL(), dir), "DAEMON_POLL_INTERVAL=100ms",
		"SNAPSHOT_URL=minio://"+f.minio.Endpoint+"/amber/fleet?secure=false",
		"MINIO_ACCESS_KEY="+f.minio.AccessKey, "MINIO_SECRET_KEY="+f.minio.SecretKey)
}

// startNode starts a new instance on an empty disk in slot.
func (f *fleet) startNode(slot int) *node {
	t := f.t
	f.gen++
	s := f.slots[slot]
	n := &node{name: fmt.Sprintf("node%d", f.gen), slot: slot, dir: t.TempDir(), tcp: s.tcp, ws: s.ws, rpc: s.rpc, web: s.web,
		pollerDone: make(chan struct{})}
	banner := filepath.Join(t.TempDir(), "banner")
	if err := os.WriteFile(banner, []byte(n.name), 0o644); err != nil {
		t.Fatal(err)
	}
	base := 0
	if f.lb != nil {
		var err error
		if base, err = f.lbTotal(slot); err != nil {
			t.Fatal(err)
		}
	}
	// PROXY_PROTOCOL covers the ws:// listener as well as tcp://.
	env := append(f.snapEnv(n.dir),
		"SERVICES=tcp://"+n.tcp+",ws://"+n.ws+",rpc://"+n.rpc, "HTTP_ADDR="+n.web, "PEER_DISCOVERY=off",
		"PROXY_PROTOCOL=on", "PROXY_TRUSTED=127.0.0.1/32", "BANNER_FILE="+banner,
		// Each wallet source address (127.0.0.x, three wallets apiece) is
		// its own cost group, so grouping by the PROXY address is exercised.
		"SESSION_GROUP_PRIVATE=on", "SESSION_GROUP_BY_SUBNET_IPV4=32",
		fmt.Sprintf("DRAIN_DELAY=%d", int(fleetDrainDelay/time.Second)), fmt.Sprintf("SHUTDOWN_GRACE=%d", int(fleetGrace/time.Second)))
	n.started = time.Now()
	n.p = start(t, []string{"serve"}, env...)
	f.nodes = append(f.nodes, n)
	f.live = append(f.live, n)
	go f.pollReady(n, base)
	return n
}

// lbTotal is the number of connections HAProxy has sent to slot, over
// both frontends.
func (f *fleet) lbTotal(slot int) (int, error) {
	total := 0
	for _, fe := range fleetTransports {
		st, err := f.lb.BackendServers(fe)
		if err != nil {
			return 0, err
		}
		total += st[fmt.Sprintf("slot%d", slot)].Total
	}
	return total, nil
}

// pollReady watches the instance's /readyz until it exits. Until the
// first green answer it also reads HAProxy's count of connections sent
// to the slot, before each /readyz: a count read while the node was red
// must not have grown.
func (f *fleet) pollReady(n *node, lbBase int) {
	defer close(n.pollerDone)
	c := &http.Client{Timeout: time.Second}
	for !n.p.exited() {
		n.mu.Lock()
		green := !n.greenAt.IsZero()
		n.mu.Unlock()
		lbTotal := -1
		if !green && f.lb != nil {
			if tot, err := f.lbTotal(n.slot); err == nil {
				lbTotal = tot
			}
		}
		ok := false
		if resp, err := c.Get("http://" + n.web + "/readyz"); err == nil {
			ok = resp.StatusCode == http.StatusOK
			resp.Body.Close()
		}
		now := time.Now()
		n.mu.Lock()
		switch {
		case ok && n.greenAt.IsZero():
			n.greenAt = now
		case !ok && n.greenAt.IsZero():
			n.lastRed = now
			if lbTotal > lbBase {
				n.lbEarly = lbTotal - lbBase
			}
		case !ok && !n.termAt.IsZero() && n.redAfter.IsZero():
			n.redAfter = now
		}
		n.mu.Unlock()
		time.Sleep(25 * time.Millisecond)
	}
}

func (f *fleet) waitGreen(n *node, within time.Duration) time.Duration {
	f.t.Helper()
	deadline := time.Now().Add(within)
	for {
		n.mu.Lock()
		g := n.greenAt
		n.mu.Unlock()
		if !g.IsZero() {
			return g.Sub(n.started)
		}
		if n.p.exited() {
			f.t.Fatalf("%s exited before turning ready (%v):\n%s", n.name, n.p.err, tail(n.p.log.String(), 25))
		}
		if time.Now().After(deadline) {
			f.t.Fatalf("%s not ready within %v:\n%s", n.name, within, tail(n.p.log.String(), 25))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitLB waits until ok holds for the servers behind every frontend.
func (f *fleet) waitLB(ok func(map[string]testenv.HAProxyServer) bool, what string) {
	f.t.Helper()
	var st map[string]testenv.HAProxyServer
	var err error
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		all := true
		for _, fe := range fleetTransports {
			if st, err = f.lb.BackendServers(fe); err != nil || !ok(st) {
				all = false
				break
			}
		}
		if all {
			return
		}
	}
	f.t.Fatalf("haproxy: not %s: %v %v", what, st, err)
}

// round adds a mempool transaction to one script, waits until every
// wallet has it, mines it, and waits until every wallet has the block.
func (f *fleet) round() {
	k := f.rounds
	f.rounds++
	tr := f.truth
	tr.mu.Lock()
	tx := f.r.Pay(f.scripts[k%fleetScripts].TxOut(int64(1e6 + k)))
	txid := tx.TxHash().String()
	tr.txs[txid] = &paidTx{txid: txid, sh: tr.scripts[k%fleetScripts]}
	tr.version++
	tr.mu.Unlock()
	f.waitSynced(fmt.Sprintf("round %d: mempool tx %s", k, txid))
	f.mine(fmt.Sprintf("round %d", k))
}

// mine mines a block confirming the mempool's payments and waits until
// every wallet has it.
func (f *fleet) mine(what string) {
	t := f.t
	// No block in the last fleetQuiet before a drain closes sessions: a
	// block mined earlier must reach the draining node's wallets as a
	// notification, and one mined later may legitimately not.
	if n := f.leaving; n != nil && time.Since(n.termAt) > fleetDrainDelay-fleetQuiet {
		for !n.p.exited() {
			time.Sleep(10 * time.Millisecond)
		}
		f.waitSynced(fmt.Sprintf("%s: %s's wallets back", what, n.name))
	}
	tr := f.truth
	tr.mu.Lock()
	blocks := f.r.Mine(1)
	h := int(f.r.Btcd.Height())
	var hdr bytes.Buffer
	if len(blocks) != 1 || blocks[0].Header.Serialize(&hdr) != nil {
		tr.mu.Unlock()
		t.Fatalf("%s: mined %d blocks", what, len(blocks))
	}
	in := map[string]bool{}
	for _, btx := range blocks[0].Transactions {
		in[btx.TxHash().String()] = true
	}
	for _, p := range tr.txs {
		if p.height == 0 {
			if !in[p.txid] {
				tr.mu.Unlock()
				t.Fatalf("%s: block %d does not confirm %s", what, h, p.txid)
			}
			p.height = h
		}
	}
	tr.tip, tr.headers[h] = h, hex.EncodeToString(hdr.Bytes())
	f.mined = append(f.mined, h)
	tr.version++
	tr.mu.Unlock()
	f.waitSynced(fmt.Sprintf("%s: block %d", what, h))
}

// waitSynced waits until every wallet matches the current truth: at its
// tip, with every script's history and status.
func (f *fleet) waitSynced(what string) {
	f.t.Helper()
	f.truth.mu.Lock()
	v := f.truth.version
	f.truth.mu.Unlock()
	deadline := time.Now().Add(fleetSyncWait)
	for {
		var behind []string
		for _, w := range f.wallets {
			w.mu.Lock()
			if w.synced < v {
				behind = append(behind, fmt.Sprintf("w%d on %s at %d (%s)", w.id, w.node, w.tip, w.state))
			}
			w.mu.Unlock()
		}
		if len(behind) == 0 {
			return
		}
		if time.Now().After(deadline) {
			f.t.Fatalf("%s: wallets not in step after %v: %s", what, fleetSyncWait, strings.Join(behind, "; "))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// joinAndLeave starts a node in the free slot, waits until it is ready
// and has wallets, then sends SIGTERM to the oldest node, with rounds
// running all along.
func (f *fleet) joinAndLeave(cycle int) {
	t := f.t
	free := -1
	for slot := range f.slots {
		if !slices.ContainsFunc(f.live, func(n *node) bool { return n.slot == slot }) {
			free = slot
		}
	}
	n := f.startNode(free)
	began := time.Now()
	for f.readyTime(n) == 0 || f.landings(n.name) == 0 {
		if time.Since(began) > 2*time.Minute {
			t.Fatalf("cycle %d: %s not ready with wallets within 2m (ready after %v, %d wallets):\n%s",
				cycle, n.name, f.readyTime(n), f.landings(n.name), tail(n.p.log.String(), 25))
		}
		f.round()
	}
	ready := f.readyTime(n)
	n.mu.Lock()
	lastRed, early := n.lastRed, n.lbEarly
	n.mu.Unlock()
	if early > 0 {
		f.errorf("%s: HAProxy sent it %d connections while its /readyz was red", n.name, early)
	}
	if l := f.landing(n.name); l.first.Before(lastRed) {
		f.errorf("%s: a wallet reached it at %v, before its /readyz was last red at %v", n.name, l.first.Format(time.StampMilli), lastRed.Format(time.StampMilli))
	}
	f.figures.readyTimes = append(f.figures.readyTimes, ready)
	snapH, readyH := bootstrapHeights(t, n)
	f.figures.caughtUp = append(f.figures.caughtUp, readyH-snapH)
	t.Logf("cycle %d: %s ready %v after start on an empty disk (snapshot at %d, caught up to %d)", cycle, n.name, ready.Round(time.Millisecond), snapH, readyH)

	f.checkSessions(false) // the new node may have had only probes yet
	old := f.live[0]
	f.leave(old)
	f.round()
	f.round()
}

// bootstrapHeights reads from a new node's log the snapshot height it
// restored and the height it caught up to before serving.
func bootstrapHeights(t *testing.T, n *node) (snap, ready int) {
	t.Helper()
	log := n.p.log.String()
	m := regexp.MustCompile(`msg="restored snapshot".* height=(\d+)`).FindStringSubmatch(log)
	if m == nil {
		t.Fatalf("%s did not restore a snapshot:\n%s", n.name, tail(log, 25))
	}
	r := regexp.MustCompile(`msg="index at daemon tip" height=(\d+)`).FindStringSubmatch(log)
	if r == nil {
		t.Fatalf("%s did not log its tip before serving:\n%s", n.name, tail(log, 25))
	}
	snap, _ = strconv.Atoi(m[1])
	ready, _ = strconv.Atoi(r[1])
	return snap, ready
}

// leave sends SIGTERM to n with rounds running, and checks the drain.
func (f *fleet) leave(n *node) {
	t := f.t
	var onIt []*fleetWallet
	for _, w := range f.wallets {
		w.mu.Lock()
		if w.node == n.name {
			onIt = append(onIt, w)
		}
		w.mu.Unlock()
	}
	n.mu.Lock()
	n.termAt = time.Now()
	n.mu.Unlock()
	f.leaving = n
	defer func() { f.leaving = nil }()
	if err := n.p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	slot := fmt.Sprintf("slot%d", n.slot)
	f.waitLB(func(st map[string]testenv.HAProxyServer) bool { return strings.HasPrefix(st[slot].Status, "DOWN") },
		n.name+" marked down after SIGTERM")
	f.figures.lbDownTimes = append(f.figures.lbDownTimes, time.Since(n.termAt))
	// A block at once: the draining node's wallets must still be told.
	f.mine("just after SIGTERM to " + n.name)
	for !n.p.exited() {
		if time.Since(n.termAt) > fleetDrainDelay+fleetGrace+30*time.Second {
			t.Fatalf("%s still running %v after SIGTERM:\n%s", n.name, time.Since(n.termAt), tail(n.p.log.String(), 25))
		}
		f.round()
	}
	exit := time.Since(n.termAt)
	if n.p.err != nil {
		f.errorf("%s exited with %v after SIGTERM:\n%s", n.name, n.p.err, tail(n.p.log.String(), 25))
	}
	<-n.pollerDone
	f.live = slices.DeleteFunc(f.live, func(x *node) bool { return x == n })
	n.mu.Lock()
	red := n.redAfter
	n.mu.Unlock()
	if red.IsZero() || red.Sub(n.termAt) > time.Second {
		f.errorf("%s: /readyz not red within 1s of SIGTERM (red at %v)", n.name, red.Sub(n.termAt))
	}
	if l := f.landing(n.name); !red.IsZero() && l.last.After(red) {
		f.errorf("%s: a wallet reached it at %v, after its /readyz turned red", n.name, l.last.Format(time.StampMilli))
	}
	f.figures.unreadyTimes = append(f.figures.unreadyTimes, red.Sub(n.termAt))
	f.figures.exitTimes = append(f.figures.exitTimes, exit)
	moved := 0
	for _, w := range onIt {
		w.mu.Lock()
		closed, now := w.closedAt[n.name], w.node
		w.mu.Unlock()
		if closed.IsZero() {
			f.errorf("w%d: its session on %s did not close", w.id, n.name)
			continue
		}
		d := closed.Sub(n.termAt)
		f.figures.drainCloses = append(f.figures.drainCloses, d)
		if d < fleetDrainDelay || d > fleetDrainDelay+fleetGrace+2*time.Second {
			f.errorf("w%d: its session on %s closed %v after SIGTERM, want DRAIN_DELAY %v (+ SHUTDOWN_GRACE %v at most)", w.id, n.name, d, fleetDrainDelay, fleetGrace)
		}
		if now != n.name {
			moved++
			if f.figures.moved == nil {
				f.figures.moved = map[string]int{}
			}
			f.figures.moved[w.transport]++
		}
	}
	if len(onIt) == 0 {
		f.errorf("%s had no wallets when it got SIGTERM: the drain proved nothing", n.name)
	}
	if moved != len(onIt) {
		f.errorf("%d of %s's %d wallets moved to another node", moved, n.name, len(onIt))
	}
	t.Logf("%s: SIGTERM, /readyz red after %v, %d sessions closed after %v, exit 0 after %v; wallets now on %v",
		n.name, red.Sub(n.termAt).Round(time.Millisecond), len(onIt), durations(f.figures.drainCloses[len(f.figures.drainCloses)-len(onIt):]), exit.Round(time.Millisecond), f.placement())
}

func (f *fleet) readyTime(n *node) time.Duration {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.greenAt.IsZero() {
		return 0
	}
	return n.greenAt.Sub(n.started)
}

func (f *fleet) landing(name string) *landing {
	l, _ := f.landed.LoadOrStore(name, &landing{})
	return l.(*landing)
}

func (f *fleet) landings(name string) int {
	l := f.landing(name)
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.count
}

// landedOn records a session that reached instance name.
func (f *fleet) landedOn(name string) {
	l := f.landing(name)
	now := time.Now()
	l.mu.Lock()
	if l.count == 0 {
		l.first = now
	}
	l.last = now
	l.count++
	l.mu.Unlock()
}

func (f *fleet) placement() map[string]int {
	m := map[string]int{}
	for _, w := range f.wallets {
		w.mu.Lock()
		m[w.node]++
		w.mu.Unlock()
	}
	return m
}

// probe opens a short session through HAProxy every 150ms, as new
// wallets do, over TCP and WebSocket in turn: it must reach a ready node
// that is at the chain's tip.
func (f *fleet) probe() {
	defer f.wg.Done()
	for i := 0; !f.stop.Load(); i++ {
		if f.pause.Load() {
			time.Sleep(20 * time.Millisecond)
			continue
		}
		f.truth.mu.Lock()
		tip := f.truth.tip
		f.truth.mu.Unlock()
		transport := fleetTransports[i%len(fleetTransports)]
		c, err := dialFleet(f.lb, transport, net.IPv4(127, 0, 0, 9), "fleet-probe")
		if err != nil {
			if !f.stop.Load() {
				f.errorf("probe over %s: %v", transport, err)
			}
			time.Sleep(150 * time.Millisecond)
			continue
		}
		f.probes.Add(1)
		f.landedOn(c.node)
		raw, err := c.call("blockchain.headers.subscribe")
		var hdr struct {
			Hex    string `json:"hex"`
			Height int    `json:"height"`
		}
		if err == nil {
			err = json.Unmarshal(raw, &hdr)
		}
		c.link.close()
		switch {
		case err != nil:
			f.errorf("probe on %s over %s: headers.subscribe: %v", c.node, transport, err)
		case hdr.Height < tip-1:
			// Rounds wait for every wallet, so a ready node is at most the
			// block being mined behind.
			f.errorf("probe on %s: tip %d, the chain was at %d before connecting", c.node, hdr.Height, tip)
		default:
			if msg := f.checkHeader(hdr.Height, hdr.Hex); msg != "" {
				f.errorf("probe on %s: %s", c.node, msg)
			}
		}
		time.Sleep(150 * time.Millisecond)
	}
}

// checkHeader compares a header with the chain's; "" when it matches.
func (f *fleet) checkHeader(h int, hexHdr string) string {
	f.truth.mu.Lock()
	want, ok := f.truth.headers[h]
	f.truth.mu.Unlock()
	if !ok {
		// Headers from before the test's rounds come from btcd.
		raw, err := f.r.Btcd.Call("getblockhash", h)
		if err != nil {
			return fmt.Sprintf("header at %d: btcd has no block there: %v", h, err)
		}
		var hash string
		json.Unmarshal(raw, &hash)
		if raw, err = f.r.Btcd.Call("getblockheader", hash, false); err != nil {
			return fmt.Sprintf("header at %d: %v", h, err)
		}
		json.Unmarshal(raw, &want)
		f.truth.mu.Lock()
		f.truth.headers[h] = want
		f.truth.mu.Unlock()
	}
	if hexHdr != want {
		return fmt.Sprintf("header at %d is %.16s..., the chain's is %.16s...", h, hexHdr, want)
	}
	return ""
}

// checkSessions compares each live node's `amber rpc sessions` with the
// wallets HAProxy sent it: the same source addresses, the wallets' own,
// on the wallets' transports, each in the cost group of its address.
func (f *fleet) checkSessions(requireWallets bool) {
	t := f.t
	f.pause.Store(true)
	defer f.pause.Store(false)
	f.waitSynced("before listing sessions")
	for _, n := range f.live {
		want := map[string]string{}
		for _, w := range f.wallets {
			w.mu.Lock()
			if w.node == n.name {
				host, _, _ := net.SplitHostPort(w.local)
				want[w.local] = w.transport + " " + w.client() + " in " + host + "/32"
			}
			w.mu.Unlock()
		}
		cmd := exec.Command(amberBin, "rpc", "sessions")
		cmd.Env = append(os.Environ(), "RPC_ADDR="+n.rpc)
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("%s: amber rpc sessions: %v", n.name, err)
		}
		var sessions []struct {
			Remote, Client, Transport, Group string
		}
		if err := json.Unmarshal(out, &sessions); err != nil {
			t.Fatalf("%s: amber rpc sessions: %v\n%s", n.name, err, out)
		}
		got := map[string]string{}
		for _, s := range sessions {
			if s.Transport != "rpc" && s.Client != "fleet-probe" { // a probe's session may still be closing
				got[s.Remote] = s.Transport + " " + s.Client + " in " + s.Group
			}
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			f.errorf("%s: amber rpc sessions lists %v, its wallets connected from %v", n.name, got, want)
		}
		if len(want) == 0 && requireWallets {
			f.errorf("%s has no wallet: the sessions check proved nothing for it", n.name)
		}
	}
}

// checkEveryBlockNotified checks that every wallet got a headers
// notification for every block the rounds mined: rounds mine only while
// every wallet is connected and in step, and never in the last
// fleetQuiet of a drain, so none may be missing, whichever node served
// the wallet.
func (f *fleet) checkEveryBlockNotified() {
	heights := f.mined
	for _, w := range f.wallets {
		w.mu.Lock()
		var missed []int
		for _, h := range heights {
			if !w.notified[h] {
				missed = append(missed, h)
			}
		}
		w.mu.Unlock()
		if len(missed) > 0 {
			slices.Sort(missed)
			f.errorf("w%d got no headers notification for blocks %v", w.id, missed)
		}
	}
}

func (f *fleet) halt() {
	f.stop.Store(true)
	for _, w := range f.wallets {
		w.close()
	}
	f.wg.Wait()
}

// stopAll ends the wallets, then the nodes and the builder with SIGTERM:
// each must exit 0.
func (f *fleet) stopAll() {
	f.halt()
	for _, n := range f.live {
		if err := n.p.stop(); err != nil {
			f.errorf("%s: %v", n.name, err)
		}
	}
	if err := f.builder.stop(); err != nil {
		f.errorf("amber build: %v", err)
	}
}

func (f *fleet) report(took time.Duration) {
	reconnects, wallets := 0, map[string]int{}
	for _, w := range f.wallets {
		w.mu.Lock()
		reconnects += w.reconnects
		w.mu.Unlock()
		wallets[w.transport]++
	}
	fig := f.figures
	tally.fleetRun(fleetRun{took: took, cycles: len(fig.readyTimes), rounds: f.rounds, readyTimes: fig.readyTimes,
		caughtUp: fig.caughtUp, reconnects: reconnects, probes: int(f.probes.Load()), errors: int(f.errs.Load())})
	f.t.Logf("fleet: %d join/leave cycles, %d rounds (a mempool tx and a block each) in %v; new node ready after %v (caught up %v blocks); "+
		"SIGTERM to /readyz red %v, to HAProxy down %v, to sessions closed %v, to exit %v; wallets by transport %v, %d wallet reconnects "+
		"(moved off a draining node, by transport: %v), %d probe sessions, %d errors",
		len(fig.readyTimes), f.rounds, took.Round(time.Millisecond), durations(fig.readyTimes), fig.caughtUp,
		durations(fig.unreadyTimes), durations(fig.lbDownTimes), durations(fig.drainCloses), durations(fig.exitTimes),
		wallets, reconnects, fig.moved, f.probes.Load(), f.errs.Load())
}

func durations(ds []time.Duration) string {
	if len(ds) == 0 {
		return "-"
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	if len(s) == 1 {
		return s[0].Round(time.Millisecond).String()
	}
	return fmt.Sprintf("%v..%v (median %v, n=%d)", s[0].Round(time.Millisecond), s[len(s)-1].Round(time.Millisecond), s[len(s)/2].Round(time.Millisecond), len(s))
}

// fleetConn is one wallet session through HAProxy.
type fleetConn struct {
	link      fleetLink
	transport string // "tcp" or "ws", the HAProxy frontend it came through
	id        int
	node      string   // instance, from server.banner
	notes     [][]byte // notifications read while waiting for a reply
}

// fleetLink carries a session's JSON-RPC messages: one a line on TCP,
// one a text message on WebSocket.
type fleetLink interface {
	send(msg []byte) error
	// recv returns the next message; at deadline it returns an error
	// whose Timeout() is true, and the session stays usable.
	recv(deadline time.Time) ([]byte, error)
	local() string // the wallet's address, as the node should see it
	close()
}

// tcpLink is a session over the Electrum TCP protocol.
type tcpLink struct {
	conn    net.Conn
	rd      *bufio.Reader
	partial []byte // the start of a line a read deadline cut
}

func (l *tcpLink) send(msg []byte) error {
	l.conn.SetDeadline(time.Now().Add(20 * time.Second))
	_, err := l.conn.Write(append(msg, '\n'))
	return err
}

// recv reads one line by deadline; a line cut by the deadline is
// completed by the next call.
func (l *tcpLink) recv(deadline time.Time) ([]byte, error) {
	l.conn.SetDeadline(deadline)
	b, err := l.rd.ReadBytes('\n')
	if err != nil {
		l.partial = append(l.partial, b...)
		return nil, err
	}
	if len(l.partial) > 0 {
		b, l.partial = append(l.partial, b...), nil
	}
	return b, nil
}

func (l *tcpLink) local() string { return l.conn.LocalAddr().String() }
func (l *tcpLink) close()        { l.conn.Close() }

// wsLink is a session over WebSocket. coder/websocket closes the
// connection when a read's context ends, so a reader goroutine reads
// without one and recv waits for it with a deadline.
type wsLink struct {
	ws      *websocket.Conn
	raw     net.Conn // the TCP connection under ws
	msgs    chan []byte
	done    chan struct{} // closed when the reader stops, err set
	err     error
	closing chan struct{} // closed by close
	once    sync.Once
}

// dialWS opens a WebSocket session to addr from src.
func dialWS(addr string, src net.IP) (*wsLink, error) {
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: src}, Timeout: 5 * time.Second}
	dialed := make(chan net.Conn, 1)
	tr := &http.Transport{DialContext: func(ctx context.Context, network, a string) (net.Conn, error) {
		c, err := d.DialContext(ctx, network, a)
		if err == nil {
			dialed <- c
		}
		return c, err
	}}
	defer tr.CloseIdleConnections()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, "ws://"+addr+"/", &websocket.DialOptions{HTTPClient: &http.Client{Transport: tr}})
	if err != nil {
		select {
		case c := <-dialed:
			c.Close()
		default:
		}
		return nil, err
	}
	// Histories and headers here are small; the default 32 KiB would do,
	// but a wallet must not fail on a larger answer.
	ws.SetReadLimit(1 << 20)
	l := &wsLink{ws: ws, raw: <-dialed, msgs: make(chan []byte), done: make(chan struct{}), closing: make(chan struct{})}
	go l.read()
	return l, nil
}

func (l *wsLink) read() {
	defer close(l.done)
	for {
		_, msg, err := l.ws.Read(context.Background())
		if err != nil {
			l.err = wsError(err)
			return
		}
		select {
		case l.msgs <- msg:
		case <-l.closing:
			l.err = net.ErrClosed
			return
		}
	}
}

// wsError makes the node's close frame, or its closing the connection,
// an io.EOF, as on TCP.
func wsError(err error) error {
	if websocket.CloseStatus(err) != -1 || errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("%w: %v", io.EOF, err)
	}
	return err
}

func (l *wsLink) send(msg []byte) error {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	err := l.ws.Write(ctx, websocket.MessageText, msg)
	if err == nil {
		return nil
	}
	// A write fails as soon as the node's close frame is in; the reader
	// tells why.
	select {
	case <-l.done:
		if errors.Is(l.err, io.EOF) {
			return l.err
		}
	case <-time.After(time.Second):
	}
	return wsError(err)
}

func (l *wsLink) recv(deadline time.Time) ([]byte, error) {
	t := time.NewTimer(time.Until(deadline))
	defer t.Stop()
	select {
	case msg := <-l.msgs:
		return msg, nil
	case <-l.done:
		return nil, l.err
	case <-t.C:
		return nil, os.ErrDeadlineExceeded
	}
}

func (l *wsLink) local() string { return l.raw.LocalAddr().String() }

func (l *wsLink) close() {
	l.once.Do(func() { close(l.closing) })
	l.ws.CloseNow()
}

// dialFleet opens a session through lb's frontend for transport, from
// src, and learns which instance serves it.
func dialFleet(lb *testenv.HAProxy, transport string, src net.IP, client string) (*fleetConn, error) {
	c := &fleetConn{transport: transport}
	switch transport {
	case "ws":
		l, err := dialWS(lb.Addrs["ws"], src)
		if err != nil {
			return nil, err
		}
		c.link = l
	default:
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: src}, Timeout: 5 * time.Second}
		conn, err := d.Dial("tcp", lb.Addr)
		if err != nil {
			return nil, err
		}
		c.link = &tcpLink{conn: conn, rd: bufio.NewReaderSize(conn, 1<<16)}
	}
	if _, err := c.call("server.version", client, "1.4"); err != nil {
		c.link.close()
		return nil, err
	}
	raw, err := c.call("server.banner")
	if err == nil {
		err = json.Unmarshal(raw, &c.node)
	}
	if err != nil {
		c.link.close()
		return nil, err
	}
	return c, nil
}

// call sends a request and returns its result; notifications read on the
// way are kept for next.
func (c *fleetConn) call(method string, params ...any) (json.RawMessage, error) {
	c.id++
	if params == nil {
		params = []any{}
	}
	req, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": c.id, "method": method, "params": params})
	if err := c.link.send(req); err != nil {
		return nil, err
	}
	for {
		line, err := c.link.recv(time.Now().Add(20 * time.Second))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", method, err)
		}
		var m struct {
			ID     *int            `json:"id"`
			Result json.RawMessage `json:"result"`
			Error  json.RawMessage `json:"error"`
		}
		if err := json.Unmarshal(line, &m); err != nil {
			return nil, fmt.Errorf("%s: reply %q: %w", method, line, err)
		}
		if m.ID == nil {
			c.notes = append(c.notes, line)
			continue
		}
		if *m.ID != c.id {
			return nil, fmt.Errorf("%s: reply to id %d, want %d", method, *m.ID, c.id)
		}
		if m.Error != nil {
			return nil, fmt.Errorf("%s: error %s", method, m.Error)
		}
		return m.Result, nil
	}
}

// next returns the next notification, waiting up to d.
func (c *fleetConn) next(d time.Duration) ([]byte, error) {
	if len(c.notes) > 0 {
		n := c.notes[0]
		c.notes = c.notes[1:]
		return n, nil
	}
	return c.link.recv(time.Now().Add(d))
}

// fleetWallet is an Electrum-like wallet: it subscribes to headers and
// the fleet's scripts, fetches a script's history on each notification,
// checks everything against the truth, and reconnects through HAProxy
// when its session ends.
type fleetWallet struct {
	f         *fleet
	id        int
	src       net.IP
	transport string // "tcp" or "ws"

	mu         sync.Mutex
	c          *fleetConn
	node       string // instance serving it
	local      string // its address on that session
	tip        int    // highest header seen, over all sessions
	sessTip    int    // highest header seen on this session
	hist       map[string][]histEntry
	status     map[string]string
	synced     int // truth version it matched last
	state      string
	reconnects int
	closedAt   map[string]time.Time // instance -> when its session there ended
	notified   map[int]bool         // heights it got a headers notification for
}

func (w *fleetWallet) client() string { return fmt.Sprintf("fleet-w%d", w.id) }

func (w *fleetWallet) close() {
	w.mu.Lock()
	if w.c != nil {
		w.c.link.close()
	}
	w.mu.Unlock()
}

func (w *fleetWallet) fail(format string, args ...any) {
	w.f.errorf("w%d on %s: %s", w.id, w.node, fmt.Sprintf(format, args...))
}

func (w *fleetWallet) run() {
	defer w.f.wg.Done()
	for !w.f.stop.Load() {
		w.mu.Lock()
		c := w.c
		w.mu.Unlock()
		if c == nil {
			if !w.connect() {
				return
			}
			continue
		}
		line, err := c.next(200 * time.Millisecond)
		if err == nil {
			// A session the node closes while a request is on its way
			// (a drain) ends the session like a read does.
			if err = w.handle(c, line); err != nil && !closedByPeer(err) {
				if !w.f.stop.Load() {
					w.fail("%v", err)
				}
				err = io.EOF
			}
		}
		var ne net.Error
		switch {
		case err == nil:
		case errors.As(err, &ne) && ne.Timeout():
		default:
			w.mu.Lock()
			if w.closedAt == nil {
				w.closedAt = map[string]time.Time{}
			}
			w.closedAt[w.node] = time.Now()
			w.c, w.state = nil, "disconnected from "+w.node
			w.mu.Unlock()
			c.link.close()
			if w.f.stop.Load() {
				return
			}
			if !closedByPeer(err) {
				w.fail("session ended: %v", err)
			}
			continue
		}
		w.evaluate()
	}
}

// closedByPeer reports whether err is the other end closing the session.
func closedByPeer(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

// connect opens a session through HAProxy and subscribes; it retries for
// 30 s and reports whether it got one.
func (w *fleetWallet) connect() bool {
	deadline := time.Now().Add(30 * time.Second)
	for !w.f.stop.Load() {
		c, err := w.subscribe()
		if err == nil {
			return true
		}
		if c != nil {
			c.link.close()
		}
		if time.Now().After(deadline) {
			w.fail("no session through HAProxy for 30 s: %v", err)
			return false
		}
		time.Sleep(100 * time.Millisecond)
	}
	return false
}

func (w *fleetWallet) subscribe() (*fleetConn, error) {
	c, err := dialFleet(w.f.lb, w.transport, w.src, w.client())
	if err != nil {
		return nil, err
	}
	w.f.landedOn(c.node)
	w.mu.Lock()
	first := w.node == ""
	w.c, w.node, w.local, w.sessTip = c, c.node, c.link.local(), 0
	w.state = "subscribing on " + c.node
	if !first {
		w.reconnects++
	}
	w.mu.Unlock()
	raw, err := c.call("blockchain.headers.subscribe")
	if err != nil {
		return c, err
	}
	if err := w.header(raw, false); err != nil {
		w.fail("%v", err)
	}
	for _, sh := range w.f.truth.scripts {
		raw, err := c.call("blockchain.scripthash.subscribe", sh)
		if err != nil {
			return c, err
		}
		var st *string
		json.Unmarshal(raw, &st)
		w.mu.Lock()
		w.status[sh] = ""
		if st != nil {
			w.status[sh] = *st
		}
		w.mu.Unlock()
		if err := w.fetch(c, sh); err != nil {
			return c, err
		}
	}
	w.mu.Lock()
	w.state = "subscribed on " + c.node
	w.mu.Unlock()
	return c, nil
}

func (w *fleetWallet) handle(c *fleetConn, line []byte) error {
	var n struct {
		Method string            `json:"method"`
		Params []json.RawMessage `json:"params"`
	}
	if err := json.Unmarshal(line, &n); err != nil {
		return fmt.Errorf("notification %q: %v", line, err)
	}
	switch {
	case n.Method == "blockchain.headers.subscribe" && len(n.Params) == 1:
		if err := w.header(n.Params[0], true); err != nil {
			w.fail("%v", err)
		}
	case n.Method == "blockchain.scripthash.subscribe" && len(n.Params) == 2:
		var sh string
		var st *string
		json.Unmarshal(n.Params[0], &sh)
		json.Unmarshal(n.Params[1], &st)
		w.mu.Lock()
		w.status[sh] = ""
		if st != nil {
			w.status[sh] = *st
		}
		w.mu.Unlock()
		return w.fetch(c, sh)
	default:
		return fmt.Errorf("unexpected message %q", line)
	}
	return nil
}

// header checks a header from a subscription reply or notification: the
// chain's header at that height, never below what the wallet saw before
// (on any node), and never skipping a block on a session.
func (w *fleetWallet) header(raw json.RawMessage, notified bool) error {
	var h struct {
		Hex    string `json:"hex"`
		Height int    `json:"height"`
	}
	if err := json.Unmarshal(raw, &h); err != nil {
		return fmt.Errorf("header %s: %v", raw, err)
	}
	if msg := w.f.checkHeader(h.Height, h.Hex); msg != "" {
		return errors.New(msg)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	prev := w.tip
	switch {
	case h.Height < prev:
		return fmt.Errorf("headers went backwards: %d after %d", h.Height, prev)
	case notified && h.Height > prev+1:
		return fmt.Errorf("headers notification for %d after %d: block %d was never notified", h.Height, prev, prev+1)
	}
	w.tip = h.Height
	w.sessTip = max(w.sessTip, h.Height)
	if notified {
		if w.notified == nil {
			w.notified = map[int]bool{}
		}
		w.notified[h.Height] = true
	}
	return nil
}

// fetch asks for sh's history and checks it against the truth as of the
// node's own tip on this session: every confirmed entry right, nothing
// confirmed at or below that tip missing or shown unconfirmed.
func (w *fleetWallet) fetch(c *fleetConn, sh string) error {
	raw, err := c.call("blockchain.scripthash.get_history", sh)
	if err != nil {
		return err
	}
	var got []histEntry
	if err := json.Unmarshal(raw, &got); err != nil {
		return fmt.Errorf("get_history %s: %v", raw, err)
	}
	w.mu.Lock()
	tip := w.sessTip
	w.mu.Unlock()
	tr := w.f.truth
	tr.mu.Lock()
	var problems []string
	seen := map[string]bool{}
	for _, e := range got {
		p, ok := tr.txs[e.TxHash]
		switch {
		case !ok || p.sh != sh:
			problems = append(problems, fmt.Sprintf("%s is not a payment to this script", e.TxHash))
		case seen[e.TxHash]:
			problems = append(problems, fmt.Sprintf("%s listed twice", e.TxHash))
		case e.Height > 0 && e.Height != p.height:
			problems = append(problems, fmt.Sprintf("%s at height %d, the chain has it at %d", e.TxHash, e.Height, p.height))
		case e.Height <= 0 && p.height > 0 && p.height <= tip:
			problems = append(problems, fmt.Sprintf("stale: %s unconfirmed, confirmed at %d by a block this node already notified (%d)", e.TxHash, p.height, tip))
		}
		seen[e.TxHash] = true
	}
	for _, e := range tr.history(sh) {
		if e.Height > 0 && e.Height <= tip && !seen[e.TxHash] {
			problems = append(problems, fmt.Sprintf("stale: %s missing, confirmed at %d by a block this node already notified (%d)", e.TxHash, e.Height, tip))
		}
	}
	tr.mu.Unlock()
	if len(problems) > 0 {
		w.fail("get_history %.12s...: %s", sh, strings.Join(problems, "; "))
	}
	w.mu.Lock()
	w.hist[sh] = got
	w.mu.Unlock()
	return nil
}

// evaluate records the truth version the wallet matches, if it does.
func (w *fleetWallet) evaluate() {
	tr := w.f.truth
	tr.mu.Lock()
	defer tr.mu.Unlock()
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.c == nil || w.tip != tr.tip {
		return
	}
	for _, sh := range tr.scripts {
		want := tr.history(sh)
		got := make([]histEntry, len(w.hist[sh]))
		for i, e := range w.hist[sh] {
			got[i] = histEntry{TxHash: e.TxHash, Height: max(e.Height, 0)}
		}
		if fmt.Sprint(got) != fmt.Sprint(want) || w.status[sh] != statusOf(w.hist[sh]) {
			return
		}
	}
	w.synced = tr.version
	w.state = "in step"
}
