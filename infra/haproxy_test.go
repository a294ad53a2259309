package infra

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"amber/internal/testenv"
)

// haproxySections splits an HAProxy configuration into its sections
// ("global", "defaults", "frontend electrum_tcp", "backend amber_tcp",
// ...), each a list of its lines with comments and extra spaces removed.
func haproxySections(cfg string) map[string][]string {
	out := map[string][]string{}
	cur := ""
	for _, line := range strings.Split(cfg, "\n") {
		if i := strings.Index(line, "#"); i >= 0 {
			line = line[:i]
		}
		indented := strings.HasPrefix(line, " ") || strings.HasPrefix(line, "\t")
		line = strings.Join(strings.Fields(line), " ")
		switch {
		case line == "":
		case !indented:
			cur = line
			out[cur] = []string{}
		default:
			out[cur] = append(out[cur], line)
		}
	}
	return out
}

// haproxyEssentials are the settings amber's fleet relies on, as found in
// cfg; a missing one is reported by name. Both the reference and the
// test's configuration must give the same answers.
func haproxyEssentials(cfg string) map[string]string {
	secs := haproxySections(cfg)
	has := func(sec, line string) bool { return slices.Contains(secs[sec], line) }
	got := map[string]string{}
	set := func(name string, ok bool) {
		got[name] = "missing"
		if ok {
			got[name] = "yes"
		}
	}
	set("defaults: mode tcp", has("defaults", "mode tcp"))
	set("defaults: option redispatch", has("defaults", "option redispatch"))
	set("defaults: retries", slices.ContainsFunc(secs["defaults"], func(l string) bool { return strings.HasPrefix(l, "retries ") }))
	var backends []string
	for name := range secs {
		if strings.HasPrefix(name, "backend ") {
			backends = append(backends, name)
		}
	}
	set("a backend", len(backends) > 0)
	// WebSocket wallets take the same road as TCP ones, to the nodes'
	// ws:// port.
	for _, fe := range []string{"tcp", "ws"} {
		set("frontend electrum_"+fe+" to backend amber_"+fe,
			has("frontend electrum_"+fe, "default_backend amber_"+fe) && secs["backend amber_"+fe] != nil)
	}
	for _, b := range backends {
		lines := secs[b]
		var dflt string
		for _, l := range lines {
			if strings.HasPrefix(l, "default-server ") {
				dflt = l
			}
		}
		set("every backend: balance leastconn", has(b, "balance leastconn") && got["every backend: balance leastconn"] != "missing")
		set("every backend: option httpchk", has(b, "option httpchk") && got["every backend: option httpchk"] != "missing")
		set("every backend: GET /readyz", has(b, "http-check send meth GET uri /readyz ver HTTP/1.1 hdr Host amber") && got["every backend: GET /readyz"] != "missing")
		set("every backend: expect status 200", has(b, "http-check expect status 200") && got["every backend: expect status 200"] != "missing")
		dfl := strings.Fields(dflt)
		set("every backend: send-proxy-v2", slices.Contains(dfl, "send-proxy-v2") && got["every backend: send-proxy-v2"] != "missing")
		set("every backend: check", slices.Contains(dfl, "check") && got["every backend: check"] != "missing")
		for _, l := range lines {
			if f := strings.Fields(l); f[0] == "server" {
				set("every server: check port", slices.Contains(f, "port") && got["every server: check port"] != "missing")
			}
		}
	}
	shutdown := false
	for _, lines := range secs {
		for _, l := range lines {
			shutdown = shutdown || strings.Contains(l, "shutdown-sessions")
		}
	}
	set("no shutdown-sessions (the node drains its own sessions)", !shutdown)
	return got
}

