// Package localdemo runs the whole of Amber on one machine for a first look
// (`amber demo`, `make demo`): a regtest btcd with a small chain, a builder
// that indexes it once and publishes a snapshot to a local directory
// bucket, and a server node that bootstraps from that snapshot and serves
// wallets over TCP, TLS, WS and WSS, while a block with a few payments is
// mined every interval. Every process it starts is stopped when its
// context ends.
//
// It sits outside internal/ because it composes the builder and the
// server, which internal packages may not import.
package localdemo
