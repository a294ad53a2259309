// Package statuspage serves a node's status page on the HTTP port: the
// index tip and its lag behind the daemon, the snapshot the node was
// restored from, sessions by transport, the mempool with its fee
// histogram, and a lookup box that asks the node about an address or
// script over its WebSocket listener from the browser, speaking the
// Electrum protocol as a web wallet would.
//
// The page is plain HTML, CSS and JavaScript embedded in the binary; it
// polls /status.json every few seconds. /scripthash turns an address or
// an output script into the Electrum script hash, so the browser needs no
// address decoding of its own.
package statuspage
