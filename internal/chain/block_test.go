package chain_test

import (
	"bytes"
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/btcsuite/btcd/chainhash/v2"
	"github.com/btcsuite/btcd/wire/v2"

	"amber/internal/chain"
)

// Headers from PROTOCOL.md 12.1 and 12.10.
var specHeaders = []struct {
	name   string
	height int
	raw    string
	hash   string
}{
	{"genesis", 0,
		"0100000000000000000000000000000000000000000000000000000000000000000000003ba3edfd7a7b12b27ac72c3e67768f617fc81bc3888a51323a9fb8aa4b1e5e4a29ab5f49ffff001d1dac2b7c",
		"000000000019d6689c085ae165831e934ff763ae46a2a6c172b3f1b60a8ce26f"},
	{"height 1", 1,
		"010000006fe28c0ab6f1b372c1a6a246ae63f74f931e8365e15a089c68d6190000000000982051fd1e4ba744bbbe680e1fee14677ba1a3c3540bf7b1cdb606e857233e0e61bc6649ffff001d01e36299",
		"00000000839a8e6886ab5951d76f411475428afc90947ee320161bbf18eb6048"},
	{"height 5", 5,
		"0100000085144a84488ea88d221c8bd6c059da090e88f8a2c99690ee55dbba4e00000000e11c48fecdd9e72510ca84f023370c9a38bf91ac5cae88019bee94d24528526344c36649ffff001d1d03e477",
		"000000009b7262315dbf071787ad3656097b892abffd1f95a1a022f896f533fc"},
	{"height 520481", 520481,
		"00000020890208a0ae3a3892aa047c5468725846577cfcd9b512b50000000000000000005dc2b02f2d297a9064ee103036c14d678f9afc7e3d9409cf53fd58b82e938e8ecbeca05a2d2103188ce804c4",
		"000000000000000000b4dc0d8d9342f18b1830b4b5e3ad17c66b1ed10eb01ae4"},
}

func TestParseHeaderSpecVectors(t *testing.T) {
	first := loadBlocks(t, fixtureFirstBlocks)
	for _, tc := range specHeaders {
		t.Run(tc.name, func(t *testing.T) {
			raw := unhex(t, tc.raw)
			h, err := chain.ParseHeader(raw)
			if err != nil {
				t.Fatal(err)
			}
			want := hash(t, tc.hash)
			if got := h.BlockHash(); got != want {
				t.Errorf("BlockHash = %s, want %s", got, want)
			}
			if got := chain.HeaderHash(raw); got != want {
				t.Errorf("HeaderHash = %s, want %s", got, want)
			}
			if !meetsTarget(want, h.Bits) {
				t.Errorf("hash %s does not meet bits %08x", want, h.Bits)
			}
			var buf bytes.Buffer
			if err := h.Serialize(&buf); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(buf.Bytes(), raw) {
				t.Errorf("re-serialized header differs:\n got %x\nwant %x", buf.Bytes(), raw)
			}
			if tc.height < len(first) {
				b := first[tc.height]
				if !bytes.Equal(b.RawHeader[:], raw) {
					t.Errorf("fixture block %d header = %x, want %x", tc.height, b.RawHeader, raw)
				}
				if b.Hash != want {
					t.Errorf("fixture block %d hash = %s, want %s", tc.height, b.Hash, want)
				}
			}
		})
	}
}

