package localdemo

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"amber/internal/config"
)

// TestDemo runs the demo on free ports with a short block interval, and
// checks that a wallet connection sees the chain and then a mined block.
func TestDemo(t *testing.T) {
	if testing.Short() {
		t.Skip("starts btcd, a builder and a server")
	}
	port := freeRun(t)
	hl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	httpAddr := hl.Addr().String()
	hl.Close()
	cfg, err := config.Load(config.Demo, nil, func(k string) string {
		return map[string]string{
			"DEMO_BLOCK_INTERVAL": "2s",
			"DEMO_PORT":           strconv.Itoa(port),
			"HTTP_ADDR":           httpAddr,
			"LOG_LEVEL":           "warn",
		}[k]
	}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), pw)
		pw.Close()
	}()
	var out strings.Builder
	ready := make(chan struct{})
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		sc := bufio.NewScanner(pr)
		signalled := false
		for sc.Scan() {
			out.WriteString(sc.Text() + "\n")
			if !signalled && strings.Contains(sc.Text(), "electrum --regtest --oneserver") {
				signalled = true
				close(ready)
			}
		}
	}()
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("demo ended before serving: %v", err)
	case <-ctx.Done():
		t.Fatal("demo did not start serving in time")
	}

	conn, err := net.Dial("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	r := bufio.NewReader(conn)
	call := func(id int, method string, params ...any) json.RawMessage {
		t.Helper()
		if params == nil {
			params = []any{}
		}
		b, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": id, "method": method, "params": params})
		if _, err := conn.Write(append(b, '\n')); err != nil {
			t.Fatal(err)
		}
		for {
			conn.SetReadDeadline(time.Now().Add(30 * time.Second))
			line, err := r.ReadBytes('\n')
			if err != nil {
				t.Fatal(err)
			}
			var m struct {
				ID     *int            `json:"id"`
				Result json.RawMessage `json:"result"`
				Error  json.RawMessage `json:"error"`
			}
			if err := json.Unmarshal(line, &m); err != nil {
				t.Fatal(err)
			}
			if m.ID != nil && *m.ID == id {
				if m.Error != nil {
					t.Fatalf("%s: %s", method, m.Error)
				}
				return m.Result
			}
		}
	}
	call(1, "server.version", "demo-test", "1.4")
	var tip struct {
		Height int `json:"height"`
	}
	if err := json.Unmarshal(call(2, "blockchain.headers.subscribe"), &tip); err != nil {
		t.Fatal(err)
	}
	if tip.Height < initialBlocks {
		t.Fatalf("tip height %d, want at least %d", tip.Height, initialBlocks)
	}
	// Blocks are mined every 2 s; the notification shows the new height.
	deadline := time.Now().Add(60 * time.Second)
	for {
		var now struct {
			Height int `json:"height"`
		}
		_ = json.Unmarshal(call(3, "blockchain.headers.subscribe"), &now)
		if now.Height > tip.Height {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("height stayed at %d", tip.Height)
		}
		time.Sleep(500 * time.Millisecond)
	}

	// The status page is up and shows the chain.
	resp, err := http.Get("http://" + httpAddr + "/status.json")
	if err != nil {
		t.Fatalf("status page: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"height"`) || !strings.Contains(string(body), `"network":"regtest"`) {
		t.Errorf("status.json: %d %s", resp.StatusCode, body)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("demo: %v\n%s", err, out.String())
		}
		pw.Close()
		<-readDone
		if !strings.Contains(out.String(), "http://"+httpAddr+"/") {
			t.Errorf("the demo does not print the status page URL:\n%s", out.String())
		}
	case <-time.After(time.Minute):
		t.Fatal("demo did not stop")
	}
}

// freeRun returns the first of four consecutive TCP ports that were free
// a moment ago.
func freeRun(t *testing.T) int {
	for base := 30000 + int(time.Now().UnixNano()%20000); base < 65000; base += 4 {
		ok := true
		var ls []net.Listener
		for i := range 4 {
			l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", base+i))
			if err != nil {
				ok = false
				break
			}
			ls = append(ls, l)
		}
		for _, l := range ls {
			l.Close()
		}
		if ok {
			return base
		}
	}
	t.Fatal("no four free consecutive ports")
	return 0
}
