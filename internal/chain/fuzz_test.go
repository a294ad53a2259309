package chain_test

import (
	"bytes"
	"errors"
	"testing"

	"amber/internal/chain"
)

// The fuzz targets feed arbitrary bytes to the parsers. Besides not
// panicking, whatever parses must be exactly what was given: btcd
// re-serializes it to the same bytes, and the txids computed from the raw
// bytes match btcd's own.

func FuzzParseBlock(f *testing.F) {
	// The 149 KB block is left out: mutating and minimizing inputs that
	// large slows the fuzzer down for no new coverage.
	for _, name := range []string{fixtureFirstBlocks, fixtureSample} {
		for _, raw := range loadRawBlocks(f, name) {
			f.Add(raw)
		}
	}
	small := loadRawBlocks(f, fixtureSample)[0]
	f.Add(small[:len(small)-1])
	f.Add(append(append([]byte(nil), small...), 0))
	f.Add(small[:80])
	f.Fuzz(func(t *testing.T, raw []byte) {
		b, err := chain.ParseBlock(raw)
		if err != nil {
			if b != nil {
				t.Fatal("a block and an error")
			}
			return
		}
		var buf bytes.Buffer
		if err := b.MsgBlock().Serialize(&buf); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(buf.Bytes(), raw) {
			t.Fatalf("parsed block re-serializes differently:\n in %x\nout %x", raw, buf.Bytes())
		}
		if b.Hash != b.Header.BlockHash() {
			t.Fatalf("hash %s, btcd says %s", b.Hash, b.Header.BlockHash())
		}
		for i := range b.Txs {
			tx := &b.Txs[i]
			if tx.TxID != tx.Msg.TxHash() {
				t.Fatalf("tx %d txid %s, btcd says %s", i, tx.TxID, tx.Msg.TxHash())
			}
			if tx.StrippedSize != tx.Msg.SerializeSizeStripped() {
				t.Fatalf("tx %d stripped size %d, btcd says %d", i, tx.StrippedSize, tx.Msg.SerializeSizeStripped())
			}
		}
	})
}

func FuzzParseTx(f *testing.F) {
	for _, raw := range loadTxs(f) {
		f.Add(raw)
		f.Add(raw[:len(raw)/2])
	}
	for _, b := range loadBlocks(f, fixtureSample) {
		for _, tx := range b.Txs {
			var buf bytes.Buffer
			if err := tx.Msg.Serialize(&buf); err != nil {
				f.Fatal(err)
			}
			f.Add(buf.Bytes())
		}
	}
	f.Add([]byte{})
	f.Add([]byte{1, 0, 0, 0, 0, 1})
	f.Fuzz(func(t *testing.T, raw []byte) {
		msg, err := chain.ParseTx(raw)
		tx, derr := chain.DecodeTx(raw)
		if (err == nil) != (derr == nil) {
			t.Fatalf("ParseTx err %v, DecodeTx err %v", err, derr)
		}
		if err != nil {
			if errors.Is(err, chain.ErrTruncated) && errors.Is(err, chain.ErrTrailingBytes) {
				t.Fatalf("both truncated and trailing: %v", err)
			}
			return
		}
		var buf bytes.Buffer
		if err := msg.Serialize(&buf); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(buf.Bytes(), raw) {
			t.Fatalf("parsed tx re-serializes differently:\n in %x\nout %x", raw, buf.Bytes())
		}
		if tx.TxID != msg.TxHash() || tx.Size != len(raw) || tx.StrippedSize != msg.SerializeSizeStripped() {
			t.Fatalf("txid %s size %d/%d, btcd says %s %d/%d", tx.TxID, tx.Size, tx.StrippedSize,
				msg.TxHash(), len(raw), msg.SerializeSizeStripped())
		}
	})
}
