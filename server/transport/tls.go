package transport

import (
	"crypto/tls"
	"errors"
	"fmt"
	"sync/atomic"
)

// certStore holds the certificate served by ssl and wss; a reload
// replaces it for the handshakes that follow.
type certStore struct {
	certFile, keyFile string
	cur               atomic.Pointer[tls.Certificate]
}

// load reads the certificate chain and key; on error the certificate in
// use is kept.
func (cs *certStore) load() (*tls.Certificate, error) {
	cert, err := tls.LoadX509KeyPair(cs.certFile, cs.keyFile)
	if err != nil {
		return nil, fmt.Errorf("load certificate %s and key %s: %w", cs.certFile, cs.keyFile, err)
	}
	if cert.Leaf == nil {
		return nil, fmt.Errorf("load certificate %s: %w", cs.certFile, errors.New("no leaf certificate"))
	}
	cs.cur.Store(&cert)
	return &cert, nil
}

func (cs *certStore) get(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return cs.cur.Load(), nil
}

// tlsConfig is the TLS configuration of ssl (alpn false) and wss (alpn
// true: WebSocket needs HTTP/1.1).
func (s *Server) tlsConfig(alpn bool) *tls.Config {
	c := &tls.Config{
		MinVersion:     tls.VersionTLS12,
		GetCertificate: s.certs.get,
	}
	if alpn {
		c.NextProtos = []string{"http/1.1"}
	}
	return c
}

// ReloadCertificate reads SSL_CERTFILE and SSL_KEYFILE again; new TLS
// connections get the new certificate, established ones keep theirs. If
// the files do not hold a valid certificate and matching key, the old
// certificate stays in use and the error is returned. With no ssl or wss
// service it does nothing. The command calls it on SIGHUP.
func (s *Server) ReloadCertificate() error {
	if s.certs == nil {
		return nil
	}
	cert, err := s.certs.load()
	if err != nil {
		return err
	}
	s.log.Info("certificate loaded", "subject", cert.Leaf.Subject.String(), "not_after", cert.Leaf.NotAfter)
	return nil
}
