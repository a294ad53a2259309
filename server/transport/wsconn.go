package transport

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"

	"amber/internal/config"
)

// wsConn is a WebSocket connection (ws, or wss over TLS).
//
// NOTE: coder/websocket closes the connection when the context of a read
// ends, so a read cannot be abandoned. A reader goroutine therefore reads
// with no deadline and hands each message over; ReadMessage can give up
// waiting without harming the connection, as on raw sockets.
type wsConn struct {
	connState
	ws           *websocket.Conn
	raw          net.Conn // the TCP connection under ws, torn down when a close takes too long
	readLimit    int64
	writeTimeout time.Duration
	closeTimeout time.Duration

	msgs     chan []byte           // the reader's messages, one at a time
	readDone chan struct{}         // closed when the reader has stopped
	readErr  atomic.Pointer[error] // why it stopped, until ReadMessage returns it

	writeLock chanLock
}

var _ serverConn = (*wsConn)(nil)

func newWSConn(s *Server, ws *websocket.Conn, raw net.Conn, svc config.Service) *wsConn {
	ws.SetReadLimit(s.opts.WSReadLimit)
	return &wsConn{
		connState:    newConnState(s.base, svc, raw.RemoteAddr()),
		ws:           ws,
		raw:          raw,
		readLimit:    s.opts.WSReadLimit,
		writeTimeout: s.opts.WriteTimeout,
		closeTimeout: s.opts.CloseTimeout,
		msgs:         make(chan []byte),
		readDone:     make(chan struct{}),
		writeLock:    newChanLock(),
	}
}

// start starts the reader; the upgrade has been done already.
func (c *wsConn) start(time.Duration) error {
	go c.readLoop()
	return nil
}

// finish waits for the reader, which stops once the connection is closed.
func (c *wsConn) finish() { <-c.readDone }

func (c *wsConn) readLoop() {
	for {
		// NOTE: no deadline: the read ends when the connection closes.
		_, msg, err := c.ws.Read(context.Background())
		if err != nil {
			if c.closed() {
				// Closed by the server; CloseWith or abort does the rest.
				close(c.readDone)
				return
			}
			err = c.readError(err)
			// Order matters: whoever sees the context cancelled must find
			// readErr, and whoever sees readDone must find the cause.
			c.readErr.Store(&err)
			cause := fmt.Errorf("%w: %w", ErrClosed, err)
			if errors.Is(err, ErrMessageTooLarge) {
				// Later reads must not look like another message to skip.
				cause = fmt.Errorf("%w: %v", ErrClosed, err)
			}
			c.beginClose(cause)
			close(c.readDone)
			_ = c.raw.Close()
			_ = c.ws.CloseNow()
			return
		}
		select {
		case c.msgs <- msg:
		case <-c.ctx.Done():
			// Closed by the server: the close handshake reads the rest.
			close(c.readDone)
			return
		}
	}
}

// readError turns an error of the reader into the one ReadMessage gives.
func (c *wsConn) readError(err error) error {
	switch {
	case c.closed():
		return c.cause()
	case errors.Is(err, websocket.ErrMessageTooBig):
		return &MessageTooLargeError{Limit: c.readLimit}
	case websocket.CloseStatus(err) != -1:
		ce := websocket.CloseError{}
		errors.As(err, &ce)
		return fmt.Errorf("client closed the websocket (status %d %q): %w", int(ce.Code), ce.Reason, io.EOF)
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return io.EOF
	}
	return err
}

// ReadMessage implements Conn.
func (c *wsConn) ReadMessage(ctx context.Context) ([]byte, error) {
	select {
	case msg := <-c.msgs:
		return msg, nil
	case <-c.readDone:
		return nil, c.takeReadErr()
	case <-ctx.Done():
		if c.closed() {
			return nil, c.takeReadErr()
		}
		return nil, ctx.Err()
	}
}

// takeReadErr returns the reader's error once, then the cause of the
// closing.
func (c *wsConn) takeReadErr() error {
	if p := c.readErr.Swap(nil); p != nil {
		return *p
	}
	return c.cause()
}

// WriteMessage implements Conn.
func (c *wsConn) WriteMessage(ctx context.Context, msg []byte) error {
	// Our own lock, so that the stall timer starts only once this
	// message is being written, not while it waits for another.
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

	// NOTE: coder/websocket closes the connection itself when a write's
	// context ends, and the reader could then report a bare "closed"
	// before the cause is known. So the stall timer and ctx abort the
	// connection here, cause first, and the write runs without a context.
	var stall *time.Timer
	if c.writeTimeout > 0 {
		stall = time.AfterFunc(c.writeTimeout, func() {
			c.abort(fmt.Errorf("%w: no progress for %s", ErrWriteTimeout, c.writeTimeout))
		})
		defer stall.Stop()
	}
	stop := context.AfterFunc(ctx, func() {
		c.abort(fmt.Errorf("write interrupted: %w", context.Cause(ctx)))
	})
	defer stop()
	err := c.write(context.Background(), msg, stall)
	if err == nil {
		return nil
	}
	c.abort(err)
	return c.cause()
}

// write sends msg as one text message; a long one goes out as several
// frames, the stall timer restarting for each.
func (c *wsConn) write(ctx context.Context, msg []byte, stall *time.Timer) error {
	if len(msg) <= writeChunk {
		return c.ws.Write(ctx, websocket.MessageText, msg)
	}
	w, err := c.ws.Writer(ctx, websocket.MessageText)
	if err != nil {
		return err
	}
	for len(msg) > 0 {
		n := min(len(msg), writeChunk)
		if _, err := w.Write(msg[:n]); err != nil {
			return err
		}
		msg = msg[n:]
		if stall != nil {
			stall.Reset(c.writeTimeout)
		}
	}
	return w.Close()
}

// Close implements Conn.
func (c *wsConn) Close() error { return c.CloseWith(CloseNormal, "") }

// CloseWith implements Conn: it sends a close frame and waits for the
// client's, for at most the close timeout.
func (c *wsConn) CloseWith(code CloseCode, reason string) error {
	if !c.beginClose(closedError(code, reason, nil)) {
		return nil
	}
	var forced atomic.Bool
	t := time.AfterFunc(c.closeTimeout, func() {
		forced.Store(true)
		_ = c.raw.Close()
	})
	err := c.ws.Close(websocket.StatusCode(code), truncateReason(reason, maxCloseReason))
	t.Stop()
	if forced.Load() || errors.Is(err, net.ErrClosed) {
		return nil
	}
	return err
}

// abort closes the connection at once, with no close frame.
func (c *wsConn) abort(err error) {
	if c.beginClose(fmt.Errorf("%w: %w", ErrClosed, err)) {
		// The TCP connection first: closing TLS would try to send a
		// close_notify to a client that may not read.
		_ = c.raw.Close()
		_ = c.ws.CloseNow()
	}
}
