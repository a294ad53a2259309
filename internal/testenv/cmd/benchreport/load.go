package main

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// loadBench is the Electrum-like wallet load: latency per method at each
// offered rate.
const loadBench = "BenchmarkServer/ElectrumLoad"

// loadMetric is a per-method latency metric of loadBench:
// transport-rate-method-p50-ms, rate being "flat" or "r" and a
// percentage of the flat-out rate.
var loadMetric = regexp.MustCompile(`^(tcp|ws)-(flat|r\d+)-(.+)-p(50|99)-ms$`)

// loadTable renders loadBench as one Markdown table per transport: a row
// per method, a column per offered rate, p50 / p99 in each cell. It is
// empty when the benchmark did not run.
func (r *Results) loadTable() string {
	var metrics map[string]float64
	for _, b := range r.Benchmarks {
		if b.Name == loadBench {
			metrics = b.Metrics
		}
	}
	if metrics == nil {
		return ""
	}
	rates := map[string][]string{}   // transport -> rate labels
	methods := map[string][]string{} // transport -> methods
	for unit := range metrics {
		m := loadMetric.FindStringSubmatch(unit)
		if m == nil {
			continue
		}
		if !slices.Contains(rates[m[1]], m[2]) {
			rates[m[1]] = append(rates[m[1]], m[2])
		}
		if !slices.Contains(methods[m[1]], m[3]) {
			methods[m[1]] = append(methods[m[1]], m[3])
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "\nElectrum-like wallet load, %s wallets (pipelined bursts, 2,016-header chunks, protocols 1.4, 1.6 and 1.7, busy scripts): latency p50 / p99 in ms per method at each offered rate, flat out first.\n",
		num(metrics["wallets"]))
	for _, tr := range []struct{ key, name string }{{"tcp", "TCP"}, {"ws", "WebSocket"}} {
		rs := rates[tr.key]
		if len(rs) == 0 {
			continue
		}
		slices.SortFunc(rs, func(x, y string) int { return rateOrder(x) - rateOrder(y) })
		slices.Sort(methods[tr.key])
		fmt.Fprintf(&b, "\n| %s: method | ", tr.name)
		for _, rate := range rs {
			k := tr.key + "-" + rate
			if rate == "flat" {
				fmt.Fprintf(&b, "flat out: %s req/s | ", num(metrics[k+"-req/s"]))
			} else {
				fmt.Fprintf(&b, "%s%%: %s req/s offered, %s answered | ", rate[1:], num(metrics[k+"-offered-req/s"]), num(metrics[k+"-req/s"]))
			}
		}
		b.WriteString("\n|---|" + strings.Repeat("---|", len(rs)) + "\n")
		for _, m := range methods[tr.key] {
			fmt.Fprintf(&b, "| %s | ", m)
			for _, rate := range rs {
				k := tr.key + "-" + rate + "-" + m
				p50, ok50 := metrics[k+"-p50-ms"]
				p99, ok99 := metrics[k+"-p99-ms"]
				if ok50 && ok99 {
					fmt.Fprintf(&b, "%s / %s | ", num(p50), num(p99))
				} else {
					b.WriteString("– | ")
				}
			}
			b.WriteString("\n")
		}
		// What each request cost the server, which a shared machine's
		// noise moves less than requests/s.
		if _, ok := metrics[tr.key+"-flat-server-cpu-us/req"]; ok {
			b.WriteString("| server CPU µs / write syscalls per request | ")
			for _, rate := range rs {
				k := tr.key + "-" + rate + "-server-"
				fmt.Fprintf(&b, "%s / %s | ", num(metrics[k+"cpu-us/req"]), num(metrics[k+"writes/req"]))
			}
			b.WriteString("\n")
		}
	}
	return b.String()
}

// rateOrder sorts flat out first, then offered rates from the lowest.
func rateOrder(label string) int {
	if label == "flat" {
		return -1
	}
	n, _ := strconv.Atoi(strings.TrimPrefix(label, "r"))
	return n
}
