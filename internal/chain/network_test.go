package chain_test

import (
	"bytes"
	"slices"
	"strings"
	"testing"

	"github.com/btcsuite/btcd/chaincfg/v2"

	"amber/internal/chain"
)

func TestLookup(t *testing.T) {
	tests := []struct {
		coin, net string
		want      string // Network.String(); empty: an error is expected
		wantErr   string
		params    *chaincfg.Params
	}{
		{"Bitcoin", "mainnet", "Bitcoin/mainnet", "", &chaincfg.MainNetParams},
		{"bitcoin", "MAINNET", "Bitcoin/mainnet", "", &chaincfg.MainNetParams},
		{"BITCOIN", "testnet", "Bitcoin/testnet", "", &chaincfg.TestNet3Params},
		{"Bitcoin", "testnet3", "Bitcoin/testnet", "", &chaincfg.TestNet3Params},
		{"Bitcoin", "TestNet3", "Bitcoin/testnet", "", &chaincfg.TestNet3Params},
		{"Bitcoin", "testnet4", "Bitcoin/testnet4", "", &chaincfg.TestNet4Params},
		{"Bitcoin", "signet", "Bitcoin/signet", "", &chaincfg.SigNetParams},
		{"Bitcoin", "regtest", "Bitcoin/regtest", "", &chaincfg.RegressionNetParams},
		{"Dogecoin", "mainnet", "", `unknown coin "Dogecoin" (known: Bitcoin)`, nil},
		{"", "mainnet", "", "unknown coin", nil},
		{"Bitcoin", "simnet", "", `unknown network "simnet" for Bitcoin (known: mainnet, testnet, testnet4, signet, regtest)`, nil},
		{"Bitcoin", "", "", "unknown network", nil},
	}
	for _, tc := range tests {
		t.Run(tc.coin+"/"+tc.net, func(t *testing.T) {
			n, err := chain.Lookup(tc.coin, tc.net)
			if tc.want == "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !strings.HasPrefix(err.Error(), "chain: ") {
					t.Fatalf("Lookup = %v, %v; want an error mentioning %q", n, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if n.String() != tc.want || n.Params != tc.params {
				t.Errorf("Lookup = %s with %s params, want %s with %s", n, n.Params.Name, tc.want, tc.params.Name)
			}
		})
	}
}

func TestNetworks(t *testing.T) {
	if !slices.Contains(chain.CoinNames(), "Bitcoin") {
		t.Fatalf("CoinNames = %v, want Bitcoin among them", chain.CoinNames())
	}
	btc, err := chain.Lookup("bitcoin", "mainnet")
	if err != nil {
		t.Fatal(err)
	}
	if len(btc.Coin.Networks) != 5 {
		t.Errorf("Bitcoin has %d networks, want 5", len(btc.Coin.Networks))
	}
	genesis0 := loadRawBlocks(t, fixtureFirstBlocks)[0]
	for _, n := range btc.Coin.Networks {
		t.Run(n.Name, func(t *testing.T) {
			if got, err := chain.Lookup(n.Coin.Name, n.Name); err != nil || got != n {
				t.Errorf("Lookup(%s, %s) = %v, %v", n.Coin.Name, n.Name, got, err)
			}
			for _, a := range n.Aliases {
				if got, err := chain.Lookup(n.Coin.Name, a); err != nil || got != n {
					t.Errorf("Lookup alias %s = %v, %v", a, got, err)
				}
			}
			// Genesis matches btcd's parameters and the genesis block
			// they carry, hashed here from its serialization.
			if n.Genesis != *n.Params.GenesisHash {
				t.Errorf("Genesis = %s, params say %s", n.Genesis, n.Params.GenesisHash)
			}
			var buf bytes.Buffer
			if err := n.Params.GenesisBlock.Serialize(&buf); err != nil {
				t.Fatal(err)
			}
			b, err := n.ParseBlock(buf.Bytes())
			if err != nil {
				t.Fatal(err)
			}
			if b.Hash != n.Genesis {
				t.Errorf("parsed genesis block hashes to %s, Genesis is %s", b.Hash, n.Genesis)
			}
			if got := merkleRoot(b.TxIDs()); got != b.Header.MerkleRoot || !b.Txs[0].IsCoinbase() {
				t.Errorf("genesis merkle root %s, header %s", got, b.Header.MerkleRoot)
			}
			if !meetsTarget(b.Hash, b.Header.Bits) {
				t.Errorf("genesis hash %s does not meet its bits %08x", b.Hash, b.Header.Bits)
			}
			if got, ok := chain.ByGenesis(n.Genesis); !ok || got != n {
				t.Errorf("ByGenesis = %v, %v", got, ok)
			}
			if n.Name == "mainnet" {
				if n.Genesis.String() != genesisHashHex {
					t.Errorf("mainnet genesis %s, want %s", n.Genesis, genesisHashHex)
				}
				if !bytes.Equal(buf.Bytes(), genesis0) {
					t.Errorf("btcd's mainnet genesis block differs from fixture block 0")
				}
			}
			if n.RPCPort == 0 || n.TCPPort == 0 || n.SSLPort == 0 || n.ReorgLimit <= 0 {
				t.Errorf("ports %d/%d/%d, reorg limit %d", n.RPCPort, n.TCPPort, n.SSLPort, n.ReorgLimit)
			}
		})
	}
	if _, ok := chain.ByGenesis(hash(t, firstPaymentTxID)); ok {
		t.Error("ByGenesis found a network for a txid")
	}
}

func TestRegisterDuplicatePanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("registering Bitcoin twice did not panic")
		}
	}()
	chain.Register(&chain.Coin{Name: "BITCOIN"})
}