func TestFirstBlockHashes(t *testing.T) {
	// PROTOCOL.md 12.1: hashes of blocks 0..8.
	want := []string{
		"000000000019d6689c085ae165831e934ff763ae46a2a6c172b3f1b60a8ce26f",
		"00000000839a8e6886ab5951d76f411475428afc90947ee320161bbf18eb6048",
		"000000006a625f06636b8bb6ac7b960a8d03705d1ace08b1a19da3fdcc99ddbd",
		"0000000082b5015589a3fdf2d4baff403e6f0be035a5d9742c1cae6295464449",
		"000000004ebadb55ee9096c9a2f8880e09da59c0d68b1c228da88e48844a1485",
		"000000009b7262315dbf071787ad3656097b892abffd1f95a1a022f896f533fc",
		"000000003031a0e73735690c5a1ff2a4be82553b2a12b776fbd3a215dc8f778d",
		"0000000071966c2b1d065fd446b1e485b2c9d9594acd2007ccbd5441cfc89444",
		"00000000408c48f847aa786c2268fc3e6ec2af68e8468a34a28c61b7f1de0dc6",
	}
	blocks := loadBlocks(t, fixtureFirstBlocks)
	if len(blocks) != 10 {
		t.Fatalf("%s has %d blocks, want 10", fixtureFirstBlocks, len(blocks))
	}
	for i, b := range blocks {
		if i < len(want) && b.Hash.String() != want[i] {
			t.Errorf("block %d hash = %s, want %s", i, b.Hash, want[i])
		}
		if i > 0 && b.Header.PrevBlock != blocks[i-1].Hash {
			t.Errorf("block %d prev = %s, want %s", i, b.Header.PrevBlock, blocks[i-1].Hash)
		}
	}
	if got := blocks[0].Hash; got != mainnet(t).Genesis {
		t.Errorf("block 0 = %s, want the mainnet genesis %s", got, mainnet(t).Genesis)
	}
	// Coinbase txids: genesis (12.1), block 1 (12.1), block 9 (spent by
	// the first payment in block 170).
	for _, tc := range []struct {
		height int
		txid   string
	}{
		{0, "4a5e1e4baab89f3a32518a88c31bc87f618f76673e2cc77ab2127b7afdeda33b"},
		{1, "0e3e2357e806b6cdb1f70b54c3a3a17b6714ee1f0e68bebb44a74b1efd512098"},
		{9, firstPaymentPrevTx},
	} {
		if got := blocks[tc.height].Txs[0].TxID.String(); got != tc.txid {
			t.Errorf("block %d coinbase txid = %s, want %s", tc.height, got, tc.txid)
		}
	}
}

// TestFixtureBlocks checks every fixture block against facts the parser
// cannot fake: the merkle root in the header, the proof of work, btcd's own
// txid computation, and exact re-serialization.
func TestFixtureBlocks(t *testing.T) {
	for _, name := range []string{fixtureFirstBlocks, fixtureSample, fixtureLarge} {
		raws := loadRawBlocks(t, name)
		for i, raw := range raws {
			b, err := chain.ParseBlock(raw)
			if err != nil {
				t.Fatalf("%s block %d: %v", name, i, err)
			}
			t.Run(b.Hash.String(), func(t *testing.T) {
				checkBlock(t, b, raw)
			})
		}
	}
}

func checkBlock(t *testing.T, b *chain.Block, raw []byte) {
	t.Helper()
	if b.Size != len(raw) {
		t.Errorf("Size = %d, want %d", b.Size, len(raw))
	}
	if !bytes.Equal(b.RawHeader[:], raw[:chain.HeaderSize]) {
		t.Errorf("RawHeader differs from the block's first 80 bytes")
	}
	if got := b.Header.BlockHash(); got != b.Hash {
		t.Errorf("Hash = %s, btcd says %s", b.Hash, got)
	}
	if !meetsTarget(b.Hash, b.Header.Bits) {
		t.Errorf("hash %s does not meet bits %08x", b.Hash, b.Header.Bits)
	}
	if got := merkleRoot(b.TxIDs()); got != b.Header.MerkleRoot {
		t.Errorf("merkle root of %d txids = %s, header has %s", len(b.Txs), got, b.Header.MerkleRoot)
	}
	var buf bytes.Buffer
	if err := b.MsgBlock().Serialize(&buf); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(buf.Bytes(), raw) {
		t.Errorf("re-serialized block differs from the input")
	}
	next := chain.HeaderSize + wire.VarIntSerializeSize(uint64(len(b.Txs)))
	for i := range b.Txs {
		tx := &b.Txs[i]
		if tx.TxID != tx.Msg.TxHash() {
			t.Errorf("tx %d TxID = %s, btcd says %s", i, tx.TxID, tx.Msg.TxHash())
		}
		if tx.Offset != next {
			t.Errorf("tx %d Offset = %d, want %d", i, tx.Offset, next)
		}
		next = tx.Offset + tx.Size
		if tx.Size != tx.Msg.SerializeSize() || tx.StrippedSize != tx.Msg.SerializeSizeStripped() {
			t.Errorf("tx %d sizes = %d/%d, btcd says %d/%d", i, tx.Size, tx.StrippedSize,
				tx.Msg.SerializeSize(), tx.Msg.SerializeSizeStripped())
		}
		if got, want := tx.IsCoinbase(), i == 0; got != want {
			t.Errorf("tx %d IsCoinbase = %v, want %v", i, got, want)
		}
		checkViews(t, tx)
		alone, err := chain.DecodeTx(raw[tx.Offset : tx.Offset+tx.Size])
		if err != nil {
			t.Errorf("tx %d on its own: %v", i, err)
		} else if alone.TxID != tx.TxID {
			t.Errorf("tx %d on its own has txid %s, in the block %s", i, alone.TxID, tx.TxID)
		}
	}
	if next != len(raw) {
		t.Errorf("transactions end at %d, block at %d", next, len(raw))
	}
}

