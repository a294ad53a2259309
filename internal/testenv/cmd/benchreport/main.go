// Command benchreport turns the output of `go test -bench` for Amber's
// benchmarks (BenchmarkBuilder and BenchmarkServer) into the files `make
// bench` publishes: results.json, a Markdown table (results.md) and an SVG
// chart of the ratios (results.svg), and, with -readme, the same table in
// the README between the markers
//
//	<!-- bench:begin -->
//	<!-- bench:end -->
//
// Every figure of the table comes with the baseline measured in the same
// run and their ratio: machines here are noisy and shared, so the ratios
// are what compare between runs. A figure missing from the input is an
// error, so a benchmark that stopped early cannot go unnoticed.
//
//	go test -run '^$' -bench . ./builder/ ./server/ | tee bench/results.txt
//	go run ./internal/testenv/cmd/benchreport -in bench/results.txt -out bench -readme README.md
package main

import (
	"flag"
	"fmt"
	"os"
	"runtime"
	"time"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "benchreport:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("benchreport", flag.ContinueOnError)
	in := fs.String("in", "", "the `file` holding go test -bench output (required)")
	out := fs.String("out", "bench", "the `directory` to write results.json, results.md and results.svg into")
	readme := fs.String("readme", "", "a Markdown `file` whose bench markers get the table")
	workload := fs.String("workload", "small", "the workload the benchmarks ran")
	note := fs.String("note", "", "a remark on the run for the table's heading")
	partial := fs.Bool("partial", false, "write what a run that did not finish measured, listing what is missing")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *in == "" {
		return fmt.Errorf("-in is required")
	}
	raw, err := os.ReadFile(*in)
	if err != nil {
		return err
	}
	res, err := parse(string(raw))
	if err != nil {
		return fmt.Errorf("%s: %w", *in, err)
	}
	res.Workload = *workload
	res.Note = *note
	res.Date = time.Now().UTC().Format("2006-01-02 15:04 UTC")
	res.Machine.Cores = runtime.NumCPU()
	res.Machine.MemoryGiB = memTotalGiB()
	if err := res.figures(*partial); err != nil {
		return fmt.Errorf("%s: %w", *in, err)
	}
	return res.write(*out, *readme)
}

// memTotalGiB returns the machine's memory from /proc/meminfo, or 0 where
// there is none.
func memTotalGiB() float64 {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0
	}
	var kb float64
	if _, err := fmt.Sscanf(string(b), "MemTotal: %f kB", &kb); err != nil {
		return 0
	}
	return kb / (1 << 20)
}
