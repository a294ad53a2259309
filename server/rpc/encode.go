package rpc

import (
	"bytes"
	"encoding/json"
	"strconv"
	"sync"
	"unicode/utf8"
)

// Reply encodes the response to the request with the given id (nil
// encodes as null): the result when err is nil, else the error. An err
// that is or wraps an *Error is sent with its code and message; any
// other err, and a result encoding/json cannot encode, is sent as
// ErrInternal. The caller decides whether to log such errors; Reply does
// not look at them further.
//
// The response is compact JSON with members in ElectrumX's order,
//
//	{"jsonrpc":"2.0","result":...,"id":...}
//	{"jsonrpc":"2.0","error":{"code":...,"message":"..."},"id":...}
//
// or, on a JSON-RPC 1.0 connection,
//
//	{"result":...,"error":null,"id":...}
//	{"result":null,"error":{"code":...,"message":"..."},"id":...}
//
// without the newline that frames it on tcp/ssl. A response over the
// codec's MAX_SEND is replaced with ErrResponseTooLarge for the same id.
func (c *Codec) Reply(id json.RawMessage, result any, err error) []byte {
	d := c.Dialect()
	out := encodeReply(d, id, result, err)
	if c.over(len(out)) {
		out = encodeErr(d, id, ErrResponseTooLarge(c.maxSend))
	}
	return out
}

// Notification encodes a server notification,
//
//	{"jsonrpc":"2.0","method":"...","params":...}
//
// or {"method":"...","params":...,"id":null} on a JSON-RPC 1.0
// connection. params is usually a slice. Notifications are not subject
// to MAX_SEND. The error is encoding/json's, for params it cannot
// encode.
func (c *Codec) Notification(method string, params any) ([]byte, error) {
	d := c.Dialect()
	buf := getBuffer()
	defer putBuffer(buf)
	if d == Dialect1 {
		buf.WriteString(`{"method":`)
	} else {
		buf.WriteString(`{"jsonrpc":"2.0","method":`)
	}
	buf.Write(appendString(buf.AvailableBuffer(), method))
	buf.WriteString(`,"params":`)
	if err := marshalInto(buf, params); err != nil {
		return nil, err
	}
	if d == Dialect1 {
		buf.WriteString(`,"id":null`)
	}
	buf.WriteByte('}')
	return bytes.Clone(buf.Bytes()), nil
}

// over reports whether a reply of n bytes exceeds MAX_SEND.
func (c *Codec) over(n int) bool { return c.maxSend > 0 && n > c.maxSend }

// encodeError encodes an error reply, and when single is set replaces it
// if it is over MAX_SEND (possible only with an enormous id).
func (c *Codec) encodeError(d Dialect, id json.RawMessage, e *Error, single bool) []byte {
	out := encodeErr(d, id, e)
	if single && c.over(len(out)) {
		out = encodeErr(d, id, ErrResponseTooLarge(c.maxSend))
	}
	return out
}

// Batch collects the reply to a batch. Elements go in in the order they
// are added, which for concurrently handled items is completion order,
// as in ElectrumX (clients match replies by id), and are joined with
// ", ". Its methods are safe for concurrent use.
//
// MAX_SEND applies to the batch as a whole: each element adds its size
// plus two (for the separator or the brackets) to a running total, and
// an element that brings the total over the limit is replaced with
// ErrResponseTooLarge for its id. The total counts the original size, so
// once a batch has gone over, every later element is replaced too.
type Batch struct {
	c     *Codec
	mu    sync.Mutex
	parts [][]byte
	size  int
}

// NewBatch starts the reply to the batch message m with the error
// elements for its malformed items. m may be nil, and a message that is
// not a batch contributes nothing.
func (c *Codec) NewBatch(m *Message) *Batch {
	b := &Batch{c: c}
	if m != nil && m.Batch {
		d := c.Dialect()
		for _, e := range m.errs {
			b.add(d, e.id, encodeErr(d, e.id, e.err))
		}
	}
	return b
}

// Add adds the reply to the request with the given id, encoded as by
// Codec.Reply. Do not add anything for notifications.
func (b *Batch) Add(id json.RawMessage, result any, err error) {
	d := b.c.Dialect()
	b.add(d, id, encodeReply(d, id, result, err))
}

func (b *Batch) add(d Dialect, id json.RawMessage, part []byte) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.size += len(part) + 2
	if b.c.over(b.size) {
		part = encodeErr(d, id, ErrResponseTooLarge(b.c.maxSend))
	}
	b.parts = append(b.parts, part)
}

// Bytes returns the batch reply, "[e1, e2, ...]" without a newline, or
// nil when there is nothing to send (every item was a notification).
func (b *Batch) Bytes() []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.parts) == 0 {
		return nil
	}
	n := 2 * len(b.parts) // brackets and separators
	for _, p := range b.parts {
		n += len(p)
	}
	out := make([]byte, 0, n)
	out = append(out, '[')
	for i, p := range b.parts {
		if i > 0 {
			out = append(out, ", "...)
		}
		out = append(out, p...)
	}
	return append(out, ']')
}

