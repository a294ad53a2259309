package index

import (
	"encoding/binary"
	"fmt"

	"amber/internal/chain"
)

// SchemaVersion (schema.go) is the version of the key layout below.

// Field sizes. All integers in keys and values are big-endian so that byte
// order is numeric order.
const (
	heightLen = 4              // block height, uint32
	txNumLen  = 5              // tx_num, uint40: position in the chain's linear tx history
	voutLen   = 4              // output index, uint32
	valueLen  = 8              // satoshis, uint64
	hashXLen  = chain.HashXLen // first 11 bytes of sha256(scriptPubKey)
	txidLen   = 32             // txid, natural (wire) byte order
	shortLen  = 6              // txid prefix used by lookup rows
	maxTxNum  = 1<<(8*txNumLen) - 1
)

// Key prefixes. Each is one byte; the layout of every row is documented at
// its constructor.
const (
	prefixMeta    = 'M'
	prefixHeader  = 'H'
	prefixTxCount = 'C'
	prefixTxid    = 'T'
	prefixTxLook  = 'I'
	prefixHistory = 'h'
	prefixUTXO    = 'U'
	prefixOutLook = 'O'
	prefixSpend   = 'S'
	prefixUndo    = 'u'
)

// metaKey is a metadata row.
//
//	field   type    size
//	prefix  'M'     1
//	name    ascii   variable: "schema", "network", "genesis", "tip"
//
// Values: schema = uint32; network = "Bitcoin/regtest"; genesis = 32-byte
// hash in natural order; tip = tipValue. Example: "M" "tip" →
// height 00000064, hash (32 bytes), next tx_num 00000000c9.
func metaKey(name string) []byte { return append([]byte{prefixMeta}, name...) }

// headerKey is a block header row: 80 raw header bytes by height.
//
//	field   type    size
//	prefix  'H'     1
//	height  uint32  4
//
// Example: block 170 → 48 000000aa.
func headerKey(height uint32) []byte {
	k := make([]byte, 1+heightLen)
	k[0] = prefixHeader
	binary.BigEndian.PutUint32(k[1:], height)
	return k
}

// txCountKey maps a height to the cumulative number of transactions in
// blocks 0..height, a uint40 value. Loaded into memory at open so the
// height of a tx_num is a binary search.
//
//	field   type    size
//	prefix  'C'     1
//	height  uint32  4
//
// Example: height 1 on mainnet (genesis counts no tx) → 43 00000001,
// value 0000000001.
func txCountKey(height uint32) []byte {
	k := make([]byte, 1+heightLen)
	k[0] = prefixTxCount
	binary.BigEndian.PutUint32(k[1:], height)
	return k
}

// txidKey holds the 32-byte txids (natural order) of up to txidChunk
// consecutive transactions of one block, keyed by the tx_num of the first.
// A block's chunks start at its first tx_num and never span two blocks,
// so the chunk of any tx_num follows from the tx counts (txidChunkOf)
// without a seek. A row per transaction cost 5 bytes of key and framing
// on top of its 32 (37.2 bytes per transaction, bench/SIZE.md); sixteen
// share that, and merkle branches still read a block's txids as one range.
//
//	field   type    size
//	prefix  'T'     1
//	tx_num  uint40  5   the chunk's first transaction
//
// Example: a block whose first tx_num is 171, with 20 transactions →
// 54 00000000ab (value: txids of tx_nums 171..186, 512 bytes) and
// 54 00000000bb (value: 187..190, 128 bytes).
func txidKey(start uint64) []byte {
	k := make([]byte, 1+txNumLen)
	k[0] = prefixTxid
	putTxNum(k[1:], start)
	return k
}

// txidChunk is the most txids one txid row holds.
const txidChunk = 16

// txidChunkOf returns the first tx_num of the txid row holding tx_num n,
// given the cumulative tx counts; false if n is past them.
func txidChunkOf(counts []uint64, n uint64) (uint64, bool) {
	h, ok := heightOf(counts, n)
	if !ok {
		return 0, false
	}
	var first uint64
	if h > 0 {
		first = counts[h-1]
	}
	return first + (n-first)/txidChunk*txidChunk, true
}

// txLookupKey finds a tx_num from a txid. The key holds only the first 6
// bytes of the txid (mainnet's 1.4 billion transactions put another
// transaction under a given prefix once in 200,000 look-ups); the tx_num
// suffix keeps colliding prefixes apart and a reader confirms a candidate
// by its txid row. The value is empty.
//
//	field   type    size
//	prefix  'I'     1
//	txid6   bytes   6   first 6 bytes of the txid, natural order
//	tx_num  uint40  5
//
// Example: txid 169e1e83…f44f (natural order bytes 169e1e83e930853391…)
// at tx_num 171 → 49 169e1e83e930 00000000ab.
func txLookupKey(txid *[32]byte, txNum uint64) []byte {
	k := make([]byte, 1+shortLen+txNumLen)
	k[0] = prefixTxLook
	copy(k[1:], txid[:shortLen])
	putTxNum(k[1+shortLen:], txNum)
	return k
}

