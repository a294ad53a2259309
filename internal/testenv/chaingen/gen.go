package chaingen

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/btcsuite/btcd/chaincfg/v2"
	"github.com/btcsuite/btcd/chainhash/v2"
	"github.com/btcsuite/btcd/txscript/v2"
	"github.com/btcsuite/btcd/wire/v2"

	"amber/internal/testenv"
)

// Generation constants. Changing any of them changes the blocks: bump
// GeneratorVersion.
const (
	// chainStart is the timestamp of height 0 in generated chains; block
	// h is stamped chainStart + 600·h plus up to 599 seconds, so
	// timestamps rise strictly and never depend on the clock.
	chainStart = 1_700_000_000
	// blockVersion is a BIP 9 version with no deployment bits set;
	// regtest has every soft fork active from height 1.
	blockVersion = 0x20000000
	// regtestBits is regtest's (constant) proof-of-work limit.
	regtestBits = 0x207fffff
	// minPayment is the smallest payment or change output, just above
	// the dust limit of the costliest output kind.
	minPayment = 600
	// maxInputs and maxPayments bound a transaction's inputs and its
	// outputs other than change and OP_RETURN.
	maxInputs   = 10
	maxPayments = 5
	// rampPool is the spendable pool size below which transactions fan
	// out (one input, four or five payments) to grow the pool.
	rampPool = 64
	// maxBlockWeight and maxBlockSigOps keep blocks well inside the
	// consensus limits (4,000,000 weight units, 80,000 sigop cost).
	maxBlockWeight = 3_600_000
	maxBlockSigOps = 60_000
	// changeShare is the share of transactions with a change output.
	changeShare = 0.85
	// Payment reuse follows a Zipf law P(k) ∝ (zipfV+k)^-zipfS over the
	// regular scripts in order of creation.
	zipfS = 1.2
	zipfV = 2
	// minerShare is the share of coinbase outputs paid to one of the
	// few miner scripts (a Zipf law again); the rest go to new scripts.
	minerShare = 0.6
)

// Weights of the number of inputs (1 to maxInputs) and of payments (1 to
// maxPayments) of a transaction.
var (
	inputWeights   = cumulative([]float64{40, 22, 12, 8, 5, 4, 3, 2, 2, 2})
	paymentWeights = cumulative([]float64{35, 35, 15, 10, 5})
)

// kindWeights is the mix of script kinds of new scripts.
var kindWeights = []struct {
	kind   testenv.ScriptKind
	weight float64
}{
	{testenv.P2WPKH, 35},
	{testenv.P2PKH, 20},
	{testenv.P2SHP2WPKH, 15},
	{testenv.P2TR, 15},
	{testenv.P2WSHMultisig, 8},
	{testenv.P2PK, 7},
}

var kindCum = func() []float64 {
	w := make([]float64, len(kindWeights))
	for i, k := range kindWeights {
		w[i] = k.weight
	}
	return cumulative(w)
}()

// minerKinds are the kinds of the miner scripts, most active first.
var minerKinds = []testenv.ScriptKind{testenv.P2PKH, testenv.P2WPKH, testenv.P2PK, testenv.P2TR}

// coin is a wallet output the generator may spend.
type coin struct {
	utxo testenv.UTXO
	pos  int // index in generator.pool; -1 once spent
}

// generator holds the state of one Generate run.
type generator struct {
	spec Spec
	rng  *rand.Rand
	w    *testenv.Wallet
	sig  *signer

	kinds    []testenv.ScriptKind // kind of every wallet script, in creation order
	busy     []*testenv.Script
	busyCum  []float64
	miners   []*testenv.Script
	minerCum []float64
	regular  []*testenv.Script // every other script, in creation order

	pool     []*coin          // spendable outputs
	fresh    []*coin          // outputs created by the current block's transactions
	immature map[int][]*coin  // coinbase outputs by height
	prev     chainhash.Hash   // the previous block's hash
	blocks   [][]byte         // the serialized blocks so far
	txs      int              // non-coinbase transactions so far
	buf      bytes.Buffer     // block serialization scratch
	wtxids   []chainhash.Hash // merkle scratch
}

