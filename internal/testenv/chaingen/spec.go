package chaingen

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
)

// GeneratorVersion identifies the generation algorithm. The same Spec and
// GeneratorVersion always give the same blocks; changing the algorithm in
// any way that changes its output must bump it, which also gives every
// cache file a new name, so stale caches are never read.
const GeneratorVersion = 1

// coinbaseMaturity is regtest's coinbase maturity: a coinbase output of
// block h may be spent from block h+100.
const coinbaseMaturity = 100

// Spec describes a chain to generate. Zero-valued shares take their
// defaults; a negative share means none.
type Spec struct {
	// Name labels the chain in cache file names ("tiny", "small",
	// "large"); it does not change the blocks. Empty means "custom".
	Name string `json:"name"`
	// Seed seeds the PCG generator that makes every choice, and the
	// wallet keys (see WalletSeed).
	Seed uint64 `json:"seed"`
	// Blocks is the chain's height: blocks 1 to Blocks are generated
	// above regtest's genesis block.
	Blocks int `json:"blocks"`
	// Txs is the number of non-coinbase transactions to aim for. They
	// start at height 101, when the first coinbase output matures, and
	// are spread unevenly over the blocks; the result is close to Txs
	// but not exact (Chain.Txs gives it).
	Txs int `json:"txs"`
	// BusyScripts is the number of busy scripts: fixed scripts, of kinds
	// in rotation, that receive BusyShare of all payments between them,
	// the first one most (weights 1, 1/2, 1/3, ...).
	BusyScripts int `json:"busy_scripts"`
	// BusyShare is the share of payment outputs that go to a busy
	// script; zero means 0.25.
	BusyShare float64 `json:"busy_share"`
	// ReuseShare is the share of the other payment outputs that go to a
	// script used before, picked by a Zipf law over the scripts in order
	// of creation (the oldest is the most popular); the rest go to new
	// scripts. Zero means 0.4.
	ReuseShare float64 `json:"reuse_share"`
	// ChainShare is the share of transactions whose first input spends
	// an output created earlier in the same block; zero means 0.15.
	ChainShare float64 `json:"chain_share"`
	// NullDataShare is the share of transactions with an OP_RETURN
	// output; zero means 0.04.
	NullDataShare float64 `json:"null_data_share"`
	// Fork, when set, makes the spec a branch of the chain the rest of
	// the spec describes (see Spec.Branch).
	Fork Fork `json:"fork,omitzero"`
}

// Fork describes a competing branch of a chain: its blocks up to Height
// are the chain's, and the Blocks blocks above are made with the
// generator reseeded from Seed, so they spend the same coins differently
// (conflicting transactions), pay other scripts and have other hashes.
type Fork struct {
	// Height is the height of the last block the branch shares with the
	// chain.
	Height int `json:"height"`
	// Blocks is the number of blocks of the branch above Height. A node
	// on the chain switches to the branch once the branch has more
	// blocks above Height than the node has.
	Blocks int `json:"blocks"`
	// Seed seeds the generator above Height.
	Seed uint64 `json:"seed"`
}

// Branch returns the spec of a branch of the chain of s that shares its
// blocks up to height and has blocks more blocks above, made from seed.
// Beyond s.Blocks, blocks hold s's average number of transactions.
//
//	base := chaingen.Load(t, chaingen.Tiny)
//	fork := chaingen.Load(t, chaingen.Tiny.Branch(290, 15, 1)) // a 10-block reorg
func (s Spec) Branch(height, blocks int, seed uint64) Spec {
	s.Fork = Fork{Height: height, Blocks: blocks, Seed: seed}
	return s
}

// height returns the height of the chain a normalized spec describes.
func (s Spec) height() int {
	if s.Fork != (Fork{}) {
		return s.Fork.Height + s.Fork.Blocks
	}
	return s.Blocks
}

// The presets. Each has its own seed, so their chains differ.
var (
	// Tiny is a chain for quick tests: 300 blocks and about 1,500
	// transactions. It generates in about a second.
	Tiny = Spec{Name: "tiny", Seed: 1, Blocks: 300, Txs: 1_500, BusyScripts: 4}
	// Small is the smallest chain for integration tests: 2,000 blocks
	// and about 20,000 transactions.
	Small = Spec{Name: "small", Seed: 2, Blocks: 2_000, Txs: 20_000, BusyScripts: 6}
	// Large is a benchmark chain, made by hand only: 20,000 blocks and
	// about a million transactions, with several scripts of more than
	// 50,000 history entries.
	Large = Spec{Name: "large", Seed: 3, Blocks: 20_000, Txs: 1_000_000, BusyScripts: 8}
	// Busy is a short chain in which every transaction pays one busy
	// script, which so has a history of about 52,000 entries: the
	// benchmarks' busy-script case for the Small workload, where no
	// script comes near that.
	Busy = Spec{Name: "busy", Seed: 4, Blocks: 400, Txs: 52_000, BusyScripts: 1, BusyShare: 1}
	// Peer is the chain the side-by-side runs against ElectrumX and
	// Fulcrum used: 10,000 blocks and about 310,000 transactions.
	Peer = Spec{Name: "peer", Seed: 7, Blocks: 10_000, Txs: 300_000, BusyScripts: 8}
)

