package main

import (
	"encoding/json"
	"encoding/xml"
	"errors"
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
		"db-bytes/tx": 692.1, "db/raw": 1.307, "local-blocks/s": 370.7, "local-tx/s": 4076, "local/parse": 0.04822,
		"parse-blocks/s": 7688, "parse-tx/s": 84540, "raw-bytes/tx": 529.7},
	bootBench: {"bootstrap-s": 0.08459, "bootstrap/fullsync": 0.03797, "copy-MiB/s": 598.9, "db-MiB": 21.21,
		"fullsync-s": 2.228, "restore-MiB/s": 141.7, "restore/copy": 0.2366, "snapshot-MiB": 9.546, "snapshot-files": 9},
	walletBnch: {"wallets": 1000},
	busyBench: {"entries": 52001, "reply-MiB": 4.5, "cold-ms": 180, "warm-p50-ms": 90, "warm-p99-ms": 120,
		"cold-entries/s": 288000, "single-cold-ms": 0.5, "single-p50-ms": 0.2},
}

func init() {
	for _, tr := range []string{"tcp", "ws"} {
		for unit, v := range map[string]float64{"req/s": 7027, "ping-req/s": 28530, "p50-ms": 3.44, "p99-ms": 774.1,
			"ping-p50-ms": 32.97, "alone-p50-ms": 1.2, "alone-p99-ms": 5.5, "ping-p99-ms": 61.91, "block-notify-p50-ms": 117.4, "block-notify-p99-ms": 127.2,
			"block-notify-1-ms": 84.33, "mempool-notify-p50-ms": 47.82, "mempool-notify-p99-ms": 97.87,
			"mempool-notify-1-ms": 29.48, "rss-MiB": 229.4, "rss-idle-MiB": 140.5, "rss-KiB/session": 91, "heap-idle-MiB": 40, "heap-MiB": 90.5, "heap-KiB/session": 51,
			"requests": 103090} {
			sampleUnits[walletBnch][tr+"-"+unit] = v
		}
	}
}

// sampleOutput renders sampleUnits as go test -bench prints them, with
// the log lines and headers around them, leaving out the units in skip.
func sampleOutput(skip ...string) string {
	var b strings.Builder
	b.WriteString("goos: linux\ngoarch: amd64\npkg: amber/builder\ncpu: AMD EPYC\n")
	for _, name := range []string{syncBench, bootBench, walletBnch, busyBench} {
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
	if r.Machine.CPU != "AMD EPYC" || len(r.Benchmarks) != 4 {
		t.Fatalf("parsed cpu %q and %d benchmarks, want AMD EPYC and 4", r.Machine.CPU, len(r.Benchmarks))
	}
	if got := r.Benchmarks[0]; got.Name != syncBench || got.Iterations != 1 || got.Metrics["btcd-blocks/s"] != 434.6 || got.Metrics["ns/op"] != 10447648310 {
		t.Fatalf("first benchmark parsed as %+v", got)
	}
	if err := r.figures(false); err != nil {
		t.Fatal(err)
	}
	// 6 chain figures, 6 per transport, the busy script.
	if len(r.Figures) != 6+2*6+1 {
		t.Fatalf("%d figures, want 19", len(r.Figures))
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
	f = byName["snapshot size"]
	if snap, db := 9.546, 21.21; f.Ratio != snap/db {
		t.Errorf("snapshot size ratio %v, want snapshot-MiB / db-MiB", f.Ratio)
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
	if len(r.Missing) != 2 || len(r.Figures) != 19-2 || !strings.Contains(r.missingNote(), "ws-rss-MiB") {
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
	if res.Workload != "small" || res.Machine.Cores < 1 || len(res.Figures) != 19 || len(res.Benchmarks) != 4 {
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

// TestCoreFigure: a run with BenchmarkBuilderCore adds the Bitcoin Core
// row beside btcd's; one without it (no bitcoind) is still complete.
func TestCoreFigure(t *testing.T) {
	out := strings.Replace(sampleOutput(), "PASS\n", coreBench+"-2   \t       1\t8283996516 ns/op\t2001 blocks\t833.6 core-rest-blocks/s\t9167 core-rest-tx/s\t705.4 core-rpc-blocks/s\t7757 core-rpc-tx/s\t691.5 local-blocks/s\t1.182 rest/rpc\t1.020 rpc/local\nPASS\n", 1)
	r, err := parse(out)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.figures(false); err != nil {
		t.Fatal(err)
	}
	var core *Figure
	for i, f := range r.Figures {
		if f.Name == "sync from Bitcoin Core (REST)" {
			core = &r.Figures[i]
		}
	}
	if core == nil || core.Value != "834 blocks/s, 9,167 tx/s" || core.Baseline != "over JSON-RPC: 705 blocks/s, 7,757 tx/s" || core.Ratio != 1.182 {
		t.Fatalf("core figure %+v", core)
	}
	if len(r.Figures) != 6+2*6+1+1 {
		t.Fatalf("%d figures with Core", len(r.Figures))
	}
}
