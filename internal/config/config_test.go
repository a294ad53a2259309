package config

import (
	"bytes"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func env(kv ...string) func(string) string {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return func(k string) string { return m[k] }
}

var serveBase = []string{"DAEMON_URL", "rpc:secret@127.0.0.1:18443", "DB_DIRECTORY", "/tmp/db", "NET", "regtest"}

func TestLoadDefaults(t *testing.T) {
	c, err := Load(Serve, nil, env(serveBase...), nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Network.Name != "regtest" || c.Coin != "Bitcoin" {
		t.Errorf("network %v coin %s", c.Network, c.Coin)
	}
	if c.ReorgLimit != 8000 {
		t.Errorf("regtest REORG_LIMIT default = %d, want 8000", c.ReorgLimit)
	}
	if c.MaxSessions != 1000 || c.MaxRecv != 1_000_000 || c.MaxSend != 8_100_000 {
		t.Errorf("limits %d %d %d", c.MaxSessions, c.MaxRecv, c.MaxSend)
	}
	if c.RequestSleep != 2500*time.Millisecond || c.SessionTimeout != 600*time.Second || c.RequestTimeout != 30*time.Second {
		t.Errorf("timers %v %v %v", c.RequestSleep, c.SessionTimeout, c.RequestTimeout)
	}
	if c.CostSoftLimit != 1000 || c.CostHardLimit != 10000 || c.InitialConcurrent != 10 || c.BandwidthUnitCost != 5000 {
		t.Errorf("cost model %v %v %v %v", c.CostSoftLimit, c.CostHardLimit, c.InitialConcurrent, c.BandwidthUnitCost)
	}
	if c.LogLevel != slog.LevelInfo || c.LogFormat != "text" || c.PeerDiscovery != "on" || !c.PeerAnnounce {
		t.Errorf("log %v %s peers %s %v", c.LogLevel, c.LogFormat, c.PeerDiscovery, c.PeerAnnounce)
	}
	d := c.DaemonURLs[0]
	if d.Scheme != "http" || d.Host != "127.0.0.1" || d.Port != 18443 || d.User != "rpc" || d.Password != "secret" {
		t.Errorf("daemon url %+v", d)
	}
	if strings.Contains(d.String(), "secret") {
		t.Errorf("String() leaks the password: %s", d)
	}
}

func TestFlagBeatsEnv(t *testing.T) {
	c, err := Load(Serve, []string{"--max-sessions", "7", "--net=testnet"}, env(append(serveBase, "MAX_SESSIONS", "99")...), nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.MaxSessions != 7 {
		t.Errorf("MaxSessions = %d, want the flag's 7", c.MaxSessions)
	}
	if c.Network.Name != "testnet" || c.ReorgLimit != 8000 {
		t.Errorf("net %s reorg %d", c.Network.Name, c.ReorgLimit)
	}
	if c.DaemonURLs[0].Port != 18443 {
		t.Errorf("explicit port replaced: %d", c.DaemonURLs[0].Port)
	}
}

func TestNetworkDefaults(t *testing.T) {
	c, err := Load(Build, nil, env("DAEMON_URL", "u:p@node1,https://node2:9999/", "DB_DIRECTORY", "d"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Network.Name != "mainnet" || c.ReorgLimit != 200 {
		t.Errorf("net %s reorg %d", c.Network.Name, c.ReorgLimit)
	}
	if len(c.DaemonURLs) != 2 || c.DaemonURLs[0].Port != 8332 || c.DaemonURLs[1].Scheme != "https" || c.DaemonURLs[1].Port != 9999 {
		t.Errorf("daemons %+v", c.DaemonURLs)
	}
}

func TestServices(t *testing.T) {
	c, err := Load(Serve, nil, env(append(serveBase,
		"SERVICES", "TCP://:50001, ssl://0.0.0.0:50002,ws://[::1]:50003,wss://host.example:50004,rpc://",
		"SSL_CERTFILE", "c.pem", "SSL_KEYFILE", "k.pem",
		"REPORT_SERVICES", "tcp://electrum.example.com:50001,ssl://abcdef.onion:50002")...), nil)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"tcp://:50001", "ssl://0.0.0.0:50002", "ws://[::1]:50003", "wss://host.example:50004", "rpc://localhost:8000"}
	if len(c.Services) != len(want) {
		t.Fatalf("services %v", c.Services)
	}
	for i, s := range c.Services {
		if s.String() != want[i] {
			t.Errorf("service %d = %s, want %s", i, s, want[i])
		}
	}
	if len(c.ReportServices) != 2 || c.ReportServices[1].Host != "abcdef.onion" {
		t.Errorf("report services %v", c.ReportServices)
	}
}

// TestBadValues checks each bad value gives one line naming the variable
// and saying what is accepted.
func TestBadValues(t *testing.T) {
	cases := []struct {
		name    string
		cmd     Command
		kv      []string
		args    []string
		wantVar string
		wantMsg string
	}{
		{"unknown net", Serve, []string{"NET", "moonnet"}, nil, "NET", "mainnet, testnet"},
		{"unknown coin", Serve, []string{"COIN", "Dogecoin"}, nil, "COIN", "unknown coin"},
		{"sessions not a number", Serve, []string{"MAX_SESSIONS", "lots"}, nil, "MAX_SESSIONS", "whole number"},
		{"sessions zero", Serve, []string{"MAX_SESSIONS", "0"}, nil, "MAX_SESSIONS", "from 1"},
		{"daemon scheme", Serve, []string{"DAEMON_URL", "ftp://x:1"}, nil, "DAEMON_URL", "want http or https"},
		{"daemon port", Serve, []string{"DAEMON_URL", "http://u:pw@x:99999"}, nil, "DAEMON_URL", "bad port"},
		{"daemon missing", Build, []string{"DAEMON_URL", ""}, nil, "DAEMON_URL", "required"},
		{"db missing", Build, []string{"DB_DIRECTORY", ""}, nil, "DB_DIRECTORY", "required"},
		{"service proto", Serve, []string{"SERVICES", "udp://:1"}, nil, "SERVICES", "unknown protocol"},
		{"service no port", Serve, []string{"SERVICES", "tcp://host"}, nil, "SERVICES", "host:port"},
		{"service duplicate", Serve, []string{"SERVICES", "tcp://:1,ws://:1"}, nil, "SERVICES", "twice"},
		{"service onion", Serve, []string{"SERVICES", "tcp://x.onion:1"}, nil, "SERVICES", ".onion"},
		{"ssl without cert", Serve, []string{"SERVICES", "ssl://:50002"}, nil, "SSL_CERTFILE", "required"},
		{"report rpc", Serve, []string{"REPORT_SERVICES", "rpc://h:1"}, nil, "REPORT_SERVICES", "never advertised"},
		{"rpc off loopback", Serve, []string{"SERVICES", "rpc://0.0.0.0:8000"}, nil, "SERVICES", "loopback only"},
		{"report localhost", Serve, []string{"REPORT_SERVICES", "tcp://localhost:1"}, nil, "REPORT_SERVICES", "localhost"},
		{"report private", Serve, []string{"NET", "mainnet", "REPORT_SERVICES", "tcp://192.168.1.2:1"}, nil, "REPORT_SERVICES", "private"},
		{"hard below soft", Serve, []string{"COST_SOFT_LIMIT", "100", "COST_HARD_LIMIT", "50"}, nil, "COST_HARD_LIMIT", "at least"},
		{"log level", Serve, []string{"LOG_LEVEL", "loud"}, nil, "LOG_LEVEL", "debug, info"},
		{"log format", Serve, []string{"LOG_FORMAT", "xml"}, nil, "LOG_FORMAT", "text or json"},
		{"timeout", Serve, []string{"SESSION_TIMEOUT", "soon"}, nil, "SESSION_TIMEOUT", "duration"},
		{"drop client", Serve, []string{"DROP_CLIENT", "(["}, nil, "DROP_CLIENT", "regular expression"},
		{"peer discovery", Serve, []string{"PEER_DISCOVERY", "maybe"}, nil, "PEER_DISCOVERY", "on, self or off"},
		{"snapshot scheme", Snapshot, []string{"SNAPSHOT_URL", "gs://b"}, nil, "SNAPSHOT_URL", "unknown scheme"},
		{"gc grace zero", Snapshot, []string{"SNAPSHOT_GC_GRACE", "0"}, nil, "SNAPSHOT_GC_GRACE", "positive"},
		{"http addr", Serve, []string{"HTTP_ADDR", "8080"}, nil, "HTTP_ADDR", "host:port"},
		{"unknown flag", Serve, nil, []string{"--no-such-flag"}, "flags", "no-such-flag"},
		{"stray argument", Serve, nil, []string{"extra"}, "flags", "unexpected argument"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			kv := append(append([]string{}, serveBase...), tc.kv...)
			_, err := Load(tc.cmd, tc.args, env(kv...), &bytes.Buffer{})
			var ce *Error
			if !errors.As(err, &ce) {
				t.Fatalf("err = %v, want *config.Error", err)
			}
			if ce.Var != tc.wantVar {
				t.Errorf("error names %s, want %s (%v)", ce.Var, tc.wantVar, err)
			}
			if msg := err.Error(); !strings.Contains(msg, tc.wantMsg) || strings.Contains(msg, "\n") {
				t.Errorf("error %q: want one line containing %q", msg, tc.wantMsg)
			}
		})
	}
}

func TestSecretsNotInErrors(t *testing.T) {
	_, err := Load(Serve, nil, env(append(serveBase, "DAEMON_URL", "http://user:hunter2@host:99999")...), nil)
	if err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("error %v leaks the password or is nil", err)
	}
}

func TestHelpListsEveryOption(t *testing.T) {
	for _, cmd := range []Command{Build, Serve, Snapshot, RPC, Demo} {
		var buf bytes.Buffer
		_, err := Load(cmd, []string{"--help"}, env(), &buf)
		if !errors.Is(err, ErrHelp) {
			t.Fatalf("%s --help: err = %v", cmd, err)
		}
		for _, o := range optionsFor(cmd) {
			if !strings.Contains(buf.String(), "$"+o.env) || !strings.Contains(buf.String(), "--"+o.flag()) {
				t.Errorf("%s --help lacks %s", cmd, o.env)
			}
		}
	}
	var buf bytes.Buffer
	WriteUsage(&buf, Serve)
	if !strings.Contains(buf.String(), "default 1000") {
		t.Errorf("serve usage lacks MAX_SESSIONS default:\n%s", buf.String())
	}
}

func TestDurationForms(t *testing.T) {
	for v, want := range map[string]time.Duration{"2": 2 * time.Second, "1.5": 1500 * time.Millisecond, "250ms": 250 * time.Millisecond} {
		c, err := Load(Serve, nil, env(append(serveBase, "REQUEST_TIMEOUT", v)...), nil)
		if err != nil {
			t.Fatal(err)
		}
		if c.RequestTimeout != want {
			t.Errorf("REQUEST_TIMEOUT=%s -> %v, want %v", v, c.RequestTimeout, want)
		}
	}
}

func TestBareBooleanFlags(t *testing.T) {
	c, err := Load(Build, []string{"--once", "--verify=false"}, env(serveBase...), nil)
	if err != nil {
		t.Fatal(err)
	}
	if !c.Once || c.Verify {
		t.Errorf("once %v verify %v, want true false", c.Once, c.Verify)
	}
	c, err = Load(Build, nil, env(append(serveBase, "BUILD_ONCE", "1")...), nil)
	if err != nil || !c.Once {
		t.Errorf("BUILD_ONCE=1: once %v err %v", c != nil && c.Once, err)
	}
}

// TestDaemonCredentials: a password in --daemon-url (visible in ps) is
// refused, DAEMON_URL from the environment or a flag without a password
// is fine, and the cookie file defaults to Core's place for the network.
func TestDaemonCredentials(t *testing.T) {
	_, err := Load(Build, []string{"--daemon-url=u:secret@node1"}, env("DB_DIRECTORY", "d"), nil)
	if err == nil || !strings.Contains(err.Error(), "ps") || strings.Contains(err.Error(), "secret") {
		t.Fatalf("password in a flag: %v", err)
	}
	c, err := Load(Build, []string{"--daemon-url=node1", "--net=regtest"}, env("DB_DIRECTORY", "d"), nil)
	if err != nil {
		t.Fatal(err)
	}
	home, _ := os.UserHomeDir()
	if want := filepath.Join(home, ".bitcoin", "regtest", ".cookie"); c.DaemonCookieFile != want {
		t.Errorf("regtest cookie %s, want %s", c.DaemonCookieFile, want)
	}
	c, err = Load(Build, nil, env("DAEMON_URL", "u:secret@node1", "DB_DIRECTORY", "d", "DAEMON_COOKIE_FILE", "/x/.cookie"), nil)
	if err != nil || c.DaemonCookieFile != "/x/.cookie" || c.DaemonRetryMax != 4*time.Second {
		t.Fatalf("%+v %v", c, err)
	}
	if c, _ = Load(Build, nil, env("DAEMON_URL", "node1", "DB_DIRECTORY", "d"), nil); c.DaemonCookieFile != filepath.Join(home, ".bitcoin", ".cookie") {
		t.Errorf("mainnet cookie %s", c.DaemonCookieFile)
	}
}
