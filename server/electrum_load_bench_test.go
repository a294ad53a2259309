package server_test

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/btcsuite/btcd/txscript/v2"

	"amber/internal/chain"
	"amber/internal/testenv"
	"amber/internal/testenv/chaingen"
)

// The Electrum-like wallet load: each simulated wallet behaves as the
// Electrum client does on connecting, pipelining its requests in bursts
// instead of waiting for each reply: the headers subscription and the
// header download in 2,016-header chunks, then every script's
// subscription at once, then the histories of the scripts that have one,
// then every transaction and its merkle proof. Wallets speak protocol
// 1.4, 1.6 and 1.7 in turn (1.7 through the scriptpubkey methods, and an
// outpoint subscription per received transaction), and one in
// electrumBusyEvery watches a busy script too. The load runs flat out (all
// wallets arrive at once) and then at fixed offered rates, fractions of
// the flat-out throughput, with wallets arriving at a steady pace
// whatever the server's answers (an open loop), and reports latency
// percentiles per method at each rate.

// electrumRates are the offered rates, as fractions of the flat-out
// request rate measured first.
var electrumRates = []float64{0.25, 0.5}

// electrumBusyEvery: one wallet in this many also watches a busy script.
const electrumBusyEvery = 25

// electrumPlan is what one simulated Electrum wallet watches.
type electrumPlan struct {
	proto   string
	scripts []string // script hashes
	spks    []string // the scripts themselves, hex (for 1.7)
}

// electrumSample is one request's latency.
type electrumSample struct {
	method string
	took   time.Duration
}

// electrumWallet runs one wallet's sync and keeps its samples.
type electrumWallet struct {
	c       *benchConn
	plan    electrumPlan
	tip     int
	samples []electrumSample
	tooLong int // 10001 replies (busy scripts)
}

// pending is a request sent and not yet answered.
type pending struct {
	method string
	sent   time.Time
	ch     chan benchReply
}

// send sends a request without waiting for its reply.
func (c *benchConn) sendAsync(method string, params ...any) (*pending, error) {
	if params == nil {
		params = []any{}
	}
	p := &pending{method: method, ch: make(chan benchReply, 1)}
	c.mu.Lock()
	c.nextID++
	id := c.nextID
	c.waiting[id] = p.ch
	c.mu.Unlock()
	req, err := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": id, "method": method, "params": params})
	if err != nil {
		return nil, err
	}
	p.sent = time.Now()
	if err := c.send(req); err != nil {
		return nil, fmt.Errorf("%s: send: %w", method, err)
	}
	return p, nil
}

// burst sends every request at once, then collects the replies in order;
// a 10001 reply is counted, not failed.
func (w *electrumWallet) burst(reqs [][]any) ([]json.RawMessage, error) {
	ps := make([]*pending, len(reqs))
	for i, r := range reqs {
		p, err := w.c.sendAsync(r[0].(string), r[1:]...)
		if err != nil {
			return nil, err
		}
		ps[i] = p
	}
	out := make([]json.RawMessage, len(reqs))
	timer := time.NewTimer(2 * time.Minute)
	defer timer.Stop()
	for i, p := range ps {
		select {
		case r := <-p.ch:
			// Timed to the reply's arrival, not to its collection here
			// behind the replies before it.
			w.samples = append(w.samples, electrumSample{p.method, r.at.Sub(p.sent)})
			if r.err != nil {
				var e struct{ Code int }
				if json.Unmarshal(r.err, &e) == nil && e.Code == 10001 {
					w.tooLong++
					continue
				}
				return nil, fmt.Errorf("%s: error %s", p.method, r.err)
			}
			out[i] = r.result
		case <-w.c.done:
			return nil, fmt.Errorf("%s: connection closed: %v", p.method, w.c.readErr)
		case <-timer.C:
			return nil, fmt.Errorf("%s: no reply in 2 minutes", p.method)
		}
	}
	return out, nil
}

