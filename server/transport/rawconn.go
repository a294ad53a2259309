package transport

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"sync/atomic"
	"time"

	"amber/internal/config"
)

const (
	// readBufferSize is the read buffer of a raw connection; lines longer
	// than this are gathered in rawConn.pending, up to MaxRecv. Every
	// session holds one: 8 KiB still takes a wallet's burst of requests
	// (a few hundred bytes each) in one or two reads.
	readBufferSize = 8 << 10
	// writeChunk is the most written in one call, so that the write
	// timeout measures a stall rather than the time to send a long
	// message to a slow reader. WebSocket messages longer than this go
	// out as several frames.
	writeChunk = 64 << 10
)

// connState is what every kind of connection has: where it came from,
// the handler's context, and whether it is closed and why.
type connState struct {
	svc    config.Service
	peer   netip.AddrPort
	ctx    context.Context // the handler's; cancelled, with the cause, when the connection closes
	cancel context.CancelCauseFunc
	why    atomic.Pointer[error] // the cause of the closing; nil while open
}

func newConnState(base context.Context, svc config.Service, peer net.Addr) connState {
	ctx, cancel := context.WithCancelCause(base)
	return connState{svc: svc, peer: addrPort(peer), ctx: ctx, cancel: cancel}
}

// RemoteAddr implements Conn.
func (s *connState) RemoteAddr() netip.AddrPort { return s.peer }

// LocalService implements Conn.
func (s *connState) LocalService() config.Service { return s.svc }

func (s *connState) context() context.Context { return s.ctx }

// beginClose marks the connection closed because of cause and cancels
// the handler's context. It reports false if the connection was closed
// already. NOTE: the cause is recorded before the context is cancelled,
// so whoever sees the context done also finds the cause.
func (s *connState) beginClose(cause error) bool {
	if !s.why.CompareAndSwap(nil, &cause) {
		return false
	}
	s.cancel(cause)
	return true
}

func (s *connState) closed() bool { return s.why.Load() != nil }

// cause is why the connection was closed; nil while it is open.
func (s *connState) cause() error {
	if p := s.why.Load(); p != nil {
		return *p
	}
	return nil
}

// rawConn is a newline-framed connection: tcp, rpc, or ssl (TLS over TCP).
type rawConn struct {
	connState
	nc           net.Conn // what is read and written: raw itself, or TLS over it
	raw          net.Conn // the TCP connection
	maxRecv      int64
	writeTimeout time.Duration
	closeTimeout time.Duration

	// Read state, guarded by readLock.
	readLock chanLock
	br       *bufio.Reader
	pending  []byte // the start of a line longer than the read buffer
	dropping bool   // discarding an over-long line up to its newline
	dropped  int64  // bytes of that line discarded so far

	// Write state, guarded by writeLock.
	writeLock chanLock
	wbuf      []byte
}

var _ serverConn = (*rawConn)(nil)

func newRawConn(s *Server, raw net.Conn, svc config.Service) *rawConn {
	c := &rawConn{
		connState:    newConnState(s.base, svc, raw.RemoteAddr()),
		nc:           raw,
		raw:          raw,
		maxRecv:      int64(s.opts.MaxRecv),
		writeTimeout: s.opts.WriteTimeout,
		closeTimeout: s.opts.CloseTimeout,
		readLock:     newChanLock(),
		writeLock:    newChanLock(),
	}
	if svc.Proto == "ssl" {
		c.nc = tls.Server(raw, s.tlsConfig(false))
	}
	c.br = bufio.NewReaderSize(c.nc, readBufferSize)
	return c
}

// start completes the TLS handshake of an ssl connection, within the
// handshake timeout; it does nothing on plain TCP.
func (c *rawConn) start(handshakeTimeout time.Duration) error {
	tc, ok := c.nc.(*tls.Conn)
	if !ok {
		return nil
	}
	ctx, cancel := context.WithTimeout(c.ctx, handshakeTimeout)
	defer cancel()
	if err := tc.HandshakeContext(ctx); err != nil {
		return fmt.Errorf("tls handshake: %w", err)
	}
	return nil
}

func (c *rawConn) finish() {}

// ReadMessage implements Conn.
func (c *rawConn) ReadMessage(ctx context.Context) ([]byte, error) {
	if err := c.readLock.lock(ctx); err != nil {
		return nil, err
	}
	defer c.readLock.unlock()
	if c.closed() {
		return nil, c.cause()
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}

	// A context that ends moves the read deadline into the past, which
	// interrupts the read without losing buffered data; readLine keeps
	// its place in the line for the next call.
	var interrupted chan struct{}
	stop := func() bool { return true }
	if ctx.Done() != nil {
		interrupted = make(chan struct{})
		stop = context.AfterFunc(ctx, func() {
			defer close(interrupted)
			_ = c.nc.SetReadDeadline(longAgo)
		})
	}
	msg, err := c.readLine()
	if !stop() {
		<-interrupted
		_ = c.nc.SetReadDeadline(time.Time{})
	}
	if err == nil {
		return msg, nil
	}
	var tooLarge *MessageTooLargeError
	switch {
	case errors.As(err, &tooLarge):
	case c.closed():
		err = c.cause()
	case ctx.Err() != nil && errors.Is(err, os.ErrDeadlineExceeded):
		err = ctx.Err()
	}
	return nil, err
}

