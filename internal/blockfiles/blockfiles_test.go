package blockfiles

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/btcsuite/btcd/chainhash/v2"
	"github.com/btcsuite/btcd/wire/v2"
)

const testNet = wire.TestNet // regtest's magic

// fakeBlock is a block-shaped record: an 80-byte header that names n,
// and a body of n%300 bytes.
func fakeBlock(n int) []byte {
	b := make([]byte, 80+n%300)
	binary.LittleEndian.PutUint32(b[4:], uint32(n))
	for i := 80; i < len(b); i++ {
		b[i] = byte(n + i)
	}
	return b
}

func hashOf(b []byte) chainhash.Hash { return chainhash.DoubleHashH(b[:80]) }

// writeFiles writes the blocks as Core does: records of magic, length
// and block, XORed with key at each byte's file offset; each file ends in
// zeros (preallocated), also XORed.
func writeFiles(t *testing.T, dir string, key [8]byte, files ...[][]byte) {
	t.Helper()
	if key != [8]byte{} {
		if err := os.WriteFile(filepath.Join(dir, "xor.dat"), key[:], 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for n, blocks := range files {
		var f bytes.Buffer
		for _, b := range blocks {
			_ = binary.Write(&f, binary.LittleEndian, uint32(testNet))
			_ = binary.Write(&f, binary.LittleEndian, uint32(len(b)))
			f.Write(b)
		}
		f.Write(make([]byte, 1000))
		raw := f.Bytes()
		for i := range raw {
			raw[i] ^= key[i%8]
		}
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("blk%05d.dat", n)), raw, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// TestBlocks: blocks are found whatever their order in the files and
// across files, XOR-decoded, and a block not in the files is nil.
func TestBlocks(t *testing.T) {
	for _, key := range [][8]byte{{}, {0xd3, 0x79, 0x69, 0xb4, 0x34, 0x72, 0x7f, 0xbd}} {
		dir := t.TempDir()
		var chain [][]byte
		for n := range 40 {
			chain = append(chain, fakeBlock(n))
		}
		// As Core stores a download: 0-9 in order, then 10-19 out of
		// order, and 20-39 in the next file with a stale block.
		f0 := append([][]byte{}, chain[:10]...)
		for _, n := range []int{12, 10, 15, 11, 13, 14, 19, 16, 17, 18} {
			f0 = append(f0, chain[n])
		}
		f1 := append([][]byte{fakeBlock(1000)}, chain[20:]...)
		writeFiles(t, dir, key, f0, f1)

		r, err := Open(dir, testNet, hashOf(chain[0]))
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		for start := 0; start < 40; start += 7 {
			end := min(start+7, 40)
			var hashes []chainhash.Hash
			for _, b := range chain[start:end] {
				hashes = append(hashes, hashOf(b))
			}
			got, err := r.Blocks(hashes)
			if err != nil {
				t.Fatal(err)
			}
			for i, b := range got {
				if !bytes.Equal(b, chain[start+i]) {
					t.Fatalf("key %x: block %d: got %d bytes, want %d", key, start+i, len(b), len(chain[start+i]))
				}
			}
		}
		missing := hashOf(fakeBlock(5000))
		got, err := r.Blocks([]chainhash.Hash{missing, hashOf(fakeBlock(1000))})
		if err != nil || got[0] != nil || !bytes.Equal(got[1], fakeBlock(1000)) {
			t.Fatalf("a block not in the files and a stale one: %v, %v", got, err)
		}
	}
}

// TestBlocksWrittenLater: a block Core writes after the scan reached the
// end of the data is found by the next call.
func TestBlocksWrittenLater(t *testing.T) {
	dir := t.TempDir()
	a, b := fakeBlock(0), fakeBlock(1)
	writeFiles(t, dir, [8]byte{}, [][]byte{a})
	r, err := Open(dir, testNet, hashOf(a))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if got, err := r.Blocks([]chainhash.Hash{hashOf(b)}); err != nil || got[0] != nil {
		t.Fatalf("a block not yet written: %v, %v", got, err)
	}
	writeFiles(t, dir, [8]byte{}, [][]byte{a, b})
	if got, err := r.Blocks([]chainhash.Hash{hashOf(b)}); err != nil || !bytes.Equal(got[0], b) {
		t.Fatalf("the block once written: %v, %v", got, err)
	}
}

// TestOpenRefuses: a directory of another network's blocks, or with no
// block files, is refused.
func TestOpenRefuses(t *testing.T) {
	dir := t.TempDir()
	if _, err := Open(dir, testNet, hashOf(fakeBlock(0))); err == nil {
		t.Error("an empty directory was accepted")
	}
	writeFiles(t, dir, [8]byte{}, [][]byte{fakeBlock(0)})
	if _, err := Open(dir, testNet, hashOf(fakeBlock(7))); err == nil {
		t.Error("files starting with another genesis were accepted")
	}
	if _, err := Open(dir, wire.MainNet, hashOf(fakeBlock(0))); err == nil {
		t.Error("files of another network's magic were accepted")
	}
	if err := os.WriteFile(filepath.Join(dir, "xor.dat"), []byte{1, 2, 3}, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(dir, testNet, hashOf(fakeBlock(0))); err == nil {
		t.Error("a 3-byte xor.dat was accepted")
	}
}
