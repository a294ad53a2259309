package methods

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/btcsuite/btcd/chainhash/v2"

	"amber/internal/chain"
	"amber/server/rpc"
)

func badRequest(format string, args ...any) *rpc.Error {
	return rpc.BadRequest(fmt.Sprintf(format, args...))
}

// Argument validation as ElectrumX does it (spec §4 conventions); every
// failure is error code 1 naming the value.

func shown(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	return string(bytes.TrimSpace(raw))
}

// Bounds of integer parameters: a value past its bound is refused before
// any conversion, so "4294967296" cannot wrap to height 0.
const (
	maxHeight   = math.MaxInt32  // heights, cp_height, tx_pos
	maxOutIndex = math.MaxUint32 // txout_idx
	maxAny      = math.MaxInt64  // counts and sizes that are clamped or compared later
)

// nonNegInt accepts what Python's int() accepts from JSON: integers,
// floats (truncated), integer strings and booleans, from 0 to limit.
func nonNegInt(raw json.RawMessage, limit int64) (int64, error) {
	bad := badRequest("%s should be a non-negative integer", shown(raw))
	raw = bytes.TrimSpace(raw)
	var n int64
	switch {
	case len(raw) == 0:
		return 0, bad
	case string(raw) == "true":
		n = 1
	case string(raw) == "false":
		n = 0
	case raw[0] == '"':
		var s string
		if json.Unmarshal(raw, &s) != nil {
			return 0, bad
		}
		var err error
		if n, err = strconv.ParseInt(strings.TrimSpace(s), 10, 64); err != nil {
			return 0, bad
		}
	default:
		f, err := strconv.ParseFloat(string(raw), 64)
		if err != nil || math.IsNaN(f) || f < 0 || f >= 1<<63 {
			return 0, bad
		}
		n = int64(f)
	}
	if n < 0 || n > limit {
		return 0, bad
	}
	return n, nil
}

func optNonNegInt(raw json.RawMessage, def, limit int64) (int64, error) {
	if raw == nil || string(bytes.TrimSpace(raw)) == "null" {
		return def, nil
	}
	return nonNegInt(raw, limit)
}

func hexString(raw json.RawMessage) (string, []byte, error) {
	var s string
	if json.Unmarshal(raw, &s) != nil {
		return "", nil, badRequest("%s should be a hex string", shown(raw))
	}
	b, err := hex.DecodeString(s)
	if err != nil {
		return "", nil, badRequest("%s should be a hex string", s)
	}
	return s, b, nil
}

func scriptHashArg(raw json.RawMessage) (chain.ScriptHash, string, error) {
	var s string
	if json.Unmarshal(raw, &s) != nil {
		return chain.ScriptHash{}, "", badRequest("%s is not a valid script hash", shown(raw))
	}
	sh, err := chain.ParseScriptHash(s)
	if err != nil {
		return chain.ScriptHash{}, "", badRequest("%s is not a valid script hash", s)
	}
	return sh, s, nil
}

func txidArg(raw json.RawMessage) (chainhash.Hash, error) {
	var s string
	if json.Unmarshal(raw, &s) != nil {
		return chainhash.Hash{}, badRequest("%s should be a transaction hash", shown(raw))
	}
	h, err := chain.ParseHash(s)
	if err != nil {
		return chainhash.Hash{}, badRequest("%s should be a transaction hash", s)
	}
	return h, nil
}

func boolArg(raw json.RawMessage, name string) (bool, error) {
	switch string(bytes.TrimSpace(raw)) {
	case "", "null", "false", "0":
		return false, nil
	case "true", "1":
		return true, nil
	}
	return false, badRequest("%q must be a boolean", name)
}