// Generate builds the chain described by spec in memory, without a node:
// blocks and transactions are checked only by the node they are submitted
// to. The same spec gives byte-identical blocks on every run.
func Generate(spec Spec) (*Chain, error) {
	spec, err := spec.normalized()
	if err != nil {
		return nil, err
	}
	g := &generator{
		spec:     spec,
		rng:      rand.New(rand.NewPCG(spec.Seed, 0x616d6265722f6367)), // "amber/cg"
		w:        testenv.NewWallet(&chaincfg.RegressionNetParams, spec.WalletSeed()),
		sig:      newSigner(),
		immature: map[int][]*coin{},
		prev:     *chaincfg.RegressionNetParams.GenesisHash,
	}
	kinds := testenv.AllKinds()
	w := make([]float64, spec.BusyScripts)
	for i := range w {
		g.busy = append(g.busy, g.newScript(kinds[(i+2)%len(kinds)])) // P2WPKH first
		w[i] = 1 / float64(i+1)
	}
	g.busyCum = cumulative(w)
	w = make([]float64, len(minerKinds))
	for i, k := range minerKinds {
		g.miners = append(g.miners, g.newScript(k))
		w[i] = 1 / float64(i+1)
	}
	g.minerCum = cumulative(w)

	start := time.Now()
	g.blocks = make([][]byte, 0, spec.height())
	for h := 1; h <= spec.height(); h++ {
		if spec.Fork != (Fork{}) && h == spec.Fork.Height+1 {
			g.rng = rand.New(rand.NewPCG(spec.Fork.Seed, 0x616d6265722f666b)) // "amber/fk"
		}
		if err := g.block(h); err != nil {
			return nil, fmt.Errorf("chaingen: generate %s block %d: %w", spec.Name, h, err)
		}
	}
	return newChain(spec, g.blocks, g.kinds, g.txs, time.Since(start))
}

// newScript makes a wallet script and records its kind.
func (g *generator) newScript(kind testenv.ScriptKind) *testenv.Script {
	g.kinds = append(g.kinds, kind)
	return g.w.NewScript(kind)
}

// newRegular makes a regular (reusable) script.
func (g *generator) newRegular(kind testenv.ScriptKind) *testenv.Script {
	s := g.newScript(kind)
	g.regular = append(g.regular, s)
	return s
}

func (g *generator) randomKind() testenv.ScriptKind { return kindWeights[g.pick(kindCum)].kind }

// pick returns an index drawn with the cumulative weights cum.
func (g *generator) pick(cum []float64) int {
	x := g.rng.Float64() * cum[len(cum)-1]
	for i, c := range cum {
		if x < c {
			return i
		}
	}
	return len(cum) - 1
}

// payee returns the script a payment goes to: a busy script, a reused
// regular one, or a new one.
func (g *generator) payee() *testenv.Script {
	if len(g.busy) > 0 && g.rng.Float64() < g.spec.BusyShare {
		return g.busy[g.pick(g.busyCum)]
	}
	if len(g.regular) > 0 && g.rng.Float64() < g.spec.ReuseShare {
		z := rand.NewZipf(g.rng, zipfS, zipfV, uint64(len(g.regular)-1))
		return g.regular[z.Uint64()]
	}
	return g.newRegular(g.randomKind())
}

// put adds a coin to the spendable pool.
func (g *generator) put(c *coin) {
	c.pos = len(g.pool)
	g.pool = append(g.pool, c)
}

// take removes a coin from the pool.
func (g *generator) take(c *coin) {
	last := g.pool[len(g.pool)-1]
	g.pool[c.pos] = last
	last.pos = c.pos
	g.pool = g.pool[:len(g.pool)-1]
	c.pos = -1
}

// takeRandom removes and returns a random coin of the pool, which must
// not be empty.
func (g *generator) takeRandom() *coin {
	c := g.pool[g.rng.IntN(len(g.pool))]
	g.take(c)
	return c
}

// takeFresh removes and returns a random unspent output of the current
// block's transactions, or nil.
func (g *generator) takeFresh() *coin {
	for range 4 {
		if len(g.fresh) == 0 {
			return nil
		}
		if c := g.fresh[g.rng.IntN(len(g.fresh))]; c.pos >= 0 {
			g.take(c)
			return c
		}
	}
	return nil
}

