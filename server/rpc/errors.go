package rpc

import (
	"errors"
	"strconv"
)

// The error codes of the Electrum protocol as ElectrumX uses them (spec
// §2.6). This is the only place the codes are written down; everything
// else uses these constants or the constructors below.
const (
	// CodeParseError (-32700): the message is not JSON, or not UTF-8.
	CodeParseError = -32700
	// CodeInvalidRequest (-32600): a request is not an object, a batch is
	// empty, "jsonrpc" is missing in strict 2.0 mode, or a response is
	// over MAX_SEND.
	CodeInvalidRequest = -32600
	// CodeMethodNotFound (-32601): no such method at the negotiated
	// protocol version, or "method" is not a string.
	CodeMethodNotFound = -32601
	// CodeInvalidParams (-32602): "params" has the wrong type, or the
	// arguments do not fit the method's parameters.
	CodeInvalidParams = -32602
	// CodeInternalError (-32603): a handler failed unexpectedly.
	CodeInternalError = -32603
	// CodeExcessiveUsage (-101): the session spent its resource budget;
	// the server closes it after sending this.
	CodeExcessiveUsage = -101
	// CodeServerBusy (-102): the request did not finish within
	// REQUEST_TIMEOUT.
	CodeServerBusy = -102
	// CodeBadRequest (1): ElectrumX's BAD_REQUEST, for invalid argument
	// values, unknown transactions, rejected broadcasts, unsupported
	// protocol versions and the like.
	CodeBadRequest = 1
	// CodeDaemonError (2): ElectrumX's DAEMON_ERROR, the daemon answered
	// with an error.
	CodeDaemonError = 2
	// CodeHistoryTooLong (10001): a script's history is over the limit.
	// Protocol 1.7 defines the code; ElectrumX 2.0, and so Amber, uses
	// it at every protocol version.
	CodeHistoryTooLong = 10001
)

// Error is a JSON-RPC error as it goes on the wire: the error object of a
// response has exactly these two members. Handlers return an *Error
// (possibly wrapped) to send a particular code and message; any other
// error is answered with ErrInternal.
//
// NOTE: functions in this package return *Error, not error, so that the
// caller can send it without a type assertion. Do not assign a nil *Error
// to a variable of type error: the interface would not be nil.
type Error struct {
	// Code is one of the Code constants.
	Code int
	// Message is the human-readable text. Some clients match on it
	// ("response too large (over", "history too large"), so the
	// constructors keep ElectrumX's wording.
	Message string
}

// Error returns the code and the message.
func (e *Error) Error() string {
	return "rpc error " + strconv.Itoa(e.Code) + ": " + e.Message
}

// Is reports whether target is an *Error with the same code and message,
// so that errors.Is(err, rpc.ErrHistoryTooLong()) works on wrapped
// errors.
func (e *Error) Is(target error) bool {
	var t *Error
	if !errors.As(target, &t) || t == nil {
		return false
	}
	return e.Code == t.Code && e.Message == t.Message
}

// asError returns the *Error in err's chain, or ErrInternal when there is
// none.
func asError(err error) *Error {
	var e *Error
	if errors.As(err, &e) && e != nil {
		return e
	}
	return ErrInternal()
}

// Messages the parser sends.
const (
	msgInvalidJSON     = "invalid JSON"
	msgNotUTF8         = "messages must be encoded in UTF-8"
	msgTooDeep         = "invalid JSON: nested deeper than " + maxDepthText + " levels"
	msgNotObject       = "request object must be a dictionary"
	msgBatchEmpty      = "batch is empty"
	msgNoBatchesV1     = "batches are not supported in JSON-RPC 1.0"
	msgNotV2           = `"jsonrpc" is not "2.0"`
	msgBadID           = "request id must be a number, a string or null"
	msgMethodNotString = "method must be a string"
	msgBadArgs         = "invalid request arguments: "
)

// ErrParse returns a -32700 parse error, such as "invalid JSON".
func ErrParse(msg string) *Error { return &Error{Code: CodeParseError, Message: msg} }

// ErrInvalidRequest returns a -32600 invalid-request error with msg.
func ErrInvalidRequest(msg string) *Error { return &Error{Code: CodeInvalidRequest, Message: msg} }

// ErrMethodNotFound returns the -32601 error for a method that does not
// exist at the negotiated version: unknown method "<method>".
func ErrMethodNotFound(method string) *Error {
	return &Error{Code: CodeMethodNotFound, Message: `unknown method "` + method + `"`}
}

// ErrInvalidParams returns a -32602 invalid-params error with msg.
func ErrInvalidParams(msg string) *Error { return &Error{Code: CodeInvalidParams, Message: msg} }

// ErrInternal returns the -32603 error sent when a handler fails in a way
// it did not describe with an *Error: "internal server error".
func ErrInternal() *Error { return &Error{Code: CodeInternalError, Message: "internal server error"} }

// ErrExcessiveUsage returns the -101 error sent before a session that
// spent its resource budget is closed: "excessive resource usage".
func ErrExcessiveUsage() *Error {
	return &Error{Code: CodeExcessiveUsage, Message: "excessive resource usage"}
}

// ErrServerBusy returns the -102 error for a request that exceeded
// REQUEST_TIMEOUT: "server busy - request timed out".
func ErrServerBusy() *Error {
	return &Error{Code: CodeServerBusy, Message: "server busy - request timed out"}
}

// BadRequest returns an error with code 1 (ElectrumX's BAD_REQUEST) and
// msg, for example "unsupported protocol version: 1.3".
func BadRequest(msg string) *Error { return &Error{Code: CodeBadRequest, Message: msg} }

// DaemonError returns an error with code 2 (ElectrumX's DAEMON_ERROR) and
// msg, which the caller formats from the daemon's reply.
func DaemonError(msg string) *Error { return &Error{Code: CodeDaemonError, Message: msg} }

// ErrHistoryTooLong returns the 10001 error for a history over the
// server's limit: "history too large".
func ErrHistoryTooLong() *Error {
	return &Error{Code: CodeHistoryTooLong, Message: "history too large"}
}

// ErrTooManyUTXOs returns the 10001 error for a script with more unspent
// outputs than one get_balance or listunspent reads: the history error's
// code, which clients already handle, with a message that says why.
func ErrTooManyUTXOs() *Error {
	return &Error{Code: CodeHistoryTooLong, Message: "too many unspent outputs"}
}

// ErrResponseTooLarge returns the -32600 error that replaces a response
// over maxSend bytes: "response too large (over 8,100,000 bytes" for the
// default. The missing closing parenthesis is ElectrumX's, and clients
// match the text, so it stays.
func ErrResponseTooLarge(maxSend int) *Error {
	return &Error{
		Code:    CodeInvalidRequest,
		Message: "response too large (over " + thousands(maxSend) + " bytes",
	}
}

// thousands formats n in decimal with commas between groups of three
// digits, as Python's "{:,d}" does.
func thousands(n int) string {
	s := strconv.Itoa(n)
	neg := false
	if n < 0 {
		neg, s = true, s[1:]
	}
	out := make([]byte, 0, len(s)+len(s)/3+1)
	if neg {
		out = append(out, '-')
	}
	for i := range len(s) {
		if i > 0 && (len(s)-i)%3 == 0 {
			out = append(out, ',')
		}
		out = append(out, s[i])
	}
	return string(out)
}
