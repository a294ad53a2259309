package chain_test

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/btcsuite/btcd/chainhash/v2"

	"amber/internal/chain"
)

// Fixtures in testdata/ (see testdata/README.md): real mainnet blocks in
// the block-file format, and real mainnet transactions as hex lines.
const (
	fixtureFirstBlocks = "mainnet-0-9.dat"    // heights 0..9
	fixtureSample      = "mainnet-sample.dat" // heights 170, 546, 2812, 9006, 11666
	fixtureLarge       = "mainnet-277647.dat" // height 277647, 213 txs
	fixtureTxs         = "mainnet-txs.hex"    // txs of blocks 540107 and 574200
	genesisHashHex     = "000000000019d6689c085ae165831e934ff763ae46a2a6c172b3f1b60a8ce26f"
	firstPaymentTxID   = "f4184fc596403b9d638783cf57adfe4c75c605f6356fbc91338530e9831e9e16"
	firstPaymentPrevTx = "0437cd7f8525ceed2324359c2d0ba26006d92d856a9c20fa0241106ee5a597c9"
)

func mainnet(t testing.TB) *chain.Network {
	t.Helper()
	n, err := chain.Lookup("bitcoin", "mainnet")
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func regtest(t testing.TB) *chain.Network {
	t.Helper()
	n, err := chain.Lookup("bitcoin", "regtest")
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func readFixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// loadRawBlocks returns the blocks of a block-file fixture.
func loadRawBlocks(t testing.TB, name string) [][]byte {
	t.Helper()
	var blocks [][]byte
	err := chain.ReadBlockFile(bytes.NewReader(readFixture(t, name)), mainnet(t), func(raw []byte) error {
		blocks = append(blocks, raw)
		return nil
	})
	if err != nil {
		t.Fatalf("read %s: %v", name, err)
	}
	return blocks
}

// loadBlocks parses the blocks of a block-file fixture.
func loadBlocks(t testing.TB, name string) []*chain.Block {
	t.Helper()
	var blocks []*chain.Block
	for i, raw := range loadRawBlocks(t, name) {
		b, err := chain.ParseBlock(raw)
		if err != nil {
			t.Fatalf("%s block %d: %v", name, i, err)
		}
		blocks = append(blocks, b)
	}
	return blocks
}

// loadTxs returns the raw transactions of the hex fixture.
func loadTxs(t testing.TB) [][]byte {
	t.Helper()
	var txs [][]byte
	sc := bufio.NewScanner(bytes.NewReader(readFixture(t, fixtureTxs)))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		txs = append(txs, unhex(t, line))
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return txs
}

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatalf("bad hex in test: %v", err)
	}
	return b
}

func hash(t testing.TB, s string) chainhash.Hash {
	t.Helper()
	h, err := chain.ParseHash(s)
	if err != nil {
		t.Fatalf("bad hash in test: %v", err)
	}
	return h
}

// merkleRoot computes the transaction merkle root the Bitcoin way (an odd
// node is paired with itself), independently of the code under test.
func merkleRoot(ids []chainhash.Hash) chainhash.Hash {
	level := append([]chainhash.Hash(nil), ids...)
	for len(level) > 1 {
		if len(level)%2 == 1 {
			level = append(level, level[len(level)-1])
		}
		next := level[:0]
		for i := 0; i < len(level); i += 2 {
			var pair [2 * chainhash.HashSize]byte
			copy(pair[:], level[i][:])
			copy(pair[chainhash.HashSize:], level[i+1][:])
			next = append(next, chainhash.DoubleHashH(pair[:]))
		}
		level = next
	}
	return level[0]
}

// meetsTarget reports whether a block hash satisfies the proof of work its
// compact target (bits) demands; a wrong hash almost surely does not.
func meetsTarget(h chainhash.Hash, bits uint32) bool {
	mantissa := big.NewInt(int64(bits & 0x007fffff))
	exp := int(bits >> 24)
	target := new(big.Int)
	if exp <= 3 {
		target.Rsh(mantissa, uint(8*(3-exp)))
	} else {
		target.Lsh(mantissa, uint(8*(exp-3)))
	}
	var be [chainhash.HashSize]byte
	for i := range h {
		be[i] = h[len(h)-1-i]
	}
	return new(big.Int).SetBytes(be[:]).Cmp(target) <= 0
}
