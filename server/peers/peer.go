package peers

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"amber/internal/chain"
)

// Features is what a peer says about itself in server.features,
// normalised as ElectrumX keeps it (spec §6.1). Ports are those listed
// for the peer's own host; 0 means not offered.
type Features struct {
	ServerVersion string
	ProtocolMin   string
	ProtocolMax   string
	Pruning       int // 0: no pruning
	GenesisHash   string
	TCPPort       int
	SSLPort       int
	// Hosts are the host names the peer reports, lowercased, in the
	// order given.
	Hosts []string
}

// parseFeatures reads a server.features reply for the peer at host. It
// fails when the reply is not an object or its hosts member is not one.
func parseFeatures(raw json.RawMessage, host string) (Features, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil || m == nil {
		return Features{}, errors.New("server.features returned no object")
	}
	f := Features{
		ServerVersion: jsonString(m["server_version"]),
		ProtocolMin:   normVersion(jsonString(m["protocol_min"])),
		ProtocolMax:   normVersion(jsonString(m["protocol_max"])),
		GenesisHash:   jsonString(m["genesis_hash"]),
	}
	if p, ok := jsonInt(m["pruning"]); ok && p > 0 {
		f.Pruning = p
	}
	hosts, err := orderedHosts(m["hosts"])
	if err != nil {
		return Features{}, err
	}
	for _, h := range hosts {
		f.Hosts = append(f.Hosts, strings.ToLower(h.name))
		if strings.EqualFold(h.name, host) {
			f.TCPPort, f.SSLPort = h.port("tcp_port"), h.port("ssl_port")
		}
	}
	return f, nil
}

// listsHost reports whether host is among the peer's own hosts.
func (f Features) listsHost(host string) bool {
	for _, h := range f.Hosts {
		if h == strings.ToLower(host) {
			return true
		}
	}
	return false
}

// hostEntry is one member of a features "hosts" object.
type hostEntry struct {
	name  string
	ports map[string]json.RawMessage
}

// port reads a port given as a number or a numeric string; anything
// else, or a value outside 1..65535, is 0.
func (h hostEntry) port(key string) int {
	n, ok := jsonInt(h.ports[key])
	if !ok || n <= 0 || n >= 65536 {
		return 0
	}
	return n
}

// orderedHosts decodes a "hosts" object keeping member order: add_peer
// looks only at the first host (spec §6.4).
func orderedHosts(raw json.RawMessage) ([]hostEntry, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return nil, errors.New("server.features hosts is not an object")
	}
	var out []hostEntry
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return nil, fmt.Errorf("server.features hosts: %w", err)
		}
		name, _ := t.(string)
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, fmt.Errorf("server.features hosts: %w", err)
		}
		e := hostEntry{name: name}
		_ = json.Unmarshal(v, &e.ports) // null or non-objects mean no ports
		out = append(out, e)
	}
	return out, nil
}

func jsonString(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) != nil {
		return ""
	}
	return s
}

// jsonInt reads an integer given as a JSON number or a numeric string,
// as ElectrumX accepts both.
func jsonInt(raw json.RawMessage) (int, bool) {
	var n int
	if json.Unmarshal(raw, &n) == nil {
		return n, true
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		if n, err := strconv.Atoi(s); err == nil {
			return n, true
		}
	}
	return 0, false
}

// normVersion writes a protocol version as dotted numbers with at least
// one dot; anything else becomes "0.0", as ElectrumX does.
func normVersion(s string) string {
	parts := strings.Split(s, ".")
	for _, p := range parts {
		if _, err := strconv.ParseUint(p, 10, 32); err != nil {
			return "0.0"
		}
	}
	if len(parts) == 1 {
		parts = append(parts, "0")
	}
	for i, p := range parts {
		n, _ := strconv.ParseUint(p, 10, 32)
		parts[i] = strconv.FormatUint(n, 10)
	}
	return strings.Join(parts, ".")
}

// realName is a peer in the IRC-era text form used by seed lists,
// server.peers.subscribe entries and the operator's add:
// "host v1.4 p10000 s50002 t50001" (spec §6.1).
type realName struct {
	host        string
	protocolMax string
	pruning     int
	tcp, ssl    int
}

// parseRealName reads a real name; a bare s or t means the network's
// default port. Unknown words and unreadable ports are ignored, as
// ElectrumX does; a missing or invalid host is an error.
func parseRealName(s string, net *chain.Network) (realName, error) {
	words := strings.Fields(s)
	if len(words) == 0 {
		return realName{}, errors.New("peers: empty peer name")
	}
	r := realName{host: strings.ToLower(words[0]), protocolMax: "0.0"}
	if !validHost(r.host) {
		return realName{}, fmt.Errorf("peers: %q is not a valid host name or address", words[0])
	}
	for _, w := range words[1:] {
		switch w[0] {
		case 's', 't':
			port := 0
			if len(w) == 1 {
				if w[0] == 's' {
					port = net.SSLPort
				} else {
					port = net.TCPPort
				}
			} else if n, err := strconv.Atoi(w[1:]); err == nil && n > 0 && n < 65536 {
				port = n
			}
			if w[0] == 's' {
				r.ssl = port
			} else {
				r.tcp = port
			}
		case 'v':
			r.protocolMax = normVersion(w[1:])
		case 'p':
			if n, err := strconv.Atoi(w[1:]); err == nil && n > 0 {
				r.pruning = n
			}
		}
	}
	return r, nil
}

// details are the short strings of a server.peers.subscribe entry:
// version, pruning, then ports, always with the number (spec §4.5).
func details(protocolMax string, pruning, ssl, tcp int) []string {
	out := []string{"v" + protocolMax}
	if pruning > 0 {
		out = append(out, "p"+strconv.Itoa(pruning))
	}
	if ssl > 0 {
		out = append(out, "s"+strconv.Itoa(ssl))
	}
	if tcp > 0 {
		out = append(out, "t"+strconv.Itoa(tcp))
	}
	return out
}

// isOnion reports whether host is a Tor hidden service.
func isOnion(host string) bool { return strings.HasSuffix(strings.ToLower(host), ".onion") }

// validHost accepts IP addresses that are unicast and specified, and
// syntactically valid DNS names (spec §6.2).
func validHost(host string) bool {
	if ip, err := netip.ParseAddr(host); err == nil {
		return ip.IsValid() && !ip.IsUnspecified() && !ip.IsMulticast() && ip.Zone() == ""
	}
	name := strings.TrimSuffix(host, ".")
	if name == "" || len(name) > 253 {
		return false
	}
	for _, label := range strings.Split(name, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i] | 0x20
			if !(c >= 'a' && c <= 'z' || label[i] >= '0' && label[i] <= '9' || label[i] == '-' || label[i] == '_') {
				return false
			}
		}
	}
	// A name of digits and dots only would be an address in another
	// notation.
	return strings.Trim(name, "0123456789.") != ""
}

// privateAddr reports addresses that are not reachable from the
// internet: RFC 1918 and unique-local, loopback and link-local.
func privateAddr(ip netip.Addr) bool {
	ip = ip.Unmap()
	return ip.IsPrivate() || ip.IsLoopback() || ip.IsLinkLocalUnicast()
}

// hostAddr is host as an IP address, if it is one.
func hostAddr(host string) (netip.Addr, bool) {
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}, false
	}
	return ip.Unmap(), true
}
