// Package transport is the listening side of the Electrum server: it
// accepts client connections on the services of SERVICES (tcp, ssl, ws,
// wss and the local rpc port) and hands each one, as a Conn that carries
// whole messages, to a handler running in its own goroutine. It knows
// nothing of JSON or of Electrum.
//
// # Framing
//
// Raw sockets (tcp, ssl, rpc) carry one message per line (spec §1.2):
// ReadMessage returns the bytes before the next "\n" with one trailing
// "\r" removed, and WriteMessage appends the "\n". A line longer than
// Options.MaxRecv (MAX_RECV) is never buffered whole: it is discarded up
// to its newline and ReadMessage reports it as a *MessageTooLargeError
// (errors.Is ErrMessageTooLarge), after which reading carries on with the
// next line, as ElectrumX does. WebSocket services (ws, wss; spec §1.3)
// carry one message per WebSocket message; a message over
// Options.WSReadLimit closes the connection with status 1009.
//
// # Writes
//
// WriteMessage is safe for concurrent use: responses and notifications
// come from different goroutines and each message goes out whole. A
// write that makes no progress for Options.WriteTimeout (20 s, ElectrumX's
// max_send_delay, spec §1.4 and §7.2) aborts the connection, so a client
// that stops reading cannot hold the server.
//
// # Lifecycle
//
// Server.Run binds every service, serves until its context ends, then
// shuts down in the order of net/http's Shutdown, with a separate path for
// hijacked WebSocket connections that http.Server does not track:
//
//  1. stop accepting: listeners are closed, and WebSocket upgrades still
//     in flight are refused;
//  2. wait up to Options.GracePeriod for handlers to return on their own
//     (Draining is closed at the start so they can finish early);
//  3. close every connection that is left: raw sockets are closed (TLS
//     with a close_notify), WebSocket connections get a close frame with
//     status 1001 "going away"; each close is bounded by
//     Options.CloseTimeout, after which the socket is torn down;
//  4. return once every handler goroutine has returned.
//
// A handler's context is cancelled when its connection closes, for
// whatever reason, and its reads fail with ErrClosed; the handler must
// then return.
//
// Options.MaxConns, Pause and Resume stop client sessions from being
// accepted (the rpc service is exempt): connections that arrive meanwhile
// are accepted and closed at once, so a wallet fails fast and tries
// another server, as with ElectrumX closing its listening sockets
// (spec §1.4).
//
// TLS services (ssl, wss) require TLS 1.2 or later and serve the
// certificate of SSL_CERTFILE and SSL_KEYFILE; ReloadCertificate reads
// the files again (the command calls it on SIGHUP) and keeps the old
// certificate when the new one does not load.
package transport
