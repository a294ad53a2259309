package index

import (
	"encoding/binary"
	"errors"
	"fmt"

	"amber/internal/chain"
)

// spentOut is one output a block spent: enough to put its UTXO, outpoint
// lookup and history rows back, and to delete the spend row.
type spentOut struct {
	hashX     chain.HashX
	fundTxNum uint64
	vout      uint32
	value     uint64
	txid8     [shortLen]byte
	spender   uint64 // tx_num of the spending transaction
}

// newOut is one indexed output a block created.
type newOut struct {
	hashX chain.HashX
	txNum uint64
	vout  uint32
}

// undoRecord is the value of an undo row: everything the block changed
// that cannot be derived from rows that survive its removal.
//
//	field    type     size
//	nspent   uint32   4
//	spent    nspent × 41: hashX 11, funding tx_num 5, vout 4, value 8,
//	                      txid8 8, spending tx_num 5
//	ncreated uint32   4
//	created  ncreated × 20: hashX 11, tx_num 5, vout 4
//
// A block's transaction rows (T, I) are found from the tx count rows,
// which survive until the block is gone.
type undoRecord struct {
	spent   []spentOut
	created []newOut
}

const (
	spentLen   = hashXLen + txNumLen + voutLen + valueLen + shortLen + txNumLen
	createdLen = hashXLen + txNumLen + voutLen
)

func (u *undoRecord) marshal() []byte {
	b := make([]byte, 0, 8+len(u.spent)*spentLen+len(u.created)*createdLen)
	b = binary.BigEndian.AppendUint32(b, uint32(len(u.spent)))
	var n [txNumLen]byte
	for _, s := range u.spent {
		b = append(b, s.hashX[:]...)
		putTxNum(n[:], s.fundTxNum)
		b = append(b, n[:]...)
		b = binary.BigEndian.AppendUint32(b, s.vout)
		b = binary.BigEndian.AppendUint64(b, s.value)
		b = append(b, s.txid8[:]...)
		putTxNum(n[:], s.spender)
		b = append(b, n[:]...)
	}
	b = binary.BigEndian.AppendUint32(b, uint32(len(u.created)))
	for _, c := range u.created {
		b = append(b, c.hashX[:]...)
		putTxNum(n[:], c.txNum)
		b = append(b, n[:]...)
		b = binary.BigEndian.AppendUint32(b, c.vout)
	}
	return b
}

var errBadUndo = errors.New("index: malformed undo record")

func unmarshalUndo(b []byte) (*undoRecord, error) {
	u := &undoRecord{}
	if len(b) < 4 {
		return nil, errBadUndo
	}
	ns := int(binary.BigEndian.Uint32(b))
	b = b[4:]
	if ns < 0 || len(b) < ns*spentLen+4 {
		return nil, fmt.Errorf("%w: %d spent outputs in %d bytes", errBadUndo, ns, len(b))
	}
	u.spent = make([]spentOut, ns)
	for i := range u.spent {
		s := &u.spent[i]
		copy(s.hashX[:], b)
		b = b[hashXLen:]
		s.fundTxNum = getTxNum(b)
		b = b[txNumLen:]
		s.vout = binary.BigEndian.Uint32(b)
		b = b[voutLen:]
		s.value = binary.BigEndian.Uint64(b)
		b = b[valueLen:]
		copy(s.txid8[:], b)
		b = b[shortLen:]
		s.spender = getTxNum(b)
		b = b[txNumLen:]
	}
	nc := int(binary.BigEndian.Uint32(b))
	b = b[4:]
	if nc < 0 || len(b) != nc*createdLen {
		return nil, fmt.Errorf("%w: %d created outputs in %d bytes", errBadUndo, nc, len(b))
	}
	u.created = make([]newOut, nc)
	for i := range u.created {
		c := &u.created[i]
		copy(c.hashX[:], b)
		b = b[hashXLen:]
		c.txNum = getTxNum(b)
		b = b[txNumLen:]
		c.vout = binary.BigEndian.Uint32(b)
		b = b[voutLen:]
	}
	return u, nil
}