// checkViews compares a Tx's inputs and outputs with its wire message.
func checkViews(t *testing.T, tx *chain.Tx) {
	t.Helper()
	if len(tx.Inputs) != len(tx.Msg.TxIn) || len(tx.Outputs) != len(tx.Msg.TxOut) {
		t.Fatalf("tx %s: %d inputs / %d outputs, msg has %d / %d", tx.TxID,
			len(tx.Inputs), len(tx.Outputs), len(tx.Msg.TxIn), len(tx.Msg.TxOut))
	}
	for j, in := range tx.Inputs {
		m := tx.Msg.TxIn[j].PreviousOutPoint
		if in.Prev != m {
			t.Errorf("tx %s input %d: prev %v, msg %v", tx.TxID, j, in.Prev, m)
		}
		null := m.Index == math.MaxUint32 && m.Hash == (chainhash.Hash{})
		if in.Coinbase != null {
			t.Errorf("tx %s input %d: Coinbase %v for prevout %v", tx.TxID, j, in.Coinbase, m)
		}
	}
	for j, out := range tx.Outputs {
		m := tx.Msg.TxOut[j]
		if out.Value != m.Value || !bytes.Equal(out.PkScript, m.PkScript) {
			t.Errorf("tx %s output %d differs from msg", tx.TxID, j)
		}
	}
}

func TestFirstPayment(t *testing.T) {
	sample := loadBlocks(t, fixtureSample)
	b := sample[0]
	if want := hash(t, "00000000d1145790a8694403d4063f323d499e655c83426834d4ce2f8dd4a2ee"); b.Hash != want {
		t.Fatalf("first sample block is %s, want block 170 %s", b.Hash, want)
	}
	if len(b.Txs) != 2 {
		t.Fatalf("block 170 has %d txs, want 2", len(b.Txs))
	}
	tx := &b.Txs[1]
	if got := tx.TxID.String(); got != firstPaymentTxID {
		t.Errorf("txid = %s, want %s", got, firstPaymentTxID)
	}
	if tx.IsCoinbase() || tx.HasWitness() {
		t.Errorf("IsCoinbase %v HasWitness %v, want false false", tx.IsCoinbase(), tx.HasWitness())
	}
	wantPrev := wire.OutPoint{Hash: hash(t, firstPaymentPrevTx), Index: 0}
	if len(tx.Inputs) != 1 || tx.Inputs[0].Prev != wantPrev || tx.Inputs[0].Coinbase {
		t.Errorf("inputs = %+v, want one spending %v", tx.Inputs, wantPrev)
	}
	const btc = 100_000_000
	if len(tx.Outputs) != 2 || tx.Outputs[0].Value != 10*btc || tx.Outputs[1].Value != 40*btc {
		t.Fatalf("outputs = %+v, want 10 BTC and 40 BTC", tx.Outputs)
	}
	// The 40 BTC change went back to the key of block 9's coinbase, the
	// output being spent.
	block9 := loadBlocks(t, fixtureFirstBlocks)[9]
	if !bytes.Equal(tx.Outputs[1].PkScript, block9.Txs[0].Outputs[0].PkScript) {
		t.Errorf("change script %x, want block 9's coinbase script %x",
			tx.Outputs[1].PkScript, block9.Txs[0].Outputs[0].PkScript)
	}
	if !b.Txs[0].IsCoinbase() || !b.Txs[0].Inputs[0].Coinbase {
		t.Errorf("block 170 tx 0 is not a coinbase")
	}
}