// historyKey records that tx_num touched a script: funded or spent one of
// its outputs. Keys only; a script's history is one prefix scan, already
// in chain order.
//
//	field   type    size
//	prefix  'h'     1
//	hashX   bytes   11
//	tx_num  uint40  5
//
// Example: hashX 6191c3b590bfcfa0475e87, tx_num 9 →
// 68 6191c3b590bfcfa0475e87 0000000009.
func historyKey(hx chain.HashX, txNum uint64) []byte {
	k := make([]byte, 1+hashXLen+txNumLen)
	k[0] = prefixHistory
	copy(k[1:], hx[:])
	putTxNum(k[1+hashXLen:], txNum)
	return k
}

// utxoKey is an unspent output of a script; the value is its amount in
// satoshis (uint64). Ordered by tx_num, so listunspent comes out in chain
// order.
//
//	field   type    size
//	prefix  'U'     1
//	hashX   bytes   11
//	tx_num  uint40  5
//	vout    uint32  4
//
// Example: 50 BTC at tx_num 9 output 0 → 55 6191c3b590bfcfa0475e87
// 0000000009 00000000, value 000000012a05f200.
func utxoKey(hx chain.HashX, txNum uint64, vout uint32) []byte {
	k := make([]byte, 1+hashXLen+txNumLen+voutLen)
	k[0] = prefixUTXO
	copy(k[1:], hx[:])
	putTxNum(k[1+hashXLen:], txNum)
	binary.BigEndian.PutUint32(k[1+hashXLen+txNumLen:], vout)
	return k
}

// outLookupKey resolves an unspent outpoint to its script when a later
// input spends it. The value is the 11-byte hashX; the row is deleted when
// the output is spent. As with txLookupKey the tx_num suffix separates
// txids sharing 6 bytes, and a reader confirms by the txid row.
//
//	field   type    size
//	prefix  'O'     1
//	txid6   bytes   6
//	vout    uint32  4
//	tx_num  uint40  5   the funding transaction
//
// Example: output 0 of tx_num 9 (txid 0437cd7f…) → 4f 0437cd7f8525
// 00000000 0000000009, value 11-byte hashX.
func outLookupKey(txid *[32]byte, vout uint32, txNum uint64) []byte {
	k := make([]byte, 1+shortLen+voutLen+txNumLen)
	k[0] = prefixOutLook
	copy(k[1:], txid[:shortLen])
	binary.BigEndian.PutUint32(k[1+shortLen:], vout)
	putTxNum(k[1+shortLen+voutLen:], txNum)
	return k
}

// spendKey records which transaction spent an outpoint, serving
// blockchain.outpoint.subscribe without a daemon spent-index. The value is
// the spending tx_num (uint40: a uvarint of the distance from the funding
// one compressed worse, 15.4 bytes per transaction against 12.8 on the
// mainnet-shaped chain). The key names the outpoint by its funding
// tx_num, which every reader resolves first (the txid argument is not part
// of the key): 10 bytes instead of a txid prefix's 18, and rows in chain
// order, whose keys share most of their bytes with their neighbours'.
//
//	field   type    size
//	prefix  'S'     1
//	tx_num  uint40  5   the funding transaction
//	vout    uint32  4
//
// Example: tx_num 171 spends output 0 of tx_num 9 → 53 0000000009
// 00000000, value 00000000ab.
func spendKey(_ *[32]byte, vout uint32, fundTxNum uint64) []byte {
	k := make([]byte, 1+txNumLen+voutLen)
	k[0] = prefixSpend
	putTxNum(k[1:], fundTxNum)
	binary.BigEndian.PutUint32(k[1+txNumLen:], vout)
	return k
}

// undoKey holds what DisconnectBlock needs to take a block back out: see
// undoRecord for the value. Rows older than REORG_LIMIT blocks are deleted.
//
//	field   type    size
//	prefix  'u'     1
//	height  uint32  4
//
// Example: block 170 → 75 000000aa.
func undoKey(height uint32) []byte {
	k := make([]byte, 1+heightLen)
	k[0] = prefixUndo
	binary.BigEndian.PutUint32(k[1:], height)
	return k
}

func putTxNum(b []byte, n uint64) {
	if n > maxTxNum {
		panic(fmt.Sprintf("index: tx_num %d exceeds 40 bits", n))
	}
	b[0] = byte(n >> 32)
	binary.BigEndian.PutUint32(b[1:], uint32(n))
}

func getTxNum(b []byte) uint64 {
	return uint64(b[0])<<32 | uint64(binary.BigEndian.Uint32(b[1:]))
}

func putUint64(v uint64) []byte {
	b := make([]byte, valueLen)
	binary.BigEndian.PutUint64(b, v)
	return b
}
