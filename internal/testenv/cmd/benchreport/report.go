package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// Results is what results.json holds.
type Results struct {
	Workload string  `json:"workload"`
	Date     string  `json:"date"`
	Note     string  `json:"note,omitempty"`
	Machine  Machine `json:"machine"`
	// Benchmarks are the benchmark lines as go test printed them.
	Benchmarks []Benchmark `json:"benchmarks"`
	// Figures are the table's rows: each figure with its baseline.
	Figures []Figure `json:"figures"`
	// Missing lists the metrics a partial run (-partial) lacked; their
	// figures are left out.
	Missing []string `json:"missing,omitempty"`
}

// Machine describes where the benchmarks ran.
type Machine struct {
	Cores     int     `json:"cores"`
	MemoryGiB float64 `json:"memory_gib"`
	CPU       string  `json:"cpu,omitempty"`
	OS        string  `json:"os,omitempty"`
	Arch      string  `json:"arch,omitempty"`
}

// Benchmark is one benchmark result line.
type Benchmark struct {
	Name       string             `json:"name"` // without the -GOMAXPROCS suffix
	Iterations int                `json:"iterations"`
	Metrics    map[string]float64 `json:"metrics"` // unit -> value, ns/op included
}

// Figure is one row of the table.
type Figure struct {
	Group    string `json:"group"`
	Name     string `json:"name"`
	Value    string `json:"value"`
	Baseline string `json:"baseline"`
	// Ratio is the figure over its baseline, as RatioOf says.
	Ratio   float64 `json:"ratio"`
	RatioOf string  `json:"ratio_of"`
}

var benchLine = regexp.MustCompile(`^(Benchmark\S+?)(?:-\d+)?\s+(\d+)\s+(.*)$`)

// parse reads go test -bench output.
func parse(out string) (*Results, error) {
	r := &Results{}
	for line := range strings.Lines(out) {
		line = strings.TrimRight(line, "\r\n")
		for prefix, dst := range map[string]*string{"cpu: ": &r.Machine.CPU, "goos: ": &r.Machine.OS, "goarch: ": &r.Machine.Arch} {
			if v, ok := strings.CutPrefix(line, prefix); ok {
				// Some CPUs name themselves with trailing blanks.
				*dst = strings.TrimSpace(v)
			}
		}
		m := benchLine.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		iters, _ := strconv.Atoi(m[2])
		b := Benchmark{Name: m[1], Iterations: iters, Metrics: map[string]float64{}}
		fields := strings.Fields(m[3])
		if len(fields)%2 != 0 {
			return nil, fmt.Errorf("benchmark line with an odd number of fields: %q", line)
		}
		for i := 0; i < len(fields); i += 2 {
			v, err := strconv.ParseFloat(fields[i], 64)
			if err != nil {
				return nil, fmt.Errorf("benchmark %s: value %q: %v", b.Name, fields[i], err)
			}
			b.Metrics[fields[i+1]] = v
		}
		r.Benchmarks = append(r.Benchmarks, b)
	}
	if len(r.Benchmarks) == 0 {
		return nil, errors.New("no benchmark results (did the benchmarks fail?)")
	}
	return r, nil
}

// The benchmarks the table reads.
const (
	syncBench  = "BenchmarkBuilder/Sync"
	coreBench  = "BenchmarkBuilderCore/Sync"
	bootBench  = "BenchmarkBuilder/Bootstrap"
	serveBench = "BenchmarkBuilder/Serve"
	pubBench   = "BenchmarkBuilder/Publish"
	walletBnch = "BenchmarkServer/WalletLoad"
	busyBench  = "BenchmarkServer/BusyScript"
	// scalingBench is the scaling workload's only benchmark.
	scalingBench = "BenchmarkScaling"
)

