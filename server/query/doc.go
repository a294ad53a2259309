// Package query answers the questions the Electrum methods ask, from the
// index, the mempool view and the daemon: histories (through a cache),
// status hashes (spec §5.3), balances, unspent outputs, headers and
// checkpoint proofs, merkle branches, transactions, fee estimates and
// outpoint statuses. It knows nothing of sessions or the wire; one
// Backend serves every session.
package query