// block makes the block at height h and appends it to g.blocks.
func (g *generator) block(h int) error {
	for _, c := range g.immature[h-coinbaseMaturity] {
		g.put(c)
	}
	delete(g.immature, h-coinbaseMaturity)
	g.fresh = g.fresh[:0]

	n := 0
	if g.spec.Txs > 0 && h > coinbaseMaturity && g.rng.Float64() >= 0.03 {
		// Spread what is left over the blocks left; a branch longer than
		// its chain goes on at the chain's average.
		mean := float64(g.spec.Txs) / float64(g.spec.Blocks-coinbaseMaturity)
		if h <= g.spec.Blocks {
			mean = float64(g.spec.Txs-g.txs) / float64(g.spec.Blocks-h+1)
		}
		n = int(mean*(0.4+1.2*g.rng.Float64()) + g.rng.Float64())
	}
	txs := []*wire.MsgTx{nil} // the coinbase goes first, once the fees are known
	var fees int64
	weight, sigops := 4000, 400 // header and coinbase, generously
	for failures := 0; len(txs) <= n && failures < 3; {
		tx, fee, err := g.tx(h)
		if err != nil {
			return err
		}
		if tx == nil {
			failures++
			continue
		}
		txs = append(txs, tx)
		fees += fee
		weight += tx.SerializeSizeStripped()*3 + tx.SerializeSize()
		sigops += sigOpCost(tx)
		if weight > maxBlockWeight || sigops > maxBlockSigOps {
			break
		}
	}
	g.txs += len(txs) - 1
	txs[0] = g.coinbase(h, fees, txs[1:])

	block := wire.MsgBlock{
		Header: wire.BlockHeader{
			Version:    blockVersion,
			PrevBlock:  g.prev,
			MerkleRoot: g.merkleRoot(txs, false),
			Timestamp:  time.Unix(chainStart+600*int64(h)+g.rng.Int64N(600), 0),
			Bits:       regtestBits,
		},
		Transactions: txs,
	}
	// Regtest's target is 0x7fffff·2^232: a hash whose most significant
	// byte is below 0x7f meets it, which half of all nonces give.
	for {
		hash := block.Header.BlockHash()
		if hash[31] < 0x7f {
			g.prev = hash
			break
		}
		block.Header.Nonce++
	}
	g.buf.Reset()
	g.buf.Grow(block.SerializeSize())
	if err := block.Serialize(&g.buf); err != nil {
		return err
	}
	g.blocks = append(g.blocks, bytes.Clone(g.buf.Bytes()))
	return nil
}

// coinbase makes block h's coinbase transaction: the subsidy and fees to
// one or two scripts, and the witness commitment to the block's other
// transactions.
func (g *generator) coinbase(h int, fees int64, txs []*wire.MsgTx) *wire.MsgTx {
	// BIP 34 height, then an extra nonce and a tag, as miners do.
	sigScript, _ := txscript.NewScriptBuilder().
		AddInt64(int64(h)).
		AddData(fmt.Appendf(nil, "%08x", g.rng.Uint32())).
		AddData([]byte("/amber chaingen/")).
		Script()
	tx := wire.NewMsgTx(1 + g.rng.Int32N(2))
	tx.AddTxIn(&wire.TxIn{
		PreviousOutPoint: wire.OutPoint{Index: wire.MaxPrevOutIndex},
		SignatureScript:  sigScript,
		Sequence:         wire.MaxTxInSequenceNum,
		// The witness reserved value that the commitment commits to.
		Witness: wire.TxWitness{make([]byte, 32)},
	})
	value := subsidy(h) + fees
	outs := 1
	if g.rng.Float64() < 0.25 && value >= 2*minPayment {
		outs = 2
	}
	for i := range outs {
		var s *testenv.Script
		if g.rng.Float64() < minerShare {
			s = g.miners[g.pick(g.minerCum)]
		} else {
			s = g.newRegular(g.randomKind())
		}
		v := value
		if i == 0 && outs == 2 {
			v = minPayment + g.rng.Int64N(value-2*minPayment+1)
		}
		value -= v
		tx.AddTxOut(s.TxOut(v))
	}

	// BIP 141 witness commitment: OP_RETURN OP_DATA_36 aa21a9ed
	// SHA256d(witness merkle root || witness reserved value), where the
	// coinbase's wtxid counts as zero.
	root := g.merkleRoot(append([]*wire.MsgTx{nil}, txs...), true)
	var buf [64]byte
	copy(buf[:32], root[:])
	commitment := chainhash.DoubleHashB(buf[:])
	script := append([]byte{txscript.OP_RETURN, txscript.OP_DATA_36, 0xaa, 0x21, 0xa9, 0xed}, commitment...)
	tx.AddTxOut(wire.NewTxOut(0, script))

	txid := tx.TxHash()
	for vout, out := range tx.TxOut[:outs] {
		if out.Value < minPayment {
			continue // not worth spending, as after the subsidy ends
		}
		s, _ := g.w.Script(out.PkScript)
		g.immature[h] = append(g.immature[h], &coin{utxo: testenv.UTXO{
			OutPoint: wire.OutPoint{Hash: txid, Index: uint32(vout)},
			Value:    out.Value,
			Script:   s,
			Height:   int32(h),
			Coinbase: true,
		}})
	}
	return tx
}

