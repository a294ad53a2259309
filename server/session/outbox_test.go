package session

import (
	"bytes"
	"testing"
	"time"
)

// TestOutboxBounded checks the notification queue of a client that does
// not read: it holds at most its limit in bytes (one message always
// fits), refuses more, takes more once the writer drains it, and a close
// wakes a writer waiting on it.
func TestOutboxBounded(t *testing.T) {
	o := newOutbox(1000)
	msg := bytes.Repeat([]byte("n"), 300)
	for i := range 3 {
		if !o.push(msg) {
			t.Fatalf("push %d of 300 bytes refused under a 1,000-byte limit", i)
		}
	}
	if o.push(msg) {
		t.Fatal("a fourth 300-byte message was queued past the 1,000-byte limit")
	}
	if m, _, ok := o.pop(); !ok || len(m) != 300 {
		t.Fatalf("pop = %d bytes, %v", len(m), ok)
	}
	if !o.push(msg) {
		t.Error("no room after the writer took one")
	}
	// A single message larger than the limit still goes out alone.
	big := newOutbox(10)
	if !big.push(msg) || big.push([]byte("x")) {
		t.Error("an oversized first message is refused, or a second is queued behind it")
	}

	empty := newOutbox(10)
	done := make(chan bool)
	go func() {
		_, _, ok := empty.pop()
		done <- ok
	}()
	time.Sleep(10 * time.Millisecond)
	empty.close()
	select {
	case ok := <-done:
		if ok {
			t.Error("pop on a closed outbox returned a message")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("close did not wake the writer")
	}
	if !empty.push(msg) {
		t.Error("push after close reports a slow reader")
	}
}
