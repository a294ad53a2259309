package transport

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"amber/internal/config"
)

// readAll runs readLine over in until it fails and describes each result:
// "msg:TEXT", "big:SIZE", or the final error.
func readAll(r io.Reader, maxRecv int64) []string {
	c := &rawConn{br: bufio.NewReaderSize(r, 16), maxRecv: maxRecv}
	var out []string
	for {
		msg, err := c.readLine()
		var tooLarge *MessageTooLargeError
		switch {
		case err == nil:
			out = append(out, "msg:"+string(msg))
		case errors.As(err, &tooLarge):
			if tooLarge.Limit != maxRecv {
				out = append(out, fmt.Sprintf("bad limit %d", tooLarge.Limit))
			}
			out = append(out, fmt.Sprintf("big:%d", tooLarge.Size))
		default:
			return append(out, err.Error())
		}
	}
}

func TestReadLine(t *testing.T) {
	long := strings.Repeat("x", 100)
	tests := []struct {
		name    string
		in      string
		maxRecv int64
		want    []string
	}{
		{"several", "a\nb\nc\n", 10, []string{"msg:a", "msg:b", "msg:c", "EOF"}},
		{"crlf", "a\r\nb\r\n", 10, []string{"msg:a", "msg:b", "EOF"}},
		{"one cr only", "a\r\r\n", 10, []string{"msg:a\r", "EOF"}},
		{"empty lines", "\n\n\r\n", 10, []string{"msg:", "msg:", "msg:", "EOF"}},
		{"inner cr kept", "a\rb\n", 10, []string{"msg:a\rb", "EOF"}},
		{"at the limit", "0123456789\n", 10, []string{"msg:0123456789", "EOF"}},
		{"over by the cr", "0123456789\r\n", 10, []string{"big:11", "EOF"}},
		{"over then fine", "0123456789A\nok\n", 10, []string{"big:11", "msg:ok", "EOF"}},
		{"over many buffers", long + "\nok\n", 10, []string{"big:100", "msg:ok", "EOF"}},
		{"two over in a row", long + "\n" + long + "\n", 10, []string{"big:100", "big:100", "EOF"}},
		{"spanning buffers", long + "\n", 100, []string{"msg:" + long, "EOF"}},
		{"spanning with crlf", long + "\r\n", 101, []string{"msg:" + long, "EOF"}},
		{"partial line dropped at eof", "abc\npartial", 10, []string{"msg:abc", "EOF"}},
		{"over and unterminated", long, 10, []string{"EOF"}},
		{"nothing", "", 10, []string{"EOF"}},
	}
	readers := []struct {
		name string
		wrap func(io.Reader) io.Reader
	}{
		{"whole", func(r io.Reader) io.Reader { return r }},
		{"one byte", iotest.OneByteReader},
		{"half", iotest.HalfReader},
	}
	for _, tt := range tests {
		for _, rd := range readers {
			t.Run(tt.name+"/"+rd.name, func(t *testing.T) {
				got := readAll(rd.wrap(strings.NewReader(tt.in)), tt.maxRecv)
				if fmt.Sprint(got) != fmt.Sprint(tt.want) {
					t.Errorf("got %q, want %q", got, tt.want)
				}
			})
		}
	}
}

// script is a reader that returns its steps in turn, then EOF.
type script []struct {
	data string
	err  error
}

func (s *script) Read(p []byte) (int, error) {
	if len(*s) == 0 {
		return 0, io.EOF
	}
	st := (*s)[0]
	*s = (*s)[1:]
	return copy(p, st.data), st.err
}

