// Package session runs Electrum client connections: the read loop,
// server.version negotiation, the cost model's charges and throttling
// (package cost), replies and their bytes, subscriptions and the
// notifications a Hub fans out to them, and the registry of live
// sessions for the admin RPC. What each method answers is package
// methods; the data behind it is package query.
package session
