package chain_test

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"amber/internal/chain"
)

// PROTOCOL.md 12.4. natural and hashX are empty where the spec gives none;
// they then follow from the wire form by definition (5.2).
var scriptHashVectors = []struct {
	name    string
	script  string
	natural string
	wire    string
	hashX   string
}{
	{"P2PKH 1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa",
		"76a91462e907b15cbf27d5425399ebf6f0fb50ebb88f1888ac",
		"6191c3b590bfcfa0475e877c302da1e323497acf3b42c08d8fa28e364edf018b",
		"8b01df4e368ea28f8dc0423bcf7a4923e3a12d307c875e47a0cfbf90b5c39161",
		"6191c3b590bfcfa0475e87"},
	{"P2PK genesis pubkey",
		"4104678afdb0fe5548271967f1a67130b7105cd6a828e03909a67962e0ea1f61deb649f6bc3f4cef38c4f35504e51ec112de5c384df7ba0b8d578a4c702b6bf11d5fac",
		"3318537dfb3135df9f3d950dbdf8a7ae68dd7c7dfef61ed17963ff80f3850474",
		"740485f380ff6379d11ef6fe7d7cdd68aea7f8bd0d953d9fdf3531fb7d531833",
		"3318537dfb3135df9f3d95"},
	{"regtest P2WPKH",
		"00149f9aa3795e57c535d2f7b160ff023804c60fca6e",
		"",
		"f04bf26fc16a27abaa2f10540da7a24e369e6ec408f2d901202a7c0cd4a6112d",
		"2d11a6d40c7c2a2001d9f2"},
	{"empty script",
		"",
		"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", // SHA-256 of nothing
		"55b852781b9995a44c939b64e441ae2724b96f99c8f4fb9a141cfc9842c4b0e3",
		"e3b0c44298fc1c149afbf4"},
}

func TestScriptHashVectors(t *testing.T) {
	for _, tc := range scriptHashVectors {
		t.Run(tc.name, func(t *testing.T) {
			script := unhex(t, tc.script)
			sh := chain.ScriptHashOf(script)
			if tc.natural != "" && hex.EncodeToString(sh[:]) != tc.natural {
				t.Errorf("natural = %x, want %s", sh[:], tc.natural)
			}
			if got := sh.Hex(); got != tc.wire {
				t.Errorf("Hex = %s, want %s", got, tc.wire)
			}
			if got := sh.String(); got != tc.wire {
				t.Errorf("String = %s, want %s", got, tc.wire)
			}
			if got := sh.HashX().String(); got != tc.hashX {
				t.Errorf("HashX = %s, want %s", got, tc.hashX)
			}
			if got := chain.HashXOf(script); got != sh.HashX() {
				t.Errorf("HashXOf = %s, want %s", got, sh.HashX())
			}
			parsed, err := chain.ParseScriptHash(tc.wire)
			if err != nil {
				t.Fatal(err)
			}
			if parsed != sh {
				t.Errorf("ParseScriptHash(%s) = %x, want %x", tc.wire, parsed[:], sh[:])
			}
			upper, err := chain.ParseScriptHash(strings.ToUpper(tc.wire))
			if err != nil || upper != sh {
				t.Errorf("upper case: %x, %v", upper[:], err)
			}
			// hashX is the last 22 hex digits of the wire form, reversed.
			tail := unhex(t, tc.wire[64-2*chain.HashXLen:])
			for i, j := 0, len(tail)-1; i < j; i, j = i+1, j-1 {
				tail[i], tail[j] = tail[j], tail[i]
			}
			if hx := sh.HashX(); hex.EncodeToString(hx[:]) != hex.EncodeToString(tail) {
				t.Errorf("HashX %x is not the reversed tail %x of the wire form", hx[:], tail)
			}
		})
	}
}

