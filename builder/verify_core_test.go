package builder_test

import (
	"regexp"
	"strings"
	"testing"

	"amber/internal/testenv"
)

// TestBuildVerifyMainnetCore builds the real mainnet blocks 0..14,131 from
// Bitcoin Core and runs --verify: the index's UTXO figures must equal
// Core's gettxoutsetinfo, printed side by side.
func TestBuildVerifyMainnetCore(t *testing.T) {
	if testing.Short() {
		t.Skip("runs Bitcoin Core")
	}
	core := testenv.StartBitcoind(t, testenv.BitcoindOptions{Network: "mainnet", OldTip: true,
		LoadBlocks: []string{testenv.MainnetBlocksFile(t)}, LoadHeight: testenv.MainnetBlocksTip})
	out := mustBuild(t, t.TempDir(), []string{core.URL()}, "NET=mainnet", "BUILD_VERIFY=1")
	fig := regexp.MustCompile(`height=14131 txouts=(\d+) total_sat=(\d+)`)
	var figures []string
	for _, line := range strings.Split(out, "\n") {
		if strings.Contains(line, "utxo set") {
			if m := fig.FindStringSubmatch(line); m != nil {
				figures = append(figures, m[1]+"/"+m[2])
			}
		}
	}
	if !strings.Contains(out, "utxo set matches daemon") || len(figures) != 3 || figures[0] != figures[1] {
		t.Fatalf("verify against Core: figures %v\n%s", figures, tail(out, 15))
	}
	t.Logf("index and Core at 14131: %s outputs/sat", figures[0])
	// The blocks came from Core's block files (imported by -loadblock),
	// all of them.
	if !strings.Contains(out, "blocks_from_files=14132") {
		t.Errorf("the build did not read all of Core's block files:\n%s", tail(out, 10))
	}
}
