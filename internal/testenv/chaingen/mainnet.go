package chaingen

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"sort"
	"time"

	"github.com/btcsuite/btcd/chaincfg/v2"
	"github.com/btcsuite/btcd/chainhash/v2"
	"github.com/btcsuite/btcd/wire/v2"
)

// MainnetSpec describes a mainnet-shaped chain: transactions whose
// scripts, inputs, outputs, fees, address reuse and spent-output ages
// follow published statistics of Bitcoin's mainnet, era by era, made fast
// and streamed to a block file so that chains far larger than memory can
// be made. Its signatures are random bytes of the right sizes: the chain
// is for indexing from a local block source (chainsync), never for a
// node, which would reject it.
type MainnetSpec struct {
	// Seed seeds every choice; the same spec writes the same bytes.
	Seed uint64
	// Txs is the number of non-coinbase transactions. The chain walks
	// through mainnet's eras in proportion to its transactions, as
	// mainnet did (see mainnetEras).
	Txs int
}

// mainnetEra is a stretch of mainnet's history between two script
// upgrades, with the shapes of its transactions.
//
// Sources (shares read approximately off the charts, not fitted):
//   - Era boundaries as shares of all transactions: cumulative transaction
//     count (blockchain.com/charts/n-transactions-total): about 1% of
//     mainnet's transactions precede P2SH (BIP 16, block 173,805, 2012-04),
//     about 22% precede segwit (block 481,824, 2017-08) and about 60%
//     precede taproot (block 709,632, 2021-11).
//   - Output types per era: transactionfee.info/charts/output-types
//     (P2PK dominant in 2009–10 coinbases, P2PKH until 2017, P2WPKH the
//     largest since 2020, P2TR and OP_RETURN rising from 2023).
//   - Transactions per block: blockchain.com/charts/n-transactions-per-block
//     (tens until 2011, 300–2,000 in 2012–17, 2,000–3,500 since).
//   - Fee rates: mempool.space's historical fee-rate charts; sat/vB, drawn
//     log-uniformly between the bounds.
type mainnetEra struct {
	name string
	// end is the share of all transactions at which the era ends.
	end float64
	// txsPerBlock is the era's mean non-coinbase transactions per block.
	txsPerBlock int
	// outputs are the weights of output kinds (mkP2PK...mkNullData).
	outputs [mkCount]float64
	// fee rate bounds, sat/vB.
	feeLo, feeHi float64
}

// Output kinds.
const (
	mkP2PK = iota
	mkP2PKH
	mkP2SH
	mkP2WPKH
	mkP2WSH
	mkP2TR
	mkNullData
	mkCount
)

var mainnetEras = []mainnetEra{
	{"2009-2012 (P2PK, P2PKH)", 0.01, 40, [mkCount]float64{30, 70, 0, 0, 0, 0, 0}, 0.5, 5},
	{"2012-2017 (P2SH)", 0.22, 1000, [mkCount]float64{1, 80, 15, 0, 0, 0, 4}, 5, 100},
	{"2017-2021 (segwit v0)", 0.60, 2000, [mkCount]float64{0.5, 40, 25, 28, 4, 0, 2.5}, 2, 200},
	{"2021- (taproot)", 1, 3000, [mkCount]float64{0.1, 15, 10, 45, 5, 17, 8}, 1, 100},
}

// Inputs and outputs per transaction (transactionfee.info/charts/
// inputs-per-transaction and outputs-per-transaction: about 60% of
// transactions spend one input and 60–70% pay two outputs, with means
// near 2.2 inputs and 2.6 outputs pulled up by consolidations and batched
// payouts). Each entry is a range [lo, hi] with its weight.
var (
	mainnetInputs = []countRange{
		{1, 1, 60}, {2, 2, 20}, {3, 3, 7}, {4, 10, 10}, {11, 50, 1},
	}
	mainnetOutputs = []countRange{
		{1, 1, 15}, {2, 2, 65}, {3, 5, 12}, {6, 20, 3}, {21, 100, 0.5},
	}
)

