package reliability

import (
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// amberBin is the amber binary every test runs, built once by TestMain.
var amberBin string

// soak is the long run's configuration; zero for the short run.
var soak struct {
	on       bool
	duration time.Duration // SOAK_DURATION
	start    time.Time
	summary  string // where the summary goes (SOAK_SUMMARY, default SOAK.md)
}

// maxSoak bounds SOAK_DURATION: a soak is a bounded run, never a daemon.
const maxSoak = 6 * time.Hour

func TestMain(m *testing.M) {
	if d := os.Getenv("SOAK_DURATION"); d != "" {
		dur, err := time.ParseDuration(d)
		if err != nil || dur <= 0 || dur > maxSoak {
			fmt.Fprintf(os.Stderr, "SOAK_DURATION=%q: want a duration such as 20m, at most %v\n", d, maxSoak)
			os.Exit(2)
		}
		soak.on, soak.duration, soak.start = true, dur, time.Now()
		soak.summary = os.Getenv("SOAK_SUMMARY")
		if soak.summary == "" {
			soak.summary = "SOAK.md"
		}
	}
	dir, err := os.MkdirTemp("", "amber-reliability")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	amberBin = filepath.Join(dir, "amber")
	if out, err := exec.Command("go", "build", "-o", amberBin, "amber/cmd/amber").CombinedOutput(); err != nil {
		os.Stderr.Write(out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	if soak.on {
		if err := os.WriteFile(soak.summary, []byte(tally.markdown(code == 0)), 0o644); err != nil {
			fmt.Fprintln(os.Stderr, err)
			code = 1
		}
	}
	os.Exit(code)
}

// Shares of SOAK_DURATION: crash and fault rounds repeat until theirs is
// used; the fuzz targets split the rest.
const (
	crashShare = 0.3
	faultShare = 0.15
	fleetShare = 0.15
	fuzzShare  = 0.4
)

// rounds reports whether a test should start round i (from 0): once in
// the short run; in the soak, while its share of SOAK_DURATION lasts.
func rounds(i int, began time.Time, share float64) bool {
	if !soak.on {
		return i == 0
	}
	return i == 0 || time.Since(began) < time.Duration(float64(soak.duration)*share)
}

// tally collects what the suite did, for the soak summary.
var tally = &counts{kills: map[string]int{}, faults: map[string]int{}}

type fuzzRun struct {
	pkg, target string
	execs       int64
	took        time.Duration
	ok          bool
}

type counts struct {
	mu         sync.Mutex
	kills      map[string]int // kill points survived, by moment
	faults     map[string]int // faults injected, by kind
	fuzz       []fuzzRun
	fleet      []fleetRun
	queries    int // Electrum requests whose answers were compared
	hostile    int // hostile messages sent to a server
	digests    int // index digests compared
	mismatches int // answers or digests that differed: must stay 0
}

func (c *counts) kill(moment string)       { c.add(c.kills, moment, 1) }
func (c *counts) fault(kind string, n int) { c.add(c.faults, kind, n) }
func (c *counts) add(m map[string]int, k string, n int) {
	c.mu.Lock()
	m[k] += n
	c.mu.Unlock()
}

func (c *counts) compared(queries, digests, mismatches int) {
	c.mu.Lock()
	c.queries += queries
	c.digests += digests
	c.mismatches += mismatches
	c.mu.Unlock()
}

func (c *counts) hostileSent(n int) {
	c.mu.Lock()
	c.hostile += n
	c.mu.Unlock()
}

// fleetRun is what one TestFleet run measured.
type fleetRun struct {
	took       time.Duration
	cycles     int             // nodes that joined on an empty disk, and nodes that left
	rounds     int             // a mempool transaction and a block each
	readyTimes []time.Duration // new node: start on an empty disk to /readyz green
	caughtUp   []int           // blocks each new node synced after its snapshot
	reconnects int             // wallet sessions reopened through HAProxy
	probes     int             // short sessions opened through HAProxy
	errors     int             // wrong or stale answers, missed blocks, misrouted wallets: must be 0
}

func (c *counts) fleetRun(r fleetRun) {
	c.mu.Lock()
	c.fleet = append(c.fleet, r)
	c.mu.Unlock()
}

func (c *counts) fuzzed(r fuzzRun) {
	c.mu.Lock()
	c.fuzz = append(c.fuzz, r)
	c.mu.Unlock()
}

func sum(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

// markdown is the soak summary, the content of SOAK.md.
func (c *counts) markdown(passed bool) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var b strings.Builder
	result := "PASS"
	if !passed {
		result = "FAIL"
	}
	fmt.Fprintf(&b, "# Soak summary\n\n`make soak` of %s, SOAK_DURATION=%s, took %s on %d cores: **%s**.\n\n",
		soak.start.UTC().Format("2006-01-02 15:04 UTC"), soak.duration, time.Since(soak.start).Round(time.Second), runtime.NumCPU(), result)
	var execs int64
	for _, f := range c.fuzz {
		execs += f.execs
	}
	fmt.Fprintf(&b, "| What | Count |\n|---|---:|\n")
	fmt.Fprintf(&b, "| kill points survived (SIGKILL, then same digest and answers) | %d |\n", sum(c.kills))
	for _, k := range slices.Sorted(maps.Keys(c.kills)) {
		fmt.Fprintf(&b, "| &nbsp;&nbsp;%s | %d |\n", k, c.kills[k])
	}
	fmt.Fprintf(&b, "| faults injected | %d |\n", sum(c.faults))
	for _, k := range slices.Sorted(maps.Keys(c.faults)) {
		fmt.Fprintf(&b, "| &nbsp;&nbsp;%s | %d |\n", k, c.faults[k])
	}
	fmt.Fprintf(&b, "| fuzz execs (all targets) | %d |\n", execs)
	fmt.Fprintf(&b, "| hostile messages sent to a server (deep nesting, oversize, bad UTF-8, noise) | %d |\n", c.hostile)
	fmt.Fprintf(&b, "| inputs tried (fuzz execs + hostile messages + Electrum requests compared) | %d |\n", execs+int64(c.hostile+c.queries))
	fmt.Fprintf(&b, "| index digests compared | %d |\n", c.digests)
	fmt.Fprintf(&b, "| **data mismatches** (must be 0) | **%d** |\n", c.mismatches)
	for _, r := range c.fleet {
		fmt.Fprintf(&b, "| fleet behind HAProxy: join/leave cycles, rounds (a mempool tx and a block each), in %s | %d, %d |\n", r.took.Round(time.Second), r.cycles, r.rounds)
		fmt.Fprintf(&b, "| &nbsp;&nbsp;new node, empty disk to /readyz green | %s |\n", durations(r.readyTimes))
		fmt.Fprintf(&b, "| &nbsp;&nbsp;wallet reconnects, probe sessions | %d, %d |\n", r.reconnects, r.probes)
		fmt.Fprintf(&b, "| &nbsp;&nbsp;**fleet errors** (must be 0) | **%d** |\n", r.errors)
	}
	if len(c.fuzz) > 0 {
		fmt.Fprintf(&b, "\n| Fuzz target | Package | Time | Execs | Result |\n|---|---|---:|---:|---|\n")
		for _, f := range c.fuzz {
			res := "ok"
			if !f.ok {
				res = "FAILED"
			}
			fmt.Fprintf(&b, "| %s | %s | %s | %d | %s |\n", f.target, f.pkg, f.took.Round(time.Second), f.execs, res)
		}
	}
	return b.String()
}
