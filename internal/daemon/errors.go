package daemon

import (
	"errors"
	"fmt"
	"strings"
)

// JSON-RPC error codes the client branches on. btcd and Bitcoin Core
// agree on these.
const (
	// CodeMethodNotFound is the JSON-RPC code for an unknown method.
	CodeMethodNotFound = -32601
	// CodeWarmingUp is Bitcoin Core's RPC_IN_WARMUP: the daemon is still
	// loading its block index or verifying blocks.
	CodeWarmingUp = -28
	// CodeNotFound is RPC_INVALID_ADDRESS_OR_KEY, which both daemons use
	// for an unknown block or transaction.
	CodeNotFound = -5

	// btcdUnimplemented is the code btcd answers, with one of the
	// messages below, for methods it knows but does not implement, such
	// as getnetworkinfo, and for wallet methods, among which it counts
	// gettxoutsetinfo.
	btcdUnimplemented        = -1
	btcdUnimplementedMessage = "Command unimplemented"
	btcdNoWalletMessage      = "This implementation does not implement wallet commands"
)

var (
	// ErrUnsupported means the daemon does not offer a method (btcd has
	// no submitpackage or gettxoutsetinfo, for instance). An *RPCError
	// for a missing method matches it with errors.Is.
	ErrUnsupported = errors.New("daemon: method not supported by the daemon")
	// ErrNotFound matches an *RPCError with CodeNotFound: the daemon does
	// not know the block or transaction.
	ErrNotFound = errors.New("daemon: not found")
	// ErrNoURLs is returned by New and SetURLs when given no URLs.
	ErrNoURLs = errors.New("daemon: no daemon URLs")
)

// RPCError is an error the daemon answered with. It is never retried
// (except CodeWarmingUp, which the client waits out), so the server can
// relay Message to the wallet, as ElectrumX does for rejected
// transactions.
type RPCError struct {
	// Code is the daemon's JSON-RPC error code, such as -26 or -25 for
	// a rejected transaction.
	Code int `json:"code"`
	// Message is the daemon's reason, as it gave it.
	Message string `json:"message"`
}

// Error returns the code and the daemon's message.
func (e *RPCError) Error() string {
	return fmt.Sprintf("daemon error %d: %s", e.Code, e.Message)
}

// Is reports whether the error is the kind target names: ErrUnsupported
// for a missing method, ErrNotFound for an unknown block or transaction.
func (e *RPCError) Is(target error) bool {
	switch target {
	case ErrUnsupported:
		return e.methodMissing()
	case ErrNotFound:
		return e.Code == CodeNotFound
	}
	return false
}

// methodMissing reports whether the daemon does not offer the method:
// JSON-RPC's method-not-found, or btcd's answers for methods it knows of
// but lacks.
func (e *RPCError) methodMissing() bool {
	return e.Code == CodeMethodNotFound ||
		(e.Code == btcdUnimplemented && (e.Message == btcdUnimplementedMessage || e.Message == btcdNoWalletMessage))
}

// badParams reports whether the daemon refused the parameters: JSON-RPC's
// invalid-params code, or btcd's "wrong number of params".
func (e *RPCError) badParams() bool {
	return e.Code == codeInvalidParams || strings.Contains(e.Message, "wrong number of params")
}

// codeInvalidParams is JSON-RPC's code for unacceptable parameters.
const codeInvalidParams = -32602

// HTTPError is a reply that is not JSON-RPC: an HTTP status without a
// decodable body, such as 401 for bad credentials or 503 when Bitcoin
// Core's work queue is full. The client retries it like a transport error.
type HTTPError struct {
	// Status is the HTTP status code.
	Status int
	// Body is the start of the reply body, for the log.
	Body string
}

// Error returns the status and the start of the body.
func (e *HTTPError) Error() string {
	body := strings.TrimSpace(e.Body)
	if body == "" {
		return fmt.Sprintf("http status %d", e.Status)
	}
	return fmt.Sprintf("http status %d: %q", e.Status, body)
}

// methodMissing reports whether err says the daemon lacks the method.
func methodMissing(err error) bool {
	var rpcErr *RPCError
	return errors.As(err, &rpcErr) && rpcErr.methodMissing()
}
