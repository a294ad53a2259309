package chain

import (
	"encoding/binary"
	"fmt"
)

// Smallest serialized sizes, used to bound element counts by the bytes that
// remain before anything is allocated: a count that cannot fit is reported
// as truncation instead of letting the decoder allocate for it.
const (
	minTxSize    = 10 // version, input count, output count, lock time
	minTxInSize  = 41 // outpoint 36, script length 1, sequence 4
	minTxOutSize = 9  // value 8, script length 1
)

// txLayout is where the parts of one serialized transaction lie, as byte
// offsets from its first byte.
type txLayout struct {
	// size is the length of the whole serialization, witness included.
	size int
	// segwit reports the BIP 144 serialization (marker 0x00, flag 0x01).
	segwit bool
	// witStart and witEnd bound the witness section when segwit is set;
	// the stripped (txid) serialization is b[:4] + b[6:witStart] +
	// b[witEnd:size].
	witStart, witEnd int
}

// strippedSize is the size of the serialization without marker, flag and
// witnesses: the size the txid is computed over.
func (l txLayout) strippedSize() int {
	if !l.segwit {
		return l.size
	}
	return l.size - 2 - (l.witEnd - l.witStart)
}

// scanner walks serialized bytes without allocating. The first failure
// sticks: later calls do nothing and err reports where it happened.
type scanner struct {
	b   []byte
	pos int
	err error
}

func (s *scanner) fail(format string, args ...any) {
	if s.err == nil {
		s.err = &kindError{kind: ErrTruncated, msg: "truncated: " + fmt.Sprintf(format, args...)}
	}
}

// kindError is a detail message that matches one of the package's
// sentinel errors with errors.Is without repeating its "chain:" prefix
// in the middle of a wrapped message.
type kindError struct {
	kind error
	msg  string
}

func (e *kindError) Error() string { return e.msg }
func (e *kindError) Unwrap() error { return e.kind }

// skip advances over n bytes.
func (s *scanner) skip(n uint64, what string) {
	if s.err != nil {
		return
	}
	if n > uint64(len(s.b)-s.pos) {
		s.fail("%s at byte %d needs %d bytes, %d left", what, s.pos, n, len(s.b)-s.pos)
		return
	}
	s.pos += int(n)
}

// varint reads a compact-size integer, refusing non-canonical encodings
// (a value that fits a shorter form) as btcd's decoder does.
func (s *scanner) varint(what string) uint64 {
	if s.err != nil {
		return 0
	}
	if s.pos >= len(s.b) {
		s.fail("%s at byte %d: no bytes left", what, s.pos)
		return 0
	}
	var width int
	switch d := s.b[s.pos]; d {
	case 0xfd:
		width = 2
	case 0xfe:
		width = 4
	case 0xff:
		width = 8
	default:
		s.pos++
		return uint64(d)
	}
	if len(s.b)-s.pos-1 < width {
		s.fail("%s at byte %d: %d-byte varint, %d bytes left", what, s.pos, width+1, len(s.b)-s.pos)
		return 0
	}
	var v, least uint64
	switch p := s.b[s.pos+1:]; width {
	case 2:
		v, least = uint64(binary.LittleEndian.Uint16(p)), 0xfd
	case 4:
		v, least = uint64(binary.LittleEndian.Uint32(p)), 0x1_0000
	default:
		v, least = binary.LittleEndian.Uint64(p), 0x1_0000_0000
	}
	if v < least {
		// Bitcoin refuses these, and a txid or block hash would not
		// survive re-serialization.
		s.err = fmt.Errorf("%s at byte %d: non-canonical varint %x", what, s.pos, s.b[s.pos:s.pos+1+width])
		return 0
	}
	s.pos += 1 + width
	return v
}

// count reads an element count and checks that that many elements of at
// least minSize bytes each fit in what is left.
func (s *scanner) count(minSize int, what string) uint64 {
	at := s.pos
	n := s.varint(what)
	if s.err != nil {
		return 0
	}
	if left := len(s.b) - s.pos; n > uint64(left/minSize) {
		s.fail("%s at byte %d is %d, but %d bytes left hold at most %d", what, at, n, left, left/minSize)
		return 0
	}
	return n
}

// scanTx finds the extent and the witness section of the transaction that
// starts at b[0]. Bytes after it are ignored. It checks structure only; the
// caller decodes the transaction with btcd afterwards.
func scanTx(b []byte) (txLayout, error) {
	s := scanner{b: b}
	var l txLayout
	s.skip(4, "version")
	if s.err == nil && len(b) > 4 && b[4] == 0x00 {
		// An input count of zero is the BIP 144 marker; the flag must
		// follow (btcd checks its value).
		s.skip(2, "segwit marker and flag")
		l.segwit = true
	}
	nIn := s.count(minTxInSize, "input count")
	for i := uint64(0); i < nIn && s.err == nil; i++ {
		s.skip(36, "outpoint")
		s.skip(s.count(1, "signature script length"), "signature script")
		s.skip(4, "sequence")
	}
	nOut := s.count(minTxOutSize, "output count")
	for i := uint64(0); i < nOut && s.err == nil; i++ {
		s.skip(8, "value")
		s.skip(s.count(1, "output script length"), "output script")
	}
	if l.segwit {
		l.witStart = s.pos
		for i := uint64(0); i < nIn && s.err == nil; i++ {
			items := s.count(1, "witness item count")
			for j := uint64(0); j < items && s.err == nil; j++ {
				s.skip(s.count(1, "witness item length"), "witness item")
			}
		}
		l.witEnd = s.pos
	}
	s.skip(4, "lock time")
	if s.err != nil {
		return txLayout{}, s.err
	}
	l.size = s.pos
	return l, nil
}
