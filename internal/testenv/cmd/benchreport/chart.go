package main

import (
	"fmt"
	"html"
	"math"
	"strings"
)

// Chart geometry, in SVG user units.
const (
	chartLabelW = 500 // the figure names on the left
	chartPlotW  = 420
	chartRightW = 270 // the ratios and what they divide, on the right
	chartRowH   = 22
	chartTop    = 46
	chartBottom = 34
)

// chart draws every figure's ratio to its baseline as a bar on a log
// scale centred on 1 (figure equals baseline): bars go left for ratios
// below 1 and right above.
func (r *Results) chart() []byte {
	lo, hi := -1.0, 1.0 // decades shown, at least 0.1 to 10
	for _, f := range r.Figures {
		if f.Ratio > 0 && !math.IsInf(f.Ratio, 0) {
			l := math.Log10(f.Ratio)
			lo, hi = min(lo, math.Floor(l)), max(hi, math.Ceil(l))
		}
	}
	x := func(ratio float64) float64 {
		return chartLabelW + (math.Log10(ratio)-lo)/(hi-lo)*chartPlotW
	}
	width := chartLabelW + chartPlotW + chartRightW
	height := chartTop + len(r.Figures)*chartRowH + chartBottom
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n",
		width, height, width, height)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	fmt.Fprintf(&b, `<text x="10" y="20" font-size="14" font-weight="bold">Amber benchmarks (%s workload): each figure over its same-run baseline</text>`+"\n",
		html.EscapeString(r.Workload))
	fmt.Fprintf(&b, `<text x="10" y="36" fill="#555">%s</text>`+"\n", html.EscapeString(strings.ReplaceAll(r.heading(), "`", "")))
	plotBottom := chartTop + len(r.Figures)*chartRowH
	for d := lo; d <= hi; d++ {
		gx := x(math.Pow(10, d))
		stroke := "#ddd"
		if d == 0 {
			stroke = "#333"
		}
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="%s"/>`+"\n", gx, chartTop-4, gx, plotBottom, stroke)
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="middle" fill="#555">%s</text>`+"\n", gx, plotBottom+16, num(math.Pow(10, d)))
	}
	fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="middle" fill="#555">ratio to baseline (log scale)</text>`+"\n",
		chartLabelW+chartPlotW/2, plotBottom+30)
	for i, f := range r.Figures {
		y := chartTop + i*chartRowH
		fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="end">%s</text>`+"\n", chartLabelW-8, y+15, html.EscapeString(f.Name))
		if f.Ratio > 0 && !math.IsInf(f.Ratio, 0) {
			x0, x1 := x(1), x(f.Ratio)
			color := "#4a7fb5"
			if f.Ratio > 1 {
				color = "#d08a3a"
			}
			fmt.Fprintf(&b, `<rect x="%.1f" y="%d" width="%.1f" height="%d" fill="%s"><title>%s</title></rect>`+"\n",
				min(x0, x1), y+4, math.Max(math.Abs(x1-x0), 1), chartRowH-8, color, html.EscapeString(f.RatioOf))
		}
		fmt.Fprintf(&b, `<text x="%d" y="%d">%s <tspan fill="#777" font-size="10">%s</tspan></text>`+"\n",
			chartLabelW+chartPlotW+8, y+15, html.EscapeString(num(f.Ratio)), html.EscapeString(f.RatioOf))
	}
	b.WriteString("</svg>\n")
	return []byte(b.String())
}
