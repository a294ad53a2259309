package server_test

import (
	"fmt"
	"strings"
	"testing"

	"amber/internal/testenv"
)

// TestServeShowsSyncProgress: `amber serve` catching up from genesis logs
// the same progress lines as `amber build` (height of the target, rate),
// not only a line once it is done.
func TestServeShowsSyncProgress(t *testing.T) {
	if testing.Short() {
		t.Skip("runs btcd and amber")
	}
	r := testenv.StartRegtest(t, testenv.RegtestOptions{})
	r.Mine(150)
	height := r.Btcd.Height()
	s := startServed(t, r)
	log := s.log.String()
	var line string
	for _, l := range strings.Split(log, "\n") {
		if strings.Contains(l, "sync progress") {
			line = l
		}
	}
	if line == "" {
		t.Fatalf("no sync progress line in the serve log:\n%s", log)
	}
	for _, want := range []string{fmt.Sprintf("done=%d", height), fmt.Sprintf("total=%d", height), "rate_per_s=", "txs="} {
		if !strings.Contains(line, want) {
			t.Errorf("last progress line %q lacks %s", line, want)
		}
	}
}
