package server_test

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// TestTLSAndIPv6 serves ssl:// and wss:// with a self-signed certificate
// and tcp on [::1] (where the host has IPv6 loopback): a client that trusts the certificate negotiates,
// subscribes to headers and is notified of a new block on each; one that
// does not trust it fails the handshake.
func TestTLSAndIPv6(t *testing.T) {
	if testing.Short() {
		t.Skip("runs btcd")
	}
	ipv6 := true
	if ln, err := net.Listen("tcp", "[::1]:0"); err != nil {
		t.Logf("no IPv6 loopback, so no [::1] listener: %v", err)
		ipv6 = false
	} else {
		ln.Close()
	}
	n := startNode(t, nodeOptions{tls: true, ipv6: ipv6})
	if ipv6 && !strings.HasPrefix(n.tcp6, "[::1]:") {
		t.Fatalf("IPv6 listener on %s", n.tcp6)
	}
	dialSSL := func(t *testing.T, pool *x509.CertPool) (*client, error) {
		conn, err := tls.Dial("tcp", n.ssl, &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"})
		if err != nil {
			return nil, err
		}
		if v := conn.ConnectionState().Version; v < tls.VersionTLS12 {
			t.Errorf("TLS version %x", v)
		}
		return lineClient(t, conn), nil
	}
	wssOpts := func(pool *x509.CertPool) *websocket.DialOptions {
		return &websocket.DialOptions{HTTPClient: &http.Client{
			Timeout:   10 * time.Second,
			Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}},
		}}
	}

	ssl, err := dialSSL(t, n.certs)
	if err != nil {
		t.Fatal(err)
	}
	clients := map[string]*client{
		"ssl": ssl,
		"wss": dialWebSocket(t, "wss://"+n.wss+"/", wssOpts(n.certs)),
	}
	if ipv6 {
		clients["tcp6"] = dialTCP(t, n.tcp6)
	}
	tip := n.r.Btcd.Height()
	hdr, _ := btcdHeader(t, n.r.Btcd, tip)
	for name, c := range clients {
		c.version("1.7")
		var hs struct {
			Hex    string `json:"hex"`
			Height int32  `json:"height"`
		}
		json.Unmarshal(c.call("blockchain.headers.subscribe"), &hs)
		if hs.Height != tip || hs.Hex != hdr {
			t.Errorf("%s: headers.subscribe %+v, btcd tip %d %s", name, hs, tip, hdr)
		}
	}
	h := n.mine(t, 1)
	hdr, _ = btcdHeader(t, n.r.Btcd, h)
	for name, c := range clients {
		if got := c.waitHeader(h); got != hdr {
			t.Errorf("%s: notified header %s, want %s", name, got, hdr)
		}
	}

	// Without the certificate in its roots, a client refuses the server.
	if _, err := dialSSL(t, x509.NewCertPool()); err == nil {
		t.Error("ssl handshake succeeded without trusting the certificate")
	}
	if _, _, err := websocket.Dial(t.Context(), "wss://"+n.wss+"/", wssOpts(x509.NewCertPool())); err == nil {
		t.Error("wss handshake succeeded without trusting the certificate")
	}
	// Plain JSON to the ssl port gets no JSON back.
	conn, err := net.Dial("tcp", n.ssl)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.Write([]byte(`{"jsonrpc":"2.0","id":1,"method":"server.version","params":[]}` + "\n"))
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	if line, _ := bufio.NewReader(conn).ReadString('\n'); strings.Contains(line, `"result"`) {
		t.Errorf("plain request on the ssl port answered: %s", line)
	}
}