// Spent-output age, in blocks, of the outputs a transaction spends
// (UTXO age bands: Glassnode's "Spent Output Age Bands" and the
// "HODL waves" of Unchained Capital show most spent outputs are less than
// a day old and a long tail older than a year): ranges of blocks with
// their weights; the oldest band spreads over the whole chain.
var mainnetAges = []countRange{
	{0, 6, 35}, {7, 144, 30}, {145, 4320, 20}, {4321, math.MaxInt32, 15},
}

// Address reuse (transactionfee.info/charts/address-reuse: 40–50% of
// outputs pay a script seen before, over 2019–2024; higher before): the
// share of outputs paying a script used before, half of them one of a few
// thousand hot scripts (exchanges, pools) by a Zipf law, half one of
// the recent scripts.
const (
	mainnetReuse    = 0.45
	mainnetHot      = 4096
	mainnetRecent   = 1 << 20
	mainnetPoolSize = 8 << 20 // spendable outputs kept; older ones stay unspent
)

type countRange struct {
	lo, hi int
	weight float64
}

// MainnetStats says what WriteMainnet wrote.
type MainnetStats struct {
	Blocks  int   // blocks above genesis
	Txs     int   // non-coinbase transactions
	Inputs  int   // their inputs
	Outputs int   // outputs, coinbases' included
	Bytes   int64 // bytes of the file
}

// mnUTXO is a spendable output.
type mnUTXO struct {
	hash   chainhash.Hash
	vout   uint32
	value  int64
	height int32
	kind   uint8
	spent  bool
	skip   int32 // once spent: an index after it, at or before the next unspent entry
}

type mainnetGen struct {
	spec   MainnetSpec
	rng    *rand.Rand
	pool   []mnUTXO // by height
	live   int      // unspent entries in pool
	hot    [][]byte
	hotCum []float64
	recent [][]byte // ring of recent scripts
	nrec   int
	noise  []byte
	stats  MainnetStats
}

// WriteMainnet writes the chain of spec to w in the block-file format
// (chain.BlockFileReader, regtest's magic), regtest's genesis block first,
// and calls progress, if not nil, after every block.
func WriteMainnet(w io.Writer, spec MainnetSpec, progress func(MainnetStats)) (MainnetStats, error) {
	if spec.Txs < 1 {
		return MainnetStats{}, errors.New("chaingen: a mainnet-shaped chain needs at least one transaction")
	}
	g := &mainnetGen{
		spec:   spec,
		rng:    rand.New(rand.NewPCG(spec.Seed, 0x616d6265722f6d6e)), // "amber/mn"
		recent: make([][]byte, mainnetRecent),
		noise:  make([]byte, 1<<16),
	}
	for i := range g.noise {
		g.noise[i] = byte(g.rng.Uint32())
	}
	w8 := make([]float64, mainnetHot)
	for i := range w8 {
		w8[i] = math.Pow(float64(i+2), -1.2)
	}
	g.hotCum = cumulative(w8)
	hotEra := -1
	bw := bufio.NewWriterSize(w, 1<<20)
	genesis := chaincfg.RegressionNetParams.GenesisBlock
	var buf bytes.Buffer
	if err := genesis.Serialize(&buf); err != nil {
		return g.stats, err
	}
	if err := g.record(bw, buf.Bytes()); err != nil {
		return g.stats, err
	}
	prev := *chaincfg.RegressionNetParams.GenesisHash
	for h := int32(1); g.stats.Txs < spec.Txs; h++ {
		era := g.era()
		if era != hotEra {
			// Busy services move to the era's script kinds.
			g.hot = g.hot[:0]
			for range mainnetHot {
				g.hot = append(g.hot, g.newScript(g.kindOf(era)))
			}
			hotEra = era
		}
		n := max(1, int(float64(mainnetEras[era].txsPerBlock)*(0.5+g.rng.Float64())))
		n = min(n, spec.Txs-g.stats.Txs)
		blk := wire.MsgBlock{Header: wire.BlockHeader{
			Version: blockVersion, PrevBlock: prev, Timestamp: time.Unix(chainStart+600*int64(h), 0),
			Bits: regtestBits, Nonce: g.rng.Uint32(),
		}}
		var fees int64
		txs := make([]*wire.MsgTx, 0, n+1)
		txs = append(txs, nil)
		for range n {
			tx, fee := g.tx(h, era)
			if tx == nil {
				break // nothing left to spend: the coinbases must grow the pool first
			}
			fees += fee
			txs = append(txs, tx)
		}
		txs[0] = g.coinbase(h, fees)
		blk.Transactions = txs
		// A placeholder merkle root: the index does not check it, and
		// hashing every block twice would halve the generator's rate.
		blk.Header.MerkleRoot = txs[0].TxHash()
		buf.Reset()
		if err := blk.Serialize(&buf); err != nil {
			return g.stats, err
		}
		if err := g.record(bw, buf.Bytes()); err != nil {
			return g.stats, err
		}
		prev = blk.Header.BlockHash()
		g.stats.Blocks++
		if progress != nil {
			progress(g.stats)
		}
	}
	if err := bw.Flush(); err != nil {
		return g.stats, fmt.Errorf("chaingen: write mainnet-shaped chain: %w", err)
	}
	return g.stats, nil
}

