package rpc

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// maxVersionParts bounds the number of components in a Version.
const maxVersionParts = 8

// Version is an Electrum protocol version such as 1.4 or 1.4.2: dotted
// numbers, compared numerically component by component, where a prefix
// is smaller than its extensions, so 1.4 < 1.4.0 < 1.4.1 < 1.5 (spec
// §3.1). A Version keeps the components it was written with, so 1.6 and
// 1.6.0 are different values that print differently, which the
// negotiation quirk depends on.
//
// The zero Version is below every other and prints as "0.0"; Method uses
// it for "no bound". Versions are comparable with ==.
type Version struct {
	parts [maxVersionParts]uint32
	n     uint8
}

// ParseVersion parses a version: at least two and at most eight
// components separated by dots, each ASCII digits (leading zeros allowed,
// as Python's int accepts them) below 2^32.
func ParseVersion(s string) (Version, error) {
	var v Version
	fields := strings.Split(s, ".")
	if len(fields) < 2 || len(fields) > maxVersionParts {
		return Version{}, fmt.Errorf("rpc: invalid protocol version %q", s)
	}
	for i, f := range fields {
		if f == "" || strings.TrimLeft(f, "0123456789") != "" {
			return Version{}, fmt.Errorf("rpc: invalid protocol version %q", s)
		}
		n, err := strconv.ParseUint(f, 10, 32)
		if err != nil {
			return Version{}, fmt.Errorf("rpc: invalid protocol version %q: %w", s, err)
		}
		v.parts[i] = uint32(n)
	}
	v.n = uint8(len(fields))
	return v, nil
}

// MustParseVersion is ParseVersion for constants in method tables and
// tests; it panics when s is not a version.
func MustParseVersion(s string) Version {
	v, err := ParseVersion(s)
	if err != nil {
		panic(err)
	}
	return v
}

// String formats the version with its components, and at least two of
// them (as ElectrumX does), e.g. "1.4", "1.6.0".
func (v Version) String() string {
	var b []byte
	for i := range max(int(v.n), 2) {
		if i > 0 {
			b = append(b, '.')
		}
		b = strconv.AppendUint(b, uint64(v.parts[i]), 10)
	}
	return string(b)
}

// IsZero reports whether v is the zero Version.
func (v Version) IsZero() bool { return v.n == 0 }

// Compare returns -1, 0 or +1 as v is below, equal to or above w.
func (v Version) Compare(w Version) int {
	for i := range min(v.n, w.n) {
		switch {
		case v.parts[i] < w.parts[i]:
			return -1
		case v.parts[i] > w.parts[i]:
			return +1
		}
	}
	switch {
	case v.n < w.n:
		return -1
	case v.n > w.n:
		return +1
	}
	return 0
}

// Negotiate chooses the protocol version of a session from the
// protocol_version argument of server.version (spec §3.2 rules 5 and 6)
// and the server's range, and returns it with the text to put in the
// reply.
//
// arg is the raw argument: nil or null (absent) means the server's
// minimum; a string is the client's only version; a two-element array
// of strings is the client's [min, max]. The result is the lower of the
// client's and the server's maxima, provided it is not below the higher
// of the minima. The reply text is that version as written by whichever
// side supplied it, so a server with maximum 1.6.0 answers a client
// asking for [1.4, 2.0] with "1.6.0", not "1.6" (ElectrumX's quirk).
//
// Any other argument, a string that is not a version, or an empty
// intersection gives error 1 "unsupported protocol version: <arg>",
// where <arg> is the string's text or else the argument's JSON as sent;
// ElectrumX then closes the connection.
func Negotiate(arg json.RawMessage, serverMin, serverMax Version) (Version, string, *Error) {
	arg = trimSpace(arg)
	clientMin, clientMax, ok := clientRange(arg, serverMin)
	if ok {
		v := clientMax
		if serverMax.Compare(v) < 0 {
			v = serverMax
		}
		if v.Compare(clientMin) >= 0 && v.Compare(serverMin) >= 0 && !v.IsZero() {
			return v, v.String(), nil
		}
	}
	sent := "null"
	if s, isString := stringValue(arg); isString {
		sent = s
	} else if len(arg) > 0 {
		sent = string(arg)
	}
	return Version{}, "", BadRequest("unsupported protocol version: " + sent)
}

// clientRange reads the client's [min, max] from the protocol_version
// argument.
func clientRange(arg []byte, serverMin Version) (lo, hi Version, ok bool) {
	if len(arg) == 0 || string(arg) == "null" {
		return serverMin, serverMin, true
	}
	if s, isString := stringValue(arg); isString {
		v, err := ParseVersion(s)
		return v, v, err == nil
	}
	if arg[0] != '[' {
		return lo, hi, false
	}
	var elems [][]byte
	end, err := scanArray(arg, 0, 0, func(i int) (int, error) {
		end, err := scanValue(arg, i, 1)
		if err == nil {
			elems = append(elems, arg[i:end])
		}
		return end, err
	})
	if err != nil || end != len(arg) || len(elems) != 2 {
		return lo, hi, false
	}
	for i, dst := range []*Version{&lo, &hi} {
		s, isString := stringValue(elems[i])
		if !isString {
			return lo, hi, false
		}
		if *dst, err = ParseVersion(s); err != nil {
			return lo, hi, false
		}
	}
	return lo, hi, true
}