func TestScriptHashText(t *testing.T) {
	sh := chain.ScriptHashOf(nil)
	b, err := json.Marshal(map[string]chain.ScriptHash{"scripthash": sh})
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"scripthash":"55b852781b9995a44c939b64e441ae2724b96f99c8f4fb9a141cfc9842c4b0e3"}`; string(b) != want {
		t.Errorf("JSON = %s, want %s", b, want)
	}
	var back map[string]chain.ScriptHash
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if back["scripthash"] != sh {
		t.Errorf("round trip = %s, want %s", back["scripthash"], sh)
	}
	if err := json.Unmarshal([]byte(`{"scripthash":"55b8"}`), &back); !errors.Is(err, chain.ErrInvalidHash) {
		t.Errorf("short JSON value: err = %v, want ErrInvalidHash", err)
	}
}

func TestParseScriptHashErrors(t *testing.T) {
	good := scriptHashVectors[0].wire
	tests := []struct {
		name, in, wantMsg string
	}{
		{"empty", "", "0 characters"},
		{"63 digits", good[:63], "63 characters"},
		{"65 digits", good + "0", "65 characters"},
		{"62 digits", good[:62], "62 characters"},
		{"128 digits", good + good, "128 characters"},
		{"non-hex letter", "g" + good[1:], "position 0"},
		{"non-hex low digit", good[:41] + "x" + good[42:], "position 41"},
		{"embedded space", good[:10] + " " + good[11:], "position 10"},
		{"0x prefix", "0x" + good[2:], "position 1"},
		{"multibyte rune", "é" + good[2:], "position 0"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := chain.ParseScriptHash(tc.in)
			if !errors.Is(err, chain.ErrInvalidHash) {
				t.Fatalf("err = %v, want ErrInvalidHash", err)
			}
			if !strings.Contains(err.Error(), "script hash") || !strings.Contains(err.Error(), tc.wantMsg) {
				t.Errorf("err = %q, want it to mention script hash and %q", err, tc.wantMsg)
			}
			if _, err := chain.ParseHash(tc.in); !errors.Is(err, chain.ErrInvalidHash) {
				t.Errorf("ParseHash err = %v, want ErrInvalidHash", err)
			}
		})
	}
}

func TestParseHash(t *testing.T) {
	h, err := chain.ParseHash(strings.ToUpper(genesisHashHex))
	if err != nil {
		t.Fatal(err)
	}
	if h != mainnet(t).Genesis || h.String() != genesisHashHex {
		t.Errorf("ParseHash = %s, want %s", h, genesisHashHex)
	}
	// chainhash.NewHashFromStr pads short strings; ParseHash must not.
	if _, err := chain.ParseHash("19d6689c085ae165831e934ff763ae46a2a6c172b3f1b60a8ce26f"); err == nil {
		t.Error("short hash accepted")
	}
}

func TestIsIndexed(t *testing.T) {
	tests := []struct {
		name   string
		script string
		want   bool
	}{
		{"empty", "", true},
		{"OP_RETURN alone", "6a", false},
		{"OP_RETURN data", "6a0401020304", false},
		{"witness commitment", "6a24aa21a9ed" + strings.Repeat("00", 32), false},
		{"OP_FALSE OP_RETURN", "006a", false},
		{"OP_FALSE OP_RETURN data", "006a0401020304", false},
		{"OP_FALSE alone", "00", true},
		{"OP_FALSE then other", "0051", true},
		{"P2WPKH starts with 00 14", "00149f9aa3795e57c535d2f7b160ff023804c60fca6e", true},
		{"P2PKH", "76a91462e907b15cbf27d5425399ebf6f0fb50ebb88f1888ac", true},
		{"OP_RETURN not first", "516a", true},
		{"OP_TRUE", "51", true},
		{"OP_FALSE OP_FALSE OP_RETURN", "00006a", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := chain.IsIndexed(unhex(t, tc.script)); got != tc.want {
				t.Errorf("IsIndexed(%s) = %v, want %v", tc.script, got, tc.want)
			}
		})
	}
}
