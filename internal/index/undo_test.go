package index

import (
	"errors"
	"math"
	"reflect"
	"testing"

	"amber/internal/chain"
)

// TestUndoRoundTrip encodes records with extreme and ordinary field values
// and reads them back unchanged (the txid prefix excepted: it is not
// stored).
func TestUndoRoundTrip(t *testing.T) {
	hx := func(b byte) (h chain.HashX) {
		for i := range h {
			h[i] = b + byte(i)
		}
		return h
	}
	for _, u := range []*undoRecord{
		{},
		{
			spent: []spentOut{
				{hashX: hx(1), fundTxNum: 0, vout: 0, value: 0, spender: 7},
				{hashX: hx(2), fundTxNum: maxTxNum, vout: math.MaxUint32, value: math.MaxUint64, spender: maxTxNum},
				{hashX: hx(3), fundTxNum: 12345, vout: 300, value: 50_0000_0000, spender: 9}, // spender goes back
			},
			created: []newOut{
				{hashX: hx(4), txNum: maxTxNum, vout: 1},
				{hashX: hx(5), txNum: 3, vout: math.MaxUint32},
				{hashX: hx(6), txNum: 3, vout: 70_000},
			},
		},
	} {
		got, err := unmarshalUndo(u.marshal())
		if err != nil {
			t.Fatal(err)
		}
		if len(u.spent) == 0 && len(got.spent) == 0 && len(u.created) == 0 && len(got.created) == 0 {
			continue
		}
		if !reflect.DeepEqual(got, u) {
			t.Errorf("round trip: got %+v, want %+v", got, u)
		}
	}
}

// TestUndoMalformed refuses truncated records, trailing bytes and counts
// the record cannot hold, with errBadUndo.
func TestUndoMalformed(t *testing.T) {
	u := &undoRecord{
		spent:   []spentOut{{fundTxNum: 5, vout: 1, value: 1000, spender: 6}},
		created: []newOut{{txNum: 6, vout: 0}, {txNum: 6, vout: 1}},
	}
	good := u.marshal()
	bad := [][]byte{
		nil,
		{0xff, 0xff, 0xff, 0xff, 0x0f}, // 2^32-1 spent entries in no bytes
		append(append([]byte{}, good...), 0),
	}
	for n := 1; n < len(good); n++ {
		bad = append(bad, good[:n])
	}
	for _, b := range bad {
		if _, err := unmarshalUndo(b); !errors.Is(err, errBadUndo) {
			t.Errorf("unmarshalUndo(%x) = %v, want errBadUndo", b, err)
		}
	}
}