// tx makes, signs and returns one transaction for block h with its fee,
// taking its inputs from the pool and putting its outputs there. It
// returns a nil transaction when the pool cannot fund one.
func (g *generator) tx(h int) (*wire.MsgTx, int64, error) {
	if len(g.pool) == 0 {
		return nil, 0, nil
	}
	nIn, nPay := g.pick(inputWeights)+1, g.pick(paymentWeights)+1
	if len(g.pool) < rampPool {
		nIn, nPay = 1, 4+g.rng.IntN(2)
	}
	var ins []*coin
	if g.rng.Float64() < g.spec.ChainShare {
		if c := g.takeFresh(); c != nil {
			ins = append(ins, c)
		}
	}
	for len(ins) < nIn && len(g.pool) > 0 {
		ins = append(ins, g.takeRandom())
	}
	pays := make([]*testenv.Script, nPay)
	for i := range pays {
		pays[i] = g.payee()
	}
	withChange := g.rng.Float64() < changeShare
	var nullData []byte
	if g.rng.Float64() < g.spec.NullDataShare {
		nullData = make([]byte, 4+g.rng.IntN(77))
		for i := range nullData {
			nullData[i] = byte(g.rng.Uint32())
		}
	}
	feeRate := 1 + g.rng.Int64N(20)

	// Fund the payments, the change and the fee: add inputs, then give
	// up the change, payments and fee rate, and finally the transaction.
	var sum, fee int64
	for {
		sum = 0
		for _, c := range ins {
			sum += c.utxo.Value
		}
		fee = feeRate * estimateVSize(ins, pays, withChange, len(nullData))
		need := fee + int64(nPay)*minPayment
		if withChange {
			need += minPayment
		}
		if sum >= need {
			break
		}
		switch {
		case len(ins) < maxInputs && len(g.pool) > 0:
			ins = append(ins, g.takeRandom())
		case withChange:
			withChange = false
		case nPay > 1:
			nPay--
			pays = pays[:nPay]
		case feeRate > 1:
			feeRate = 1
		default:
			for _, c := range ins {
				g.put(c)
			}
			return nil, 0, nil
		}
	}

	// Split the value: each payment gets minPayment plus a random part
	// of what the change does not keep; payments with change are often
	// round amounts, the rounding going to the change.
	avail := sum - fee
	payTotal := avail
	if withChange {
		payTotal = int64(nPay)*minPayment + int64(g.rng.Float64()*float64(avail-int64(nPay+1)*minPayment))
	}
	amounts := g.split(payTotal, nPay)
	if withChange {
		for i, a := range amounts {
			if g.rng.IntN(2) == 0 {
				amounts[i] = max(roundDown(a), minPayment)
			}
		}
	}
	outs := make([]*wire.TxOut, 0, nPay+2)
	var paid int64
	for i, s := range pays {
		outs = append(outs, s.TxOut(amounts[i]))
		paid += amounts[i]
	}
	if change := avail - paid; withChange && change >= minPayment {
		var s *testenv.Script
		first := ins[0].utxo.Script
		switch r := g.rng.Float64(); {
		case r < 0.3:
			s = first // change back to the spent script: address reuse
		case r < 0.9:
			s = g.newRegular(first.Kind)
		default:
			s = g.newRegular(g.randomKind())
		}
		outs = insertAt(outs, g.rng.IntN(len(outs)+1), s.TxOut(change))
	} else {
		fee = sum - paid
	}
	if nullData != nil {
		out := testenv.NullDataOutput(nullData)
		if g.rng.IntN(2) == 0 {
			outs = insertAt(outs, 0, out)
		} else {
			outs = append(outs, out)
		}
	}

	tx := wire.NewMsgTx(2)
	if g.rng.Float64() < 0.1 {
		tx.Version = 1
	}
	seq := uint32(wire.MaxTxInSequenceNum)
	if g.rng.Float64() < 0.4 {
		// Anti fee sniping as wallets do; the sequence keeps the lock
		// time enforced and disables relative lock times (BIP 68).
		tx.LockTime = uint32(h - 1)
		seq = wire.MaxTxInSequenceNum - 1 - uint32(g.rng.IntN(2))
	}
	for _, c := range ins {
		in := wire.NewTxIn(&c.utxo.OutPoint, nil, nil)
		in.Sequence = seq
		tx.AddTxIn(in)
	}
	tx.TxOut = outs
	if err := g.sig.sign(tx, ins); err != nil {
		return nil, 0, err
	}

	txid := tx.TxHash()
	for vout, out := range tx.TxOut {
		s, ok := g.w.Script(out.PkScript)
		if !ok || out.Value < minPayment {
			continue // OP_RETURN
		}
		c := &coin{utxo: testenv.UTXO{
			OutPoint: wire.OutPoint{Hash: txid, Index: uint32(vout)},
			Value:    out.Value,
			Script:   s,
			Height:   int32(h),
		}}
		g.put(c)
		g.fresh = append(g.fresh, c)
	}
	return tx, fee, nil
}

