package chain_test

import (
	"encoding/hex"
	"strings"
	"testing"

	"amber/internal/chain"
)

func TestAddressRoundTrip(t *testing.T) {
	tests := []struct {
		name, net, addr, script string
	}{
		// PROTOCOL.md 12.4.
		{"mainnet P2PKH", "mainnet", "1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa",
			"76a91462e907b15cbf27d5425399ebf6f0fb50ebb88f1888ac"},
		{"regtest P2WPKH", "regtest", "bcrt1qn7d2x7272lznt5hhk9s07q3cqnrqljnwladrd3",
			"00149f9aa3795e57c535d2f7b160ff023804c60fca6e"},
		// Bitcoin wiki's P2SH example.
		{"mainnet P2SH", "mainnet", "3J98t1WpEZ73CNmQviecrnyiWrnqRhWNLy",
			"a914b472a266d0bd89c13706a4132ccfb16f7c3b9fcb87"},
		// BIP 173 test vectors.
		{"mainnet P2WPKH", "mainnet", "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4",
			"0014751e76e8199196d454941c45d1b3a323f1433bd6"},
		{"mainnet P2WSH", "mainnet", "bc1qrp33g0q5c5txsp9arysrx4k6zdkfs4nce4xj0gdcccefvpysxf3qccfmv3",
			"00201863143c14c5166804bd19203356da136c985678cd4d27a1b8c6329604903262"},
		{"testnet P2WPKH", "testnet", "tb1qw508d6qejxtdg4y5r3zarvary0c5xw7kxpjzsx",
			"0014751e76e8199196d454941c45d1b3a323f1433bd6"},
		// BIP 350 / BIP 86 vector (key path of the generator point).
		{"mainnet P2TR", "mainnet", "bc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vqzk5jj0",
			"512079be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798"},
		// The genesis P2PKH hash under the test networks' prefix.
		{"regtest P2PKH", "regtest", "mpXwg4jMtRhuSpVq4xS3HFHmCmWp9NyGKt",
			"76a91462e907b15cbf27d5425399ebf6f0fb50ebb88f1888ac"},
		{"testnet4 P2PKH", "testnet4", "mpXwg4jMtRhuSpVq4xS3HFHmCmWp9NyGKt",
			"76a91462e907b15cbf27d5425399ebf6f0fb50ebb88f1888ac"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			net, err := chain.Lookup("Bitcoin", tc.net)
			if err != nil {
				t.Fatal(err)
			}
			script, err := chain.AddressToScript(net, tc.addr)
			if err != nil {
				t.Fatal(err)
			}
			if got := hex.EncodeToString(script); got != tc.script {
				t.Errorf("AddressToScript = %s, want %s", got, tc.script)
			}
			addr, ok := chain.ScriptToAddress(net, script)
			if !ok || addr != tc.addr {
				t.Errorf("ScriptToAddress = %q, %v, want %q", addr, ok, tc.addr)
			}
		})
	}
}

func TestAddressSpecScriptHash(t *testing.T) {
	script, err := chain.AddressToScript(regtest(t), "bcrt1qn7d2x7272lznt5hhk9s07q3cqnrqljnwladrd3")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := chain.ScriptHashOf(script).Hex(), "f04bf26fc16a27abaa2f10540da7a24e369e6ec408f2d901202a7c0cd4a6112d"; got != want {
		t.Errorf("script hash = %s, want %s", got, want)
	}
}

func TestAddressUpperCaseBech32(t *testing.T) {
	script, err := chain.AddressToScript(mainnet(t), "BC1QW508D6QEJXTDG4Y5R3ZARVARY0C5XW7KV8F3T4")
	if err != nil {
		t.Fatal(err)
	}
	if got := hex.EncodeToString(script); got != "0014751e76e8199196d454941c45d1b3a323f1433bd6" {
		t.Errorf("script = %s", got)
	}
}

func TestAddressToScriptErrors(t *testing.T) {
	genesisPubKey := "04678afdb0fe5548271967f1a67130b7105cd6a828e03909a67962e0ea1f61deb649f6bc3f4cef38c4f35504e51ec112de5c384df7ba0b8d578a4c702b6bf11d5f"
	tests := []struct {
		name, net, addr, wantMsg string
	}{
		{"empty", "mainnet", "", "address"},
		{"garbage", "mainnet", "not-an-address", "address"},
		{"bad base58 checksum", "mainnet", "1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNb", "checksum"},
		{"bad bech32 checksum", "mainnet", "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t5", "address"},
		{"mainnet base58 on regtest", "regtest", "1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa", "address"},
		{"mainnet bech32 on regtest", "regtest", "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4", "not for Bitcoin/regtest"},
		{"regtest bech32 on mainnet", "mainnet", "bcrt1qn7d2x7272lznt5hhk9s07q3cqnrqljnwladrd3", "not for Bitcoin/mainnet"},
		{"testnet bech32 on mainnet", "mainnet", "tb1qw508d6qejxtdg4y5r3zarvary0c5xw7kxpjzsx", "not for Bitcoin/mainnet"},
		{"raw public key", "mainnet", genesisPubKey, "public key"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			net, err := chain.Lookup("bitcoin", tc.net)
			if err != nil {
				t.Fatal(err)
			}
			script, err := chain.AddressToScript(net, tc.addr)
			if err == nil {
				t.Fatalf("AddressToScript = %x, want an error", script)
			}
			if !strings.HasPrefix(err.Error(), "chain: ") || !strings.Contains(err.Error(), tc.wantMsg) {
				t.Errorf("err = %q, want it to mention %q", err, tc.wantMsg)
			}
		})
	}
}

func TestScriptToAddressNone(t *testing.T) {
	genesis := loadBlocks(t, fixtureFirstBlocks)[0]
	tests := []struct {
		name   string
		script []byte
	}{
		{"empty", nil},
		{"P2PK of the genesis coinbase", genesis.Txs[0].Outputs[0].PkScript},
		{"OP_RETURN", unhex(t, "6a0401020304")},
		{"OP_TRUE", unhex(t, "51")},
		{"witness v2", unhex(t, "5210751e76e8199196d454941c45d1b3a323")},
		{"bare 1-of-1 multisig", unhex(t, "512103"+strings.Repeat("11", 32)+"51ae")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if addr, ok := chain.ScriptToAddress(mainnet(t), tc.script); ok {
				t.Errorf("ScriptToAddress(%x) = %q, want none", tc.script, addr)
			}
		})
	}
}
