// Package session serves one Electrum client connection: version
// negotiation, the method table of protocol 1.4 to 1.7, subscriptions and
// their notifications, computed from the index, the mempool and the daemon.
package session