// sizePrefixes are the size rows per key prefix, each summing the
// per-transaction SST metrics BenchmarkBuilder/Sync reports for its
// prefixes ("sst-<unit>-bytes/tx").
var sizePrefixes = []struct {
	name  string
	units []string
}{
	{"headers", []string{"headers"}},
	{"txids", []string{"txids"}},
	{"tx lookup", []string{"tx-lookup"}},
	{"history", []string{"history"}},
	{"UTXO", []string{"utxo"}},
	{"outpoint lookup", []string{"outpoint-lookup"}},
	{"spend index", []string{"spend-index"}},
	{"undo", []string{"undo"}},
	{"tx counts and metadata", []string{"tx-counts", "metadata"}},
}

// figures fills r.Figures from the benchmarks, or names every metric
// that is missing; with partial, it leaves their figures out instead and
// lists the metrics in r.Missing.
func (r *Results) figures(partial bool) error {
	r.Figures = nil
	for _, b := range r.Benchmarks {
		if b.Name == scalingBench {
			return r.scalingFigures()
		}
	}
	var missing []string
	m := func(bench, unit string) float64 {
		for _, b := range r.Benchmarks {
			if b.Name == bench {
				if v, ok := b.Metrics[unit]; ok {
					return v
				}
			}
		}
		if !slices.Contains(missing, bench+" "+unit) {
			missing = append(missing, bench+" "+unit)
		}
		return math.NaN()
	}
	add := func(group, name, value, baseline string, ratio float64, ratioOf string) {
		if strings.Contains(name+value+baseline, "?") || math.IsNaN(ratio) {
			return // a metric is missing
		}
		r.Figures = append(r.Figures, Figure{group, name, value, baseline, ratio, ratioOf})
	}
	s, bt := syncBench, bootBench
	add("sync", "sync from btcd (JSON-RPC)",
		fmt.Sprintf("%s blocks/s, %s tx/s", num(m(s, "btcd-blocks/s")), num(m(s, "btcd-tx/s"))),
		fmt.Sprintf("parse only: %s blocks/s, %s tx/s", num(m(s, "parse-blocks/s")), num(m(s, "parse-tx/s"))),
		m(s, "btcd/parse"), "sync rate / parse rate")
	// Bitcoin Core rows only where Core ran (machines without it skip).
	if slices.ContainsFunc(r.Benchmarks, func(b Benchmark) bool { return b.Name == coreBench }) {
		cb := coreBench
		add("sync", "sync from Bitcoin Core (REST)",
			fmt.Sprintf("%s blocks/s, %s tx/s", num(m(cb, "core-rest-blocks/s")), num(m(cb, "core-rest-tx/s"))),
			fmt.Sprintf("over JSON-RPC: %s blocks/s, %s tx/s", num(m(cb, "core-rpc-blocks/s")), num(m(cb, "core-rpc-tx/s"))),
			m(cb, "rest/rpc"), "REST rate / JSON-RPC rate")
		add("sync", "sync from Bitcoin Core's block files (same host)",
			fmt.Sprintf("%s blocks/s, %s tx/s", num(m(cb, "core-files-blocks/s")), num(m(cb, "core-files-tx/s"))),
			fmt.Sprintf("over REST: %s tx/s", num(m(cb, "core-rest-tx/s"))),
			m(cb, "files/rest"), "block-file rate / REST rate")
	}
	add("sync", "sync from a local block source",
		fmt.Sprintf("%s blocks/s, %s tx/s", num(m(s, "local-blocks/s")), num(m(s, "local-tx/s"))),
		fmt.Sprintf("parse only: %s blocks/s", num(m(s, "parse-blocks/s"))),
		m(s, "local/parse"), "index rate / parse rate")
	add("bootstrap", "server bootstrap, empty disk to ready, from a MinIO snapshot",
		fmt.Sprintf("%s s", num(m(bt, "bootstrap-s"))),
		fmt.Sprintf("full sync from btcd: %s s", num(m(bt, "fullsync-s"))),
		m(bt, "bootstrap/fullsync"), "bootstrap time / full sync time")
	add("bootstrap", "snapshot download (verified; made durable while the node starts, as amber serve does)",
		fmt.Sprintf("%s MiB/s", num(m(bt, "restore-MiB/s"))),
		fmt.Sprintf("plain parallel minio-go copy: %s MiB/s", num(m(bt, "copy-MiB/s"))),
		m(bt, "restore/copy"), "download rate / copy rate")
	sv, pb := serveBench, pubBench
	add("bootstrap", fmt.Sprintf("amber serve, empty DB_DIRECTORY to /readyz green: MinIO snapshot %s blocks behind btcd's tip (download, verify, open, catch up, mempool, listeners)", num(m(sv, "catchup-blocks"))),
		fmt.Sprintf("%s s", num(m(sv, "serve-snapshot-s"))),
		fmt.Sprintf("amber serve syncing the same chain from btcd: %s s", num(m(sv, "serve-fullsync-s"))),
		m(sv, "serve-snapshot/fullsync"), "snapshot bootstrap time / full sync time")
	add("size", "snapshot size against the same DB fully compacted",
		fmt.Sprintf("%s MiB", num(m(sv, "snapshot-MiB"))),
		fmt.Sprintf("fully compacted: %s MiB", num(m(sv, "compacted-MiB"))),
		m(sv, "snapshot/compacted"), "snapshot / compacted")
	add("size", fmt.Sprintf("bytes uploaded by each publish after 1%% more blocks, from half the chain to all of it (%s publishes, %s uploading the whole index)", num(m(pb, "publishes")), num(m(pb, "whole-uploads"))),
		fmt.Sprintf("mean %s, last ten %s of the snapshot", pct(m(pb, "upload/snapshot-mean")), pct(m(pb, "upload/snapshot-last10"))),
		fmt.Sprintf("largest: %s; largest snapshot/compacted %s", pct(m(pb, "upload/snapshot-max")), num(m(pb, "max-snapshot/compacted"))),
		m(pb, "upload/snapshot-mean"), "mean upload / snapshot")
	sst := m(s, "sst-bytes/tx")
	add("size", "index size per transaction: SST after a flush and a full compaction",
		fmt.Sprintf("%s bytes (%s MiB)", num(sst), num(m(s, "sst-MiB"))),
		fmt.Sprintf("raw chain: %s bytes", num(m(s, "raw-bytes/tx"))),
		m(s, "sst/raw"), "index / raw chain")
	for _, p := range sizePrefixes {
		v := 0.0
		for _, unit := range p.units {
			v += m(s, "sst-"+unit+"-bytes/tx")
		}
		add("size", "of which "+p.name+" (estimated from data blocks)",
			fmt.Sprintf("%s bytes", num(v)),
			fmt.Sprintf("all SST: %s bytes", num(sst)),
			v/sst, "share of the SST")
	}
	add("size", "snapshot size",
		fmt.Sprintf("%s MiB in %s files", num(m(bt, "snapshot-MiB")), num(m(bt, "snapshot-files"))),
		fmt.Sprintf("builder's DB directory: %s MiB", num(m(bt, "db-MiB"))),
		m(bt, "snapshot-MiB")/m(bt, "db-MiB"), "snapshot / DB")

	w := walletBnch
	n := num(m(w, "wallets"))
	for _, tr := range []struct{ key, name string }{{"tcp", "TCP"}, {"ws", "WebSocket"}} {
		k := func(unit string) float64 { return m(w, tr.key+"-"+unit) }
		g := "wallets " + tr.name
		add(g, fmt.Sprintf("%s: %s wallets syncing at once", tr.name, n),
			fmt.Sprintf("%s req/s", num(k("req/s"))),
			fmt.Sprintf("server.ping from the same sessions: %s req/s", num(k("ping-req/s"))),
			k("req/s")/k("ping-req/s"), "wallet req/s / ping req/s")
		add(g, tr.name+": request latency p50 / p99",
			fmt.Sprintf("%s / %s ms", num(k("p50-ms")), num(k("p99-ms"))),
			fmt.Sprintf("the same requests from one wallet alone: %s / %s ms", num(k("alone-p50-ms")), num(k("alone-p99-ms"))),
			k("p50-ms")/k("alone-p50-ms"), "p50 / alone p50")
		add(g, tr.name+": headers notification after a block, p50 / p99",
			fmt.Sprintf("%s / %s ms", num(k("block-notify-p50-ms")), num(k("block-notify-p99-ms"))),
			fmt.Sprintf("one wallet alone: %s ms", num(k("block-notify-1-ms"))),
			k("block-notify-p50-ms")/k("block-notify-1-ms"), "p50 / one wallet")
		add(g, tr.name+": script notification after a broadcast, p50 / p99",
			fmt.Sprintf("%s / %s ms", num(k("mempool-notify-p50-ms")), num(k("mempool-notify-p99-ms"))),
			fmt.Sprintf("one wallet alone: %s ms", num(k("mempool-notify-1-ms"))),
			k("mempool-notify-p50-ms")/k("mempool-notify-1-ms"), "p50 / one wallet")
		add(g, fmt.Sprintf("%s: server RSS with %s sessions", tr.name, n),
			fmt.Sprintf("%s MiB, %s KiB per session with the caches the load filled", num(k("rss-MiB")), num(k("rss-KiB/session"))),
			fmt.Sprintf("no sessions: %s MiB", num(k("rss-idle-MiB"))),
			k("rss-MiB")/k("rss-idle-MiB"), "RSS / idle RSS")
		add(g, fmt.Sprintf("%s: server Go heap after a forced GC, %s sessions", tr.name, n),
			fmt.Sprintf("%s MiB, %s KiB per session", num(k("heap-MiB")), num(k("heap-KiB/session"))),
			fmt.Sprintf("the same server once they closed, its caches still warm: %s MiB (before any session: %s MiB)",
				num(k("heap-closed-MiB")), num(k("heap-idle-MiB"))),
			k("heap-MiB")/k("heap-closed-MiB"), "heap / heap after close")
	}
	bs := busyBench
	add("busy script", fmt.Sprintf("get_history of a %s-entry script (%s MiB reply), cold / warm p50", num(m(bs, "entries")), num(m(bs, "reply-MiB"))),
		fmt.Sprintf("%s / %s ms", num(m(bs, "cold-ms")), num(m(bs, "warm-p50-ms"))),
		fmt.Sprintf("one-entry script: %s ms", num(m(bs, "single-p50-ms"))),
		m(bs, "warm-p50-ms")/m(bs, "single-p50-ms"), "warm p50 / one-entry p50")
	if len(missing) > 0 && !partial {
		return fmt.Errorf("missing from the benchmark output: %s", strings.Join(missing, ", "))
	}
	r.Missing = missing
	return nil
}

