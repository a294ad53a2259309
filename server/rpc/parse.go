package rpc

import (
	"encoding/json"
	"sync/atomic"
	"unicode/utf8"
)

// Dialect is the flavour of JSON-RPC a connection speaks, fixed by its
// first message (spec §2.1).
type Dialect int32

// The dialects.
const (
	// DialectUnknown means no message has been parsed yet (or only ones
	// that were not JSON). Replies are formatted as 2.0.
	DialectUnknown Dialect = iota
	// Dialect2 is strict JSON-RPC 2.0: the first message carried
	// "jsonrpc": "2.0", and every later request must too.
	Dialect2
	// Dialect1 is JSON-RPC 1.0: the first message carried "jsonrpc":
	// "1.0", or had both "result" and "error". No batches and no named
	// params; replies carry both "result" and "error".
	Dialect1
	// DialectLoose is what clients that send no "jsonrpc" member get: the
	// 2.0 rules without the version check. Replies are formatted as 2.0.
	DialectLoose
)

// String returns the dialect's name.
func (d Dialect) String() string {
	switch d {
	case Dialect2:
		return "2.0"
	case Dialect1:
		return "1.0"
	case DialectLoose:
		return "loose"
	default:
		return "unknown"
	}
}

// Request is one well-formed request or notification from a client.
type Request struct {
	// ID is the request's id exactly as the client wrote it (a number,
	// which may be a float, or a string with its quotes), to be echoed in
	// the reply. It is nil for a notification: an absent or null id.
	ID json.RawMessage
	// Method is the method name.
	Method string
	// Params is the raw params member: an array (positional arguments)
	// or an object (named arguments). An absent params member reads as
	// []. Method.Bind checks it against the method's parameters.
	Params json.RawMessage
}

// IsNotification reports whether the request expects no reply.
func (r *Request) IsNotification() bool { return r.ID == nil }

// Message is one parsed incoming message: a single request or a batch.
//
// For a single message, Requests holds the request (or notification)
// when it was well formed; otherwise Errors holds the one reply to send
// instead. A message can also yield neither: a response object, which a
// server that sends no requests ignores.
//
// For a batch (Batch true), Requests holds the well-formed items in
// message order and Errors one error element for each malformed item.
// Build the reply with Codec.NewBatch, which starts it with those error
// elements, add a result for each request that is not a notification,
// and send Batch.Bytes when all are in. An empty batch, or a batch on a
// JSON-RPC 1.0 connection, is not a batch in this sense: Batch is false
// and Errors holds the single error reply.
//
// All byte slices in a Message are its own: Parse does not keep msg.
type Message struct {
	// Requests are the well-formed requests and notifications, in the
	// order they appeared.
	Requests []*Request
	// Errors are encoded error responses, ready to send, for the
	// malformed items, in the order they appeared; each has the item's id
	// when it could be read, else null.
	Errors [][]byte
	// Batch reports whether the reply is a batch built with NewBatch.
	Batch bool

	errs []errItem // the unencoded Errors, for NewBatch
}

// ParseErrors counts the Errors that are JSON parse errors (-32700),
// which resource accounting charges more heavily.
func (m *Message) ParseErrors() int {
	n := 0
	for _, e := range m.errs {
		if e.err.Code == CodeParseError {
			n++
		}
	}
	return n
}

// errItem is one error reply before encoding.
type errItem struct {
	id  json.RawMessage
	err *Error
}

// Codec holds the JSON-RPC state of one connection: the dialect detected
// from its first message and the MAX_SEND limit on replies. It parses
// incoming messages and encodes outgoing ones; it does no I/O. Its
// methods are safe for concurrent use.
type Codec struct {
	dialect atomic.Int32
	maxSend int
}

// NewCodec returns the codec for a new connection. Replies over maxSend
// bytes are replaced with ErrResponseTooLarge; 0 or less means no limit.
// (ElectrumX raises MAX_SEND below 350,000 to 350,000; that is the
// configuration's business.)
func NewCodec(maxSend int) *Codec {
	return &Codec{maxSend: maxSend}
}