// split divides total into n random parts of at least minPayment each;
// total must be at least n·minPayment.
func (g *generator) split(total int64, n int) []int64 {
	parts := make([]int64, n)
	spare := total - int64(n)*minPayment
	weights := make([]float64, n)
	var sum float64
	for i := range weights {
		weights[i] = g.rng.ExpFloat64()
		sum += weights[i]
	}
	var given int64
	for i := range parts {
		parts[i] = minPayment + int64(float64(spare)*weights[i]/sum)
		given += parts[i]
	}
	parts[0] += total - given // rounding
	return parts
}

// merkleRoot returns the merkle root of the transactions' txids, or of
// their wtxids (the coinbase's, txs[0], counting as zero) when witness is
// set. txs[0] is ignored when witness is set.
func (g *generator) merkleRoot(txs []*wire.MsgTx, witness bool) chainhash.Hash {
	level := g.wtxids[:0]
	for i, tx := range txs {
		switch {
		case witness && i == 0:
			level = append(level, chainhash.Hash{})
		case witness:
			level = append(level, tx.WitnessHash())
		default:
			level = append(level, tx.TxHash())
		}
	}
	g.wtxids = level
	var buf [64]byte
	for len(level) > 1 {
		if len(level)%2 == 1 {
			level = append(level, level[len(level)-1])
		}
		next := level[:0]
		for i := 0; i < len(level); i += 2 {
			copy(buf[:32], level[i][:])
			copy(buf[32:], level[i+1][:])
			next = append(next, chainhash.DoubleHashH(buf[:]))
		}
		level = next
	}
	return level[0]
}

// subsidy returns regtest's block subsidy at height h: 50 BTC halved
// every 150 blocks.
func subsidy(h int) int64 {
	halvings := h / int(chaincfg.RegressionNetParams.SubsidyReductionInterval)
	if halvings >= 64 {
		return 0
	}
	return 50 * 1e8 >> halvings
}

// inputVSize is the virtual size of an input spending a kind, with
// signatures at their usual size.
var inputVSize = map[testenv.ScriptKind]int64{
	testenv.P2PK:          114,
	testenv.P2PKH:         148,
	testenv.P2WPKH:        68,
	testenv.P2SHP2WPKH:    91,
	testenv.P2WSHMultisig: 105,
	testenv.P2TR:          58,
}

// estimateVSize estimates the virtual size of a transaction, for its fee.
func estimateVSize(ins []*coin, pays []*testenv.Script, change bool, nullData int) int64 {
	v := int64(11)
	for _, c := range ins {
		v += inputVSize[c.utxo.Script.Kind]
	}
	for _, s := range pays {
		v += 9 + int64(len(s.PkScript))
	}
	if change {
		v += 9 + 34
	}
	if nullData > 0 {
		v += 9 + 3 + int64(nullData)
	}
	return v
}

// sigOpCost is an upper bound of a transaction's signature operation cost
// (BIP 141): legacy sigops in output scripts count four, witness sigops
// one.
func sigOpCost(tx *wire.MsgTx) int {
	cost := 0
	for _, out := range tx.TxOut {
		switch txscript.GetScriptClass(out.PkScript) {
		case txscript.PubKeyTy, txscript.PubKeyHashTy:
			cost += 4
		}
	}
	// An input costs at most four: no legacy sigops in the signature
	// scripts made here, and at most three witness sigops.
	return cost + 4*len(tx.TxIn)
}

// roundDown keeps the two leading digits of a positive amount.
func roundDown(v int64) int64 {
	unit := int64(1)
	for v/unit >= 100 {
		unit *= 10
	}
	return v / unit * unit
}

// insertAt inserts out at index i.
func insertAt(outs []*wire.TxOut, i int, out *wire.TxOut) []*wire.TxOut {
	outs = append(outs, nil)
	copy(outs[i+1:], outs[i:])
	outs[i] = out
	return outs
}

// cumulative returns the running sums of w.
func cumulative(w []float64) []float64 {
	out := make([]float64, len(w))
	var sum float64
	for i, x := range w {
		sum += x
		out[i] = sum
	}
	return out
}
