package mempool

import (
	"encoding/json"
	"math"
	"slices"
	"testing"
	"time"

	"github.com/btcsuite/btcd/wire/v2"
)

// tenths turns a histogram keyed by rate in sat/vB into one keyed by
// tenths of a sat/vB.
func tenths(h map[float64]int64) map[int64]int64 {
	out := map[int64]int64{}
	for r, s := range h {
		out[int64(math.Round(r*10))] += s
	}
	return out
}

// TestCompactHistogram runs ElectrumX's unit-test vectors (PROTOCOL.md
// 12.7).
func TestCompactHistogram(t *testing.T) {
	first := map[float64]int64{10: 100000, 11: 1000, 12: 10000000, 13: 1000, 14: 1000, 15: 1000, 16: 1000,
		17: 1000, 18: 900000, 19: 1000, 20: 1000, 21: 75000, 22: 1000}
	tests := []struct {
		name string
		hist map[float64]int64
		bin  float64
		want []FeeBucket
	}{
		{"bin 100000 drops the residual", first, 100_000,
			[]FeeBucket{{19, 78000}, {18, 900000}, {13, 5000}, {12, 10000000}}},
		{"bin 30000", first, 30_000,
			[]FeeBucket{{22, 1000}, {21, 75000}, {19, 2000}, {18, 900000}, {13, 5000}, {12, 10000000}, {10, 101000}}},
		{"tenths", map[float64]int64{1.0: 10000000, 1.1: 30000, 1.2: 40000, 10: 500000, 10.1: 1000, 11: 50000}, 100_000,
			[]FeeBucket{{10.1, 51000}, {10, 500000}, {1.1, 70000}, {1.0, 10000000}}},
		{"empty", map[float64]int64{}, 30_000, []FeeBucket{}},
		{"all residual", map[float64]int64{5: 100, 1: 200}, 30_000, []FeeBucket{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := compactHistogram(tenths(tc.hist), tc.bin)
			if !slices.Equal(got, tc.want) {
				t.Errorf("got  %v\nwant %v", got, tc.want)
			}
		})
	}
}

func TestRateTenths(t *testing.T) {
	tests := []struct {
		fee, vsize int64
		want       float64
	}{
		{141, 141, 1.0},
		{226, 141, 1.6},
		{1000, 250, 4.0},
		{999, 1000, 0.9},
		{0, 100, 0},
		{1, 1000, 0},
		{123456789, 1, 123456789},
	}
	for _, tc := range tests {
		if got := float64(rateTenths(tc.fee, tc.vsize)) / 10; got != tc.want {
			t.Errorf("rate of %d sat / %d vB = %v, want %v", tc.fee, tc.vsize, got, tc.want)
		}
		// Python's floor(10 * (fee / size)) / 10 agrees.
		if tc.fee > 0 {
			py := math.Floor(10*(float64(tc.fee)/float64(tc.vsize))) / 10
			if py != tc.want {
				t.Errorf("float rate of %d / %d = %v", tc.fee, tc.vsize, py)
			}
		}
	}
}

func TestFeeBucketJSON(t *testing.T) {
	b, err := json.Marshal([]FeeBucket{{1, 10000000}, {12.3, 5000}, {0, 7}, {10.1, 51000}})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(b), `[[1.0,10000000],[12.3,5000],[0.0,7],[10.1,51000]]`; got != want {
		t.Errorf("got %s, want %s", got, want)
	}
}

// sizedTx builds a non-witness transaction of exactly size bytes spending
// in, by padding its input script.
func (e *env) sizedTx(in wire.OutPoint, size int, outs ...*wire.TxOut) *wire.MsgTx {
	e.t.Helper()
	tx := e.newTx([]wire.OutPoint{in}, outs...)
	for pad := max(0, size-tx.SerializeSize()); pad >= 0; pad-- {
		tx.TxIn[0].SignatureScript = make([]byte, pad)
		if tx.SerializeSize() == size {
			return tx
		}
	}
	e.t.Fatalf("cannot make a %d-byte transaction", size)
	return nil
}

// TestFeeHistogram computes the histogram of a mempool through Refresh:
// rates are floored, the cheapest residual dropped, and the histogram is
// recomputed only once the interval has passed.
func TestFeeHistogram(t *testing.T) {
	e := newEnv(t, Options{})
	if got := e.m.FeeHistogram(); got == nil || len(got) != 0 {
		t.Fatalf("histogram before the first refresh: %v", got)
	}
	// 1.6028 sat/vB floored to 1.6; 1.0; 0.999 floored to 0.9 and left
	// over below the last bucket.
	tx1 := e.sizedTx(e.fund(1, 100_000), 40_000, out(2, 100_000-64_112))
	tx2 := e.sizedTx(e.fund(3, 100_000), 35_000, out(4, 100_000-35_000))
	tx3 := e.sizedTx(e.fund(5, 100_000), 1_000, out(6, 100_000-999))
	e.send(tx1, tx2, tx3)
	e.refresh()
	want := []FeeBucket{{1.6, 40_000}, {1.0, 35_000}}
	if got := e.m.FeeHistogram(); !slices.Equal(got, want) {
		t.Fatalf("histogram %v, want %v", got, want)
	}
	if got := e.m.History(hxOf(1)); got[0].VSize != 40_000 || got[0].Fee != 64_112 {
		t.Errorf("entry %+v", got[0])
	}

	// Within the interval the histogram stays as it was.
	e.drop(tx1)
	e.now = e.now.Add(DefaultHistogramInterval - time.Second)
	e.refresh()
	if got := e.m.FeeHistogram(); !slices.Equal(got, want) {
		t.Errorf("histogram recomputed early: %v", got)
	}
	e.now = e.now.Add(time.Second)
	e.refresh()
	if got, want := e.m.FeeHistogram(), []FeeBucket{{1.0, 35_000}}; !slices.Equal(got, want) {
		t.Errorf("histogram %v, want %v", got, want)
	}
}
