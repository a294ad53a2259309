package chain_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"strings"
	"testing"

	"amber/internal/chain"
)

func TestReadBlockFileFixtures(t *testing.T) {
	tests := []struct {
		file   string
		blocks int
	}{
		{fixtureFirstBlocks, 10},
		{fixtureSample, 5},
		{fixtureLarge, 1},
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			data := readFixture(t, tc.file)
			var total int
			var got [][]byte
			err := chain.ReadBlockFile(bytes.NewReader(data), mainnet(t), func(raw []byte) error {
				got = append(got, raw)
				total += 8 + len(raw)
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != tc.blocks || total != len(data) {
				t.Errorf("%d blocks covering %d bytes, want %d blocks covering %d", len(got), total, tc.blocks, len(data))
			}
			// Slices are fresh: the first block is still intact after
			// the rest were read.
			if h := chain.HeaderHash(got[0][:80]); !bytes.Equal(got[0], data[8:8+len(got[0])]) {
				t.Errorf("first block %s was overwritten", h)
			}
		})
	}
}

func TestBlockFileReader(t *testing.T) {
	data := readFixture(t, fixtureFirstBlocks)
	firstLen := int(binary.LittleEndian.Uint32(data[4:8]))
	withTail := func(tail ...byte) []byte { return append(append([]byte(nil), data...), tail...) }
	record := func(magic, length uint32, body []byte) []byte {
		b := binary.LittleEndian.AppendUint32(nil, magic)
		b = binary.LittleEndian.AppendUint32(b, length)
		return append(b, body...)
	}
	tests := []struct {
		name    string
		data    []byte
		blocks  int
		want    error // sentinel the error wraps; nil with wantMsg "" means success
		wantMsg string
	}{
		{"whole file", data, 10, nil, ""},
		{"empty input", nil, 0, nil, ""},
		{"zero padding ends the data", withTail(make([]byte, 4096)...), 10, nil, ""},
		{"zero padding after four zero bytes", withTail(0, 0, 0, 0, 0xff, 0xff), 10, nil, ""},
		{"partial magic", withTail(0xf9, 0xbe), 10, chain.ErrTruncated, "record 10 at byte 2300: magic"},
		{"magic without length", withTail(0xf9, 0xbe, 0xb4, 0xd9, 0x10), 10, chain.ErrTruncated, "length"},
		{"block cut short", data[:8+firstLen-1], 0, chain.ErrTruncated, "record 0 at byte 0: block"},
		{"testnet magic", record(0x0709110b, 80, make([]byte, 80)), 0, nil, "magic 0709110b is not Bitcoin/mainnet's d9b4bef9"},
		{"length below a header", record(0xd9b4bef9, 79, make([]byte, 79)), 0, nil, "length 79 out of range"},
		{"length above the maximum", record(0xd9b4bef9, 1<<30, nil), 0, nil, "length 1073741824 out of range"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			br := chain.NewBlockFileReader(bytes.NewReader(tc.data), mainnet(t))
			n := 0
			var err error
			for {
				var raw []byte
				raw, err = br.Next()
				if err != nil {
					break
				}
				if _, perr := chain.ParseBlock(raw); perr != nil {
					t.Fatalf("block %d: %v", n, perr)
				}
				n++
			}
			if n != tc.blocks {
				t.Errorf("read %d blocks, want %d", n, tc.blocks)
			}
			if tc.want == nil && tc.wantMsg == "" {
				if err != io.EOF {
					t.Fatalf("err = %v, want io.EOF", err)
				}
				if _, again := br.Next(); again != io.EOF {
					t.Errorf("Next after the end = %v, want io.EOF", again)
				}
				return
			}
			if err == io.EOF {
				t.Fatalf("clean end, want an error mentioning %q", tc.wantMsg)
			}
			if tc.want != nil && !errors.Is(err, tc.want) {
				t.Errorf("err = %v, want %v", err, tc.want)
			}
			if !strings.HasPrefix(err.Error(), "chain: block file") || !strings.Contains(err.Error(), tc.wantMsg) {
				t.Errorf("err = %q, want it to mention %q", err, tc.wantMsg)
			}
		})
	}
}

func TestReadBlockFileStopsAtCallbackError(t *testing.T) {
	errStop := errors.New("stop")
	n := 0
	err := chain.ReadBlockFile(bytes.NewReader(readFixture(t, fixtureFirstBlocks)), mainnet(t), func([]byte) error {
		n++
		if n == 3 {
			return errStop
		}
		return nil
	})
	if err != errStop {
		t.Errorf("err = %v, want the callback's error unchanged", err)
	}
	if n != 3 {
		t.Errorf("callback ran %d times, want 3", n)
	}
}

func TestReadBlockFileWrongNetwork(t *testing.T) {
	err := chain.ReadBlockFile(bytes.NewReader(readFixture(t, fixtureFirstBlocks)), regtest(t), func([]byte) error {
		t.Fatal("callback ran for a mainnet block read as regtest")
		return nil
	})
	if err == nil || !strings.Contains(err.Error(), "Bitcoin/regtest") {
		t.Errorf("err = %v, want a magic mismatch naming regtest", err)
	}
}
