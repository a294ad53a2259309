package daemon

import (
	"bytes"
	"encoding/json"
	"testing"
)

// TestDecodeHex checks the in-place fast path against the general one:
// plain hex, hex written with JSON escapes, and what is not hex.
func TestDecodeHex(t *testing.T) {
	for raw, want := range map[string][]byte{
		`"00ff10"`:       {0x00, 0xff, 0x10},
		`"00FF10"`:       {0x00, 0xff, 0x10},
		`""`:             {},
		`"\u0030\u0031"`: {0x01},
	} {
		got, err := decodeHex(json.RawMessage(raw))
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("decodeHex(%s) = %x, %v; want %x", raw, got, err, want)
		}
	}
	for _, raw := range []string{`"0"`, `"zz"`, `"00"x`, `12`, `"`, `"0\"`} {
		if got, err := decodeHex(json.RawMessage(raw)); err == nil {
			t.Errorf("decodeHex(%s) = %x, want an error", raw, got)
		}
	}
}
