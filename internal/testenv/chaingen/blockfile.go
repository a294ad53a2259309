package chaingen

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"

	"github.com/btcsuite/btcd/chainhash/v2"
	"github.com/btcsuite/btcd/wire/v2"

	"amber/internal/chain"
)

// BlockFile serves the blocks of a block file (as WriteMainnet writes
// them, genesis first) from disk: only each block's offset, hash and
// transaction count are held in memory, so chains larger than memory can
// be indexed from it.
type BlockFile struct {
	f      *os.File
	offs   []int64 // offset of each block's bytes
	sizes  []uint32
	hashes []chainhash.Hash
	byHash map[chainhash.Hash]int32
	txs    []int64 // transactions in blocks 1..h, coinbases included
}

// OpenBlockFile reads the record headers and block headers of the block
// file at path, whose records must carry net's magic.
func OpenBlockFile(path string, net *chain.Network) (*BlockFile, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("chaingen: open block file: %w", err)
	}
	bf := &BlockFile{f: f, byHash: map[chainhash.Hash]int32{}}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("chaingen: open block file: %w", err)
	}
	var head [8 + chain.HeaderSize + 9]byte
	var total int64
	for off := int64(0); off < st.Size(); {
		// A short read is fine near the end, if it holds a block header
		// and the transaction count's first byte.
		n, err := f.ReadAt(head[:], off)
		if n < 8+chain.HeaderSize+1 {
			f.Close()
			if err == nil || errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return nil, fmt.Errorf("chaingen: block file %s: record at byte %d: %w", path, off, err)
		}
		if m := wire.BitcoinNet(binary.LittleEndian.Uint32(head[:])); m != net.Params.Net {
			f.Close()
			return nil, fmt.Errorf("chaingen: block file %s: record at byte %d has magic %08x, not %s's", path, off, uint32(m), net)
		}
		size := binary.LittleEndian.Uint32(head[4:])
		if size < chain.HeaderSize+1 || size > chain.MaxBlockFileRecord || off+8+int64(size) > st.Size() {
			f.Close()
			return nil, fmt.Errorf("chaingen: block file %s: record at byte %d has length %d", path, off, size)
		}
		ntx, k := readVarInt(head[8+chain.HeaderSize : n])
		if k == 0 {
			f.Close()
			return nil, fmt.Errorf("chaingen: block file %s: bad transaction count at byte %d", path, off)
		}
		h := chain.HeaderHash(head[8 : 8+chain.HeaderSize])
		bf.byHash[h] = int32(len(bf.hashes))
		bf.hashes = append(bf.hashes, h)
		bf.offs = append(bf.offs, off+8)
		bf.sizes = append(bf.sizes, size)
		if len(bf.hashes) > 1 {
			total += int64(ntx) // the index counts no transaction in genesis
		}
		bf.txs = append(bf.txs, total)
		off += 8 + int64(size)
	}
	if len(bf.hashes) == 0 {
		f.Close()
		return nil, fmt.Errorf("chaingen: block file %s holds no block", path)
	}
	return bf, nil
}

// readVarInt decodes a Bitcoin CompactSize; k is 0 when b is too short.
func readVarInt(b []byte) (v uint64, k int) {
	if len(b) == 0 {
		return 0, 0
	}
	switch b[0] {
	case 0xfd:
		if len(b) < 3 {
			return 0, 0
		}
		return uint64(binary.LittleEndian.Uint16(b[1:])), 3
	case 0xfe:
		if len(b) < 5 {
			return 0, 0
		}
		return uint64(binary.LittleEndian.Uint32(b[1:])), 5
	case 0xff:
		if len(b) < 9 {
			return 0, 0
		}
		return binary.LittleEndian.Uint64(b[1:]), 9
	}
	return uint64(b[0]), 1
}

// Close closes the file.
func (bf *BlockFile) Close() error { return bf.f.Close() }

// Height is the height of the file's last block.
func (bf *BlockFile) Height() int32 { return int32(len(bf.hashes) - 1) }

// TxsTo returns the transactions, coinbases included, of blocks 1..h:
// the index's transaction count at height h (it counts none in genesis).
func (bf *BlockFile) TxsTo(h int32) int64 { return bf.txs[h] }

// HeightForTxs returns the lowest height h with TxsTo(h) >= txs, or the
// last height.
func (bf *BlockFile) HeightForTxs(txs int64) int32 {
	i := sort.Search(len(bf.txs), func(i int) bool { return bf.txs[i] >= txs })
	return int32(min(i, len(bf.txs)-1))
}

// Source returns a block source (chainsync.Source) that ends at height
// tip of the file.
func (bf *BlockFile) Source(tip int32) *BlockFileSource {
	return &BlockFileSource{bf: bf, tip: min(tip, bf.Height())}
}

// BlockFileSource serves blocks 0..tip of a BlockFile.
type BlockFileSource struct {
	bf  *BlockFile
	tip int32
}

// BestBlock returns the source's tip.
func (s *BlockFileSource) BestBlock(context.Context) (int32, chainhash.Hash, error) {
	return s.tip, s.bf.hashes[s.tip], nil
}

// BlockHashes returns count hashes from start.
func (s *BlockFileSource) BlockHashes(_ context.Context, start int32, count int) ([]chainhash.Hash, error) {
	if start < 0 || int64(start)+int64(count) > int64(s.tip)+1 {
		return nil, fmt.Errorf("chaingen: heights %d+%d beyond the source's tip %d", start, count, s.tip)
	}
	return s.bf.hashes[start : int(start)+count], nil
}

// RawBlocks reads the blocks with the given hashes from the file.
func (s *BlockFileSource) RawBlocks(_ context.Context, hashes []chainhash.Hash) ([][]byte, error) {
	out := make([][]byte, len(hashes))
	for i, h := range hashes {
		n, ok := s.bf.byHash[h]
		if !ok || n > s.tip {
			return nil, fmt.Errorf("chaingen: no block %s", h)
		}
		b := make([]byte, s.bf.sizes[n])
		if _, err := s.bf.f.ReadAt(b, s.bf.offs[n]); err != nil {
			return nil, fmt.Errorf("chaingen: read block %d: %w", n, err)
		}
		out[i] = b
	}
	return out, nil
}