// Mainnet transactions of testdata/mainnet-txs.hex. Txids and wtxids were
// computed when the fixture was made and confirmed by the merkle roots of
// their blocks, 540107 (…806f94ab) and 574200 (…f5de59d2).
var fixtureTxTable = []struct {
	name     string
	txid     string
	wtxid    string
	ins      int
	values   []int64
	witness  bool
	coinbase bool
}{
	{"segwit coinbase", "57233bf44b82ef3662479e5c80f71ba00c1ae82e8c9739213841f27a2f3d0d79",
		"a78de71f2a219767515b59104c562130ca052391ff9c29abcdd15769367487b3", 1, []int64{1300076961, 0}, true, true},
	{"legacy", "044027aaa82760da4877eda439c114b166d62d53205cf8f4c570351852d38d6e",
		"044027aaa82760da4877eda439c114b166d62d53205cf8f4c570351852d38d6e", 1, []int64{16090974, 376347884}, false, false},
	{"segwit 3 inputs", "5dc4ee0295f8a5f5e8cd04673c5dd264bd00a7381f733bb007b3872dd14c597e",
		"70a1e777a4d86211f50f2192d6b80236db3c08058cc3f12b377e672f798a9852", 3, []int64{31491349, 237094}, true, false},
	{"segwit and legacy inputs", "6ae2101c36364bdef4a4dcc73280f7c5a5405ab1d03cd87f0ec5465b72c7131a",
		"04540105da421e6456ec04b45bd7c8d2a7d4724e4c8a563c1be1398ea66a411e", 2, []int64{760000000, 99308627063}, true, false},
	{"segwit 1 input", "0c2f93f3cf3882564c92e1388adbb84e165772d1ce06c3161d39f8e813060ece",
		"f088c0d2ecff751e378d031415f6a80fc7a86e882029efbf7d77abefe02a206b", 1, []int64{4502094, 29628260}, true, false},
	{"segwit 4 inputs one legacy", "9bc7838def0ea9f58f91ef8d51e8791925bfd1cf3f2af7cae236e2ef13a8cf11",
		"be826981fca3eb375539f1e9d53008f4225c42cbf33f703c6552616f8ea753b1", 4, []int64{728819, 995304}, true, false},
}

func TestDecodeTxFixtures(t *testing.T) {
	byID := map[string]*chain.Tx{}
	for _, raw := range loadTxs(t) {
		tx, err := chain.DecodeTx(raw)
		if err != nil {
			t.Fatalf("fixture tx %x...: %v", raw[:16], err)
		}
		byID[tx.TxID.String()] = tx
	}
	if len(byID) != len(fixtureTxTable) {
		t.Errorf("%s has %d distinct txids, want %d: a txid is computed wrongly", fixtureTxs, len(byID), len(fixtureTxTable))
	}
	for _, tc := range fixtureTxTable {
		t.Run(tc.name, func(t *testing.T) {
			tx, ok := byID[tc.txid]
			if !ok {
				t.Fatalf("no fixture tx decodes to txid %s", tc.txid)
			}
			if got := tx.Msg.WitnessHash().String(); got != tc.wtxid {
				t.Errorf("wtxid = %s, want %s", got, tc.wtxid)
			}
			if tx.HasWitness() != tc.witness || tx.Msg.HasWitness() != tc.witness {
				t.Errorf("HasWitness = %v (msg %v), want %v", tx.HasWitness(), tx.Msg.HasWitness(), tc.witness)
			}
			if tx.IsCoinbase() != tc.coinbase {
				t.Errorf("IsCoinbase = %v, want %v", tx.IsCoinbase(), tc.coinbase)
			}
			if len(tx.Inputs) != tc.ins {
				t.Errorf("%d inputs, want %d", len(tx.Inputs), tc.ins)
			}
			var values []int64
			for _, o := range tx.Outputs {
				values = append(values, o.Value)
			}
			if !equalInts(values, tc.values) {
				t.Errorf("output values %v, want %v", values, tc.values)
			}
			if tx.Size != tx.Msg.SerializeSize() || tx.StrippedSize != tx.Msg.SerializeSizeStripped() {
				t.Errorf("sizes %d/%d, btcd says %d/%d", tx.Size, tx.StrippedSize,
					tx.Msg.SerializeSize(), tx.Msg.SerializeSizeStripped())
			}
			if want := (3*tx.Msg.SerializeSizeStripped() + tx.Msg.SerializeSize() + 3) / 4; tx.VSize() != want {
				t.Errorf("VSize = %d, want %d", tx.VSize(), want)
			}
			checkViews(t, tx)
			var buf bytes.Buffer
			if err := tx.Msg.Serialize(&buf); err != nil {
				t.Fatal(err)
			}
			msg, err := chain.ParseTx(buf.Bytes())
			if err != nil {
				t.Fatal(err)
			}
			if msg.TxHash() != tx.TxID {
				t.Errorf("ParseTx of the re-serialized tx gives %s", msg.TxHash())
			}
		})
	}
	// The segwit coinbase's witness commitment output is not indexed.
	cb := byID[fixtureTxTable[0].txid]
	if o := cb.Outputs[1].PkScript; chain.IsIndexed(o) || !chain.IsIndexed(cb.Outputs[0].PkScript) {
		t.Errorf("IsIndexed: payout %v, commitment %x %v", chain.IsIndexed(cb.Outputs[0].PkScript), o, chain.IsIndexed(o))
	}
}

