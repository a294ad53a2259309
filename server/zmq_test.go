package server_test

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/go-zeromq/zmq4"

	"amber/internal/config"
	"amber/internal/telemetry"
	"amber/internal/testenv"
	"amber/server"
)

// TestZMQWakesFollower: with polling set to an hour, a block reaches
// subscribers because a ZMQ hashblock announcement wakes the follower.
func TestZMQWakesFollower(t *testing.T) {
	if testing.Short() {
		t.Skip("runs btcd")
	}
	r := testenv.StartRegtest(t, testenv.RegtestOptions{})
	r.Mine(3)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	endpoint := "tcp://" + ln.Addr().String()
	ln.Close()
	pub := zmq4.NewPub(ctx)
	defer pub.Close()
	if err := pub.Listen(endpoint); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"NET": "regtest", "DB_DIRECTORY": t.TempDir(), "DAEMON_URL": r.Btcd.URL(),
		"SERVICES": "tcp://127.0.0.1:0", "DAEMON_POLL_INTERVAL": "1h", "ZMQ_HASHBLOCK": endpoint}
	cfg, err := config.Load(config.Serve, nil, func(k string) string { return env[k] }, nil)
	if err != nil {
		t.Fatal(err)
	}
	srv := server.New(cfg, telemetry.Discard(), telemetry.NewRegistry(), telemetry.NewHealth(""))
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	defer func() { cancel(); <-done }()
	select {
	case <-srv.Ready():
	case err := <-done:
		t.Fatal(err)
	case <-time.After(60 * time.Second):
		t.Fatal("server not ready")
	}
	conn, err := net.Dial("tcp", srv.Addrs()[0])
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	lines := bufio.NewScanner(conn)
	send := func(s string) { fmt.Fprintf(conn, "%s\n", s) }
	send(`{"jsonrpc":"2.0","id":1,"method":"server.version","params":["zmq-test","1.4"]}`)
	send(`{"jsonrpc":"2.0","id":2,"method":"blockchain.headers.subscribe","params":[]}`)
	for i := 0; i < 2 && lines.Scan(); i++ {
	}
	r.Mine(1)
	got := make(chan string, 1)
	go func() {
		for lines.Scan() {
			if strings.Contains(lines.Text(), `"blockchain.headers.subscribe"`) {
				got <- lines.Text()
				return
			}
		}
	}()
	deadline := time.After(20 * time.Second)
	for {
		pub.Send(zmq4.NewMsgFrom([]byte("hashblock"), make([]byte, 32), []byte{0, 0, 0, 0}))
		select {
		case note := <-got:
			if !strings.Contains(note, `"height":4`) {
				t.Errorf("notification %s, want height 4", note)
			}
			return
		case <-time.After(200 * time.Millisecond):
		case <-deadline:
			t.Fatal("no header notification: the ZMQ announcement did not wake the follower")
		}
	}
}
