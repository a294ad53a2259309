package index

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"

	"amber/internal/chain"
)

// spentOut is one output a block spent: enough to put its UTXO, outpoint
// lookup and history rows back, and to delete the spend row.
type spentOut struct {
	hashX     chain.HashX
	fundTxNum uint64
	vout      uint32
	value     uint64
	spender   uint64 // tx_num of the spending transaction
}

// newOut is one indexed output a block created.
type newOut struct {
	hashX chain.HashX
	txNum uint64
	vout  uint32
}

// undoRecord is the value of an undo row: everything the block changed
// that cannot be derived from rows that survive its removal. Small numbers
// are varints and tx_nums that follow each other are differences, so a
// spent output costs about 22 bytes instead of a fixed layout's 41.
//
//	field    type     size
//	nspent   uvarint  1..5
//	spent    nspent × hashX 11, funding tx_num uint40 5, vout uvarint,
//	                  value uvarint, spending tx_num varint (difference
//	                  from the previous entry's; the first's from 0)
//	ncreated uvarint  1..5
//	created  ncreated × hashX 11, tx_num varint (difference as above),
//	                    vout uvarint
//
// The funding txid is not stored: Disconnect reads it from the funding
// transaction's txid row, which outlives the block. A block's transaction
// rows (T, I) are found from the tx count rows, which survive until the
// block is gone.
type undoRecord struct {
	spent   []spentOut
	created []newOut
}

// Lower bounds of an entry's size, for checking counts before allocating.
const (
	minSpentLen   = hashXLen + txNumLen + 3
	minCreatedLen = hashXLen + 2
)

func (u *undoRecord) marshal() []byte {
	b := make([]byte, 0, 10+len(u.spent)*(minSpentLen+8)+len(u.created)*(minCreatedLen+2))
	b = binary.AppendUvarint(b, uint64(len(u.spent)))
	var n [txNumLen]byte
	var prev uint64
	for _, s := range u.spent {
		b = append(b, s.hashX[:]...)
		putTxNum(n[:], s.fundTxNum)
		b = append(b, n[:]...)
		b = binary.AppendUvarint(b, uint64(s.vout))
		b = binary.AppendUvarint(b, s.value)
		b = binary.AppendVarint(b, int64(s.spender-prev))
		prev = s.spender
	}
	b = binary.AppendUvarint(b, uint64(len(u.created)))
	prev = 0
	for _, c := range u.created {
		b = append(b, c.hashX[:]...)
		b = binary.AppendVarint(b, int64(c.txNum-prev))
		prev = c.txNum
		b = binary.AppendUvarint(b, uint64(c.vout))
	}
	return b
}

var errBadUndo = errors.New("index: malformed undo record")

// undoReader decodes an undo record, remembering the first error.
type undoReader struct {
	b   []byte
	err error
}

func (r *undoReader) uvarint(max uint64) uint64 {
	v, n := binary.Uvarint(r.b)
	if n <= 0 || v > max {
		r.fail()
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *undoReader) varint() int64 {
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.fail()
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *undoReader) bytes(n int) []byte {
	if len(r.b) < n {
		r.fail()
		return make([]byte, n)
	}
	v := r.b[:n]
	r.b = r.b[n:]
	return v
}

func (r *undoReader) fail() {
	if r.err == nil {
		r.err = fmt.Errorf("%w: truncated or bad field with %d bytes left", errBadUndo, len(r.b))
	}
	r.b = nil
}

// count reads an entry count and checks that the rest of the record can
// hold that many entries of at least size bytes.
func (r *undoReader) count(size int) int {
	c := r.uvarint(math.MaxUint32)
	if r.err == nil && c > uint64(len(r.b)/size) {
		r.err = fmt.Errorf("%w: %d entries in %d bytes", errBadUndo, c, len(r.b))
		r.b = nil
		return 0
	}
	return int(c)
}

func unmarshalUndo(b []byte) (*undoRecord, error) {
	r := &undoReader{b: b}
	u := &undoRecord{}
	u.spent = make([]spentOut, r.count(minSpentLen))
	var prev uint64
	for i := range u.spent {
		s := &u.spent[i]
		copy(s.hashX[:], r.bytes(hashXLen))
		s.fundTxNum = getTxNum(r.bytes(txNumLen))
		s.vout = uint32(r.uvarint(math.MaxUint32))
		s.value = r.uvarint(math.MaxUint64)
		s.spender = prev + uint64(r.varint())
		prev = s.spender
	}
	u.created = make([]newOut, r.count(minCreatedLen))
	prev = 0
	for i := range u.created {
		c := &u.created[i]
		copy(c.hashX[:], r.bytes(hashXLen))
		c.txNum = prev + uint64(r.varint())
		prev = c.txNum
		c.vout = uint32(r.uvarint(math.MaxUint32))
	}
	if r.err == nil && len(r.b) != 0 {
		r.err = fmt.Errorf("%w: %d bytes after the last entry", errBadUndo, len(r.b))
	}
	if r.err != nil {
		return nil, r.err
	}
	return u, nil
}