func equalInts(a, b []int64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestParseHeaderLength(t *testing.T) {
	raw := unhex(t, specHeaders[0].raw)
	tests := []struct {
		name string
		in   []byte
		want error
	}{
		{"empty", nil, chain.ErrTruncated},
		{"79 bytes", raw[:79], chain.ErrTruncated},
		{"81 bytes", append(append([]byte(nil), raw...), 0), chain.ErrTrailingBytes},
		{"a whole block", loadRawBlocks(t, fixtureFirstBlocks)[0], chain.ErrTrailingBytes},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := chain.ParseHeader(tc.in)
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
		})
	}
}

func TestParseBlockErrors(t *testing.T) {
	block170 := loadRawBlocks(t, fixtureSample)[0]
	with := func(b []byte, edit func([]byte) []byte) []byte {
		return edit(append([]byte(nil), b...))
	}
	tests := []struct {
		name    string
		in      []byte
		want    error // nil: any error but these two sentinels
		wantMsg string
	}{
		{"empty", nil, chain.ErrTruncated, "0 bytes"},
		{"header only", block170[:80], chain.ErrTruncated, "transaction count"},
		{"last byte missing", block170[:len(block170)-1], chain.ErrTruncated, "tx 1 at byte"},
		{"cut inside tx 0", block170[:120], chain.ErrTruncated, "tx 0 at byte 81"},
		{"trailing byte", with(block170, func(b []byte) []byte { return append(b, 0) }), chain.ErrTrailingBytes, "1 bytes after"},
		{"a whole second block", append(append([]byte(nil), block170...), block170...), chain.ErrTrailingBytes, ""},
		{"count too large", with(block170, func(b []byte) []byte { b[80] = 0xfd; b[81], b[82] = 0xff, 0xff; return b }),
			chain.ErrTruncated, "transaction count"},
		{"count one too many", with(block170, func(b []byte) []byte { b[80] = 3; return b }), chain.ErrTruncated, "tx 2"},
		{"count one too few", with(block170, func(b []byte) []byte { b[80] = 1; return b }), chain.ErrTrailingBytes, ""},
		{"no transactions", with(block170[:81], func(b []byte) []byte { b[80] = 0; return b }), nil, "no transactions"},
		{"non-canonical count", with(block170, func(b []byte) []byte {
			return append(append(b[:80:80], 0xfd, 0x02, 0x00), b[81:]...)
		}), nil, "non-canonical"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b, err := chain.ParseBlock(tc.in)
			if err == nil {
				t.Fatalf("parsed %d txs, want an error", len(b.Txs))
			}
			if tc.want != nil && !errors.Is(err, tc.want) {
				t.Errorf("err = %v, want %v", err, tc.want)
			}
			if tc.want == nil && (errors.Is(err, chain.ErrTruncated) || errors.Is(err, chain.ErrTrailingBytes)) {
				t.Errorf("err = %v, want neither truncated nor trailing", err)
			}
			if !strings.Contains(err.Error(), tc.wantMsg) || !strings.HasPrefix(err.Error(), "chain: ") {
				t.Errorf("err = %q, want it to start with \"chain: \" and mention %q", err, tc.wantMsg)
			}
		})
	}
}

// TestParseTruncatedEverywhere cuts real blocks and transactions at every
// length: each prefix must fail as truncated, never parse or panic.
func TestParseTruncatedEverywhere(t *testing.T) {
	blocks := loadRawBlocks(t, fixtureSample)
	for _, raw := range blocks[:3] {
		for n := range len(raw) {
			if _, err := chain.ParseBlock(raw[:n]); !errors.Is(err, chain.ErrTruncated) {
				t.Fatalf("block %s cut at %d: err = %v, want truncated", chain.HeaderHash(raw[:80]), n, err)
			}
		}
	}
	for _, raw := range loadTxs(t) {
		for n := range len(raw) {
			if _, err := chain.ParseTx(raw[:n]); !errors.Is(err, chain.ErrTruncated) {
				t.Fatalf("tx %x... cut at %d: err = %v, want truncated", raw[:8], n, err)
			}
		}
	}
}