// num formats a figure: thousands separated from 1,000 up, three
// significant digits below.
func num(v float64) string {
	switch {
	case math.IsNaN(v) || math.IsInf(v, 0):
		return "?"
	case math.Abs(v) >= 1000:
		s := strconv.FormatInt(int64(math.Round(v)), 10)
		var b strings.Builder
		for i, c := range s {
			if i > 0 && (len(s)-i)%3 == 0 && s[i-1] != '-' {
				b.WriteByte(',')
			}
			b.WriteRune(c)
		}
		return b.String()
	case v == 0:
		return "0"
	default:
		return strconv.FormatFloat(v, 'g', 3, 64)
	}
}

// heading is the line above the table.
func (r *Results) heading() string {
	h := fmt.Sprintf("`make bench WORKLOAD=%s`, %s, %d cores, %.0f GiB", r.Workload, r.Date, r.Machine.Cores, r.Machine.MemoryGiB)
	if r.Machine.CPU != "" {
		h += ", " + r.Machine.CPU
	}
	if r.Note != "" {
		h += ". " + r.Note
	}
	return h + "."
}

// missingNote says which measurements a partial run lacks.
func (r *Results) missingNote() string {
	if len(r.Missing) == 0 {
		return ""
	}
	ran := map[string]bool{}
	for _, b := range r.Benchmarks {
		ran[b.Name] = true
	}
	var parts []string
	for _, m := range r.Missing {
		bench, _, _ := strings.Cut(m, " ")
		switch {
		case !ran[bench] && !slices.Contains(parts, bench+" (did not run)"):
			parts = append(parts, bench+" (did not run)")
		case ran[bench]:
			parts = append(parts, m)
		}
	}
	return "\nMissing from this run (it stopped early, or predates these measurements), with the rows that need them: " +
		strings.Join(parts, ", ") + ".\n"
}

