package main

import (
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// sampleUnits are the metrics each benchmark reports, with a value.
var sampleUnits = map[string]map[string]float64{
	syncBench: {"blocks": 2001, "txs": 22005, "btcd-blocks/s": 434.6, "btcd-tx/s": 4779, "btcd/parse": 0.05653,
		"sst-bytes/tx": 259.3, "sst/raw": 0.4895, "sst-MiB": 5.441, "sst-headers-bytes/tx": 7.92, "sst-txids-bytes/tx": 37.25,
		"sst-tx-lookup-bytes/tx": 15.05, "sst-history-bytes/tx": 58, "sst-utxo-bytes/tx": 8.565, "sst-outpoint-lookup-bytes/tx": 8.684,
		"sst-spend-index-bytes/tx": 27.87, "sst-undo-bytes/tx": 82.03, "sst-tx-counts-bytes/tx": 1.113, "sst-metadata-bytes/tx": 0.157,
		"sst-rest-bytes/tx": 12.64, "local-blocks/s": 370.7, "local-tx/s": 4076, "local/parse": 0.04822,
		"parse-blocks/s": 7688, "parse-tx/s": 84540, "raw-bytes/tx": 529.7},
	bootBench: {"bootstrap-s": 0.08459, "bootstrap/fullsync": 0.03797, "copy-MiB/s": 598.9, "db-MiB": 21.21,
		"fullsync-s": 2.228, "restore-MiB/s": 141.7, "restore/copy": 0.2366, "snapshot-MiB": 9.546, "snapshot-files": 9},
	serveBench: {"serve-snapshot-s": 0.41, "serve-fullsync-s": 3.2, "serve-snapshot/fullsync": 0.128, "catchup-blocks": 20,
		"snapshot-MiB": 3.4, "compacted-MiB": 3.3, "snapshot/compacted": 1.02},
	pubBench: {"publishes": 70, "max-snapshot/compacted": 1.03, "upload/snapshot-mean": 0.5, "upload/snapshot-max": 1,
		"upload/snapshot-last10": 0.5, "whole-uploads": 0},
	walletBnch: {"wallets": 1000},
	busyBench: {"entries": 52001, "reply-MiB": 4.5, "cold-ms": 180, "warm-p50-ms": 90, "warm-p99-ms": 120,
		"cold-entries/s": 288000, "single-cold-ms": 0.5, "single-p50-ms": 0.2},
}

func init() {
	for _, tr := range []string{"tcp", "ws"} {
		for unit, v := range map[string]float64{"req/s": 7027, "ping-req/s": 28530, "p50-ms": 3.44, "p99-ms": 774.1,
			"ping-p50-ms": 32.97, "alone-p50-ms": 1.2, "alone-p99-ms": 5.5, "ping-p99-ms": 61.91, "block-notify-p50-ms": 117.4, "block-notify-p99-ms": 127.2,
			"block-notify-1-ms": 84.33, "mempool-notify-p50-ms": 47.82, "mempool-notify-p99-ms": 97.87,
			"mempool-notify-1-ms": 29.48, "rss-MiB": 229.4, "rss-idle-MiB": 140.5, "rss-KiB/session": 91, "heap-idle-MiB": 40, "heap-closed-MiB": 45, "heap-MiB": 90.5, "heap-KiB/session": 51,
			"requests": 103090} {
			sampleUnits[walletBnch][tr+"-"+unit] = v
		}
	}
}

// sampleOutput renders sampleUnits as go test -bench prints them, with
// the log lines and headers around them, leaving out the units in skip.
func sampleOutput(skip ...string) string {
	var b strings.Builder
	b.WriteString("goos: linux\ngoarch: amd64\npkg: amber/builder\ncpu: AMD EPYC    \n")
	for _, name := range []string{syncBench, bootBench, serveBench, pubBench, walletBnch, busyBench} {
		b.WriteString(name + "-2   \t       1\t10447648310 ns/op")
		for unit, v := range sampleUnits[name] {
			if !contains(skip, name+" "+unit) {
				b.WriteString("\t" + strconv.FormatFloat(v, 'f', -1, 64) + " " + unit)
			}
		}
		b.WriteString("\n--- BENCH: " + name + "-2\n    cache.go:262: chaingen: read a file\n")
	}
	b.WriteString("PASS\nok  \tamber/builder\t66.778s\n")
	return b.String()
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func TestParseAndFigures(t *testing.T) {
	r, err := parse(sampleOutput())
	if err != nil {
		t.Fatal(err)
	}
	if r.Machine.CPU != "AMD EPYC" || len(r.Benchmarks) != 6 {
		t.Fatalf("parsed cpu %q and %d benchmarks, want AMD EPYC and 6", r.Machine.CPU, len(r.Benchmarks))
	}
	if got := r.Benchmarks[0]; got.Name != syncBench || got.Iterations != 1 || got.Metrics["btcd-blocks/s"] != 434.6 || got.Metrics["ns/op"] != 10447648310 {
		t.Fatalf("first benchmark parsed as %+v", got)
	}
	if err := r.figures(false); err != nil {
		t.Fatal(err)
	}
	// 9 chain figures (3 of them serve and publish), 9 size rows per
	// prefix, 6 per transport, the busy script.
	if len(r.Figures) != 9+9+2*6+1 {
		t.Fatalf("%d figures, want 31", len(r.Figures))
	}
	byName := map[string]Figure{}
	for _, f := range r.Figures {
		byName[f.Name] = f
		if f.Baseline == "" || f.Ratio <= 0 || strings.Contains(f.Value+f.Baseline, "?") {
			t.Errorf("figure %+v lacks a value, baseline or ratio", f)
		}
	}
	f := byName["sync from btcd (JSON-RPC)"]
	if f.Value != "435 blocks/s, 4,779 tx/s" || f.Baseline != "parse only: 7,688 blocks/s, 84,540 tx/s" || f.Ratio != 0.05653 {
		t.Errorf("sync figure = %+v", f)
	}
	f = byName["WebSocket: 1,000 wallets syncing at once"]
	if f.Value != "7,027 req/s" || f.Ratio != sampleUnits[walletBnch]["ws-req/s"]/sampleUnits[walletBnch]["ws-ping-req/s"] {
		t.Errorf("websocket request figure = %+v", f)
	}
	f = byName["index size per transaction: SST after a flush and a full compaction"]
	if f.Value != "259 bytes (5.44 MiB)" || f.Baseline != "raw chain: 530 bytes" || f.Ratio != 0.4895 {
		t.Errorf("index size figure = %+v", f)
	}
	f = byName["of which spend index (estimated from data blocks)"]
	if f.Value != "27.9 bytes" || f.Baseline != "all SST: 259 bytes" || f.Ratio != 27.87/259.3 {
		t.Errorf("spend index size figure = %+v", f)
	}
	f = byName["of which tx counts and metadata (estimated from data blocks)"]
	if f.Value != "1.27 bytes" {
		t.Errorf("tx counts and metadata figure = %+v, want the two prefixes summed", f)
	}
	f = byName["snapshot size"]
	if snap, db := 9.546, 21.21; f.Ratio != snap/db {
		t.Errorf("snapshot size ratio %v, want snapshot-MiB / db-MiB", f.Ratio)
	}
	f = byName["amber serve, empty DB_DIRECTORY to /readyz green: MinIO snapshot 20 blocks behind btcd's tip (download, verify, open, catch up, mempool, listeners)"]
	if f.Value != "0.41 s" || f.Ratio != 0.128 {
		t.Errorf("serve bootstrap figure = %+v", f)
	}
	f = byName["bytes uploaded by each publish after 1% more blocks, from half the chain to all of it (70 publishes, 0 uploading the whole index)"]
	if f.Value != "mean 50%, last ten 50% of the snapshot" || f.Ratio != 0.5 {
		t.Errorf("publish figure = %+v", f)
	}
}

func TestMissingFigure(t *testing.T) {
	r, err := parse(sampleOutput(bootBench+" copy-MiB/s", walletBnch+" ws-rss-MiB"))
	if err != nil {
		t.Fatal(err)
	}
	err = r.figures(false)
	if err == nil || !strings.Contains(err.Error(), bootBench+" copy-MiB/s") || !strings.Contains(err.Error(), walletBnch+" ws-rss-MiB") {
		t.Fatalf("figures() = %v, want both missing metrics named", err)
	}
	// A partial report leaves out the rows that need them, and says so.
	if err := r.figures(true); err != nil {
		t.Fatal(err)
	}
	if len(r.Missing) != 2 || len(r.Figures) != 31-2 || !strings.Contains(r.missingNote(), "ws-rss-MiB") {
		t.Fatalf("partial: %d figures, missing %v", len(r.Figures), r.Missing)
	}
	for _, f := range r.Figures {
		if f.Name == "snapshot download (verified)" || f.Name == "WebSocket: server RSS with 1,000 sessions" {
			t.Errorf("partial report kept %q, whose metric is missing", f.Name)
		}
	}
	if _, err := parse("PASS\nFAIL\tamber/server\n"); err == nil {
		t.Fatal("parse of output without benchmarks succeeded")
	}
}

func TestWrite(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "results.txt")
	readme := filepath.Join(dir, "README.md")
	if err := os.WriteFile(in, []byte(sampleOutput()), 0o644); err != nil {
		t.Fatal(err)
	}
	doc := "# Amber\n\nintro\n\n" + beginMarker + "\nold table\n" + endMarker + "\n\nmore\n"
	if err := os.WriteFile(readme, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "bench")
	if err := run([]string{"-in", in, "-out", out, "-readme", readme, "-workload", "small", "-note", "shared machine"}); err != nil {
		t.Fatal(err)
	}
	var res Results
	js, err := os.ReadFile(filepath.Join(out, "results.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(js, &res); err != nil {
		t.Fatal(err)
	}
	if res.Workload != "small" || res.Machine.Cores < 1 || len(res.Figures) != 31 || len(res.Benchmarks) != 6 {
		t.Fatalf("results.json: workload %q, %d cores, %d figures, %d benchmarks", res.Workload, res.Machine.Cores, len(res.Figures), len(res.Benchmarks))
	}
	md, _ := os.ReadFile(filepath.Join(out, "results.md"))
	if !strings.Contains(string(md), "| sync from btcd (JSON-RPC) | 435 blocks/s, 4,779 tx/s |") || !strings.Contains(string(md), "shared machine") {
		t.Errorf("results.md lacks the sync row or the note:\n%s", md)
	}
	got, _ := os.ReadFile(readme)
	if strings.Contains(string(got), "old table") || !strings.HasPrefix(string(got), "# Amber\n\nintro\n\n"+beginMarker+"\n") ||
		!strings.HasSuffix(string(got), endMarker+"\n\nmore\n") || !strings.Contains(string(got), "| snapshot size |") {
		t.Errorf("README not updated between the markers:\n%s", got)
	}
	// Running again replaces the table rather than adding one.
	if err := run([]string{"-in", in, "-out", out, "-readme", readme}); err != nil {
		t.Fatal(err)
	}
	again, _ := os.ReadFile(readme)
	if strings.Count(string(again), "| snapshot size |") != 1 {
		t.Errorf("second run left %d tables", strings.Count(string(again), "| snapshot size |"))
	}
	if err := os.WriteFile(readme, []byte("no markers\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := run([]string{"-in", in, "-out", out, "-readme", readme}); err == nil {
		t.Error("a README without markers was accepted")
	}
}

// TestChart checks that the chart is well-formed SVG with one bar per
// figure, left of the 1.0 line for ratios below 1 and right above.
func TestChart(t *testing.T) {
	r, err := parse(sampleOutput())
	if err != nil {
		t.Fatal(err)
	}
	if err := r.figures(false); err != nil {
		t.Fatal(err)
	}
	dec := xml.NewDecoder(strings.NewReader(string(r.chart())))
	var bars []map[string]string
	var oneX string
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("chart is not well-formed XML: %v", err)
		}
		if se, ok := tok.(xml.StartElement); ok {
			attrs := map[string]string{}
			for _, a := range se.Attr {
				attrs[a.Name.Local] = a.Value
			}
			switch {
			case se.Name.Local == "rect" && attrs["y"] != "":
				bars = append(bars, attrs)
			case se.Name.Local == "line" && attrs["stroke"] == "#333":
				oneX = attrs["x1"]
			}
		}
	}
	if len(bars) != len(r.Figures) {
		t.Fatalf("%d bars for %d figures", len(bars), len(r.Figures))
	}
	for i, f := range r.Figures {
		left := bars[i]["x"] != oneX
		if left != (f.Ratio < 1) {
			t.Errorf("figure %q with ratio %v: bar at x=%s, the 1.0 line at %s", f.Name, f.Ratio, bars[i]["x"], oneX)
		}
	}
}

func TestNum(t *testing.T) {
	for v, want := range map[float64]string{0: "0", 0.05653: "0.0565", 434.6: "435", 999.4: "999", 1000: "1,000",
		84540: "84,540", 1234567.8: "1,234,568", -2500: "-2,500"} {
		if got := num(v); got != want {
			t.Errorf("num(%v) = %q, want %q", v, got, want)
		}
	}
}

// TestScalingFigures reads the scaling workload's benchmark: four rows per
// checkpoint in transaction order (not the order of the metrics), each
// against the first segment, and refuses a checkpoint with a metric
// missing.
func TestScalingFigures(t *testing.T) {
	line := "BenchmarkScaling-2 \t1\t9e11 ns/op"
	for _, l := range []string{"5M", "1M", "20M"} {
		v := map[string]float64{"1M": 1, "5M": 2, "20M": 4}[l]
		line += fmt.Sprintf("\t%g %s-tx/s\t%g %s-sst-bytes/tx\t%g %s-sst-MiB\t%g %s-peak-RSS-MiB\t%g %s-write-amp",
			20000/v, l, 180+v, l, 200*v, l, 500+v, l, 2*v, l)
	}
	r, err := parse("goos: linux\n" + line + "\nPASS\n")
	if err != nil {
		t.Fatal(err)
	}
	if err := r.figures(false); err != nil {
		t.Fatal(err)
	}
	if len(r.Figures) != 12 {
		t.Fatalf("%d figures, want 12", len(r.Figures))
	}
	f := r.Figures[8]
	if f.Name != "index rate, segment ending at 20M transactions" || f.Value != "5,000 tx/s" ||
		f.Baseline != "first segment (to 1M): 20,000 tx/s" || f.Ratio != 0.25 {
		t.Errorf("20M rate figure = %+v", f)
	}
	if f := r.Figures[5]; f.Value != "182 bytes/tx (400 MiB)" || f.Ratio != 182.0/181 {
		t.Errorf("5M size figure = %+v", f)
	}
	r, err = parse("goos: linux\nBenchmarkScaling-2 \t1\t9e11 ns/op\t100 1M-tx/s\t2 1M-write-amp\nPASS\n")
	if err != nil {
		t.Fatal(err)
	}
	if err := r.figures(false); err == nil || !strings.Contains(err.Error(), "1M-sst-bytes/tx") {
		t.Errorf("figures() with metrics missing = %v", err)
	}
}

// TestLoadTable: the Electrum-like load becomes a table per transport,
// a row per method and a column per offered rate, flat out first; a run
// without it has no table.
func TestLoadTable(t *testing.T) {
	out := sampleOutput() + loadBench + "-2 \t 1\t 85115402592 ns/op\t 60 wallets" +
		"\t 1772 tcp-flat-req/s\t 1772 tcp-flat-offered-req/s\t 824.9 tcp-flat-transaction.get-p50-ms\t 1527 tcp-flat-transaction.get-p99-ms" +
		"\t 885.9 tcp-r50-offered-req/s\t 897.3 tcp-r50-req/s\t 10.67 tcp-r50-transaction.get-p50-ms\t 32.67 tcp-r50-transaction.get-p99-ms" +
		"\t 442.9 tcp-r25-offered-req/s\t 449.5 tcp-r25-req/s\t 10.01 tcp-r25-transaction.get-p50-ms\t 63.77 tcp-r25-transaction.get-p99-ms" +
		"\t 0.2163 tcp-r25-server.version-p50-ms\t 1.887 tcp-r25-server.version-p99-ms" +
		"\t 94.38 tcp-flat-server-cpu-us/req\t 1.244 tcp-flat-server-writes/req\t 120.5 tcp-r25-server-cpu-us/req\t 1.3 tcp-r25-server-writes/req" +
		"\t 110 tcp-r50-server-cpu-us/req\t 1.25 tcp-r50-server-writes/req\n"
	r, err := parse(out)
	if err != nil {
		t.Fatal(err)
	}
	table := r.loadTable()
	for _, want := range []string{
		"60 wallets",
		"| TCP: method | flat out: 1,772 req/s | 25%: 443 req/s offered, 450 answered | 50%: 886 req/s offered, 897 answered | ",
		"| transaction.get | 825 / 1,527 | 10 / 63.8 | 10.7 / 32.7 | ",
		"| server.version | – | 0.216 / 1.89 | – | ",
		"| server CPU µs / write syscalls per request | 94.4 / 1.24 | 120 / 1.3 | 110 / 1.25 | ",
	} {
		if !strings.Contains(table, want) {
			t.Errorf("load table lacks %q:\n%s", want, table)
		}
	}
	if strings.Contains(table, "WebSocket") {
		t.Errorf("a WebSocket table without WebSocket figures:\n%s", table)
	}
	r, _ = parse(sampleOutput())
	if got := r.loadTable(); got != "" {
		t.Errorf("a run without the load benchmark has a load table: %q", got)
	}
}

// TestCoreFigure: a run with BenchmarkBuilderCore adds the Bitcoin Core
// row beside btcd's; one without it (no bitcoind) is still complete.
func TestCoreFigure(t *testing.T) {
	plain, err := parse(sampleOutput())
	if err != nil {
		t.Fatal(err)
	}
	if err := plain.figures(false); err != nil {
		t.Fatal(err)
	}
	out := strings.Replace(sampleOutput(), "PASS\n", coreBench+"-2   \t       1\t8283996516 ns/op\t2001 blocks\t833.6 core-rest-blocks/s\t9167 core-rest-tx/s\t705.4 core-rpc-blocks/s\t7757 core-rpc-tx/s\t691.5 local-blocks/s\t1100 core-files-blocks/s\t12100 core-files-tx/s\t1.32 files/rest\t1.182 rest/rpc\t1.020 rpc/local\nPASS\n", 1)
	r, err := parse(out)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.figures(false); err != nil {
		t.Fatal(err)
	}
	var core, files *Figure
	for i, f := range r.Figures {
		switch f.Name {
		case "sync from Bitcoin Core (REST)":
			core = &r.Figures[i]
		case "sync from Bitcoin Core's block files (same host)":
			files = &r.Figures[i]
		}
	}
	if core == nil || core.Value != "834 blocks/s, 9,167 tx/s" || core.Baseline != "over JSON-RPC: 705 blocks/s, 7,757 tx/s" || core.Ratio != 1.182 {
		t.Fatalf("core figure %+v", core)
	}
	if files == nil || files.Value != "1,100 blocks/s, 12,100 tx/s" || files.Baseline != "over REST: 9,167 tx/s" || files.Ratio != 1.32 {
		t.Fatalf("block-file figure %+v", files)
	}
	if len(r.Figures) != len(plain.Figures)+2 {
		t.Fatalf("%d figures with Core, %d without", len(r.Figures), len(plain.Figures))
	}
}
