package chain

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/btcsuite/btcd/chainhash/v2"
)

// Byte order (PROTOCOL.md 0.1): hashes are kept in their natural order,
// the order hash functions output and transactions embed. On the Electrum
// wire every txid, block hash and script hash is shown reversed, as
// lowercase hex. chainhash.Hash.String and ScriptHash.Hex produce that wire
// form; ParseHash and ParseScriptHash read it, upper case included.

// HashXLen is the length of a hashX, the index key of a script.
const HashXLen = 11

// ErrInvalidHash means a hex string is not a 32-byte hash in wire form.
var ErrInvalidHash = errors.New("chain: invalid hash")

// ScriptHash is the SHA-256 of an output script, in natural byte order:
// the Electrum script hash before its wire reversal (PROTOCOL.md 5.2).
type ScriptHash [sha256.Size]byte

// HashX is the first HashXLen bytes of a ScriptHash in natural order, the
// key the index files a script's history and outputs under.
type HashX [HashXLen]byte

// ScriptHashOf returns the script hash of an output script.
func ScriptHashOf(pkScript []byte) ScriptHash { return sha256.Sum256(pkScript) }

// HashXOf returns the hashX of an output script.
func HashXOf(pkScript []byte) HashX {
	sh := ScriptHashOf(pkScript)
	return sh.HashX()
}

// HashX returns the script hash's index key, its first HashXLen bytes.
func (s ScriptHash) HashX() HashX { return HashX(s[:HashXLen]) }

// Hex returns the wire form: the bytes reversed, as lowercase hex.
func (s ScriptHash) Hex() string { return reversedHex(s[:]) }

// String returns the wire form, like Hex.
func (s ScriptHash) String() string { return s.Hex() }

// MarshalText encodes the script hash in wire form.
func (s ScriptHash) MarshalText() ([]byte, error) { return []byte(s.Hex()), nil }

// UnmarshalText decodes the wire form, as ParseScriptHash does.
func (s *ScriptHash) UnmarshalText(text []byte) error {
	v, err := ParseScriptHash(string(text))
	if err != nil {
		return err
	}
	*s = v
	return nil
}

// ParseScriptHash decodes a script hash in wire form (64 hex digits of the
// reversed digest, as clients send it). Upper case is accepted; anything
// else that is not exactly 64 hex digits is refused.
func ParseScriptHash(s string) (ScriptHash, error) {
	var sh ScriptHash
	if err := decodeReversedHex(sh[:], s); err != nil {
		return ScriptHash{}, fmt.Errorf("%w: script hash %w", ErrInvalidHash, err)
	}
	return sh, nil
}

// String returns the hashX as hex in natural order, as ElectrumX logs it.
func (h HashX) String() string { return hex.EncodeToString(h[:]) }

// ParseHash decodes a txid or block hash in wire form (64 hex digits,
// reversed). Unlike chainhash.NewHashFromStr it refuses short strings.
func ParseHash(s string) (chainhash.Hash, error) {
	var h chainhash.Hash
	if err := decodeReversedHex(h[:], s); err != nil {
		return chainhash.Hash{}, fmt.Errorf("%w: %w", ErrInvalidHash, err)
	}
	return h, nil
}

// IsIndexed reports whether outputs paying pkScript go into the index:
// every script except those starting with OP_RETURN (0x6a) or with
// OP_FALSE OP_RETURN (0x00 0x6a), which are provably unspendable. The empty
// script is indexed.
func IsIndexed(pkScript []byte) bool {
	const opFalse, opReturn = 0x00, 0x6a
	switch {
	case len(pkScript) >= 1 && pkScript[0] == opReturn:
		return false
	case len(pkScript) >= 2 && pkScript[0] == opFalse && pkScript[1] == opReturn:
		return false
	}
	return true
}

// reversedHex returns b reversed as lowercase hex.
func reversedHex(b []byte) string {
	const digits = "0123456789abcdef"
	out := make([]byte, 2*len(b))
	for i, c := range b {
		j := 2 * (len(b) - 1 - i)
		out[j], out[j+1] = digits[c>>4], digits[c&0x0f]
	}
	return string(out)
}

// decodeReversedHex fills dst from exactly 2*len(dst) hex digits of the
// reversed bytes. Its errors describe the text without repeating it, since
// the text may come from a client.
func decodeReversedHex(dst []byte, s string) error {
	if len(s) != 2*len(dst) {
		return fmt.Errorf("has %d characters, want %d hex digits", len(s), 2*len(dst))
	}
	for i := range dst {
		hi, ok1 := fromHexChar(s[2*i])
		lo, ok2 := fromHexChar(s[2*i+1])
		if !ok1 || !ok2 {
			pos := 2 * i
			if ok1 {
				pos++
			}
			return fmt.Errorf("has a non-hex character at position %d", pos)
		}
		dst[len(dst)-1-i] = hi<<4 | lo
	}
	return nil
}

func fromHexChar(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}
