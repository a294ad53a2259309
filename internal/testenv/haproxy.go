package testenv

import (
	"encoding/csv"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// HAProxyBackend is one server behind the load balancer: an Electrum
// listener that reads PROXY v2 headers, and the HTTP port whose /readyz
// decides whether it gets new connections.
type HAProxyBackend struct {
	// Name names the server in HAProxy's configuration and statistics.
	Name string
	// Addr is the host:port of the node's Electrum TCP listener.
	Addr string
	// CheckPort is the port of the node's HTTP_ADDR, on Addr's host.
	CheckPort int
}

// HAProxyFrontend is a further frontend beside the TCP one, with its own
// backend: the same TCP mode, PROXY v2 and /readyz checks, for another
// listener of the same nodes (their WebSocket port, say).
type HAProxyFrontend struct {
	// Name names the frontend electrum_<Name> and its backend
	// amber_<Name>, as in infra/haproxy/haproxy.cfg: "ws" for WebSocket.
	Name string
	// Bind is the host:port HAProxyConfig binds; StartHAProxy sets it to
	// a free loopback port.
	Bind string
	// Backends are its servers; names may repeat those of other
	// frontends.
	Backends []HAProxyBackend
}

// HAProxyOptions configures StartHAProxy and HAProxyConfig.
type HAProxyOptions struct {
	// Backends are the TCP frontend's servers; a server whose /readyz is
	// red (or whose port is closed) is down and gets no new connections.
	Backends []HAProxyBackend
	// Frontends are the frontends besides the TCP one (named "tcp").
	Frontends []HAProxyFrontend
	// CheckInterval is the time between health checks of each server;
	// zero means 200ms. One failed check marks a server down and one
	// good check marks it up, so tests see changes quickly.
	CheckInterval time.Duration
}

// HAProxy is a load balancer started by StartHAProxy: TCP mode, PROXY v2
// to the servers, health checks on /readyz, least connections.
type HAProxy struct {
	// Addr is the TCP frontend's host:port on 127.0.0.1, where wallets
	// connect.
	Addr string
	// Addrs are every frontend's host:port by name: "tcp" (Addr) and
	// those of HAProxyOptions.Frontends.
	Addrs map[string]string
	// ConfigPath is the generated configuration file.
	ConfigPath string
	// LogPath is the file HAProxy's output (its log) is appended to.
	LogPath string

	socket string // stats socket, admin level
	proc   *process
}

// HAProxyBinary returns the haproxy binary on PATH. Where it is missing
// the test is skipped with a loud message, or fails when CI=true: `make
// tools` installs it (apt-get install haproxy).
func HAProxyBinary(t testing.TB) string {
	t.Helper()
	bin, err := exec.LookPath("haproxy")
	if err == nil {
		return bin
	}
	msg := "######## haproxy is not installed (`make tools` installs it: apt-get install haproxy) ########"
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// HAProxyConfig returns the configuration StartHAProxy runs: the TCP
// frontend on listen with opts.Backends behind it, and each of
// opts.Frontends on its Bind with its own backend. socket is the admin
// stats socket's path. infra/haproxy/haproxy.cfg is the operators'
// version of the same settings, and infra's test checks that they agree.
func HAProxyConfig(listen, socket string, opts HAProxyOptions) string {
	inter := opts.CheckInterval
	if inter <= 0 {
		inter = 200 * time.Millisecond
	}
	var b strings.Builder
	fmt.Fprintf(&b, `global
    log stdout format raw local0 info
    stats socket %s mode 600 level admin
    maxconn 4096

defaults
    mode tcp
    log global
    option tcplog
    timeout connect 2s
    timeout client 10m
    timeout server 10m
    timeout check 1s
    retries 3
    option redispatch
`, socket)
	fes := append([]HAProxyFrontend{{Name: "tcp", Bind: listen, Backends: opts.Backends}}, opts.Frontends...)
	for _, fe := range fes {
		fmt.Fprintf(&b, `
frontend electrum_%[1]s
    bind %[2]s
    default_backend amber_%[1]s

backend amber_%[1]s
    balance leastconn
    option httpchk
    http-check send meth GET uri /readyz ver HTTP/1.1 hdr Host amber
    http-check expect status 200
    default-server send-proxy-v2 check inter %[3]dms fall 1 rise 1
`, fe.Name, fe.Bind, inter.Milliseconds())
		for _, be := range fe.Backends {
			fmt.Fprintf(&b, "    server %s %s port %d\n", be.Name, be.Addr, be.CheckPort)
		}
	}
	return b.String()
}

// StartHAProxy starts HAProxy (the haproxy binary on PATH, see
// HAProxyBinary) with each frontend on a free loopback port and a
// configuration generated into the test's temporary directory, and waits
// until every frontend accepts connections. It is stopped when the test
// ends, and the end of its log is shown if the test failed.
func StartHAProxy(t testing.TB, opts HAProxyOptions) *HAProxy {
	t.Helper()
	bin := HAProxyBinary(t)
	ports, err := freePorts(1 + len(opts.Frontends))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	h := &HAProxy{
		Addr:       fmt.Sprintf("127.0.0.1:%d", ports[0]),
		ConfigPath: filepath.Join(dir, "haproxy.cfg"),
		LogPath:    filepath.Join(dir, "haproxy.log"),
		socket:     filepath.Join(dir, "admin.sock"),
	}
	h.Addrs = map[string]string{"tcp": h.Addr}
	opts.Frontends = slices.Clone(opts.Frontends)
	for i := range opts.Frontends {
		fe := &opts.Frontends[i]
		if _, dup := h.Addrs[fe.Name]; dup || fe.Name == "" {
			t.Fatalf("testenv: haproxy frontend name %q is empty or taken", fe.Name)
		}
		fe.Bind = fmt.Sprintf("127.0.0.1:%d", ports[1+i])
		h.Addrs[fe.Name] = fe.Bind
	}
	if err := os.WriteFile(h.ConfigPath, []byte(HAProxyConfig(h.Addr, h.socket, opts)), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(bin, "-c", "-f", h.ConfigPath).CombinedOutput(); err != nil {
		t.Fatalf("testenv: haproxy -c rejects the generated configuration: %v\n%s", err, out)
	}
	// -db: stay in the foreground, log to stdout (our log file).
	h.proc, err = startProcess("haproxy", bin, []string{"-db", "-f", h.ConfigPath}, os.Environ(), h.LogPath)
	if err != nil {
		t.Fatal(err)
	}
	logTailOnFailure(t, "haproxy", h.LogPath)
	t.Cleanup(func() {
		if err := h.proc.stop(10 * time.Second); err != nil {
			t.Error(err)
		}
	})
	err = waitFor(h.proc, 30*time.Second, func() error {
		c, err := net.DialTimeout("unix", h.socket, time.Second)
		if err != nil {
			return err
		}
		c.Close()
		for _, addr := range h.Addrs {
			c, err = net.DialTimeout("tcp", addr, time.Second)
			if err != nil {
				return err
			}
			c.Close()
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// HAProxyServer is one server's line of HAProxy's statistics.
type HAProxyServer struct {
	// Status is "UP", "DOWN", "MAINT", or a transition such as "UP 1/2".
	Status string
	// Current is the number of connections open to the server now.
	Current int
	// Total is the number of connections ever sent to the server.
	Total int
	// CheckStatus is the last health check's result, e.g. "L7OK" or
	// "L4CON" (connection refused).
	CheckStatus string
}

// Servers returns the statistics of every server behind the TCP
// frontend, by name, from the admin socket's `show stat`. It may be
// called from any goroutine.
func (h *HAProxy) Servers() (map[string]HAProxyServer, error) {
	return h.BackendServers("tcp")
}

// BackendServers is Servers for the frontend named frontend ("tcp", or
// one of HAProxyOptions.Frontends).
func (h *HAProxy) BackendServers(frontend string) (map[string]HAProxyServer, error) {
	c, err := net.DialTimeout("unix", h.socket, 2*time.Second)
	if err != nil {
		return nil, fmt.Errorf("testenv: haproxy stats socket: %w", err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, "show stat\n"); err != nil {
		return nil, fmt.Errorf("testenv: haproxy show stat: %w", err)
	}
	body, err := io.ReadAll(c)
	if err != nil {
		return nil, fmt.Errorf("testenv: haproxy show stat: %w", err)
	}
	r := csv.NewReader(strings.NewReader(strings.TrimPrefix(string(body), "# ")))
	r.FieldsPerRecord = -1
	rows, err := r.ReadAll()
	if err != nil || len(rows) < 1 {
		return nil, fmt.Errorf("testenv: haproxy show stat: %q: %v", body, err)
	}
	col := map[string]int{}
	for i, name := range rows[0] {
		col[name] = i
	}
	for _, name := range []string{"pxname", "svname", "status", "scur", "stot", "check_status"} {
		if _, ok := col[name]; !ok {
			return nil, fmt.Errorf("testenv: haproxy show stat has no %s column: %q", name, rows[0])
		}
	}
	out := map[string]HAProxyServer{}
	for _, row := range rows[1:] {
		if len(row) < len(rows[0]) || row[col["pxname"]] != "amber_"+frontend {
			continue
		}
		name := row[col["svname"]]
		if name == "FRONTEND" || name == "BACKEND" {
			continue
		}
		cur, _ := strconv.Atoi(row[col["scur"]])
		tot, _ := strconv.Atoi(row[col["stot"]])
		out[name] = HAProxyServer{Status: row[col["status"]], Current: cur, Total: tot, CheckStatus: row[col["check_status"]]}
	}
	return out, nil
}
