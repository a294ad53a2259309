package transport

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"
	"unicode/utf8"

	"amber/internal/config"
)

// Conn is one client connection with its transport hidden. ReadMessage
// must not be called from more than one goroutine at a time; every other
// method is safe for concurrent use.
type Conn interface {
	// ReadMessage returns the next whole message, in a new slice the
	// caller owns. On raw sockets that is one line without its "\n" and
	// one trailing "\r" (an empty line is an empty message); on
	// WebSocket it is one text or binary message.
	//
	// A message over the size limit gives a *MessageTooLargeError
	// (errors.Is ErrMessageTooLarge). On raw sockets the line has been
	// discarded and the next call reads the next line; on WebSocket the
	// connection is closed.
	//
	// If ctx ends first ReadMessage returns ctx.Err(); the connection
	// stays usable and no part of a message is lost. Once the connection
	// is closed, by either side, it returns an error: io.EOF when the
	// client went away, or one that wraps ErrClosed with the reason when
	// the server closed it.
	ReadMessage(ctx context.Context) ([]byte, error)

	// WriteMessage sends msg as one message: on raw sockets msg followed
	// by "\n", on WebSocket one text message. Concurrent calls send whole
	// messages one after the other. On raw sockets a msg containing a
	// newline would break the framing: it is refused with an error and
	// nothing is sent.
	//
	// A write that makes no progress for the write timeout fails with an
	// error wrapping ErrWriteTimeout. Any other failed write, including
	// one interrupted by ctx, closes the connection too: part of the
	// message may have gone out and the stream cannot be resynchronised.
	// After the connection is closed writes fail with an error wrapping
	// ErrClosed.
	WriteMessage(ctx context.Context, msg []byte) error

	// RemoteAddr is the client's address; IPv4 clients on a dual-stack
	// listener appear as IPv4, not IPv4-mapped IPv6.
	RemoteAddr() netip.AddrPort

	// LocalService is the configured service that accepted the
	// connection; its Proto tells tcp, ssl, ws, wss and rpc apart.
	LocalService() config.Service

	// Close closes the connection normally (CloseWith(CloseNormal, "")).
	Close() error

	// CloseWith closes the connection with a code and a short reason.
	// WebSocket clients receive both in a close frame (the reason cut to
	// 123 bytes); on raw sockets they only go into the log and the error
	// that later calls return. The handler's context is cancelled at
	// once. Closing an already closed connection does nothing and
	// returns nil.
	CloseWith(code CloseCode, reason string) error
}

// CloseCode says why a connection is closed. The values are WebSocket
// close status codes (RFC 6455 §7.4.1).
type CloseCode int

// The close codes the server uses.
const (
	CloseNormal          CloseCode = 1000 // the session ended normally
	CloseGoingAway       CloseCode = 1001 // the server is shutting down
	ClosePolicyViolation CloseCode = 1008 // the client broke a rule, e.g. excessive resource usage
	CloseMessageTooBig   CloseCode = 1009 // a message over the size limit
	CloseInternalError   CloseCode = 1011 // the server failed
	CloseTryAgainLater   CloseCode = 1013 // the server is overloaded
)

// Errors a Conn returns; callers branch on them with errors.Is.
var (
	// ErrMessageTooLarge matches every *MessageTooLargeError.
	ErrMessageTooLarge = errors.New("transport: message too large")
	// ErrWriteTimeout is wrapped by the error of a write that stalled
	// for the write timeout.
	ErrWriteTimeout = errors.New("transport: write stalled")
	// ErrClosed is wrapped by the errors of reads and writes on a
	// connection the server closed; the wrapping error gives the reason.
	ErrClosed = errors.New("transport: connection closed")
)

// MessageTooLargeError reports an incoming message over the size limit
// (MAX_RECV on raw sockets, the WebSocket read limit on WebSocket). The
// session can charge Size bytes of bandwidth and log it.
type MessageTooLargeError struct {
	Size  int64 // bytes discarded, without the newline; 0 on WebSocket, where it is unknown
	Limit int64 // the limit in force
}

func (e *MessageTooLargeError) Error() string {
	if e.Size == 0 {
		return fmt.Sprintf("transport: message over %d bytes", e.Limit)
	}
	return fmt.Sprintf("transport: message of %d bytes over the %d-byte limit", e.Size, e.Limit)
}

// Is makes errors.Is(err, ErrMessageTooLarge) true.
func (e *MessageTooLargeError) Is(target error) bool { return target == ErrMessageTooLarge }

// closedError is the cause of a connection's closing, kept as the
// cancellation cause of its context and returned by reads and writes
// that come after it.
func closedError(code CloseCode, reason string, err error) error {
	if reason == "" {
		reason = closeCodeText(code)
	}
	if err != nil {
		return fmt.Errorf("%w: %s: %w", ErrClosed, reason, err)
	}
	return fmt.Errorf("%w: %s", ErrClosed, reason)
}

func closeCodeText(code CloseCode) string {
	switch code {
	case CloseNormal:
		return "normal closure"
	case CloseGoingAway:
		return "going away"
	case ClosePolicyViolation:
		return "policy violation"
	case CloseMessageTooBig:
		return "message too big"
	case CloseInternalError:
		return "internal error"
	case CloseTryAgainLater:
		return "try again later"
	}
	return fmt.Sprintf("close code %d", int(code))
}

// maxCloseReason is the most a WebSocket close frame's reason can hold:
// 125 bytes of control frame payload less the 2-byte code.
const maxCloseReason = 123

// truncateReason cuts s to at most n bytes without splitting a UTF-8
// sequence.
func truncateReason(s string, n int) string {
	if len(s) <= n {
		return s
	}
	s = s[:n]
	for len(s) > 0 && !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return s
}

// chanLock is a mutex whose Lock gives up when a context ends.
type chanLock chan struct{}

func newChanLock() chanLock { return make(chanLock, 1) }

func (l chanLock) lock(ctx context.Context) error {
	select {
	case l <- struct{}{}:
		return nil
	default:
	}
	select {
	case l <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (l chanLock) unlock() { <-l }

// longAgo is a deadline in the past, used to interrupt a blocked read or
// write at once.
var longAgo = time.Unix(1, 0)

// addrPort converts a connection's address, unmapping IPv4-mapped IPv6.
func addrPort(a net.Addr) netip.AddrPort {
	var ap netip.AddrPort
	switch a := a.(type) {
	case *net.TCPAddr:
		ap = a.AddrPort()
	case nil:
		return ap
	default:
		ap, _ = netip.ParseAddrPort(a.String())
	}
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}
