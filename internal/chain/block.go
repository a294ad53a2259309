package chain

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"math"

	"github.com/btcsuite/btcd/chainhash/v2"
	"github.com/btcsuite/btcd/wire/v2"
)

// HeaderSize is the size of a serialized block header.
const HeaderSize = wire.MaxBlockHeaderPayload

// Errors that callers may branch on; the returned errors wrap them with the
// position of the problem.
var (
	// ErrTruncated means the data ends before the structure it encodes,
	// or a count claims more elements than the remaining bytes can hold.
	ErrTruncated = errors.New("chain: truncated")
	// ErrTrailingBytes means bytes follow a complete block, header or
	// transaction.
	ErrTrailingBytes = errors.New("chain: trailing bytes")
)

// Block is a parsed block with what an indexer needs computed once.
type Block struct {
	// Header is the decoded header.
	Header wire.BlockHeader
	// Hash is the block hash, the double SHA-256 of RawHeader.
	Hash chainhash.Hash
	// RawHeader is the 80-byte serialized header.
	RawHeader [HeaderSize]byte
	// Size is the size of the serialized block, witnesses included.
	Size int
	// Txs are the block's transactions in block order; Txs[0] is the
	// coinbase.
	Txs []Tx
}

// Tx is a parsed transaction with its txid and the views an indexer reads.
type Tx struct {
	// TxID is the double SHA-256 of the serialization without witness.
	TxID chainhash.Hash
	// Msg is btcd's decoded transaction. Inputs and Outputs share its
	// script memory; treat both as read-only.
	Msg *wire.MsgTx
	// Inputs are the transaction's inputs, in order.
	Inputs []Input
	// Outputs are the transaction's outputs, in order.
	Outputs []Output
	// Offset is the position of the transaction in the serialized block
	// (0 for a transaction parsed on its own).
	Offset int
	// Size is the serialized size, witnesses included.
	Size int
	// StrippedSize is the serialized size without witness data.
	StrippedSize int
}

// Input is one transaction input as the indexer sees it.
type Input struct {
	// Prev is the output being spent (txid and output index).
	Prev wire.OutPoint
	// Coinbase reports a generation input: Prev is the null outpoint
	// (all-zero hash, index 0xffffffff) and spends nothing.
	Coinbase bool
}

// Output is one transaction output as the indexer sees it.
type Output struct {
	// Value is the amount in satoshis.
	Value int64
	// PkScript is the output script (scriptPubKey).
	PkScript []byte
}

// IsCoinbase reports whether the transaction is a coinbase: a single
// generation input.
func (t *Tx) IsCoinbase() bool {
	return len(t.Inputs) == 1 && t.Inputs[0].Coinbase
}

// HasWitness reports whether the transaction was serialized with witness
// data (BIP 144).
func (t *Tx) HasWitness() bool { return t.Size != t.StrippedSize }

// Weight is the BIP 141 weight: three times the stripped size plus the
// full size.
func (t *Tx) Weight() int { return 3*t.StrippedSize + t.Size }

// VSize is the virtual size in vbytes, the weight divided by four and
// rounded up; fee rates are per vbyte.
func (t *Tx) VSize() int { return (t.Weight() + 3) / 4 }

// TxIDs returns the txids of the block's transactions in block order.
func (b *Block) TxIDs() []chainhash.Hash {
	ids := make([]chainhash.Hash, len(b.Txs))
	for i := range b.Txs {
		ids[i] = b.Txs[i].TxID
	}
	return ids
}

// MsgBlock returns the block as btcd's message, sharing the transactions.
func (b *Block) MsgBlock() *wire.MsgBlock {
	msg := &wire.MsgBlock{Header: b.Header, Transactions: make([]*wire.MsgTx, len(b.Txs))}
	for i := range b.Txs {
		msg.Transactions[i] = b.Txs[i].Msg
	}
	return msg
}

// ParseHeader decodes a serialized block header, which must be exactly
// HeaderSize bytes.
func ParseHeader(raw []byte) (*wire.BlockHeader, error) {
	switch {
	case len(raw) < HeaderSize:
		return nil, fmt.Errorf("%w: header has %d bytes, want %d", ErrTruncated, len(raw), HeaderSize)
	case len(raw) > HeaderSize:
		return nil, fmt.Errorf("%w: header has %d bytes, want %d", ErrTrailingBytes, len(raw), HeaderSize)
	}
	var h wire.BlockHeader
	if err := h.Deserialize(bytes.NewReader(raw)); err != nil {
		return nil, fmt.Errorf("chain: parse header: %w", err)
	}
	return &h, nil
}

// HeaderHash returns the block hash of a serialized header: the double
// SHA-256 of its bytes. It does not check the length.
func HeaderHash(raw []byte) chainhash.Hash { return chainhash.DoubleHashH(raw) }

