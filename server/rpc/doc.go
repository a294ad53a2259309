// Package rpc is the JSON-RPC layer of the Electrum server: it parses
// what a client sends, encodes what the server answers, holds the table
// of error codes, binds arguments to method parameters, negotiates the
// protocol version and looks methods up by name and version. It does no
// I/O and knows no Electrum method; the session package builds on it.
// The rules it implements are in spec/PROTOCOL.md §1.2, §2 and §3.2, and
// follow ElectrumX (aiorpcX) where clients can tell the difference.
//
// # Connections and dialects
//
// A Codec holds one connection's state. Its first message that is JSON
// fixes the dialect (§2.1): "jsonrpc": "2.0" makes the connection strict
// 2.0, where every later request must carry it; "jsonrpc": "1.0", or an
// object with both "result" and "error", makes it 1.0 (no batches, no
// named params, replies carry "error": null); anything else makes it
// loose, which parses like 2.0 without the check and answers as 2.0.
//
// # Parsing
//
// Codec.Parse takes one message (a line without its newline, or a
// WebSocket frame) and returns a Message: the well-formed requests and
// notifications, and a ready-to-send error reply for each malformed item.
// Ids are kept byte for byte (1, 1.0, 1e0 and "1" are four ids) and
// echoed unchanged; a null or absent id makes a notification. The parser
// is a small non-recursive scanner that validates the JSON, caps nesting
// at 64 levels, and copies ids and params out of the message, so the
// caller may reuse its buffer. Long runs of whitespace (Electrum pads its
// messages with spaces) cost one comparison per byte.
//
// # Replies
//
// Codec.Reply encodes one response and Codec.Notification one server
// notification, compact and with ElectrumX's member order. A Batch
// collects the replies to a batch in the order they are added, after the
// error elements for the batch's malformed items, and joins them with
// ", ". MAX_SEND is enforced on single replies and cumulatively over a
// batch: an oversized reply becomes -32600 "response too large (over
// 8,100,000 bytes" (sic, for the default). Notifications are exempt.
//
// # Errors
//
// The error codes of §2.6 are the Code constants, and the constructors
// (ErrMethodNotFound, BadRequest, ErrHistoryTooLong, ...) produce the
// *Error values with ElectrumX's messages. A handler returns an *Error,
// possibly wrapped, to choose what the client sees; anything else is
// reported as -32603 "internal server error".
//
// # Methods and versions
//
// A Table holds Method values for a session type S: name, parameter
// names, how many are required, the protocol versions that have the
// method, and a Handler[S]. Table.Call looks a request's method up at the
// negotiated version (absent there means -32601 unknown method), binds
// positional or named params to the parameter names with ElectrumX's
// error messages, and calls the handler with the session. Negotiate
// implements server.version's choice of Version, including ElectrumX's
// habit of answering "1.6.0" rather than "1.6" when the client's maximum
// is above the server's.
//
// A session's loop, in outline:
//
//	msg := codec.Parse(line)
//	if !msg.Batch {
//		for _, e := range msg.Errors { send(e) }
//		for _, r := range msg.Requests {
//			result, err := table.Call(ctx, sess, version, r)
//			if !r.IsNotification() { send(codec.Reply(r.ID, result, err)) }
//		}
//	} else {
//		b := codec.NewBatch(msg)
//		// handle msg.Requests concurrently, b.Add(r.ID, result, err) for
//		// each that is not a notification, wait, then:
//		if out := b.Bytes(); out != nil { send(out) }
//	}
//
// What the session adds on top: server.version first and once, cost
// accounting, timeouts (ErrServerBusy), disconnects after -101 and failed
// negotiation, and padding on raw sockets.
package rpc
