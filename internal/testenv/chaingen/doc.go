// Package chaingen generates realistic, deterministic regtest chains for
// Amber's integration tests and benchmarks, caches them as block files,
// and replays them into a regtest btcd.
//
// # Chains
//
// A Spec names the chain: a seed, a height, a number of transactions and
// of busy scripts, and the shares of a few behaviours. Tiny, Small and
// Large are the presets, and Busy (one script with 52,000 history
// entries) is the benchmarks' busy-script case; Workload picks the
// benchmarks' chain from AMBER_BENCH_WORKLOAD. Generate builds the
// blocks itself, in memory,
// from a PCG generator seeded with Spec.Seed and a testenv.Wallet seeded
// with Spec.WalletSeed:
//
//   - Blocks 1 to 100 hold only coinbases; transactions start at height
//     101, when the first coinbase output matures, and are spread
//     unevenly over the blocks (some are empty).
//   - Every testenv.ScriptKind is in the mix — P2PK, P2PKH, P2WPKH,
//     P2SH-P2WPKH, 2-of-3 P2WSH multisig and P2TR key path — both paid
//     and spent, plus OP_RETURN outputs of 4 to 80 bytes.
//   - Transactions spend 1 to 10 inputs (mostly one or two) chosen at
//     random among all spendable outputs, pay 1 to 5 outputs, and usually
//     send change to a new script or, often, back to the first input's
//     script. Some spend an output made earlier in the same block, which
//     makes chains of transactions within a block. Fee rates, versions,
//     lock times (anti fee sniping) and output order vary.
//   - Payments go to one of Spec.BusyScripts busy scripts (BusyShare of
//     them, the first busy script taking the most), to a script used
//     before chosen by a Zipf law over the scripts in order of creation
//     (ReuseShare of the rest), or to a new script. So a few scripts have
//     long histories and most scripts are used once or twice.
//   - Coinbases pay the subsidy and fees to one or two outputs: to one of
//     a few miner scripts of several kinds, or to a new script. Each
//     carries its BIP 34 height and a BIP 141 witness commitment.
//
// Spec.Branch describes a competing branch of a chain: the same blocks up
// to a height, then blocks made from another seed, which spend some of the
// same coins in other transactions. Submitting a longer branch to a node
// on the chain makes the node reorganise.
//
// Generation needs no node, which makes it fast (Small, 20,000
// transactions, takes about 7 s on one core) and lets the generator choose
// timestamps, coinbases and how many transactions go in a block. btcd
// checks every block and transaction when a chain is submitted to it
// (Chain.Submit), and the package's tests replay Tiny into btcd and run
// btcd's script engine over every input.
//
// # Determinism
//
// The same Spec and GeneratorVersion give byte-identical blocks on every
// run and every machine: all choices come from the seeded PCG, ECDSA
// signatures are RFC 6979 deterministic, BIP 340 signatures are made
// without auxiliary randomness, and block timestamps are derived from the
// height and the seed (chainStart + 600·h + up to 599 s, starting in
// November 2023), never from the clock. The cache is a speedup, not the
// source of truth; tests check that regenerating gives the same bytes.
//
// NOTE: the timestamps lie in the past, so btcd does not consider itself
// synced (its getblocktemplate refuses to work) after a replay; generate
// and submitblock work, and a block mined by btcd on top takes the
// current time.
//
// # Cache files
//
// Load (and LoadDir) keep each chain in <repo root>/.bench-cache/ (CacheDir) as
// <name>-<hash>.blocks, where the hash covers the spec and
// GeneratorVersion, so a changed spec or generator never reads an old
// file. A missing, stale or corrupt file is regenerated (a bad one is set
// aside as .broken); writers hold a file lock, so parallel test binaries
// generate once, and write a temporary file that is renamed into place.
// The layout, all integers little-endian:
//
//	offset  size  field
//	0       8     magic "AMBRCHN\n"
//	8       4     header length n
//	12      n     header, JSON: format (1), generator (GeneratorVersion),
//	              spec, blocks, txs, scripts, tip (block hash hex)
//	12+n    k     the wallet's script kinds in creation order, one
//	              testenv.ScriptKind byte each; k is the header's scripts
//	        ...   per block from height 1: 4-byte length, raw block
//	end-32  32    SHA-256 of every byte before it
//
// For example, a Tiny file starts 41 4d 42 52 43 48 4e 0a ("AMBRCHN\n"),
// then the header length, then {"format":1,"generator":1,"spec":{"name":
// "tiny","seed":1,...}.
//
// # Using a chain
//
//	func TestIndexSmall(t *testing.T) {
//		c := chaingen.Load(t, chaingen.Small) // generated once, then cached
//		b := testenv.StartBtcd(t, testenv.BtcdOptions{})
//		c.Submit(t, b, c.Height())
//		scripts, _ := c.Scripts() // busiest first, with history lengths
//		...
//	}
//
// Chain.Scripts and Chain.Stats count what the blocks contain, for
// comparison with an index; Chain.Block parses one block; Chain.Wallet
// rebuilds the wallet that owns every output, so a test can spend from
// any script afterwards. Submit resumes where btcd is, so a test can feed
// a chain in parts, and switches btcd to a branch:
//
//	fork := chaingen.Load(t, chaingen.Small.Branch(1990, 12, 1))
//	fork.Submit(t, b, fork.Height()) // btcd reorganises 10 blocks
package chaingen
