// Package index is Amber's chain index: the key schema (keys.go, each
// prefix documented with its layout and a worked example), ConnectBlock and
// DisconnectBlock, which write a block's rows, its undo record and the new
// tip in one batch, and the queries the Electrum server answers from.
//
// The model is ElectrumX's: every transaction has a tx_num, its position in
// the chain's linear history (block 0 counts no transactions, so block 1's
// coinbase is tx_num 0); every script is keyed by its hashX, the first 11
// bytes of sha256(scriptPubKey). A script's history is a prefix scan of
// hashX+tx_num keys; heights come from the cumulative per-block transaction
// counts held in memory.
//
// Invariant: the tip stored in the metadata row is the last block whose rows
// are all present; a process killed at any moment reopens at a consistent
// tip, because rows and tip are committed together.
package index