// Dialect returns the connection's dialect, DialectUnknown until the
// first JSON message has been parsed.
func (c *Codec) Dialect() Dialect { return Dialect(c.dialect.Load()) }

// item is what the parser learns about one request object.
type item struct {
	object   bool
	jsonrpc  []byte // raw values; nil when absent
	id       []byte
	method   []byte
	params   []byte
	response bool // has "result" or "error"
	both     bool // has "result" and "error" (a 1.0 response)
}

// Parse parses one incoming message (one line on tcp/ssl, one frame on a
// WebSocket; the framing is not included). The first message that gets
// past the UTF-8 and JSON checks fixes the connection's dialect.
//
// The checks and their errors, in order (spec §2.2, §2.4, §2.6):
//
//   - not UTF-8: -32700 "messages must be encoded in UTF-8", id null;
//   - not JSON, or nested deeper than 64 levels: -32700, id null;
//   - a batch on a 1.0 connection, or an empty batch: -32600, id null;
//   - for each item (the message itself, or each batch element):
//     not an object: -32600 "request object must be a dictionary";
//     an id that is not a number, string or null: -32600, id null;
//     "jsonrpc" not "2.0" on a strict 2.0 connection: -32600;
//     a response object (no "method", but "result" or "error"): ignored;
//     "method" absent or not a string: -32601 "method must be a string";
//     "params" not an array or object (not an array for 1.0): -32602.
//
// Item errors echo the id when it could be read, and are sent even for
// items without one: only well-formed notifications go unanswered.
func (c *Codec) Parse(msg []byte) *Message {
	if !utf8.Valid(msg) {
		return c.single(errItem{err: ErrParse(msgNotUTF8)})
	}
	start := skipSpace(msg, 0)
	if start == len(msg) {
		return c.single(errItem{err: ErrParse(msgInvalidJSON)})
	}
	var (
		items []item
		end   int
		err   error
		batch = msg[start] == '['
	)
	switch msg[start] {
	case '[':
		end, err = scanArray(msg, start, 0, func(i int) (int, error) {
			if msg[i] == '{' {
				it, end, err := parseObject(msg, i, 1)
				items = append(items, it)
				return end, err
			}
			items = append(items, item{})
			return scanValue(msg, i, 1)
		})
	case '{':
		var it item
		it, end, err = parseObject(msg, start, 0)
		items = append(items, it)
	default:
		end, err = scanValue(msg, start, 0)
		items = append(items, item{})
	}
	if err == nil && skipSpace(msg, end) != len(msg) {
		err = errSyntax
	}
	switch err {
	case nil:
	case errDepth:
		return c.single(errItem{err: ErrParse(msgTooDeep)})
	default:
		return c.single(errItem{err: ErrParse(msgInvalidJSON)})
	}

	if c.Dialect() == DialectUnknown {
		c.dialect.CompareAndSwap(int32(DialectUnknown), int32(detect(items)))
	}
	dialect := c.Dialect()
	if batch {
		if dialect == Dialect1 {
			return c.single(errItem{err: ErrInvalidRequest(msgNoBatchesV1)})
		}
		if len(items) == 0 {
			return c.single(errItem{err: ErrInvalidRequest(msgBatchEmpty)})
		}
	}

	m := &Message{Batch: batch}
	reqs := make([]Request, 0, len(items))
	for i := range items {
		r, e, ok := validate(&items[i], dialect)
		switch {
		case e.err != nil:
			m.errs = append(m.errs, e)
		case ok:
			reqs = append(reqs, r)
		}
	}
	own(reqs, m.errs)
	if len(reqs) > 0 {
		m.Requests = make([]*Request, len(reqs))
		for i := range reqs {
			m.Requests[i] = &reqs[i]
		}
	}
	if len(m.errs) > 0 {
		m.Errors = make([][]byte, len(m.errs))
		for i, e := range m.errs {
			m.Errors[i] = c.encodeError(dialect, e.id, e.err, !batch)
		}
	}
	return m
}

// single returns a non-batch Message whose reply is the error e.
func (c *Codec) single(e errItem) *Message {
	return &Message{
		Errors: [][]byte{c.encodeError(c.Dialect(), e.id, e.err, true)},
		errs:   []errItem{e},
	}
}