func TestParseTxErrors(t *testing.T) {
	txs := loadTxs(t)
	var legacy, segwit []byte
	for _, raw := range txs {
		if raw[4] == 0 && segwit == nil {
			segwit = raw
		}
		if raw[4] != 0 && legacy == nil {
			legacy = raw
		}
	}
	if legacy == nil || segwit == nil {
		t.Fatal("fixture lacks a legacy or a segwit tx")
	}
	edit := func(b []byte, f func([]byte) []byte) []byte { return f(append([]byte(nil), b...)) }
	tests := []struct {
		name    string
		in      []byte
		want    error
		wantMsg string
	}{
		{"empty", nil, chain.ErrTruncated, "version"},
		{"trailing byte legacy", edit(legacy, func(b []byte) []byte { return append(b, 0x00) }), chain.ErrTrailingBytes, "1 bytes after"},
		{"trailing bytes segwit", edit(segwit, func(b []byte) []byte { return append(b, 1, 2, 3) }), chain.ErrTrailingBytes, "3 bytes after"},
		{"two txs", append(append([]byte(nil), legacy...), legacy...), chain.ErrTrailingBytes, ""},
		{"input count too large", edit(legacy, func(b []byte) []byte { b[4] = 0xfc; return b }), chain.ErrTruncated, "input count"},
		{"script length too large", edit(legacy, func(b []byte) []byte { b[4+1+36] = 0xfd; return b }), chain.ErrTruncated, "script length"},
		{"witness flag 2", edit(segwit, func(b []byte) []byte { b[5] = 2; return b }), nil, "flag"},
		{"witness marker without witnesses", segwitWithoutWitness(t, legacy), nil, "witness"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, parse := range []func([]byte) error{
				func(b []byte) error { _, err := chain.ParseTx(b); return err },
				func(b []byte) error { _, err := chain.DecodeTx(b); return err },
			} {
				err := parse(tc.in)
				if err == nil {
					t.Fatal("parsed, want an error")
				}
				if tc.want != nil && !errors.Is(err, tc.want) {
					t.Errorf("err = %v, want %v", err, tc.want)
				}
				if tc.want == nil && (errors.Is(err, chain.ErrTruncated) || errors.Is(err, chain.ErrTrailingBytes)) {
					t.Errorf("err = %v, want neither truncated nor trailing", err)
				}
				if !strings.Contains(err.Error(), tc.wantMsg) || !strings.HasPrefix(err.Error(), "chain: ") {
					t.Errorf("err = %q, want it to start with \"chain: \" and mention %q", err, tc.wantMsg)
				}
			}
		})
	}
}

// segwitWithoutWitness rewrites a legacy tx into the BIP 144 form with an
// empty witness for every input, which consensus forbids.
func segwitWithoutWitness(t *testing.T, legacy []byte) []byte {
	t.Helper()
	msg, err := chain.ParseTx(legacy)
	if err != nil {
		t.Fatal(err)
	}
	out := append([]byte(nil), legacy[:4]...)
	out = append(out, 0x00, 0x01)
	out = append(out, legacy[4:len(legacy)-4]...)
	for range msg.TxIn {
		out = append(out, 0x00)
	}
	return append(out, legacy[len(legacy)-4:]...)
}

func TestNetworkParsersDelegate(t *testing.T) {
	net := mainnet(t)
	raw := loadRawBlocks(t, fixtureSample)[0]
	b, err := net.ParseBlock(raw)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := net.ParseHeader(b.RawHeader[:]); err != nil {
		t.Fatal(err)
	}
	tx := &b.Txs[1]
	msg, err := net.ParseTx(raw[tx.Offset : tx.Offset+tx.Size])
	if err != nil || msg.TxHash() != tx.TxID {
		t.Fatalf("ParseTx = %v, %v", msg, err)
	}
	dec, err := net.DecodeTx(raw[tx.Offset : tx.Offset+tx.Size])
	if err != nil || dec.TxID.String() != firstPaymentTxID {
		t.Fatalf("DecodeTx = %v, %v", dec, err)
	}
}

func BenchmarkParseBlock(b *testing.B) {
	raw := loadRawBlocks(b, fixtureLarge)[0]
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := chain.ParseBlock(raw); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseBlockBtcd(b *testing.B) {
	// Baseline: btcd's decoder plus its txid computation, which
	// re-serializes every transaction.
	raw := loadRawBlocks(b, fixtureLarge)[0]
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	for b.Loop() {
		var msg wire.MsgBlock
		if err := msg.Deserialize(bytes.NewReader(raw)); err != nil {
			b.Fatal(err)
		}
		if _, err := msg.TxHashes(); err != nil {
			b.Fatal(err)
		}
	}
}