// Preset returns the preset named name ("tiny", "small", "large",
// "busy" or "peer").
func Preset(name string) (Spec, bool) {
	for _, s := range []Spec{Tiny, Small, Large, Busy, Peer} {
		if s.Name == name {
			return s, true
		}
	}
	return Spec{}, false
}

// WorkloadEnv names the environment variable that picks the benchmarks'
// chain: "small" (the default) or "large", as `make bench WORKLOAD=large`
// sets it.
const WorkloadEnv = "AMBER_BENCH_WORKLOAD"

// Workload returns the preset named by WorkloadEnv, Small when unset, or
// an error naming the choices.
func Workload(getenv func(string) string) (Spec, error) {
	name := getenv(WorkloadEnv)
	if name == "" {
		return Small, nil
	}
	if s, ok := Preset(name); ok && name != Busy.Name {
		return s, nil
	}
	return Spec{}, fmt.Errorf("%s=%q: want small, large, peer or tiny", WorkloadEnv, name)
}

// Defaults for the zero-valued shares of a Spec.
const (
	defaultBusyShare     = 0.25
	defaultReuseShare    = 0.4
	defaultChainShare    = 0.15
	defaultNullDataShare = 0.04
)

// normalized returns the spec with its defaults filled in and negative
// shares turned into zero, or an error for a spec that cannot be made.
func (s Spec) normalized() (Spec, error) {
	if s.Name == "" {
		s.Name = "custom"
	}
	for _, r := range s.Name {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return s, fmt.Errorf("chaingen: spec name %q: use only a-z, 0-9, - and _", s.Name)
		}
	}
	if s.Blocks < 1 {
		return s, fmt.Errorf("chaingen: spec %s: %d blocks, want at least 1", s.Name, s.Blocks)
	}
	if s.Txs < 0 || s.BusyScripts < 0 {
		return s, fmt.Errorf("chaingen: spec %s: negative transaction or busy script count", s.Name)
	}
	if s.Txs > 0 && s.Blocks <= coinbaseMaturity {
		return s, fmt.Errorf("chaingen: spec %s: transactions need more than %d blocks, have %d",
			s.Name, coinbaseMaturity, s.Blocks)
	}
	if f := s.Fork; f != (Fork{}) && (f.Height < 0 || f.Height > s.Blocks || f.Blocks < 1) {
		return s, fmt.Errorf("chaingen: spec %s: fork at %d of %d blocks with %d blocks: want 0 <= height <= blocks and at least one block",
			s.Name, f.Height, s.Blocks, f.Blocks)
	}
	shares := []struct {
		v   *float64
		def float64
		tag string
	}{
		{&s.BusyShare, defaultBusyShare, "BusyShare"},
		{&s.ReuseShare, defaultReuseShare, "ReuseShare"},
		{&s.ChainShare, defaultChainShare, "ChainShare"},
		{&s.NullDataShare, defaultNullDataShare, "NullDataShare"},
	}
	for _, sh := range shares {
		switch {
		case *sh.v == 0:
			*sh.v = sh.def
		case *sh.v < 0:
			*sh.v = 0
		case *sh.v > 1:
			return s, fmt.Errorf("chaingen: spec %s: %s %v is above 1", s.Name, sh.tag, *sh.v)
		}
	}
	return s, nil
}

// key returns the short hash naming a normalized spec's cache file: the
// first 8 hex digits of SHA-256 over the generator version and the spec
// without its name.
func (s Spec) key() string {
	s.Name = ""
	b, _ := json.Marshal(struct {
		Generator int  `json:"generator"`
		Spec      Spec `json:"spec"`
	}{GeneratorVersion, s})
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:4])
}

// CacheFileName returns the name of the spec's cache file,
// "<name>-<hash>.blocks", or "<name>-fork<height>-<hash>.blocks" for a
// branch, where the hash covers the spec's content and GeneratorVersion.
func (s Spec) CacheFileName() (string, error) {
	n, err := s.normalized()
	if err != nil {
		return "", err
	}
	name := n.Name
	if n.Fork != (Fork{}) {
		name += fmt.Sprintf("-fork%d", n.Fork.Height)
	}
	return name + "-" + n.key() + ".blocks", nil
}

// WalletSeed returns the seed of the testenv.Wallet whose keys own every
// output of the spec's chain: "amber/chaingen/<Seed>".
func (s Spec) WalletSeed() []byte {
	return fmt.Appendf(nil, "amber/chaingen/%d", s.Seed)
}