// ParseBlock decodes a serialized block (header, transaction count,
// transactions in the BIP 144 serialization when they carry witnesses) and
// computes the block hash and every txid. The whole of raw must be one
// block. The result does not keep raw.
func ParseBlock(raw []byte) (*Block, error) {
	if len(raw) < HeaderSize {
		return nil, fmt.Errorf("%w: block has %d bytes, a header alone is %d", ErrTruncated, len(raw), HeaderSize)
	}
	b := &Block{Hash: HeaderHash(raw[:HeaderSize]), Size: len(raw)}
	copy(b.RawHeader[:], raw)
	if err := b.Header.Deserialize(bytes.NewReader(raw[:HeaderSize])); err != nil {
		return nil, fmt.Errorf("chain: parse block header: %w", err)
	}

	s := scanner{b: raw, pos: HeaderSize}
	n := s.count(minTxSize, "transaction count")
	if s.err != nil {
		return nil, fmt.Errorf("chain: parse block %s: %w", b.Hash, s.err)
	}
	if n == 0 {
		return nil, fmt.Errorf("chain: parse block %s: no transactions", b.Hash)
	}

	// First pass: find and decode each transaction. Second pass: fill the
	// indexer's views from two block-wide allocations.
	b.Txs = make([]Tx, n)
	nIn, nOut := 0, 0
	off := s.pos
	for i := range b.Txs {
		tx := &b.Txs[i]
		if err := decodeTx(raw[off:], tx); err != nil {
			return nil, fmt.Errorf("chain: parse block %s: tx %d at byte %d: %w", b.Hash, i, off, err)
		}
		tx.Offset = off
		off += tx.Size
		nIn += len(tx.Msg.TxIn)
		nOut += len(tx.Msg.TxOut)
	}
	if off != len(raw) {
		return nil, fmt.Errorf("%w: block %s: %d bytes after its %d transactions (%d of %d bytes used)",
			ErrTrailingBytes, b.Hash, len(raw)-off, n, off, len(raw))
	}
	ins := make([]Input, nIn)
	outs := make([]Output, nOut)
	for i := range b.Txs {
		tx := &b.Txs[i]
		k, m := len(tx.Msg.TxIn), len(tx.Msg.TxOut)
		tx.Inputs, ins = ins[:k:k], ins[k:]
		tx.Outputs, outs = outs[:m:m], outs[m:]
		fillViews(tx)
	}
	return b, nil
}

// ParseTx decodes one serialized transaction (with or without witness
// data). The whole of raw must be one transaction.
func ParseTx(raw []byte) (*wire.MsgTx, error) {
	tx, err := DecodeTx(raw)
	if err != nil {
		return nil, err
	}
	return tx.Msg, nil
}

// DecodeTx is ParseTx that also computes the txid, sizes and the indexer's
// views of the transaction, as ParseBlock does for each of its
// transactions.
func DecodeTx(raw []byte) (*Tx, error) {
	tx := &Tx{}
	if err := decodeTx(raw, tx); err != nil {
		return nil, fmt.Errorf("chain: parse tx: %w", err)
	}
	if tx.Size != len(raw) {
		return nil, fmt.Errorf("%w: tx %s: %d bytes after its end (%d of %d bytes used)",
			ErrTrailingBytes, tx.TxID, len(raw)-tx.Size, tx.Size, len(raw))
	}
	tx.Inputs = make([]Input, len(tx.Msg.TxIn))
	tx.Outputs = make([]Output, len(tx.Msg.TxOut))
	fillViews(tx)
	return tx, nil
}

// decodeTx decodes the transaction at the start of b into tx, setting Msg,
// TxID, Size and StrippedSize. Bytes after the transaction are ignored.
func decodeTx(b []byte, tx *Tx) error {
	l, err := scanTx(b)
	if err != nil {
		return err
	}
	r := bytes.NewReader(b[:l.size])
	msg := &wire.MsgTx{}
	if err := msg.BtcDecode(r, 0, wire.WitnessEncoding); err != nil {
		return fmt.Errorf("decode: %w", err)
	}
	if r.Len() != 0 {
		// NOTE: scanTx and btcd walk the same format, so this means one
		// of them is wrong; refuse rather than index a misread tx.
		return fmt.Errorf("decode: tx ends at byte %d, but its layout says %d", l.size-r.Len(), l.size)
	}
	tx.Msg = msg
	tx.TxID = txid(b, l)
	tx.Size = l.size
	tx.StrippedSize = l.strippedSize()
	return nil
}

// txid hashes the stripped serialization without copying it.
func txid(b []byte, l txLayout) chainhash.Hash {
	if !l.segwit {
		return chainhash.DoubleHashH(b[:l.size])
	}
	h := sha256.New()
	h.Write(b[:4])              // version
	h.Write(b[6:l.witStart])    // inputs and outputs, after marker and flag
	h.Write(b[l.witEnd:l.size]) // lock time
	var first [sha256.Size]byte
	return chainhash.Hash(sha256.Sum256(h.Sum(first[:0])))
}

// fillViews sets tx.Inputs and tx.Outputs, already sized, from tx.Msg.
func fillViews(tx *Tx) {
	for j, in := range tx.Msg.TxIn {
		tx.Inputs[j] = Input{Prev: in.PreviousOutPoint, Coinbase: isNullOutPoint(&in.PreviousOutPoint)}
	}
	for j, out := range tx.Msg.TxOut {
		tx.Outputs[j] = Output{Value: out.Value, PkScript: out.PkScript}
	}
}

// isNullOutPoint reports the outpoint of a generation input.
func isNullOutPoint(op *wire.OutPoint) bool {
	return op.Index == math.MaxUint32 && op.Hash == chainhash.Hash{}
}

// ParseHeader decodes a header of this network's coin; see the package
// function ParseHeader.
//
// NOTE: every registered coin uses Bitcoin's serialization today. The
// Network methods are where a coin with another format would branch.
func (n *Network) ParseHeader(raw []byte) (*wire.BlockHeader, error) { return ParseHeader(raw) }

// ParseBlock decodes a block of this network's coin; see the package
// function ParseBlock.
func (n *Network) ParseBlock(raw []byte) (*Block, error) { return ParseBlock(raw) }

// ParseTx decodes a transaction of this network's coin; see the package
// function ParseTx.
func (n *Network) ParseTx(raw []byte) (*wire.MsgTx, error) { return ParseTx(raw) }

// DecodeTx decodes a transaction of this network's coin with its txid and
// views; see the package function DecodeTx.
func (n *Network) DecodeTx(raw []byte) (*Tx, error) { return DecodeTx(raw) }