func (g *mainnetGen) record(w io.Writer, raw []byte) error {
	var p [8]byte
	binary.LittleEndian.PutUint32(p[:], uint32(chaincfg.RegressionNetParams.Net))
	binary.LittleEndian.PutUint32(p[4:], uint32(len(raw)))
	if _, err := w.Write(p[:]); err != nil {
		return fmt.Errorf("chaingen: write mainnet-shaped chain: %w", err)
	}
	if _, err := w.Write(raw); err != nil {
		return fmt.Errorf("chaingen: write mainnet-shaped chain: %w", err)
	}
	g.stats.Bytes += int64(len(p) + len(raw))
	return nil
}

// era returns the index in mainnetEras of the next transaction's era.
func (g *mainnetGen) era() int {
	f := float64(g.stats.Txs) / float64(g.spec.Txs)
	for i := range mainnetEras {
		if f < mainnetEras[i].end {
			return i
		}
	}
	return len(mainnetEras) - 1
}

func (g *mainnetGen) kindOf(era int) int {
	w := mainnetEras[era].outputs
	var total float64
	for _, x := range w[:mkNullData] {
		total += x
	}
	r := g.rng.Float64() * total
	for k, x := range w[:mkNullData] {
		if r < x {
			return k
		}
		r -= x
	}
	return mkP2PKH
}

// newScript returns a new script of kind k with a random key or hash.
func (g *mainnetGen) newScript(k int) []byte {
	h := make([]byte, 40)
	for i := 0; i < len(h); i += 8 {
		binary.LittleEndian.PutUint64(h[i:], g.rng.Uint64())
	}
	h = h[:33]
	switch k {
	case mkP2PK:
		h[0] = 2 | h[0]&1
		return append(append([]byte{0x21}, h...), 0xac)
	case mkP2PKH:
		return append(append([]byte{0x76, 0xa9, 0x14}, h[:20]...), 0x88, 0xac)
	case mkP2SH:
		return append(append([]byte{0xa9, 0x14}, h[:20]...), 0x87)
	case mkP2WPKH:
		return append([]byte{0x00, 0x14}, h[:20]...)
	case mkP2WSH:
		return append([]byte{0x00, 0x20}, h[:32]...)
	default: // mkP2TR
		return append([]byte{0x51, 0x20}, h[:32]...)
	}
}

