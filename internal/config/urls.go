package config

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
)

// DaemonURL is one daemon JSON-RPC endpoint. Password is a secret: String
// leaves it out, so a DaemonURL can be logged.
type DaemonURL struct {
	Scheme   string // http or https
	Host     string
	Port     int // 0 until the network's default RPC port is filled in
	User     string
	Password string
}

// String is the URL without the password, safe to log.
func (d DaemonURL) String() string {
	u := url.URL{Scheme: d.Scheme, Host: d.HostPort(), Path: "/"}
	if d.User != "" {
		u.User = url.User(d.User)
	}
	return u.String()
}

// HostPort is host:port, with IPv6 hosts bracketed.
func (d DaemonURL) HostPort() string {
	return net.JoinHostPort(d.Host, strconv.Itoa(d.Port))
}

// ParseDaemonURLs parses DAEMON_URL: a comma-separated list of
// [http[s]://][user:pass@]host[:port][/]. An empty value gives no URLs.
func ParseDaemonURLs(v string) ([]DaemonURL, error) {
	var out []DaemonURL
	for _, part := range strings.Split(v, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		if !strings.Contains(part, "://") {
			part = "http://" + part
		}
		u, err := url.Parse(part)
		if err != nil || u.Host == "" {
			return nil, errors.New("not a URL; want http://user:pass@host:port/ (comma-separated for failover)")
		}
		if u.Scheme != "http" && u.Scheme != "https" {
			return nil, fmt.Errorf("scheme %q; want http or https", u.Scheme)
		}
		if u.Path != "" && u.Path != "/" {
			return nil, fmt.Errorf("unexpected path %q; want http://user:pass@host:port/", u.Path)
		}
		d := DaemonURL{Scheme: u.Scheme, Host: u.Hostname()}
		if p := u.Port(); p != "" {
			n, err := strconv.Atoi(p)
			if err != nil || n < 1 || n > 65535 {
				return nil, fmt.Errorf("bad port %q; want 1 to 65535", p)
			}
			d.Port = n
		}
		if u.User != nil {
			d.User = u.User.Username()
			d.Password, _ = u.User.Password()
		}
		out = append(out, d)
	}
	return out, nil
}

// redactURLs replaces passwords in a DAEMON_URL value for error messages.
func redactURLs(v string) string {
	parts := strings.Split(v, ",")
	for i, p := range parts {
		at := strings.LastIndex(p, "@")
		if at < 0 {
			continue
		}
		start := strings.Index(p, "://")
		start = max(start+3, 0)
		if start > at {
			start = 0
		}
		if colon := strings.Index(p[start:at], ":"); colon >= 0 {
			parts[i] = p[:start+colon+1] + "***" + p[at:]
		}
	}
	return strings.Join(parts, ",")
}

// Service is one listener (SERVICES) or advertised endpoint
// (REPORT_SERVICES).
type Service struct {
	Proto string // tcp, ssl, ws, wss or rpc
	Host  string // empty means all interfaces
	Port  int
}

// Addr is the address to listen on or dial.
func (s Service) Addr() string { return net.JoinHostPort(s.Host, strconv.Itoa(s.Port)) }

// String is the service in SERVICES form.
func (s Service) String() string { return s.Proto + "://" + s.Addr() }

// ParseServices parses a comma-separated SERVICES (report false) or
// REPORT_SERVICES (report true) value.
func ParseServices(v string, report bool) ([]Service, error) {
	var out []Service
	seen := map[string]bool{}
	for _, part := range strings.Split(v, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		proto, rest, ok := strings.Cut(part, "://")
		if !ok {
			return nil, fmt.Errorf("%q has no protocol; want proto://host:port with proto tcp, ssl, ws, wss or rpc", part)
		}
		s := Service{Proto: strings.ToLower(proto)}
		switch s.Proto {
		case "tcp", "ssl", "ws", "wss":
		case "rpc":
			if report {
				return nil, errors.New("rpc:// is never advertised; want tcp, ssl, ws or wss")
			}
		default:
			return nil, fmt.Errorf("unknown protocol %q; want tcp, ssl, ws, wss or rpc", proto)
		}
		host, port, err := splitService(rest, s.Proto)
		if err != nil {
			return nil, fmt.Errorf("%q: %v", part, err)
		}
		s.Host, s.Port = host, port
		if report {
			if err := checkReportHost(host); err != nil {
				return nil, fmt.Errorf("%q: %v", part, err)
			}
		} else if strings.HasSuffix(strings.ToLower(host), ".onion") {
			return nil, fmt.Errorf("%q: cannot listen on a .onion host; put it in REPORT_SERVICES", part)
		}
		key := s.Addr()
		if report {
			key = s.String()
		}
		if seen[key] && s.Port != 0 { // port 0 picks a free port each time
			return nil, fmt.Errorf("%s given twice", key)
		}
		seen[key] = true
		out = append(out, s)
	}
	return out, nil
}

// splitService reads host:port; the host may be empty (all interfaces) and
// the port may be left out only for rpc (8000, on localhost).
func splitService(rest, proto string) (string, int, error) {
	rest = strings.TrimSuffix(rest, "/")
	if proto == "rpc" {
		if rest == "" {
			return "localhost", 8000, nil
		}
		if _, _, err := net.SplitHostPort(rest); err != nil {
			rest = net.JoinHostPort(strings.Trim(rest, "[]"), "8000")
		}
	}
	host, p, err := net.SplitHostPort(rest)
	if err != nil {
		return "", 0, errors.New("want host:port, [ipv6]:port or :port")
	}
	port, err := strconv.Atoi(p)
	if err != nil || port < 0 || port > 65535 {
		return "", 0, fmt.Errorf("bad port %q; want 0 to 65535", p)
	}
	if proto == "rpc" && host == "" {
		host = "localhost"
	}
	if proto == "rpc" {
		// The admin RPC has no authentication: keep it off the network.
		if ip, err := netip.ParseAddr(host); host != "localhost" && (err != nil || !ip.IsLoopback()) {
			return "", 0, fmt.Errorf("the admin RPC has no authentication, so it listens on loopback only; want localhost, 127.0.0.1 or [::1], not %q", host)
		}
	}
	return host, port, nil
}

// checkReportHost refuses hosts no peer could reach. Loopback is allowed
// so test networks on one machine can advertise themselves.
func checkReportHost(host string) error {
	if host == "" {
		return errors.New("an advertised service needs a host name or address")
	}
	if strings.EqualFold(host, "localhost") {
		return errors.New("localhost cannot be advertised; want a public host name")
	}
	if ip, err := netip.ParseAddr(host); err == nil && (ip.IsUnspecified() || ip.IsMulticast()) {
		return errors.New("unspecified or multicast addresses cannot be advertised")
	}
	return nil
}
