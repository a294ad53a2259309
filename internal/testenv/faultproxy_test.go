package testenv

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestFaultProxy drives each fault of the proxy against a small upstream
// that echoes the credentials it was sent.
func TestFaultProxy(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		user, pass, _ := r.BasicAuth()
		io.WriteString(w, "ok "+user+":"+pass+" "+r.Host)
	}))
	defer up.Close()
	p := StartFaultProxy(t, strings.Replace(up.URL, "http://", "http://alice:secret@", 1))
	if !strings.HasPrefix(p.URL(), "http://alice:secret@127.0.0.1:") {
		t.Fatalf("URL %s lost the credentials", p.URL())
	}
	client := &http.Client{Timeout: 5 * time.Second}
	get := func() (int, string, error) {
		resp, err := client.Get(p.URL())
		if err != nil {
			return 0, "", err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), nil
	}
	expect := func(what string, wantStatus int, wantBody string) {
		t.Helper()
		status, body, err := get()
		if err != nil || status != wantStatus || !strings.Contains(body, wantBody) {
			t.Fatalf("%s: %d %q %v, want %d %q", what, status, body, err, wantStatus, wantBody)
		}
	}

	var seen atomic.Int64
	p.OnRequest(func(r *http.Request) { seen.Add(1) })
	expect("forwarded", 200, "ok alice:secret "+p.Addr())
	if seen.Load() != 1 {
		t.Errorf("hook saw %d requests, want 1", seen.Load())
	}
	p.OnRequest(nil)

	p.FailNext(2, http.StatusInternalServerError)
	expect("first failure", 500, "injected")
	expect("second failure", 500, "injected")
	expect("after the failures", 200, "ok")

	p.FailAll(http.StatusServiceUnavailable)
	for range 3 {
		expect("failing all", 503, "injected")
	}
	p.Heal()
	expect("healed", 200, "ok")

	p.SetDelay(300 * time.Millisecond)
	start := time.Now()
	expect("delayed", 200, "ok")
	if took := time.Since(start); took < 300*time.Millisecond {
		t.Errorf("delayed request answered in %v", took)
	}
	p.Heal()

	p.Stop()
	if p.Running() {
		t.Fatal("running after Stop")
	}
	if _, _, err := get(); err == nil {
		t.Fatal("a stopped proxy answered")
	}
	p.Start()
	expect("restarted", 200, "ok")

	up.Close()
	expect("upstream gone", 502, "upstream")

	// 2 + 3 failures, 1 delay, 1 stop.
	if got := p.Faults(); got != 7 {
		t.Errorf("faults %d, want 7", got)
	}
	if got := p.Requests(); got < 10 {
		t.Errorf("requests %d, want at least 10", got)
	}
}