// readLine returns the next line without its "\n" and one trailing
// "\r". A line longer than maxRecv is discarded as it arrives and gives
// a *MessageTooLargeError once its newline has been read. Errors of the
// underlying reader are returned as they are; the state kept in c lets
// the next call carry on where this one stopped. A last line with no
// newline before EOF is dropped.
func (c *rawConn) readLine() ([]byte, error) {
	for {
		chunk, err := c.br.ReadSlice('\n')
		end := err == nil
		if end {
			chunk = chunk[:len(chunk)-1]
		}
		switch {
		case c.dropping:
			c.dropped += int64(len(chunk))
		case int64(len(c.pending))+int64(len(chunk)) > c.maxRecv:
			c.dropping = true
			c.dropped = int64(len(c.pending)) + int64(len(chunk))
			c.pending = nil
		case end && len(c.pending) == 0:
			return trimCR(bytes.Clone(chunk)), nil
		default:
			c.appendPending(chunk)
			if end {
				msg := c.pending
				c.pending = nil
				return trimCR(msg), nil
			}
		}
		if end { // the end of a dropped line
			n := c.dropped
			c.dropping, c.dropped = false, 0
			return nil, &MessageTooLargeError{Size: n, Limit: c.maxRecv}
		}
		if err != bufio.ErrBufferFull {
			return nil, err
		}
	}
}

// appendPending adds b to the partial line, growing it at most to
// maxRecv bytes of capacity.
func (c *rawConn) appendPending(b []byte) {
	need := len(c.pending) + len(b)
	if need > cap(c.pending) {
		n := max(need, min(2*cap(c.pending), int(c.maxRecv)))
		p := make([]byte, len(c.pending), n)
		copy(p, c.pending)
		c.pending = p
	}
	c.pending = append(c.pending, b...)
}

func trimCR(b []byte) []byte {
	if n := len(b); n > 0 && b[n-1] == '\r' {
		return b[:n-1]
	}
	return b
}

// errNewline refuses a message that would break the line framing.
var errNewline = errors.New("transport: message contains a newline")

// WriteMessage implements Conn. A message with a newline in it is refused
// before anything is sent, and the connection stays open.
func (c *rawConn) WriteMessage(ctx context.Context, msg []byte) error {
	if bytes.IndexByte(msg, '\n') >= 0 {
		return errNewline
	}
	if err := c.writeLock.lock(ctx); err != nil {
		return err
	}
	defer c.writeLock.unlock()
	if c.closed() {
		return c.cause()
	}
	if err := ctx.Err(); err != nil {
		return err
	}

	buf := c.frame(msg)
	var interrupted chan struct{}
	stop := func() bool { return true }
	if ctx.Done() != nil {
		interrupted = make(chan struct{})
		stop = context.AfterFunc(ctx, func() {
			defer close(interrupted)
			_ = c.nc.SetWriteDeadline(longAgo)
		})
	}
	err := c.writeAll(ctx, buf)
	if !stop() {
		<-interrupted
	}
	if err == nil {
		return nil
	}
	switch {
	case c.closed():
		return c.cause()
	case ctx.Err() != nil:
		err = fmt.Errorf("write interrupted: %w", ctx.Err())
	case errors.Is(err, os.ErrDeadlineExceeded):
		err = fmt.Errorf("%w: no progress for %s", ErrWriteTimeout, c.writeTimeout)
	}
	c.abort(err)
	return c.cause()
}

// frame returns msg followed by a newline, in one buffer so that TLS
// sends it in as few records as possible.
func (c *rawConn) frame(msg []byte) []byte {
	if len(msg) >= keepBuffer {
		b := make([]byte, 0, len(msg)+1)
		return append(append(b, msg...), '\n')
	}
	c.wbuf = append(append(c.wbuf[:0], msg...), '\n')
	return c.wbuf
}

// keepBuffer bounds the write buffer a connection keeps between writes,
// so that an idle session that once got a large reply holds little.
const keepBuffer = 4 << 10

// writeAll writes buf in chunks, each with a fresh write deadline.
func (c *rawConn) writeAll(ctx context.Context, buf []byte) error {
	for len(buf) > 0 {
		n := min(len(buf), writeChunk)
		if c.writeTimeout > 0 {
			if err := c.nc.SetWriteDeadline(time.Now().Add(c.writeTimeout)); err != nil {
				return err
			}
		}
		// NOTE: checked after setting the deadline, which may have undone
		// the one the context's AfterFunc set.
		if err := ctx.Err(); err != nil {
			return err
		}
		w, err := c.nc.Write(buf[:n])
		buf = buf[w:]
		if err != nil {
			return err
		}
	}
	return nil
}

// Close implements Conn.
func (c *rawConn) Close() error { return c.CloseWith(CloseNormal, "") }

// CloseWith implements Conn. A TLS connection sends its close_notify
// alert first, for at most the close timeout.
func (c *rawConn) CloseWith(code CloseCode, reason string) error {
	if !c.beginClose(closedError(code, reason, nil)) {
		return nil
	}
	if c.nc == c.raw {
		return c.raw.Close()
	}
	t := time.AfterFunc(c.closeTimeout, func() { _ = c.raw.Close() })
	defer t.Stop()
	err := c.nc.Close()
	if errors.Is(err, net.ErrClosed) {
		err = nil
	}
	return err
}

// abort closes the connection at once, without a TLS close_notify (which
// could block on a client that does not read).
func (c *rawConn) abort(err error) {
	if c.beginClose(fmt.Errorf("%w: %w", ErrClosed, err)) {
		_ = c.raw.Close()
	}
}
