package telemetry

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// TestHTTPEndpoints runs the real listener on loopback and checks what a
// load balancer and Prometheus see as the node's state changes.
func TestHTTPEndpoints(t *testing.T) {
	reg := NewRegistry()
	c := prometheus.NewCounter(prometheus.CounterOpts{Namespace: Namespace, Name: "test_events_total", Help: "Events."})
	reg.MustRegister(c)
	c.Add(3)
	h := NewHealth("syncing")
	srv := NewHTTPServer("127.0.0.1:0", reg, h, Discard())

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	base := "http://" + ln.Addr().String()

	if code, body := get(t, base+"/healthz"); code != 200 || strings.TrimSpace(body) != "ok" {
		t.Errorf("/healthz = %d %q", code, body)
	}
	if code, body := get(t, base+"/readyz"); code != 503 || !strings.Contains(body, "syncing") {
		t.Errorf("/readyz before ready = %d %q, want 503 syncing", code, body)
	}
	h.SetReady(true, "")
	if code, _ := get(t, base+"/readyz"); code != 200 {
		t.Errorf("/readyz when ready = %d, want 200", code)
	}
	h.Drain()
	h.SetReady(true, "")
	if code, body := get(t, base+"/readyz"); code != 503 || !strings.Contains(body, "draining") {
		t.Errorf("/readyz when draining = %d %q, want 503 draining", code, body)
	}
	code, body := get(t, base+"/metrics")
	if code != 200 || !strings.Contains(body, "amber_test_events_total 3") || !strings.Contains(body, "go_goroutines") {
		t.Errorf("/metrics = %d, missing series:\n%.500s", code, body)
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Serve returned %v after cancel", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return after cancel")
	}
	if _, err := http.Get(base + "/healthz"); err == nil {
		t.Error("listener still answers after shutdown")
	}
}

func TestRunReportsListenError(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	srv := NewHTTPServer(ln.Addr().String(), NewRegistry(), NewHealth(""), Discard())
	err = srv.Run(context.Background())
	if err == nil || !strings.Contains(err.Error(), ln.Addr().String()) {
		t.Errorf("Run on a busy port: %v, want an error naming the address", err)
	}
}

func TestLoggerFormats(t *testing.T) {
	var lv slog.LevelVar
	var buf bytes.Buffer
	NewLogger(&buf, &lv, "json").Info("block applied", "height", 170)
	var m map[string]any
	if err := json.Unmarshal(buf.Bytes(), &m); err != nil || m["msg"] != "block applied" || m["height"] != float64(170) {
		t.Errorf("json log %q: %v", buf.String(), err)
	}
	buf.Reset()
	l := NewLogger(&buf, &lv, "text")
	l.Debug("hidden")
	lv.Set(slog.LevelDebug)
	l.Debug("shown", "height", 1)
	if s := buf.String(); strings.Contains(s, "hidden") || !strings.Contains(s, "msg=shown height=1") {
		t.Errorf("text log with run-time level change: %q", s)
	}
}

// TestMeterLogs checks what an operator reading logs sees during a long
// sync: a line every LogEvery with the rate and the time left.
func TestMeterLogs(t *testing.T) {
	var buf bytes.Buffer
	var lv slog.LevelVar
	m := NewMeter("sync", "blocks", &buf, NewLogger(&buf, &lv, "json"))
	now := time.Unix(1_000_000, 0)
	m.now = func() time.Time { return now }

	m.Update(100, 1100, false, "txs", int64(0))
	now = now.Add(time.Second)
	m.Update(150, 1100, false, "txs", int64(500)) // within LogEvery: silent
	now = now.Add(9 * time.Second)
	m.Update(600, 1100, false, "txs", int64(5000))

	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("got %d log lines, want 2:\n%s", len(lines), buf.String())
	}
	var last map[string]any
	if err := json.Unmarshal([]byte(lines[1]), &last); err != nil {
		t.Fatal(err)
	}
	// 500 blocks in 10 s = 50/s; 500 left = 10 s.
	if last["rate_per_s"] != 50.0 || last["eta"] != "10s" || last["txs_per_s"] != 500.0 || last["done"] != 600.0 {
		t.Errorf("progress line %v: want rate 50/s, eta 10s, 500 tx/s", last)
	}
}

// TestServePprof checks that the profiles are served only when asked for.
func TestServePprof(t *testing.T) {
	for _, on := range []bool{false, true} {
		srv := NewHTTPServer("127.0.0.1:0", NewRegistry(), NewHealth(""), Discard())
		if on {
			srv.ServePprof()
		}
		ts := httptest.NewServer(srv.Handler())
		code, body := get(t, ts.URL+"/debug/pprof/heap?debug=1")
		ts.Close()
		if on && (code != 200 || !strings.Contains(body, "heap profile")) {
			t.Errorf("with pprof: /debug/pprof/heap = %d %.60q", code, body)
		}
		if !on && code != 404 {
			t.Errorf("without pprof: /debug/pprof/heap = %d, want 404", code)
		}
	}
}
