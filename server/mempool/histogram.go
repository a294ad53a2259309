package mempool

import (
	"slices"
	"strconv"
	"strings"
)

// histogramBin is the smallest bucket of the compact fee histogram in
// vbytes: ElectrumX's MEMPOOL_COMPACT_HISTOGRAM_BINSIZE.
const histogramBin = 30_000

// FeeBucket is one entry of the compact fee histogram: the total virtual
// size of the mempool transactions paying at least Rate and less than the
// previous bucket's rate.
type FeeBucket struct {
	// Rate is the lowest fee rate in the bucket in sat/vB, a multiple of
	// 0.1.
	Rate float64
	// VSize is the bucket's total virtual size in vbytes.
	VSize int64
}

// MarshalJSON encodes the bucket as the protocol's [fee_rate, vsize] pair,
// the rate written as Python's json writes a float ("1.0", "12.3"), as
// ElectrumX sends it.
func (b FeeBucket) MarshalJSON() ([]byte, error) {
	rate := strconv.FormatFloat(b.Rate, 'f', -1, 64)
	if !strings.ContainsAny(rate, ".eE") {
		rate += ".0"
	}
	out := make([]byte, 0, len(rate)+24)
	out = append(out, '[')
	out = append(out, rate...)
	out = append(out, ',')
	out = strconv.AppendInt(out, b.VSize, 10)
	return append(out, ']'), nil
}

// rateTenths is a transaction's fee rate in tenths of a sat/vB, rounded
// down: ElectrumX's floor(10 * fee / size). Integer division gives the
// exact floor, which the float computation also gives for any real fee
// and size.
func rateTenths(fee, vsize int64) int64 {
	if vsize <= 0 || fee <= 0 {
		return 0
	}
	return fee * 10 / vsize
}

// compactHistogram compacts a histogram of rate (in tenths of a sat/vB) →
// total vsize into buckets, highest rate first, following ElectrumX
// (PROTOCOL.md 5.8): a bucket is emitted once its size passes the bin
// size, which then grows by 10%; a rate whose own size is more than twice
// the bin size first closes the bucket collected so far; what is left
// after the last emitted bucket is dropped.
func compactHistogram(byRate map[int64]int64, bin float64) []FeeBucket {
	rates := make([]int64, 0, len(byRate))
	for r := range byRate {
		rates = append(rates, r)
	}
	slices.Sort(rates)
	slices.Reverse(rates)

	out := []FeeBucket{}
	var cum int64
	prev := int64(-1)
	for _, r := range rates {
		size := byRate[r]
		if float64(size) > 2*bin && prev >= 0 && cum > 0 {
			out = append(out, FeeBucket{Rate: float64(prev) / 10, VSize: cum})
			cum = 0
			bin *= 1.1
		}
		cum += size
		if float64(cum) > bin {
			out = append(out, FeeBucket{Rate: float64(r) / 10, VSize: cum})
			cum = 0
			bin *= 1.1
		}
		prev = r
	}
	// NOTE: cum left over here, the cheapest transactions, is dropped,
	// as ElectrumX drops it.
	return out
}

// FeeRateBands is the mempool's virtual size by fee rate band for
// metrics: out[i] is the vsize paying at least bounds[i] sat/vB and less
// than bounds[i+1]; bounds rise and start at 0. Unlike the compact
// histogram it drops nothing.
func (m *Mempool) FeeRateBands(bounds []float64) []int64 {
	out := make([]int64, len(bounds))
	m.mu.RLock()
	defer m.mu.RUnlock()
	for _, t := range m.txs {
		rate := float64(rateTenths(t.fee, t.vsize)) / 10
		i, _ := slices.BinarySearch(bounds, rate)
		if i == len(bounds) || bounds[i] > rate {
			i--
		}
		if i >= 0 {
			out[i] += t.vsize
		}
	}
	return out
}