// table renders the figures as a Markdown table.
func (r *Results) table() string {
	var b strings.Builder
	b.WriteString("| figure | value | baseline, same run | ratio |\n|---|---|---|---|\n")
	for _, f := range r.Figures {
		fmt.Fprintf(&b, "| %s | %s | %s | %s (%s) |\n", f.Name, f.Value, f.Baseline, num(f.Ratio), f.RatioOf)
	}
	return b.String()
}

const (
	beginMarker = "<!-- bench:begin -->"
	endMarker   = "<!-- bench:end -->"
)

// write writes results.json, results.md and results.svg into dir, and the
// table into readme between its markers when readme is set.
func (r *Results) write(dir, readme string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	js, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	md := "# Benchmark results\n\n" + r.heading() + "\n\n" + r.table() + r.missingNote() + r.loadTable() +
		"\n![ratio of each figure to its baseline](results.svg)\n\n" +
		"Every figure is measured next to its baseline in the same run; compare ratios between runs, not raw rates.\n"
	files := map[string][]byte{
		"results.json": append(js, '\n'),
		"results.md":   []byte(md),
		"results.svg":  r.chart(),
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			return err
		}
	}
	if readme == "" {
		return nil
	}
	old, err := os.ReadFile(readme)
	if err != nil {
		return err
	}
	updated, err := replaceBetween(old, r.heading()+"\n\n"+r.table()+r.missingNote()+r.loadTable())
	if err != nil {
		return fmt.Errorf("%s: %w", readme, err)
	}
	return os.WriteFile(readme, updated, 0o644)
}

