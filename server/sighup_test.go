package server_test

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"amber/internal/testenv"
)

// TestSIGHUPReloadsCertificate runs `amber serve` with an ssl listener,
// replaces the certificate files and sends SIGHUP: new connections get
// the new certificate without a restart.
func TestSIGHUPReloadsCertificate(t *testing.T) {
	if testing.Short() {
		t.Skip("runs btcd and amber")
	}
	r := testenv.StartRegtest(t, testenv.RegtestOptions{})
	r.Mine(2)
	certA, keyA, poolA := selfSignedCert(t)
	certB, keyB, poolB := selfSignedCert(t)

	port := freePort(t)
	serve, log := startServe(t, "NET=regtest", "DB_DIRECTORY="+t.TempDir(), "DAEMON_URL="+r.Btcd.URL(),
		fmt.Sprintf("SERVICES=ssl://127.0.0.1:%d", port), "SSL_CERTFILE="+certA, "SSL_KEYFILE="+keyA, "HTTP_ADDR=off")
	dial := func(pool *x509.CertPool) error {
		conn, err := tls.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port), &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"})
		if err == nil {
			conn.Close()
		}
		return err
	}
	waitFor(t, "amber to serve certificate A", 60*time.Second, func() bool { return dial(poolA) == nil })
	if dial(poolB) == nil {
		t.Fatal("certificate B trusted before the reload")
	}
	for _, p := range [][2]string{{certB, certA}, {keyB, keyA}} {
		b, err := os.ReadFile(p[0])
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p[1], b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := serve.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "amber to serve certificate B", 20*time.Second, func() bool { return dial(poolB) == nil })
	// The log line follows the reload, so it may trail the handshake.
	waitFor(t, "the reload to be logged", 10*time.Second, func() bool {
		return strings.Contains(log.String(), "certificate reloaded")
	})
}
