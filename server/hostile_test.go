package server_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"amber/internal/testenv"
)

// heapInuse is the test process's Go heap after a collection.
func heapInuse() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse
}

// TestHostileClients runs clients that attack the server's memory and
// time on one node; a polite wallet is served throughout.
func TestHostileClients(t *testing.T) {
	if testing.Short() {
		t.Skip("runs btcd")
	}
	// Cost throttling off: these attacks must be contained by the
	// limits on memory and time alone (TestFlooderThrottledThenDropped
	// covers the cost model).
	n := startNode(t, nodeOptions{env: map[string]string{"SESSION_TIMEOUT": "3", "COST_SOFT_LIMIT": "0", "COST_HARD_LIMIT": "0",
		"MAX_SEND": "1000000"}})
	// A wallet connecting after each attack is served (one kept open
	// would be closed by the short SESSION_TIMEOUT).
	stillPolite := func(t *testing.T) {
		t.Helper()
		polite := dialTCP(t, n.tcp)
		polite.version("1.4")
		if _, e := polite.raw("blockchain.headers.subscribe"); e != nil {
			t.Errorf("a polite session failed: %v", e)
		}
		polite.closeFn()
	}

	t.Run("never reads its replies", func(t *testing.T) {
		// 3,000 pipelined requests for every header: 50 MB of replies
		// that the client never reads. The server blocks on the socket
		// instead of buffering, then drops the client when sends stall.
		conn := dialFrom(t, "127.0.0.1", n.tcp)
		before := heapInuse()
		var w bytes.Buffer
		w.WriteString(`{"jsonrpc":"2.0","id":0,"method":"server.version","params":["deaf","1.4"]}` + "\n")
		for i := range 3000 {
			fmt.Fprintf(&w, `{"jsonrpc":"2.0","id":%d,"method":"blockchain.block.headers","params":[0,2016]}`+"\n", i+1)
		}
		go conn.Write(w.Bytes())
		time.Sleep(5 * time.Second)
		grown := int64(heapInuse()) - int64(before)
		t.Logf("heap grew %.1f MiB while a client left 50 MB of replies unread", float64(grown)/(1<<20))
		if grown > 32<<20 {
			t.Errorf("heap grew %d MiB for a client that does not read", grown>>20)
		}
		stillPolite(t)
		// The stalled session is closed once a send makes no progress
		// for the write timeout (20 s).
		eventually(t, "the never-reading session closed", 60*time.Second, func() bool {
			return metricSum(t, n.reg, "amber_sessions", "transport", "tcp") == 0
		})
	})

	t.Run("slowloris over tcp", func(t *testing.T) {
		// One byte every 100 ms and never a newline: closed after
		// SESSION_TIMEOUT (3 s) for lack of a whole request.
		conn := dialFrom(t, "127.0.0.1", n.tcp)
		closed := make(chan time.Duration, 1)
		began := time.Now()
		go func() {
			buf := make([]byte, 1)
			conn.SetReadDeadline(time.Now().Add(30 * time.Second))
			conn.Read(buf)
			closed <- time.Since(began)
		}()
		for i := 0; ; i++ {
			select {
			case took := <-closed:
				if took > 15*time.Second {
					t.Errorf("slowloris closed after %v", took)
				}
				stillPolite(t)
				return
			case <-time.After(100 * time.Millisecond):
				conn.Write([]byte{'{'})
			}
			if i > 300 {
				t.Fatal("slowloris still connected after 30 s")
			}
		}
	})

	t.Run("slowloris over websocket", func(t *testing.T) {
		// The HTTP upgrade trickles in: the handshake timeout (10 s)
		// ends it.
		conn := dialFrom(t, "127.0.0.1", n.ws)
		began := time.Now()
		done := make(chan struct{})
		go func() {
			defer close(done)
			conn.SetReadDeadline(time.Now().Add(40 * time.Second))
			bufio.NewReader(conn).WriteTo(discard{})
		}()
		req := "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nX-Slow: "
		for i := 0; ; i++ {
			select {
			case <-done:
				if took := time.Since(began); took > 25*time.Second {
					t.Errorf("websocket slowloris closed after %v", took)
				}
				stillPolite(t)
				return
			case <-time.After(200 * time.Millisecond):
				conn.Write([]byte{req[i%len(req)]})
			}
		}
	})

	t.Run("deeply nested JSON", func(t *testing.T) {
		l := dialLine(t, n.tcp)
		resultOf(t, l.call(0, "server.version", "nest", "1.4"))
		l.send(strings.Repeat("[", 100_000) + strings.Repeat("]", 100_000))
		m := l.reply()
		if e := errorOf(t, m); e.Code != -32700 && e.Code != -32600 {
			t.Errorf("100,000 nested arrays answered %+v", e)
		}
		resultOf(t, l.call(1, "server.ping"))
		stillPolite(t)
	})

	t.Run("10,000-request batch", func(t *testing.T) {
		l := dialLine(t, n.tcp)
		resultOf(t, l.call(0, "server.version", "batcher", "1.4"))
		var b strings.Builder
		b.WriteByte('[')
		for i := range 10_000 {
			if i > 0 {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, `{"jsonrpc":"2.0","id":%d,"method":"blockchain.block.header","params":[%d]}`, i+1, i%100)
		}
		b.WriteByte(']')
		began := time.Now()
		l.send(b.String())
		line, err := l.readLine(120 * time.Second)
		if err != nil {
			t.Fatalf("no answer to the batch in 120 s: %v", err)
		}
		var items []map[string]json.RawMessage
		if err := json.Unmarshal(line, &items); err != nil {
			// A session past its budget is answered -101 and dropped.
			var one map[string]json.RawMessage
			if json.Unmarshal(line, &one) != nil || !strings.Contains(string(one["error"]), "-101") {
				t.Fatalf("batch answered %.300s", line)
			}
			return
		}
		ok, tooLarge := 0, 0
		for _, it := range items {
			switch {
			case it["result"] != nil:
				ok++
			case strings.Contains(string(it["error"]), "response too large"):
				tooLarge++
			}
		}
		t.Logf("batch of 10,000 answered in %v: %d results, %d over MAX_SEND", time.Since(began).Round(time.Millisecond), ok, tooLarge)
		// Results fill MAX_SEND (1,000,000 bytes, about 5,000 headers);
		// the rest are "response too large" errors.
		if len(items) != 10_000 || ok == 0 || tooLarge == 0 || ok+tooLarge != 10_000 || ok*200 > 1_000_000 {
			t.Errorf("batch reply: %d items, %d results, %d too large", len(items), ok, tooLarge)
		}
		stillPolite(t)
	})
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

// TestConnectionBurst opens 10,000 connections to `amber serve` with
// MAX_SESSIONS 500 as fast as 50 dialers can: the excess is refused at
// once, a wallet connected before keeps being served, and the server
// accepts again when the burst is gone.
func TestConnectionBurst(t *testing.T) {
	if testing.Short() {
		t.Skip("runs btcd and amber")
	}
	r := testenv.StartRegtest(t, testenv.RegtestOptions{})
	r.Mine(3)
	s := startServed(t, r, "MAX_SESSIONS=500")
	polite := dialTCP(t, s.tcp)
	polite.call("server.version", "polite", "1.4")

	var served, refused atomic.Int64
	var mu sync.Mutex
	var open []net.Conn
	jobs := make(chan int)
	var wg sync.WaitGroup
	began := time.Now()
	for range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range jobs {
				conn, err := net.DialTimeout("tcp", s.tcp, 10*time.Second)
				if err != nil {
					refused.Add(1)
					continue
				}
				conn.SetDeadline(time.Now().Add(10 * time.Second))
				conn.Write([]byte(`{"jsonrpc":"2.0","id":1,"method":"server.version","params":["burst","1.4"]}` + "\n"))
				line, err := bufio.NewReader(conn).ReadBytes('\n')
				if err == nil && bytes.Contains(line, []byte(`"result"`)) {
					served.Add(1)
					mu.Lock()
					open = append(open, conn)
					mu.Unlock()
					continue
				}
				refused.Add(1)
				conn.Close()
			}
		}()
	}
	var politeErr error
	for i := range 10_000 {
		jobs <- i
		if i%1000 == 0 {
			if _, e := polite.raw("server.ping"); e != nil {
				politeErr = fmt.Errorf("%v", e)
			}
		}
	}
	close(jobs)
	wg.Wait()
	t.Logf("burst of 10,000 connections in %v: %d served, %d refused", time.Since(began).Round(time.Millisecond), served.Load(), refused.Load())
	if politeErr != nil {
		t.Errorf("the polite wallet failed during the burst: %v", politeErr)
	}
	if served.Load() > 500 || served.Load() < 400 {
		t.Errorf("%d burst sessions served with MAX_SESSIONS 500 (one slot is the wallet's)", served.Load())
	}
	if served.Load()+refused.Load() != 10_000 {
		t.Errorf("%d served + %d refused != 10,000", served.Load(), refused.Load())
	}
	for _, c := range open {
		c.Close()
	}
	// Below 95% again, new clients get in.
	waitFor(t, "a new session after the burst", 30*time.Second, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		ws, _, err := websocket.Dial(ctx, "ws://"+s.ws+"/", nil)
		if err != nil {
			return false
		}
		defer ws.CloseNow()
		if ws.Write(ctx, websocket.MessageText, []byte(`{"jsonrpc":"2.0","id":1,"method":"server.version","params":["after","1.4"]}`)) != nil {
			return false
		}
		_, b, err := ws.Read(ctx)
		return err == nil && bytes.Contains(b, []byte(`"result"`))
	})
	var info map[string]any
	s.admin(t, &info, "getinfo")
	t.Logf("after the burst: %v sessions", info["sessions"])
}