// replaceBetween puts text between the bench markers of doc.
func replaceBetween(doc []byte, text string) ([]byte, error) {
	i := bytes.Index(doc, []byte(beginMarker))
	j := bytes.Index(doc, []byte(endMarker))
	if i < 0 || j < i {
		return nil, fmt.Errorf("no %s ... %s markers", beginMarker, endMarker)
	}
	var b bytes.Buffer
	b.Write(doc[:i+len(beginMarker)])
	b.WriteString("\n" + text)
	b.Write(doc[j:])
	return b.Bytes(), nil
}

// pct formats a share as a percentage.
func pct(v float64) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return "?"
	}
	return num(100*v) + "%"
}

// scalingFigures fills r.Figures from BenchmarkScaling, the scaling
// workload: for each checkpoint (its metrics are "<label>-tx/s" and so on,
// label "1M", "5M", ...), the rate of the segment that ends there, the
// index size there, the segment's peak RSS and write amplification, each
// against the first segment's.
func (r *Results) scalingFigures() error {
	var bm Benchmark
	for _, b := range r.Benchmarks {
		if b.Name == scalingBench {
			bm = b
		}
	}
	type point struct {
		label string
		txs   float64
	}
	var points []point
	for unit := range bm.Metrics {
		label, ok := strings.CutSuffix(unit, "-tx/s")
		if !ok {
			continue
		}
		n, err := labelTxs(label)
		if err != nil {
			return fmt.Errorf("%s: metric %s: %w", scalingBench, unit, err)
		}
		points = append(points, point{label, n})
	}
	if len(points) == 0 {
		return fmt.Errorf("%s reported no segment rate (<label>-tx/s)", scalingBench)
	}
	slices.SortFunc(points, func(a, b point) int { return int(math.Copysign(1, a.txs-b.txs)) })
	var missing []string
	m := func(label, unit string) float64 {
		if v, ok := bm.Metrics[label+"-"+unit]; ok {
			return v
		}
		missing = append(missing, scalingBench+" "+label+"-"+unit)
		return math.NaN()
	}
	first := points[0].label
	for _, p := range points {
		l := p.label
		// Runs before the CPU time was measured lack its row.
		if _, ok := bm.Metrics[l+"-tx/cpu-s"]; ok {
			r.Figures = append(r.Figures, Figure{"scaling", fmt.Sprintf("index rate per CPU second, segment ending at %s transactions", l),
				fmt.Sprintf("%s tx per CPU-s", num(m(l, "tx/cpu-s"))),
				fmt.Sprintf("first segment: %s tx per CPU-s", num(m(first, "tx/cpu-s"))),
				m(l, "tx/cpu-s") / m(first, "tx/cpu-s"), "rate / first segment's rate"})
		}
		r.Figures = append(r.Figures,
			Figure{"scaling", fmt.Sprintf("index rate, segment ending at %s transactions", l),
				fmt.Sprintf("%s tx/s", num(m(l, "tx/s"))),
				fmt.Sprintf("first segment (to %s): %s tx/s", first, num(m(first, "tx/s"))),
				m(l, "tx/s") / m(first, "tx/s"), "rate / first segment's rate"},
			Figure{"scaling", fmt.Sprintf("index size at %s transactions: SST after a flush and a full compaction", l),
				fmt.Sprintf("%s bytes/tx (%s MiB)", num(m(l, "sst-bytes/tx")), num(m(l, "sst-MiB"))),
				fmt.Sprintf("at %s: %s bytes/tx", first, num(m(first, "sst-bytes/tx"))),
				m(l, "sst-bytes/tx") / m(first, "sst-bytes/tx"), "bytes per tx / first checkpoint's"},
			Figure{"scaling", fmt.Sprintf("peak RSS of the indexing process, segment ending at %s", l),
				fmt.Sprintf("%s MiB", num(m(l, "peak-RSS-MiB"))),
				fmt.Sprintf("first segment: %s MiB", num(m(first, "peak-RSS-MiB"))),
				m(l, "peak-RSS-MiB") / m(first, "peak-RSS-MiB"), "RSS / first segment's"},
			Figure{"scaling", fmt.Sprintf("Pebble write amplification, segment ending at %s", l),
				num(m(l, "write-amp")),
				fmt.Sprintf("first segment: %s", num(m(first, "write-amp"))),
				m(l, "write-amp") / m(first, "write-amp"), "write amplification / first segment's"},
		)
	}
	if len(missing) > 0 {
		return fmt.Errorf("missing from the benchmark output: %s", strings.Join(missing, ", "))
	}
	return nil
}

// labelTxs reads a checkpoint label: "20M", "1.5M", "250k" or a count.
func labelTxs(label string) (float64, error) {
	mult := 1.0
	switch {
	case strings.HasSuffix(label, "M"):
		mult, label = 1e6, strings.TrimSuffix(label, "M")
	case strings.HasSuffix(label, "k"):
		mult, label = 1e3, strings.TrimSuffix(label, "k")
	}
	v, err := strconv.ParseFloat(label, 64)
	if err != nil {
		return 0, fmt.Errorf("checkpoint label %q: %w", label, err)
	}
	return v * mult, nil
}
