package query_test

import (
	"testing"

	"amber/server/query"
)

// TestFeeTarget is the estimatefee bucketing of spec §12.8, plus the
// edges of each range of §4.11.
func TestFeeTarget(t *testing.T) {
	for _, tc := range []struct {
		n    int64
		want int
	}{
		// §12.8.
		{0, 1}, {1, 1}, {2, 2}, {12, 12}, {13, 12}, {25, 25}, {27, 26}, {48, 48},
		{49, 48}, {144, 144}, {145, 144}, {1008, 1008}, {2000, 1008},
		// Range edges: 2..12 as is, 13..48 (but 25) rounded down to even,
		// 49..1008 down to a multiple of 24, above 1008 capped.
		{3, 3}, {11, 11}, {14, 14}, {24, 24}, {26, 26}, {47, 46}, {71, 48}, {72, 72},
		{1007, 984}, {1009, 1008}, {1 << 40, 1008},
	} {
		if got := query.FeeTarget(tc.n); got != tc.want {
			t.Errorf("FeeTarget(%d) = %d, want %d", tc.n, got, tc.want)
		}
	}
}
