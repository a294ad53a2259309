package peers

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strconv"
	"time"

	"golang.org/x/net/proxy"
)

// proxyPorts are tried on TOR_PROXY_HOST when TOR_PROXY_PORT is not set:
// Tor's daemon, the Tor browser, and the usual SOCKS port.
var proxyPorts = []int{9050, 9150, 1080}

// proxyRetry is how often a missing proxy is looked for again.
const proxyRetry = 15 * time.Minute

// dial connects to host:port, through the SOCKS5 proxy for onion hosts
// or when TOR_PROXY_PORT is set (the proxy then resolves names), else
// directly from our listening address; then TLS without certificate
// checks when asked, as Electrum peers mostly use self-signed ones.
func (m *Manager) dial(ctx context.Context, host string, port int, useTLS bool, timeout time.Duration) (conn net.Conn, proxied bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	target := net.JoinHostPort(host, strconv.Itoa(port))
	m.mu.Lock()
	proxyAddr := m.proxyAddr
	m.mu.Unlock()
	if m.o.ProxyPort != 0 {
		proxyAddr = net.JoinHostPort(m.o.ProxyHost, strconv.Itoa(m.o.ProxyPort))
	}
	switch {
	case m.o.ProxyPort != 0 || isOnion(host):
		if proxyAddr == "" {
			return nil, false, errors.New("no SOCKS5 proxy for an onion peer; set TOR_PROXY_HOST and TOR_PROXY_PORT")
		}
		d, err := proxy.SOCKS5("tcp", proxyAddr, nil, &net.Dialer{Timeout: timeout})
		if err != nil {
			return nil, false, fmt.Errorf("socks5 proxy %s: %w", proxyAddr, err)
		}
		conn, err = d.(proxy.ContextDialer).DialContext(ctx, "tcp", target)
		if err != nil {
			return nil, true, fmt.Errorf("through socks5 proxy %s: %w", proxyAddr, err)
		}
		proxied = true
	default:
		if conn, err = m.dialDirect(ctx, host, port); err != nil {
			return nil, false, err
		}
	}
	if !useTLS {
		return conn, proxied, nil
	}
	cfg := &tls.Config{InsecureSkipVerify: true} // peers are checked by their answers, not certificates
	if _, ok := hostAddr(host); !ok {
		cfg.ServerName = host
	}
	tc := tls.Client(conn, cfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		conn.Close()
		return nil, proxied, fmt.Errorf("tls: %w", err)
	}
	return tc, proxied, nil
}

// dialDirect connects to each address of host in turn, from a
// listening address of the same family when there is one.
func (m *Manager) dialDirect(ctx context.Context, host string, port int) (net.Conn, error) {
	addrs := []netip.Addr{}
	if ip, ok := hostAddr(host); ok {
		addrs = append(addrs, ip)
	} else {
		var err error
		if addrs, err = m.o.Resolve(ctx, host); err != nil {
			return nil, fmt.Errorf("resolve %s: %w", host, err)
		}
	}
	err := fmt.Errorf("no address for %s", host)
	for _, ip := range addrs {
		d := &net.Dialer{}
		if local := m.localAddr(ip.Unmap()); local != nil {
			d.LocalAddr = local
		}
		var conn net.Conn
		if conn, err = d.DialContext(ctx, "tcp", netip.AddrPortFrom(ip.Unmap(), uint16(port)).String()); err == nil {
			return conn, nil
		}
	}
	return nil, err
}

// localAddr is the first IP-literal listener address of the same family
// as target, so the peer sees the address we report (spec §6.6); nil
// lets the system choose. A loopback listener is used only for loopback
// targets, which it could not reach otherwise.
func (m *Manager) localAddr(target netip.Addr) *net.TCPAddr {
	for _, s := range m.o.Services {
		ip, ok := hostAddr(s.Host)
		if s.Proto == "rpc" || !ok || ip.IsUnspecified() || ip.Is4() != target.Is4() || ip.IsLoopback() != target.IsLoopback() {
			continue
		}
		return &net.TCPAddr{IP: ip.AsSlice()}
	}
	return nil
}

func netipAddrPort(a net.Addr) (netip.AddrPort, error) {
	if ta, ok := a.(*net.TCPAddr); ok {
		return ta.AddrPort(), nil
	}
	return netip.ParseAddrPort(a.String())
}

// detectProxy looks for a SOCKS5 proxy on TOR_PROXY_HOST's usual ports
// and keeps the first that answers a SOCKS5 greeting.
func (m *Manager) detectProxy(ctx context.Context) bool {
	for _, port := range proxyPorts {
		addr := net.JoinHostPort(m.o.ProxyHost, strconv.Itoa(port))
		if socks5Answers(ctx, addr) {
			m.mu.Lock()
			m.proxyAddr = addr
			m.mu.Unlock()
			m.log.Info("found a socks5 proxy for onion peers", "addr", addr)
			return true
		}
	}
	m.log.Info("no socks5 proxy found; onion peers skipped until one is", "host", m.o.ProxyHost, "ports", fmt.Sprint(proxyPorts))
	return false
}

// detectLoop looks for the proxy again every proxyRetry until found.
func (m *Manager) detectLoop(ctx context.Context) {
	t := time.NewTicker(proxyRetry)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if m.detectProxy(ctx) {
				return
			}
		}
	}
}

// socks5Answers reports whether addr speaks SOCKS5 without
// authentication.
func socks5Answers(ctx context.Context, addr string) bool {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	c, err := (&net.Dialer{}).DialContext(ctx, "tcp", addr)
	if err != nil {
		return false
	}
	defer c.Close()
	deadline, _ := ctx.Deadline()
	c.SetDeadline(deadline)
	if _, err := c.Write([]byte{5, 1, 0}); err != nil {
		return false
	}
	var reply [2]byte
	if _, err := io.ReadFull(c, reply[:]); err != nil {
		return false
	}
	return reply == [2]byte{5, 0}
}