// parseObject scans the object at data[i] and records the members a
// request or response can have. When a key repeats, the last one wins,
// as in Python's json module.
func parseObject(data []byte, i, depth int) (item, int, error) {
	it := item{object: true}
	var result, failure bool
	end, err := scanObject(data, i, depth, func(key, value []byte) {
		switch {
		case keyIs(key, "jsonrpc"):
			it.jsonrpc = value
		case keyIs(key, "id"):
			it.id = value
		case keyIs(key, "method"):
			it.method = value
		case keyIs(key, "params"):
			it.params = value
		case keyIs(key, "result"):
			result = true
		case keyIs(key, "error"):
			failure = true
		}
	})
	it.response = result || failure
	it.both = result && failure
	return it, end, err
}

// detect returns the dialect a connection's first message implies. For
// a batch, an element that claims 2.0 wins, then one that looks like
// 1.0; otherwise (including an empty batch) the connection is loose.
func detect(items []item) Dialect {
	d := DialectLoose
	for i := range items {
		switch itemDialect(&items[i]) {
		case Dialect2:
			return Dialect2
		case Dialect1:
			d = Dialect1
		}
	}
	return d
}

func itemDialect(it *item) Dialect {
	if !it.object {
		return DialectLoose
	}
	if v, ok := stringValue(it.jsonrpc); ok {
		switch v {
		case "2.0":
			return Dialect2
		case "1.0":
			return Dialect1
		}
	}
	if it.both {
		return Dialect1
	}
	return DialectLoose
}

// validate turns a scanned item into a request, an error reply, or
// nothing (ok false, no error) for a response object.
func validate(it *item, d Dialect) (r Request, e errItem, ok bool) {
	if !it.object {
		return r, errItem{err: ErrInvalidRequest(msgNotObject)}, false
	}
	var id json.RawMessage
	if it.id != nil {
		switch c := it.id[0]; {
		case c == 'n': // null: a notification
		case c == '"' || c == '-' || isDigit(c):
			id = it.id
		default:
			return r, errItem{err: ErrInvalidRequest(msgBadID)}, false
		}
	}
	if d == Dialect2 {
		if v, ok := stringValue(it.jsonrpc); !ok || v != "2.0" {
			return r, errItem{id: id, err: ErrInvalidRequest(msgNotV2)}, false
		}
	}
	if it.method == nil && it.response {
		return r, e, false
	}
	method, isString := stringValue(it.method)
	if !isString {
		return r, errItem{id: id, err: &Error{Code: CodeMethodNotFound, Message: msgMethodNotString}}, false
	}
	params := it.params
	switch {
	case params == nil:
		params = emptyParams
	case params[0] == '[':
	case params[0] == '{' && d != Dialect1:
	default:
		return r, errItem{id: id, err: ErrInvalidParams(msgBadArgs + excerpt(params))}, false
	}
	return Request{ID: id, Method: method, Params: params}, e, true
}

var emptyParams = []byte("[]")

// excerpt returns raw JSON for an error message, cut at about 100 bytes.
func excerpt(raw []byte) string {
	const limit = 100
	if len(raw) <= limit {
		return string(raw)
	}
	cut := limit
	for cut > 0 && !utf8.RuneStart(raw[cut]) {
		cut--
	}
	return string(raw[:cut]) + "..."
}

// own copies every id and params of reqs and ids of errs, which still
// point into the caller's message, into one new buffer.
func own(reqs []Request, errs []errItem) {
	n := 0
	for i := range reqs {
		n += len(reqs[i].ID) + len(reqs[i].Params)
	}
	for i := range errs {
		n += len(errs[i].id)
	}
	buf := make([]byte, 0, n)
	clone := func(b []byte) []byte {
		if b == nil {
			return nil
		}
		buf = append(buf, b...)
		return buf[len(buf)-len(b) : len(buf) : len(buf)]
	}
	for i := range reqs {
		reqs[i].ID = clone(reqs[i].ID)
		reqs[i].Params = clone(reqs[i].Params)
	}
	for i := range errs {
		errs[i].id = clone(errs[i].id)
	}
}
