package daemon

import (
	"context"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/go-zeromq/zmq4"
)

// TestWatchBlocks publishes hashblock messages the way bitcoind does
// (topic, 32-byte hash, 4-byte sequence) and checks each one wakes the
// watcher, while other topics do not.
func TestWatchBlocks(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	endpoint := fmt.Sprintf("tcp://%s", ln.Addr())
	ln.Close()
	pub := zmq4.NewPub(ctx)
	defer pub.Close()
	if err := pub.Listen(endpoint); err != nil {
		t.Fatal(err)
	}
	log, _ := newLogger()
	wake := WatchBlocks(ctx, endpoint, log)
	publish := func(topic string) {
		pub.Send(zmq4.NewMsgFrom([]byte(topic), make([]byte, 32), []byte{0, 0, 0, 0}))
	}
	// The subscription takes a moment to reach the publisher: publish
	// until the first wake arrives.
	deadline := time.After(10 * time.Second)
	for got := false; !got; {
		publish("hashblock")
		select {
		case <-wake:
			got = true
		case <-time.After(100 * time.Millisecond):
		case <-deadline:
			t.Fatal("no wake for hashblock")
		}
	}
	publish("hashtx")
	select {
	case <-wake:
		t.Fatal("woken by a hashtx message")
	case <-time.After(300 * time.Millisecond):
	}
	publish("hashblock")
	select {
	case <-wake:
	case <-time.After(5 * time.Second):
		t.Fatal("no wake for the second hashblock")
	}
}
