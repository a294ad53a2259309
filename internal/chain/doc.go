// Package chain knows coins and networks (genesis, ports, address
// parameters), parses blocks, headers and transactions over btcd's wire
// package, and derives Electrum script hashes and the 11-byte hashX keys the
// index is built on.
//
// ParseBlock returns a Block with the block hash, the raw header and every
// transaction's txid computed once from the raw bytes, plus each
// transaction's inputs (outpoints, coinbase flag) and outputs (value,
// script); btcd's wire.MsgTx stays available as Tx.Msg. Malformed input is
// refused with errors wrapping ErrTruncated or ErrTrailingBytes where that
// is the cause; counts are checked against the remaining bytes before
// anything is allocated for them.
//
// Hashes are held in natural byte order and shown reversed on the wire
// (PROTOCOL.md 0.1): chainhash.Hash.String and ScriptHash.Hex give the wire
// form, ParseHash and ParseScriptHash read it.
//
// ReadBlockFile reads the block-file format of bitcoind's blk*.dat and
// btcd's test data, which the tests use for real mainnet blocks.
package chain
