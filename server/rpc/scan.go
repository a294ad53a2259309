package rpc

import (
	"bytes"
	"encoding/json"
	"errors"
)

// maxDepth is the deepest nesting of arrays and objects a message may
// have; a batch counts as one level. Electrum requests need four or five.
// The scanner keeps its own fixed-size stack instead of recursing, so a
// hostile message can cost neither stack nor heap; the limit also spares
// handlers that decode params with encoding/json, which does recurse.
const (
	maxDepth     = 64
	maxDepthText = "64"
)

var (
	errSyntax = errors.New("rpc: invalid JSON")
	errDepth  = errors.New("rpc: JSON nested too deeply")
)

// The scanner below validates JSON exactly as RFC 8259 and encoding/json
// do (FuzzParse checks it against json.Valid) and reports where values
// start and end, so that Parse can slice ids and params out of the
// message byte for byte without decoding them. It assumes the input is
// valid UTF-8, which Parse checks first.

func isSpace(c byte) bool { return c == ' ' || c == '\n' || c == '\r' || c == '\t' }

// skipSpace returns the index of the first non-whitespace byte at or
// after i. Electrum pads its messages with long runs of spaces.
func skipSpace(data []byte, i int) int {
	for i < len(data) && isSpace(data[i]) {
		i++
	}
	return i
}

// trimSpace returns data without leading and trailing JSON whitespace.
func trimSpace(data []byte) []byte {
	i := skipSpace(data, 0)
	j := len(data)
	for j > i && isSpace(data[j-1]) {
		j--
	}
	return data[i:j]
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

func isHex(c byte) bool {
	return isDigit(c) || ('a' <= c && c <= 'f') || ('A' <= c && c <= 'F')
}

// digits returns the index after the run of decimal digits at i.
func digits(data []byte, i int) int {
	for i < len(data) && isDigit(data[i]) {
		i++
	}
	return i
}

// scanString returns the index after the string whose opening quote is
// at data[i].
func scanString(data []byte, i int) (int, error) {
	i++
	for i < len(data) {
		switch c := data[i]; {
		case c == '"':
			return i + 1, nil
		case c == '\\':
			if i+1 >= len(data) {
				return 0, errSyntax
			}
			switch data[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if i+6 > len(data) || !isHex(data[i+2]) || !isHex(data[i+3]) ||
					!isHex(data[i+4]) || !isHex(data[i+5]) {
					return 0, errSyntax
				}
				i += 6
			default:
				return 0, errSyntax
			}
		case c < 0x20:
			return 0, errSyntax
		default:
			i++
		}
	}
	return 0, errSyntax
}

// scanNumber returns the index after the number that starts at data[i]:
// -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func scanNumber(data []byte, i int) (int, error) {
	if data[i] == '-' {
		i++
	}
	switch {
	case i < len(data) && data[i] == '0':
		i++
	case i < len(data) && '1' <= data[i] && data[i] <= '9':
		i = digits(data, i+1)
	default:
		return 0, errSyntax
	}
	if i < len(data) && data[i] == '.' {
		j := digits(data, i+1)
		if j == i+1 {
			return 0, errSyntax
		}
		i = j
	}
	if i < len(data) && (data[i] == 'e' || data[i] == 'E') {
		i++
		if i < len(data) && (data[i] == '+' || data[i] == '-') {
			i++
		}
		j := digits(data, i)
		if j == i {
			return 0, errSyntax
		}
		i = j
	}
	return i, nil
}

// scanLiteral returns the index after lit, which must start at data[i].
func scanLiteral(data []byte, i int, lit string) (int, error) {
	if !bytes.HasPrefix(data[i:], []byte(lit)) {
		return 0, errSyntax
	}
	return i + len(lit), nil
}

// scanKey scans an object key and its colon at data[i] and returns the
// key (without quotes, still escaped) and the index of the value.
func scanKey(data []byte, i int) ([]byte, int, error) {
	if i >= len(data) || data[i] != '"' {
		return nil, 0, errSyntax
	}
	end, err := scanString(data, i)
	if err != nil {
		return nil, 0, err
	}
	key := data[i+1 : end-1]
	i = skipSpace(data, end)
	if i >= len(data) || data[i] != ':' {
		return nil, 0, errSyntax
	}
	return key, skipSpace(data, i+1), nil
}

