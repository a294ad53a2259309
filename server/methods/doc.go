// Package methods is the Electrum method table of protocol 1.4 to 1.7:
// each method's parameters, their validation as ElectrumX does it, and
// the shape of its result, answered through package query. The
// connection that calls it, and server.version, are package session's.
package methods