// payee returns the script of a payment output in era.
func (g *mainnetGen) payee(era int) []byte {
	if g.rng.Float64() < mainnetReuse {
		if g.rng.IntN(2) == 0 {
			return g.hot[sort.SearchFloat64s(g.hotCum, g.rng.Float64()*g.hotCum[len(g.hotCum)-1])%len(g.hot)]
		}
		if n := min(g.nrec, mainnetRecent); n > 0 {
			return g.recent[g.rng.IntN(n)]
		}
	}
	s := g.newScript(g.kindOf(era))
	g.recent[g.nrec%mainnetRecent] = s
	g.nrec++
	return s
}

func (g *mainnetGen) count(rs []countRange) int {
	var total float64
	for _, r := range rs {
		total += r.weight
	}
	x := g.rng.Float64() * total
	for _, r := range rs {
		if x < r.weight {
			return r.lo + g.rng.IntN(r.hi-r.lo+1)
		}
		x -= r.weight
	}
	return rs[0].lo
}

// take picks an unspent output whose age follows mainnetAges, marks it
// spent and returns it; ok is false when the pool is empty.
func (g *mainnetGen) take(h int32) (mnUTXO, bool) {
	if g.live == 0 {
		return mnUTXO{}, false
	}
	age := g.count(mainnetAges)
	target := h - int32(min(age, int(h)))
	i := sort.Search(len(g.pool), func(i int) bool { return g.pool[i].height >= target })
	if i == len(g.pool) {
		i = len(g.pool) - 1
	}
	// The nearest unspent entry, searching younger then older ones.
	if j := g.nextUnspent(i); j < len(g.pool) {
		return g.spend(j), true
	}
	for j := i - 1; j >= 0; j-- {
		if !g.pool[j].spent {
			return g.spend(j), true
		}
	}
	return mnUTXO{}, false
}

// nextUnspent returns the index of the first unspent entry at or after i,
// or len(pool), following and shortening the skip pointers of spent
// entries (path halving), so runs of spent entries cost about nothing.
func (g *mainnetGen) nextUnspent(i int) int {
	for i < len(g.pool) && g.pool[i].spent {
		next := int(g.pool[i].skip)
		if next < len(g.pool) && g.pool[next].spent {
			g.pool[i].skip = g.pool[next].skip
		}
		i = next
	}
	return i
}

func (g *mainnetGen) spend(j int) mnUTXO {
	g.pool[j].spent = true
	g.pool[j].skip = int32(j + 1)
	g.live--
	return g.pool[j]
}

// add puts a new output in the pool, compacting it when half of it is
// spent (so take's scans past spent entries stay short) and dropping its oldest entries beyond mainnetPoolSize: those
// stay unspent for ever, as mainnet's oldest coins mostly do.
func (g *mainnetGen) add(u mnUTXO) {
	if len(g.pool) >= 1024 && g.live < len(g.pool)/2 {
		kept := g.pool[:0]
		for _, p := range g.pool {
			if !p.spent {
				kept = append(kept, p)
			}
		}
		g.pool = kept
	}
	if len(g.pool) >= mainnetPoolSize {
		drop := len(g.pool) / 8
		for _, p := range g.pool[:drop] {
			if !p.spent {
				g.live--
			}
		}
		g.pool = append(g.pool[:0], g.pool[drop:]...)
		for i := range g.pool {
			g.pool[i].skip = max(0, g.pool[i].skip-int32(drop))
		}
	}
	g.pool = append(g.pool, u)
	g.live++
}

// Input sizes by the kind of the spent output: scriptSig and witness.
func inputShape(kind uint8) (sigScript, witness []int) {
	switch kind {
	case mkP2PK:
		return []int{72}, nil
	case mkP2PKH:
		return []int{72, 33}, nil
	case mkP2SH: // 2-of-3 multisig, or P2SH-P2WPKH
		return []int{0, 72, 72, 105}, nil
	case mkP2WPKH:
		return nil, []int{72, 33}
	case mkP2WSH:
		return nil, []int{0, 72, 72, 105}
	default: // P2TR key path
		return nil, []int{64}
	}
}