// TestHAProxyReference checks infra/haproxy/haproxy.cfg with `haproxy -c`
// and that it agrees with the configuration the fleet test runs on the
// settings the fleet relies on: TCP mode, PROXY v2, /readyz checks.
func TestHAProxyReference(t *testing.T) {
	ref, err := os.ReadFile(filepath.Join("haproxy", "haproxy.cfg"))
	if err != nil {
		t.Fatal(err)
	}
	generated := testenv.HAProxyConfig("127.0.0.1:50001", "/run/amber-test.sock", testenv.HAProxyOptions{
		Backends: []testenv.HAProxyBackend{{Name: "node1", Addr: "127.0.0.1:50011", CheckPort: 8080}},
		Frontends: []testenv.HAProxyFrontend{{Name: "ws", Bind: "127.0.0.1:50003",
			Backends: []testenv.HAProxyBackend{{Name: "node1", Addr: "127.0.0.1:50013", CheckPort: 8080}}}}})
	want, got := haproxyEssentials(generated), haproxyEssentials(string(ref))
	for name, v := range want {
		if v != "yes" {
			t.Errorf("the fleet test's configuration lacks %q", name)
		}
		if got[name] != v {
			t.Errorf("haproxy/haproxy.cfg: %s: %s, the fleet test's configuration: %s", name, got[name], v)
		}
	}
	// The comparison notices a configuration without PROXY v2.
	broken := haproxyEssentials(strings.Replace(string(ref), "send-proxy-v2 ", "", 1))
	if broken["every backend: send-proxy-v2"] != "missing" {
		t.Error("removing send-proxy-v2 from one backend went unnoticed")
	}
	// And one whose WebSocket wallets land on the TCP ports.
	broken = haproxyEssentials(strings.Replace(string(ref), "default_backend amber_ws", "default_backend amber_tcp", 1))
	if broken["frontend electrum_ws to backend amber_ws"] != "missing" {
		t.Error("sending electrum_ws to amber_tcp went unnoticed")
	}

	// Every server's check port is the HTTP_ADDR port of the example env,
	// and amber_<proto>'s servers are its <proto>:// listeners.
	env := readEnvFile(t, filepath.Join("env", "serve.env.example"))
	httpPort := port(t, env["HTTP_ADDR"])
	svcPorts := map[string]int{}
	for _, svc := range strings.Split(env["SERVICES"], ",") {
		if proto, addr, ok := strings.Cut(svc, "://"); ok {
			svcPorts[proto] = port(t, addr)
		}
	}
	for name, lines := range haproxySections(string(ref)) {
		proto, isBackend := strings.CutPrefix(name, "backend amber_")
		for _, l := range lines {
			f := strings.Fields(l)
			if f[0] != "server" {
				continue
			}
			if !strings.HasSuffix(l, "port "+itoa(httpPort)) {
				t.Errorf("%s: %q does not check port %d (HTTP_ADDR of env/serve.env.example)", name, l, httpPort)
			}
			if want := svcPorts[proto]; isBackend && (len(f) < 3 || want == 0 || port(t, f[2]) != want) {
				t.Errorf("%s: %q is not the %s:// port %d of SERVICES in env/serve.env.example", name, l, proto, want)
			}
		}
	}

	bin := testenv.HAProxyBinary(t)
	dir := t.TempDir()
	pemPath := filepath.Join(dir, "electrum.pem")
	writeSelfSigned(t, pemPath)
	cfg := strings.ReplaceAll(string(ref), "/etc/haproxy/certs/electrum.pem", pemPath)
	if !strings.Contains(cfg, pemPath) {
		t.Fatal("haproxy/haproxy.cfg names no /etc/haproxy/certs/electrum.pem for its TLS frontends")
	}
	cfgPath := filepath.Join(dir, "haproxy.cfg")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(bin, "-c", "-f", cfgPath).CombinedOutput(); err != nil {
		t.Errorf("haproxy -c rejects haproxy/haproxy.cfg: %v\n%s", err, out)
	}
	// And haproxy -c does reject a broken file.
	if err := os.WriteFile(cfgPath, []byte(strings.Replace(cfg, "mode tcp", "mode tcpp", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(bin, "-c", "-f", cfgPath).CombinedOutput(); err == nil {
		t.Errorf("haproxy -c accepts mode tcpp:\n%s", out)
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

// writeSelfSigned writes a certificate and its key in one PEM file, as
// HAProxy's crt wants them.
func writeSelfSigned(t *testing.T, path string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "electrum.example.org"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), DNSNames: []string{"electrum.example.org"}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	b := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	b = append(b, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb})...)
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}