// encodeReply encodes a result or error response without the size check.
func encodeReply(d Dialect, id json.RawMessage, result any, err error) []byte {
	if err != nil {
		return encodeErr(d, id, asError(err))
	}
	buf := getBuffer()
	defer putBuffer(buf)
	if d == Dialect1 {
		buf.WriteString(`{"result":`)
	} else {
		buf.WriteString(`{"jsonrpc":"2.0","result":`)
	}
	if err := marshalInto(buf, result); err != nil {
		return encodeErr(d, id, ErrInternal())
	}
	if d == Dialect1 {
		buf.WriteString(`,"error":null`)
	}
	buf.WriteString(`,"id":`)
	buf.Write(appendID(buf.AvailableBuffer(), id))
	buf.WriteByte('}')
	return bytes.Clone(buf.Bytes())
}

// encodeErr encodes an error response.
func encodeErr(d Dialect, id json.RawMessage, e *Error) []byte {
	out := make([]byte, 0, 64+len(e.Message)+len(id))
	if d == Dialect1 {
		out = append(out, `{"result":null,"error":{"code":`...)
	} else {
		out = append(out, `{"jsonrpc":"2.0","error":{"code":`...)
	}
	out = strconv.AppendInt(out, int64(e.Code), 10)
	out = append(out, `,"message":`...)
	out = appendString(out, e.Message)
	out = append(out, `},"id":`...)
	out = appendID(out, id)
	return append(out, '}')
}

func appendID(dst []byte, id json.RawMessage) []byte {
	if id == nil {
		return append(dst, "null"...)
	}
	return append(dst, id...)
}

// marshalInto appends the JSON encoding of v to buf, leaving <, > and &
// as they are (ElectrumX does not escape them).
func marshalInto(buf *bytes.Buffer, v any) error {
	switch v.(type) {
	case Appender, string, []string, Hex, []Hex:
		b, err := AppendValue(buf.AvailableBuffer(), v)
		if err != nil {
			return err
		}
		buf.Write(b)
		return nil
	}
	enc := json.NewEncoder(buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return err
	}
	buf.Truncate(buf.Len() - 1) // Encode ends with a newline
	return nil
}

// Appender is a result that encodes itself as compact JSON. The codec
// appends its output as it is: encoding/json would scan a Marshaler's
// output again to compact it, which for a long reply (2,016 headers)
// costs more than encoding it.
type Appender interface {
	AppendJSON(dst []byte) ([]byte, error)
}

// Hex is a string of hex digits made by the server (hex.EncodeToString),
// which JSON needs no escaping for: it is appended without the scan for
// characters to escape that a string gets.
type Hex string

// AppendValue appends the JSON encoding of v to dst as a reply's result
// is encoded: an Appender as it encodes itself, strings escaped as
// encoding/json does with HTML escaping off, and anything else by
// encoding/json.
func AppendValue(dst []byte, v any) ([]byte, error) {
	switch v := v.(type) {
	case Appender:
		return v.AppendJSON(dst)
	case string:
		return appendString(dst, v), nil
	case Hex:
		return appendHex(dst, v), nil
	case []Hex:
		return appendList(dst, v, appendHex), nil
	case int:
		return strconv.AppendInt(dst, int64(v), 10), nil
	case int64:
		return strconv.AppendInt(dst, v, 10), nil
	case []string:
		return appendList(dst, v, appendString), nil
	}
	buf := bytes.NewBuffer(dst)
	enc := json.NewEncoder(buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return dst, err
	}
	return buf.Bytes()[:buf.Len()-1], nil // Encode ends with a newline
}

func appendHex(dst []byte, h Hex) []byte { return append(append(append(dst, '"'), h...), '"') }

// appendList appends v as a JSON array of its elements' encodings, or
// null for a nil slice, as encoding/json does.
func appendList[T any](dst []byte, v []T, each func([]byte, T) []byte) []byte {
	if v == nil {
		return append(dst, "null"...)
	}
	dst = append(dst, '[')
	for i, e := range v {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = each(dst, e)
	}
	return append(dst, ']')
}

var bufferPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// maxPooled is the largest buffer put back in the pool; bigger ones
// (replies near MAX_SEND) are left to the garbage collector.
const maxPooled = 16 << 20

func getBuffer() *bytes.Buffer {
	buf := bufferPool.Get().(*bytes.Buffer)
	buf.Reset()
	return buf
}

func putBuffer(buf *bytes.Buffer) {
	if buf.Cap() <= maxPooled {
		bufferPool.Put(buf)
	}
}

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string, escaped exactly as
// encoding/json does with HTML escaping off: quote, backslash and
// control characters, U+2028 and U+2029, and invalid UTF-8 as U+FFFD.
func appendString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