func (g *mainnetGen) pushes(sizes []int) []byte {
	var b []byte
	for _, n := range sizes {
		if n == 0 {
			b = append(b, 0)
			continue
		}
		if n > 75 {
			b = append(b, 0x4c)
		}
		b = append(b, byte(n))
		off := g.rng.IntN(len(g.noise) - n)
		b = append(b, g.noise[off:off+n]...)
	}
	return b
}

func (g *mainnetGen) tx(h int32, era int) (*wire.MsgTx, int64) {
	e := &mainnetEras[era]
	nin := g.count(mainnetInputs)
	tx := wire.NewMsgTx(2)
	var in int64
	for range nin {
		u, ok := g.take(h)
		if !ok {
			break
		}
		sig, wit := inputShape(u.kind)
		txin := wire.NewTxIn(wire.NewOutPoint(&u.hash, u.vout), nil, nil)
		if sig != nil {
			txin.SignatureScript = g.pushes(sig)
		}
		for _, n := range wit {
			off := g.rng.IntN(len(g.noise) - n)
			txin.Witness = append(txin.Witness, g.noise[off:off+n])
		}
		tx.AddTxIn(txin)
		in += u.value
	}
	if len(tx.TxIn) == 0 {
		return nil, 0
	}
	nout := g.count(mainnetOutputs)
	vsize := int64(10 + 68*len(tx.TxIn) + 31*nout)
	rate := e.feeLo * math.Pow(e.feeHi/e.feeLo, g.rng.Float64())
	fee := min(int64(rate*float64(vsize)), in/2)
	left := in - fee
	kinds := make([]uint8, 0, nout)
	for i := range nout {
		var v int64
		if i == nout-1 {
			v = left
		} else {
			v = left / int64(nout-i) * int64(50+g.rng.IntN(100)) / 100
		}
		left -= v
		script := g.payee(era)
		tx.AddTxOut(wire.NewTxOut(v, script))
		kinds = append(kinds, scriptKind(script))
	}
	if g.rng.Float64()*100 < e.outputs[mkNullData] {
		off := g.rng.IntN(len(g.noise) - 40)
		tx.AddTxOut(wire.NewTxOut(0, append([]byte{0x6a, 40}, g.noise[off:off+40]...)))
	}
	hash := tx.TxHash()
	for i, k := range kinds {
		if v := tx.TxOut[i].Value; v > 0 {
			g.add(mnUTXO{hash: hash, vout: uint32(i), value: v, height: h, kind: k})
		}
	}
	g.stats.Txs++
	g.stats.Inputs += len(tx.TxIn)
	g.stats.Outputs += len(tx.TxOut)
	return tx, fee
}

func (g *mainnetGen) coinbase(h int32, fees int64) *wire.MsgTx {
	tx := wire.NewMsgTx(1)
	// A BIP 34 style height push makes every coinbase's txid unique.
	sig := []byte{4, byte(h), byte(h >> 8), byte(h >> 16), byte(h >> 24), 0}
	tx.AddTxIn(wire.NewTxIn(wire.NewOutPoint(&chainhash.Hash{}, wire.MaxPrevOutIndex), sig, nil))
	// Miners pay themselves from a few scripts of the hot set.
	script := g.hot[g.rng.IntN(16)]
	v := subsidy(int(h)) + fees
	tx.AddTxOut(wire.NewTxOut(v, script))
	hash := tx.TxHash()
	g.add(mnUTXO{hash: hash, vout: 0, value: v, height: h, kind: scriptKind(script)})
	g.stats.Outputs++
	return tx
}

// scriptKind recognises the kinds newScript makes.
func scriptKind(s []byte) uint8 {
	switch {
	case len(s) == 35 && s[34] == 0xac:
		return mkP2PK
	case len(s) == 25:
		return mkP2PKH
	case len(s) == 23:
		return mkP2SH
	case len(s) == 22:
		return mkP2WPKH
	case len(s) == 34 && s[0] == 0:
		return mkP2WSH
	default:
		return mkP2TR
	}
}
