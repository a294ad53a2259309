package telemetry

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"time"

	"golang.org/x/term"
)

// Meter shows the progress of long work: on a terminal as one line
// rewritten in place, otherwise as a log line every LogEvery. Rates and the
// ETA are computed from the work done since the meter started.
type Meter struct {
	what   string // "sync", "download"
	unit   string // "blocks", "bytes"
	tty    io.Writer
	logger *slog.Logger
	now    func() time.Time

	// LogEvery is the interval between log lines when not on a terminal.
	LogEvery time.Duration

	mu        sync.Mutex
	start     time.Time
	base      int64 // done at start
	lastPrint time.Time
	printed   bool
}

// NewMeter returns a meter for work measured in unit. When out is a
// terminal the meter draws on it; otherwise it logs through logger.
func NewMeter(what, unit string, out io.Writer, logger *slog.Logger) *Meter {
	m := &Meter{what: what, unit: unit, logger: logger, now: time.Now, LogEvery: 5 * time.Second}
	if f, ok := out.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		m.tty = out
	}
	return m
}

// Update reports done out of total units; extra key/value pairs (such as
// "txs", 12345) are added to the line, and a rate is shown for each numeric
// one. final forces output.
func (m *Meter) Update(done, total int64, final bool, extra ...any) {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	if m.start.IsZero() {
		m.start, m.base = now, done
	}
	every := m.LogEvery
	if m.tty != nil {
		every = 250 * time.Millisecond
	}
	if !final && m.printed && now.Sub(m.lastPrint) < every {
		return
	}
	m.lastPrint, m.printed = now, true
	elapsed := now.Sub(m.start).Seconds()
	rate := 0.0
	if elapsed > 0 {
		rate = float64(done-m.base) / elapsed
	}
	eta := time.Duration(0)
	if rate > 0 && total > done {
		eta = time.Duration(float64(total-done)/rate) * time.Second
	}
	if m.tty != nil {
		line := fmt.Sprintf("%s: %s/%s %s (%.1f%%) %s %s/s", m.what, human(done, m.unit), human(total, m.unit), m.unit, pct(done, total), human(int64(rate), m.unit), m.unit)
		for i := 0; i+1 < len(extra); i += 2 {
			if n, ok := extra[i+1].(int64); ok && elapsed > 0 {
				line += fmt.Sprintf(" %s %d (%.0f/s)", extra[i], n, float64(n)/elapsed)
			} else {
				line += fmt.Sprintf(" %v %v", extra[i], extra[i+1])
			}
		}
		if eta > 0 {
			line += " ETA " + eta.Round(time.Second).String()
		}
		fmt.Fprintf(m.tty, "\r\033[K%s", line)
		if final {
			fmt.Fprintln(m.tty)
		}
		return
	}
	args := []any{"done", done, "total", total, "unit", m.unit, "rate_per_s", round1(rate)}
	for i := 0; i+1 < len(extra); i += 2 {
		args = append(args, extra[i], extra[i+1])
		if n, ok := extra[i+1].(int64); ok && elapsed > 0 {
			args = append(args, fmt.Sprint(extra[i], "_per_s"), round1(float64(n)/elapsed))
		}
	}
	if eta > 0 {
		args = append(args, "eta", eta.Round(time.Second).String())
	}
	m.logger.Info(m.what+" progress", args...)
}

func pct(done, total int64) float64 {
	if total <= 0 {
		return 0
	}
	return 100 * float64(done) / float64(total)
}

func round1(f float64) float64 { return float64(int64(f*10)) / 10 }

// human prints byte counts with binary units and other counts as is.
func human(n int64, unit string) string {
	if unit != "bytes" {
		return fmt.Sprint(n)
	}
	const k = 1024
	switch {
	case n >= k*k*k:
		return fmt.Sprintf("%.2fGi", float64(n)/(k*k*k))
	case n >= k*k:
		return fmt.Sprintf("%.1fMi", float64(n)/(k*k))
	case n >= k:
		return fmt.Sprintf("%.1fKi", float64(n)/k)
	}
	return fmt.Sprint(n)
}
