package chain

import (
	"fmt"
	"sort"
	"strings"

	"github.com/btcsuite/btcd/chaincfg/v2"
	"github.com/btcsuite/btcd/chainhash/v2"
)

// Coin is a family of networks that share block and transaction formats.
// Another coin is added by registering a Coin with its own networks; the
// parsing functions take the Network so a coin can change them later.
type Coin struct {
	// Name is the value of COIN that selects this coin ("Bitcoin").
	Name string
	// Networks lists the coin's networks, the default first.
	Networks []*Network
}

// Network holds everything Amber needs to know about one chain.
type Network struct {
	// Coin is the coin this network belongs to.
	Coin *Coin
	// Name is the value of NET that selects this network.
	Name string
	// Aliases are other accepted spellings of Name.
	Aliases []string
	// Params are btcd's chain parameters, used for address encoding.
	Params *chaincfg.Params
	// Genesis is the hash of block 0.
	Genesis chainhash.Hash
	// RPCPort is the daemon's default JSON-RPC port.
	RPCPort int
	// TCPPort and SSLPort are the conventional Electrum ports.
	TCPPort, SSLPort int
	// ReorgLimit is the default REORG_LIMIT: how many blocks of undo
	// information are kept.
	ReorgLimit int
}

// String names the network as "Bitcoin/mainnet".
func (n *Network) String() string { return n.Coin.Name + "/" + n.Name }

var bitcoin = &Coin{Name: "Bitcoin"}

func init() {
	bitcoin.Networks = []*Network{
		{Name: "mainnet", Params: &chaincfg.MainNetParams,
			RPCPort: 8332, TCPPort: 50001, SSLPort: 50002, ReorgLimit: 200},
		{Name: "testnet", Aliases: []string{"testnet3"}, Params: &chaincfg.TestNet3Params,
			RPCPort: 18332, TCPPort: 51001, SSLPort: 51002, ReorgLimit: 8000},
		{Name: "testnet4", Params: &chaincfg.TestNet4Params,
			RPCPort: 48332, TCPPort: 51001, SSLPort: 51002, ReorgLimit: 8000},
		{Name: "signet", Params: &chaincfg.SigNetParams,
			RPCPort: 38332, TCPPort: 53001, SSLPort: 53002, ReorgLimit: 8000},
		{Name: "regtest", Params: &chaincfg.RegressionNetParams,
			RPCPort: 18443, TCPPort: 50001, SSLPort: 50002, ReorgLimit: 8000},
	}
	for _, n := range bitcoin.Networks {
		n.Coin = bitcoin
		n.Genesis = *n.Params.GenesisHash
	}
	Register(bitcoin)
}

var coins = map[string]*Coin{}

// Register adds a coin; COIN matches its name case-insensitively.
// It panics on a duplicate name, which is a programming error.
func Register(c *Coin) {
	key := strings.ToLower(c.Name)
	if _, dup := coins[key]; dup {
		panic("chain: coin registered twice: " + c.Name)
	}
	coins[key] = c
}

// CoinNames returns the registered coin names, sorted.
func CoinNames() []string {
	names := make([]string, 0, len(coins))
	for _, c := range coins {
		names = append(names, c.Name)
	}
	sort.Strings(names)
	return names
}

// NetworkNames returns the accepted values of NET for the coin.
func (c *Coin) NetworkNames() []string {
	names := make([]string, 0, len(c.Networks))
	for _, n := range c.Networks {
		names = append(names, n.Name)
	}
	return names
}

// Lookup finds a network by coin and network name, both case-insensitive.
func Lookup(coin, net string) (*Network, error) {
	c, ok := coins[strings.ToLower(coin)]
	if !ok {
		return nil, fmt.Errorf("chain: unknown coin %q (known: %s)", coin, strings.Join(CoinNames(), ", "))
	}
	for _, n := range c.Networks {
		if strings.EqualFold(n.Name, net) {
			return n, nil
		}
		for _, a := range n.Aliases {
			if strings.EqualFold(a, net) {
				return n, nil
			}
		}
	}
	return nil, fmt.Errorf("chain: unknown network %q for %s (known: %s)", net, c.Name, strings.Join(c.NetworkNames(), ", "))
}

// ByGenesis finds the network whose block 0 has the given hash.
func ByGenesis(h chainhash.Hash) (*Network, bool) {
	for _, c := range coins {
		for _, n := range c.Networks {
			if n.Genesis == h {
				return n, true
			}
		}
	}
	return nil, false
}