// sync is Electrum's start-up, in bursts.
func (w *electrumWallet) sync() error {
	v17 := w.plan.proto == "1.7"
	if _, err := w.burst([][]any{{"server.version", "electrum-bench", w.plan.proto}}); err != nil {
		return err
	}
	// Headers: the subscription, then the chain in 2,016-header chunks.
	reqs := [][]any{{"blockchain.headers.subscribe"}}
	for start := 0; start <= w.tip; start += 2016 {
		reqs = append(reqs, []any{"blockchain.block.headers", start, 2016})
	}
	if _, err := w.burst(reqs); err != nil {
		return err
	}
	// Every script's subscription at once.
	reqs = reqs[:0]
	for i, sh := range w.plan.scripts {
		if v17 {
			reqs = append(reqs, []any{"blockchain.scriptpubkey.subscribe", w.plan.spks[i]})
		} else {
			reqs = append(reqs, []any{"blockchain.scripthash.subscribe", sh})
		}
	}
	statuses, err := w.burst(reqs)
	if err != nil {
		return err
	}
	// Histories of the scripts with a status.
	reqs = reqs[:0]
	var of []int // the script of each history asked
	for i, st := range statuses {
		if st == nil || string(st) == "null" {
			continue
		}
		of = append(of, i)
		if v17 {
			reqs = append(reqs, []any{"blockchain.scriptpubkey.get_history", w.plan.spks[i]})
		} else {
			reqs = append(reqs, []any{"blockchain.scripthash.get_history", w.plan.scripts[i]})
		}
	}
	hists, err := w.burst(reqs)
	if err != nil {
		return err
	}
	// Transactions and their merkle proofs, and for 1.7 an outpoint
	// subscription per transaction.
	reqs = reqs[:0]
	seen := map[string]bool{}
	for k, raw := range hists {
		i := of[k]
		if raw == nil {
			continue // history too large
		}
		var hist []struct {
			TxHash string `json:"tx_hash"`
			Height int    `json:"height"`
		}
		if v17 {
			var wrapped struct {
				History json.RawMessage `json:"history"`
			}
			if err := json.Unmarshal(raw, &wrapped); err != nil {
				return fmt.Errorf("get_history: %w", err)
			}
			raw = wrapped.History
		}
		if err := json.Unmarshal(raw, &hist); err != nil || len(hist) == 0 {
			return fmt.Errorf("get_history of script %d: %d entries (%v)", i, len(hist), err)
		}
		for _, e := range hist[:min(len(hist), walletTxsPerScript)] {
			if seen[e.TxHash] {
				continue
			}
			seen[e.TxHash] = true
			reqs = append(reqs, []any{"blockchain.transaction.get", e.TxHash})
			if e.Height > 0 {
				reqs = append(reqs, []any{"blockchain.transaction.get_merkle", e.TxHash, e.Height})
			}
			if v17 {
				reqs = append(reqs, []any{"blockchain.outpoint.subscribe", e.TxHash, 0, w.plan.spks[i]})
			}
		}
	}
	_, err = w.burst(reqs)
	return err
}

// electrumPlans gives n wallets their protocol and scripts: the wallet
// load's watch lists, with a busy script added to one wallet in
// electrumBusyEvery, and the scripts as hex for 1.7 (a random P2WPKH one
// for never-used scripts).
func electrumPlans(b *testing.B, c *chaingen.Chain, n int) []electrumPlan {
	watch, pkOf := loadScripts(b, c, n)
	stats, err := c.Scripts()
	if err != nil {
		b.Fatal(err)
	}
	var busy [][]byte
	for _, s := range stats {
		if s.History > 100 && s.Class != txscript.NullDataTy {
			busy = append(busy, s.PkScript)
		}
	}
	rng := rand.New(rand.NewPCG(uint64(n), 13))
	plans := make([]electrumPlan, n)
	for i := range plans {
		p := electrumPlan{proto: []string{"1.4", "1.6", "1.7"}[i%3]}
		for _, sh := range watch[i] {
			pk := pkOf[sh]
			if pk == nil {
				pk = append([]byte{0x00, 0x14}, make([]byte, 20)...)
				for k := 2; k < len(pk); k++ {
					pk[k] = byte(rng.Uint32())
				}
				if p.proto != "1.7" {
					p.scripts = append(p.scripts, sh)
					p.spks = append(p.spks, hex.EncodeToString(pk))
					continue
				}
			}
			p.scripts = append(p.scripts, chain.ScriptHashOf(pk).Hex())
			p.spks = append(p.spks, hex.EncodeToString(pk))
		}
		if i%electrumBusyEvery == electrumBusyEvery-1 && len(busy) > 0 {
			pk := busy[rng.IntN(len(busy))]
			p.scripts = append(p.scripts, chain.ScriptHashOf(pk).Hex())
			p.spks = append(p.spks, hex.EncodeToString(pk))
		}
		plans[i] = p
	}
	return plans
}

// electrumRun is one run's measurements.
type electrumRun struct {
	offered  float64 // requests/s offered; 0 for flat out
	achieved float64 // requests/s answered over the run
	reqs     int
	tooLong  int
	byMethod map[string][]time.Duration
	cpu      time.Duration // the server's CPU time over the run
	writes   int64         // and its write syscalls
}

