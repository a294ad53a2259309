package builder

import "testing"

func TestBtcToSat(t *testing.T) {
	for in, want := range map[string]uint64{"0": 0, "20.00000000": 20e8, "0.1": 1e7, "706550.00000000": 70655000000000,
		"20999999.97690000": 2099999997690000, "0.00000001": 1} {
		if got, err := btcToSat(in); err != nil || got != want {
			t.Errorf("btcToSat(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "-1", "1.123456789", "1e8", "x.1", "184467440737.09551616"} {
		if _, err := btcToSat(bad); err == nil {
			t.Errorf("btcToSat(%q) accepted", bad)
		}
	}
}
