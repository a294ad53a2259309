package rpc

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"
)

func jsonValid(data []byte) bool { return json.Valid(data) }

// encodeString is what encoding/json makes of s with HTML escaping off.
func encodeString(t testing.TB, s string) string {
	t.Helper()
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(s); err != nil {
		t.Fatal(err)
	}
	return strings.TrimSuffix(buf.String(), "\n")
}

// depthOf returns how deeply valid JSON nests arrays and objects.
func depthOf(data []byte) int {
	depth, deepest := 0, 0
	inString, escaped := false, false
	for _, c := range data {
		switch {
		case inString && escaped:
			escaped = false
		case inString && c == '\\':
			escaped = true
		case inString && c == '"':
			inString = false
		case inString:
		case c == '"':
			inString = true
		case c == '[' || c == '{':
			depth++
			deepest = max(deepest, depth)
		case c == ']' || c == '}':
			depth--
		}
	}
	return deepest
}

// FuzzParse parses arbitrary messages on connections of every dialect
// and checks that nothing panics, that the parser agrees with
// encoding/json about what is JSON, and that everything it returns
// re-encodes into valid replies that echo the ids unchanged.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		`{"jsonrpc":"2.0","id":0,"method":"server.version","params":["electrum/4.8.1",["1.4","1.6"]]}`,
		`{"id":1.5e3,"method":"blockchain.block.header","params":{"height":5}}`,
		`[{"id":1,"method":"a"}, 5, {"method":"n"}, {"id":"x","method":7}, {"result":1,"id":2}]`,
		`{"jsonrpc":"1.0","id":null,"method":"m","params":[]}`,
		`[]`, ``, `{`, "\xff", `[[[[[[[[[[]]]]]]]]]]`, `{"id":true,"method":"m"}`,
		`{"id":"a\"\u00e9","method":"m\u002e","params":"x"}      `,
	} {
		f.Add([]byte(s))
	}
	priors := []string{
		"",
		`{"jsonrpc":"2.0","id":0,"method":"server.version"}`,
		`{"jsonrpc":"1.0","id":0,"method":"server.version","params":[]}`,
		`{"id":0,"method":"server.version"}`,
	}
	bindTo := Method[struct{}]{Name: "m", Params: []string{"a", "b"}, Required: 1}
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, prior := range priors {
			c := NewCodec(512)
			if prior != "" {
				c.Parse([]byte(prior))
			}
			m := c.Parse(data)
			checkMessage(t, c, m, data)
			for _, r := range m.Requests {
				if args, err := bindTo.Bind(r.Params); err == nil {
					for _, a := range args {
						if a != nil && !json.Valid(a) {
							t.Fatalf("bound argument %q is not JSON", a)
						}
					}
				}
				Negotiate(r.Params, MustParseVersion("1.4"), MustParseVersion("1.7.0"))
			}
		}
		Negotiate(data, MustParseVersion("1.4"), MustParseVersion("1.6.0"))
		if got, want := string(appendString(nil, string(data))), encodeString(t, string(data)); got != want {
			t.Fatalf("appendString %s, encoding/json %s", got, want)
		}
	})
}

func checkMessage(t *testing.T, c *Codec, m *Message, data []byte) {
	t.Helper()
	parseError := false
	for _, e := range m.Errors {
		var reply struct {
			Error struct {
				Code    int    `json:"code"`
				Message string `json:"message"`
			} `json:"error"`
		}
		if err := json.Unmarshal(e, &reply); err != nil || reply.Error.Code == 0 || reply.Error.Message == "" {
			t.Fatalf("error reply %q: %v", e, err)
		}
		parseError = parseError || reply.Error.Code == CodeParseError
	}
	if parseError && (m.Batch || len(m.Errors) != 1 || len(m.Requests) != 0) {
		t.Fatalf("parse error with other results: %+v", m)
	}
	if utf8.Valid(data) {
		wantParseError := !json.Valid(data) || depthOf(data) > maxDepth
		if parseError != wantParseError {
			t.Fatalf("parse error %v, want %v (errors %q)", parseError, wantParseError, m.Errors)
		}
	} else if !parseError {
		t.Fatal("no parse error for invalid UTF-8")
	}

	b := c.NewBatch(m)
	elements := len(m.Errors)
	for _, r := range m.Requests {
		if r.ID != nil {
			if len(r.ID) == 0 || !json.Valid(r.ID) || !(r.ID[0] == '"' || r.ID[0] == '-' || isDigit(r.ID[0])) {
				t.Fatalf("bad id %q", r.ID)
			}
		}
		if len(r.Params) == 0 || !json.Valid(r.Params) || (r.Params[0] != '[' && r.Params[0] != '{') {
			t.Fatalf("bad params %q", r.Params)
		}
		var method string
		if err := json.Unmarshal(appendString(nil, r.Method), &method); err != nil || method != r.Method {
			t.Fatalf("method %q does not round-trip: %q, %v", r.Method, method, err)
		}
		reply := c.Reply(r.ID, r.Params, nil)
		var got map[string]json.RawMessage
		if err := json.Unmarshal(reply, &got); err != nil {
			t.Fatalf("reply %q: %v", reply, err)
		}
		wantID := string(r.ID)
		if r.ID == nil {
			wantID = "null"
		}
		if string(got["id"]) != wantID {
			t.Fatalf("reply id %s, want %s", got["id"], wantID)
		}
		if note, err := c.Notification(r.Method, r.Params); err != nil || !json.Valid(note) {
			t.Fatalf("notification %q: %v", note, err)
		}
		if !r.IsNotification() {
			b.Add(r.ID, r.Params, nil)
			elements++
		}
	}
	out := b.Bytes()
	if !m.Batch {
		return
	}
	var arr []json.RawMessage
	if elements == 0 {
		if out != nil {
			t.Fatalf("batch reply %q with no elements", out)
		}
		return
	}
	if err := json.Unmarshal(out, &arr); err != nil || len(arr) != elements {
		t.Fatalf("batch reply %q: %v, %d elements, want %d", out, err, len(arr), elements)
	}
}