// runElectrum starts a fresh server and runs the wallets of plans over
// transport, all at once when every is 0, else one wallet every `every`.
func runElectrum(b *testing.B, bin string, node testenv.Node, tip int, transport string, plans []electrumPlan, every time.Duration) electrumRun {
	b.Helper()
	srv := startAmber(b, bin, node)
	defer srv.stop()
	addr := map[string]string{"tcp": srv.tcp, "ws": srv.ws}[transport]
	wallets := make([]*electrumWallet, len(plans))
	errs := make([]error, len(plans))
	var wg sync.WaitGroup
	if profileDir() != "" && every == 0 {
		defer srv.profile(b, transport+"-electrum.cpu", 5)()
	}
	before := srv.usage(b)
	start := time.Now()
	for i := range plans {
		if every > 0 {
			time.Sleep(time.Until(start.Add(time.Duration(i) * every)))
		}
		wg.Go(func() {
			c, err := dialBench(transport, addr)
			if err != nil {
				errs[i] = err
				return
			}
			wallets[i] = &electrumWallet{c: c, plan: plans[i], tip: tip}
			errs[i] = wallets[i].sync()
		})
	}
	wg.Wait()
	took := time.Since(start)
	after := srv.usage(b)
	run := electrumRun{byMethod: map[string][]time.Duration{}, cpu: after.cpu - before.cpu, writes: after.writes - before.writes}
	failed := 0
	for i, w := range wallets {
		if errs[i] != nil {
			if failed < 3 {
				b.Errorf("%s wallet %d (%s): %v", transport, i, plans[i].proto, errs[i])
			}
			failed++
		}
		if w == nil {
			continue
		}
		for _, s := range w.samples {
			run.byMethod[s.method] = append(run.byMethod[s.method], s.took)
		}
		run.reqs += len(w.samples)
		run.tooLong += w.tooLong
		w.c.close()
	}
	if failed > 0 {
		b.Fatalf("%d of %d %s wallets failed", failed, len(plans), transport)
	}
	run.achieved = float64(run.reqs) / took.Seconds()
	return run
}

// benchElectrumLoad runs the Electrum-like load over TCP and WebSocket:
// flat out, then at each of electrumRates of the flat-out rate. Metrics
// are named transport-rate-method-p50-ms (and p99), rate being "flat" or
// the percentage of flat out ("r50"), with the offered and achieved
// requests/s of each run.
func benchElectrumLoad(b *testing.B, c *chaingen.Chain, node testenv.Node, bin string) {
	n := benchWallets(b)
	raiseFDLimit(b, uint64(2*n+512))
	plans := electrumPlans(b, c, n)
	tip := c.Height() - 1
	results := map[string]electrumRun{}
	var labels []string
	for b.Loop() {
		for _, tr := range []string{"tcp", "ws"} {
			flat := runElectrum(b, bin, node, tip, tr, plans, 0)
			results[tr+"-flat"] = flat
			labels = append(labels, tr+"-flat")
			perWallet := float64(flat.reqs) / float64(n)
			for _, f := range electrumRates {
				if os.Getenv("AMBER_BENCH_FLAT_ONLY") != "" {
					break
				}
				offered := f * flat.achieved
				every := time.Duration(float64(time.Second) * perWallet / offered)
				run := runElectrum(b, bin, node, tip, tr, plans, every)
				run.offered = offered
				label := fmt.Sprintf("%s-r%d", tr, int(f*100))
				results[label] = run
				labels = append(labels, label)
			}
		}
	}
	b.ReportMetric(float64(n), "wallets")
	for _, label := range labels {
		r := results[label]
		offered := r.offered
		if offered == 0 {
			offered = r.achieved
		}
		b.ReportMetric(offered, label+"-offered-req/s")
		b.ReportMetric(r.achieved, label+"-req/s")
		b.ReportMetric(float64(r.tooLong), label+"-10001")
		if r.reqs > 0 {
			b.ReportMetric(float64(r.cpu.Microseconds())/float64(r.reqs), label+"-server-cpu-us/req")
			b.ReportMetric(float64(r.writes)/float64(r.reqs), label+"-server-writes/req")
		}
		methods := make([]string, 0, len(r.byMethod))
		for m := range r.byMethod {
			methods = append(methods, m)
		}
		slices.Sort(methods)
		for _, m := range methods {
			short := strings.TrimPrefix(m, "blockchain.")
			b.ReportMetric(quantile(r.byMethod[m], 0.5), label+"-"+short+"-p50-ms")
			b.ReportMetric(quantile(r.byMethod[m], 0.99), label+"-"+short+"-p99-ms")
		}
	}
}
