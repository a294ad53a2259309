package chain

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/btcsuite/btcd/wire/v2"
)

// Block files hold blocks as records of
//
//	field   type       size  order
//	magic   uint32     4     little-endian (network magic; f9 be b4 d9 on mainnet)
//	length  uint32     4     little-endian (size of the block)
//	block   []byte     length
//
// one after another: the layout of bitcoind's blk*.dat files, of
// bootstrap.dat, and of btcd's test data. Files may end in zero padding
// (bitcoind preallocates them; btcd's blk_0_to_14131.dat has it too): a
// zero magic ends the data.

// MaxBlockFileRecord bounds the length field of a block-file record; longer
// records are refused before anything is allocated for them.
const MaxBlockFileRecord = wire.MaxBlockPayload

// BlockFileReader reads the records of a block file one at a time.
type BlockFileReader struct {
	r     *bufio.Reader
	magic wire.BitcoinNet
	net   *Network
	off   int64 // offset of the next record
	n     int   // records read
	done  bool
}

// NewBlockFileReader returns a reader of block-file records whose magic
// must be the network's.
func NewBlockFileReader(r io.Reader, net *Network) *BlockFileReader {
	return &BlockFileReader{r: bufio.NewReaderSize(r, 1<<16), magic: net.Params.Net, net: net}
}

// Next returns the next block's bytes, a fresh slice the caller owns. It
// returns io.EOF at the end of the data (end of input or zero padding).
func (br *BlockFileReader) Next() ([]byte, error) {
	if br.done {
		return nil, io.EOF
	}
	var prefix [8]byte
	if _, err := io.ReadFull(br.r, prefix[:4]); err != nil {
		if err == io.EOF {
			br.done = true
			return nil, io.EOF
		}
		return nil, br.errorf(err, "magic")
	}
	magic := wire.BitcoinNet(binary.LittleEndian.Uint32(prefix[:4]))
	if magic == 0 {
		br.done = true
		return nil, io.EOF
	}
	if magic != br.magic {
		return nil, fmt.Errorf("chain: block file record %d at byte %d: magic %08x is not %s's %08x",
			br.n, br.off, uint32(magic), br.net, uint32(br.magic))
	}
	if _, err := io.ReadFull(br.r, prefix[4:]); err != nil {
		return nil, br.errorf(err, "length")
	}
	size := binary.LittleEndian.Uint32(prefix[4:])
	if size < HeaderSize || size > MaxBlockFileRecord {
		return nil, fmt.Errorf("chain: block file record %d at byte %d: length %d out of range [%d, %d]",
			br.n, br.off, size, HeaderSize, MaxBlockFileRecord)
	}
	raw := make([]byte, size)
	if _, err := io.ReadFull(br.r, raw); err != nil {
		return nil, br.errorf(err, "block")
	}
	br.off += int64(len(prefix)) + int64(size)
	br.n++
	return raw, nil
}

// errorf describes a read failure inside record br.n; a short read is
// reported as ErrTruncated.
func (br *BlockFileReader) errorf(err error, what string) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		err = &kindError{kind: ErrTruncated, msg: "truncated"}
	}
	return fmt.Errorf("chain: block file record %d at byte %d: %s: %w", br.n, br.off, what, err)
}

// ReadBlockFile calls fn with each block of a block file in order (see
// BlockFileReader) and stops at the end of the data, at the first read
// error, or at the first error fn returns, which it returns unchanged.
// Each raw slice is fresh and may be kept.
func ReadBlockFile(r io.Reader, net *Network, fn func(raw []byte) error) error {
	br := NewBlockFileReader(r, net)
	for {
		raw, err := br.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if err := fn(raw); err != nil {
			return err
		}
	}
}