// scanValue returns the index after the JSON value that starts at
// data[i]. depth is the number of arrays and objects around the value.
// It does not recurse: open containers are kept on a fixed-size stack.
func scanValue(data []byte, i, depth int) (int, error) {
	var stack [maxDepth]byte // '{' or '[' for each open container
	n := 0
	var err error
	for {
		// A value starts at i.
		if i >= len(data) {
			return 0, errSyntax
		}
		switch c := data[i]; c {
		case '{', '[':
			if depth+n >= maxDepth {
				return 0, errDepth
			}
			i = skipSpace(data, i+1)
			if i < len(data) && data[i] == c+2 { // '}' or ']'
				i++
				break // an empty container is a complete value
			}
			stack[n] = c
			n++
			if c == '{' {
				if _, i, err = scanKey(data, i); err != nil {
					return 0, err
				}
			}
			continue
		case '"':
			i, err = scanString(data, i)
		case 't':
			i, err = scanLiteral(data, i, "true")
		case 'f':
			i, err = scanLiteral(data, i, "false")
		case 'n':
			i, err = scanLiteral(data, i, "null")
		default:
			if c != '-' && !isDigit(c) {
				return 0, errSyntax
			}
			i, err = scanNumber(data, i)
		}
		if err != nil {
			return 0, err
		}
		// A value ended at i: close containers until one has another
		// element, whose start is found next.
		for {
			if n == 0 {
				return i, nil
			}
			i = skipSpace(data, i)
			if i >= len(data) {
				return 0, errSyntax
			}
			open := stack[n-1]
			if data[i] == open+2 {
				n--
				i++
				continue
			}
			if data[i] != ',' {
				return 0, errSyntax
			}
			i = skipSpace(data, i+1)
			if open == '{' {
				if _, i, err = scanKey(data, i); err != nil {
					return 0, err
				}
			}
			break
		}
	}
}

// scanArray walks the array whose '[' is at data[i], calling elem with
// the start of each element (always a valid index); elem scans the
// element and returns its end.
// depth is the number of containers around the array. It returns the
// index after the closing bracket.
func scanArray(data []byte, i, depth int, elem func(start int) (int, error)) (int, error) {
	if depth >= maxDepth {
		return 0, errDepth
	}
	i = skipSpace(data, i+1)
	if i < len(data) && data[i] == ']' {
		return i + 1, nil
	}
	for {
		if i >= len(data) {
			return 0, errSyntax
		}
		end, err := elem(i)
		if err != nil {
			return 0, err
		}
		i = skipSpace(data, end)
		if i >= len(data) {
			return 0, errSyntax
		}
		switch data[i] {
		case ']':
			return i + 1, nil
		case ',':
			i = skipSpace(data, i+1)
		default:
			return 0, errSyntax
		}
	}
}

// scanObject walks the object whose '{' is at data[i], calling member
// with each key (unquoted, still escaped) and the raw value. depth is the
// number of containers around the object.
func scanObject(data []byte, i, depth int, member func(key, value []byte)) (int, error) {
	if depth >= maxDepth {
		return 0, errDepth
	}
	i = skipSpace(data, i+1)
	if i < len(data) && data[i] == '}' {
		return i + 1, nil
	}
	for {
		key, start, err := scanKey(data, i)
		if err != nil {
			return 0, err
		}
		end, err := scanValue(data, start, depth+1)
		if err != nil {
			return 0, err
		}
		member(key, data[start:end])
		i = skipSpace(data, end)
		if i >= len(data) {
			return 0, errSyntax
		}
		switch data[i] {
		case '}':
			return i + 1, nil
		case ',':
			i = skipSpace(data, i+1)
		default:
			return 0, errSyntax
		}
	}
}

// unescape returns the text of a string's contents as scanned (between
// the quotes). Only strings with a backslash need decoding.
func unescape(contents []byte) string {
	if bytes.IndexByte(contents, '\\') < 0 {
		return string(contents)
	}
	quoted := make([]byte, 0, len(contents)+2)
	quoted = append(append(append(quoted, '"'), contents...), '"')
	var s string
	if err := json.Unmarshal(quoted, &s); err != nil {
		return string(contents) // unreachable for scanned strings
	}
	return s
}

// keyIs reports whether a scanned key (still escaped) names want.
func keyIs(key []byte, want string) bool {
	if bytes.IndexByte(key, '\\') < 0 {
		return string(key) == want
	}
	return unescape(key) == want
}

// stringValue returns the text of raw when raw is a JSON string.
func stringValue(raw []byte) (string, bool) {
	if len(raw) < 2 || raw[0] != '"' {
		return "", false
	}
	return unescape(raw[1 : len(raw)-1]), true
}