// TestReadLineInterrupted checks that a read interrupted mid-line (as a
// context does, through the read deadline) keeps what it has and finishes
// the line on the next call, also while dropping an over-long line.
func TestReadLineInterrupted(t *testing.T) {
	errTimeout := errors.New("timeout")
	tests := []struct {
		name    string
		steps   script
		maxRecv int64
		want    []string
	}{
		{"mid line", script{{"hel", nil}, {"", errTimeout}, {"lo\nnext\n", nil}}, 10,
			[]string{"timeout", "msg:hello", "msg:next", "EOF"}},
		{"mid long line", script{{"0123456789abcdef", nil}, {"0123", nil}, {"", errTimeout}, {"45\n", nil}}, 100,
			[]string{"timeout", "msg:0123456789abcdef012345", "EOF"}},
		{"while dropping", script{{"abcdefgh", nil}, {"", errTimeout}, {"ij\nok\n", nil}}, 5,
			[]string{"timeout", "big:10", "msg:ok", "EOF"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			steps := tt.steps
			got := readAllErrs(&steps, tt.maxRecv, errTimeout)
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

// readAllErrs is readAll that carries on after the error skip.
func readAllErrs(r io.Reader, maxRecv int64, skip error) []string {
	c := &rawConn{br: bufio.NewReaderSize(r, 16), maxRecv: maxRecv}
	var out []string
	for {
		msg, err := c.readLine()
		var tooLarge *MessageTooLargeError
		switch {
		case err == nil:
			out = append(out, "msg:"+string(msg))
		case errors.As(err, &tooLarge):
			out = append(out, fmt.Sprintf("big:%d", tooLarge.Size))
		case errors.Is(err, skip):
			out = append(out, err.Error())
		default:
			return append(out, err.Error())
		}
	}
}

// events is a handler that reports what each read returns.
func events(ch chan<- string) Handler {
	return func(ctx context.Context, c Conn) {
		for {
			msg, err := c.ReadMessage(ctx)
			var tooLarge *MessageTooLargeError
			switch {
			case err == nil:
				ch <- "msg:" + string(msg)
			case errors.As(err, &tooLarge):
				ch <- fmt.Sprintf("big:%d", tooLarge.Size)
			default:
				ch <- "err"
				return
			}
		}
	}
}

func next(t *testing.T, ch <-chan string) string {
	t.Helper()
	select {
	case s := <-ch:
		return s
	case <-time.After(5 * time.Second):
		t.Fatal("no event after 5s")
		return ""
	}
}

func TestFraming(t *testing.T) {
	checkGoroutines(t)
	ch := make(chan string, 100)
	ts := startServer(t, []config.Service{svc("tcp", "127.0.0.1")}, events(ch), Options{MaxRecv: 1000})
	tests := []struct {
		name   string
		writes []string
		want   []string
	}{
		{"several in one write", []string{"a\nbb\nccc\n"}, []string{"msg:a", "msg:bb", "msg:ccc"}},
		{"split across writes", []string{"hel", "lo wo", "rld\n"}, []string{"msg:hello world"}},
		{"crlf", []string{"a\r\n", "b\r", "\n"}, []string{"msg:a", "msg:b"}},
		{"empty lines", []string{"\n\r\n\n"}, []string{"msg:", "msg:", "msg:"}},
		{"too large then fine", []string{strings.Repeat("y", 1500), strings.Repeat("y", 1500) + "\nnext\n"}, []string{"big:3000", "msg:next"}},
		{"unterminated at close", []string{"a\nb"}, []string{"msg:a"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := dialRaw(t, "tcp", ts.addrs["tcp"], nil)
			for _, w := range tt.writes {
				c.send(t, w)
				time.Sleep(20 * time.Millisecond) // separate segments
			}
			_ = c.Close()
			for _, w := range append(tt.want, "err") {
				if got := next(t, ch); got != w {
					t.Errorf("got %q, want %q", got, w)
				}
			}
		})
	}
}

// TestMaxRecvMemory sends a 50 MB line in chunks: the server drops it
// without buffering it, reports it, and reads the next line.
func TestMaxRecvMemory(t *testing.T) {
	checkGoroutines(t)
	ch := make(chan string, 10)
	ts := startServer(t, []config.Service{svc("tcp", "127.0.0.1")}, events(ch), Options{MaxRecv: DefaultMaxRecv})
	c := dialRaw(t, "tcp", ts.addrs["tcp"], nil)

	const total = 50 << 20
	chunk := []byte(strings.Repeat("z", 64<<10))
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	_ = c.SetWriteDeadline(time.Now().Add(20 * time.Second))
	for sent := 0; sent < total; sent += len(chunk) {
		if _, err := c.Write(chunk); err != nil {
			t.Fatal(err)
		}
	}
	c.send(t, "\nnext\n")
	if got, want := next(t, ch), fmt.Sprintf("big:%d", total); got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	if got := next(t, ch); got != "msg:next" {
		t.Errorf("got %q, want msg:next", got)
	}
	runtime.ReadMemStats(&after)
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 8<<20 {
		t.Errorf("allocated %d bytes while dropping a %d-byte line; want under 8 MiB", alloc, total)
	}
}

// TestReadContext checks that ReadMessage gives up when its context ends
// without losing what has arrived of the message.
func TestReadContext(t *testing.T) {
	checkGoroutines(t)
	dir := t.TempDir()
	cert := newCert(t, dir, "a")
	ch := make(chan string, 10)
	h := func(ctx context.Context, c Conn) {
		for {
			rctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
			msg, err := c.ReadMessage(rctx)
			cancel()
			switch {
			case errors.Is(err, context.DeadlineExceeded):
				ch <- "timeout"
				continue
			case err != nil:
				return
			}
			ch <- "msg:" + string(msg)
			return
		}
	}
	services := []config.Service{svc("tcp", "127.0.0.1"), svc("ssl", "127.0.0.1"), svc("ws", "127.0.0.1")}
	ts := startServer(t, services, h, Options{CertFile: cert.certFile, KeyFile: cert.keyFile})
	for _, proto := range []string{"tcp", "ssl", "ws"} {
		t.Run(proto, func(t *testing.T) {
			if proto == "ws" {
				// A WebSocket message is whole or absent: just check a
				// timed-out wait leaves the connection usable.
				c := dial(t, proto, ts.addrs[proto], nil)
				if got := next(t, ch); got != "timeout" {
					t.Fatalf("got %q, want timeout", got)
				}
				c.send(t, "hello")
				for got := next(t, ch); got != "msg:hello"; got = next(t, ch) {
					if got != "timeout" {
						t.Fatalf("got %q", got)
					}
				}
				return
			}
			c := dialRaw(t, proto, ts.addrs[proto], cert.pool())
			c.send(t, "hel")
			if got := next(t, ch); got != "timeout" {
				t.Fatalf("got %q, want timeout", got)
			}
			c.send(t, "lo\n")
			for got := next(t, ch); got != "msg:hello"; got = next(t, ch) {
				if got != "timeout" {
					t.Fatalf("got %q, want msg:hello", got)
				}
			}
		})
	}
}
