// Package peers is peer discovery (spec §6): it keeps the list of other
// Electrum servers on the same network, verifies each one by connecting
// to it (server.version, a matching genesis hash and a matching header a
// few blocks below the tip), learns new peers from verified ones,
// announces this server to them with server.add_peer, and answers
// server.peers.subscribe and server.add_peer for sessions.
//
// A Manager is created from the configuration with New and FromConfig,
// runs with Run until its context ends, and implements methods.Peers.
// For operators it offers List (every known peer with its state),
// AddByOperator (a trusted add, no rate limit), the admin RPC wrappers
// AdminList and AdminAdd, and Collector (the amber_peers gauge).
// Peers start from the network's built-in seed list (or PEER_SEEDS) and
// from the server's own REPORT_SERVICES, which are verified like any
// peer so the server lists itself only while it is reachable.
//
// Connections to .onion peers always go through a SOCKS5 proxy
// (TOR_PROXY_HOST, TOR_PROXY_PORT); with TOR_PROXY_PORT set, every peer
// does, and host names are resolved by the proxy.
//
// With BLACKLIST_URL, a JSON list of host names, "*.domain" entries and
// addresses is fetched before discovery starts and every 10 minutes: a
// listed peer is never taken, contacted (when listed by name) or listed.
//
// The rules follow ElectrumX: a peer that answers wrongly (another
// genesis, another header, a malformed reply, not listing its own host)
// is marked bad and never listed; one that cannot be reached is retried
// with a doubling pause and forgotten after 3 failures (10 if it was
// once good). server.add_peer is accepted at most once per 10 minutes per
// domain (all IP-literal hosts share one bucket), only when the host
// resolves to the caller's address, and only queues the peer for the
// same verification.
package peers
