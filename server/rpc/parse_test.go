package rpc

import (
	"bytes"
	"strings"
	"testing"
)

// req is a wanted request in tests, with raw ids and params as strings;
// id "" means a notification.
type req struct {
	id, method, params string
}

func requestsOf(t *testing.T, m *Message) []req {
	t.Helper()
	var out []req
	for _, r := range m.Requests {
		if r.ID != nil && len(r.ID) == 0 {
			t.Errorf("request %q has an empty, non-nil id", r.Method)
		}
		out = append(out, req{string(r.ID), r.Method, string(r.Params)})
	}
	return out
}

func strs(bs [][]byte) []string {
	var out []string
	for _, b := range bs {
		out = append(out, string(b))
	}
	return out
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func nested(open, close string, n int) string {
	return strings.Repeat(open, n) + strings.Repeat(close, n)
}

// errV2 and errV1 build the expected error reply for an id.
func errV2(code, msg, id string) string {
	return `{"jsonrpc":"2.0","error":{"code":` + code + `,"message":` + msg + `},"id":` + id + `}`
}

func errV1(code, msg, id string) string {
	return `{"result":null,"error":{"code":` + code + `,"message":` + msg + `},"id":` + id + `}`
}

const (
	invalidJSON = `"invalid JSON"`
	notObject   = `"request object must be a dictionary"`
	notV2       = `"\"jsonrpc\" is not \"2.0\""`
	notString   = `"method must be a string"`
	badID       = `"request id must be a number, a string or null"`
)

// TestParse runs one message through a fresh codec, after the messages in
// prior (which fix the dialect), and checks what comes out.
func TestParse(t *testing.T) {
	const v2 = `{"jsonrpc":"2.0","id":0,"method":"server.version"}`
	const v1 = `{"jsonrpc":"1.0","id":0,"method":"server.version","params":[]}`
	const loose = `{"id":0,"method":"server.version"}`
	spaces := strings.Repeat(" ", 1<<20)
	cases := []struct {
		name    string
		prior   []string
		msg     string
		dialect Dialect
		batch   bool
		reqs    []req
		errs    []string
	}{
		// Dialect detection (§2.1).
		{name: "2.0 detected", msg: `{"jsonrpc":"2.0","id":1,"method":"m","params":[]}`, dialect: Dialect2,
			reqs: []req{{"1", "m", "[]"}}},
		{name: "2.0 detected from escaped value", msg: `{"jsonrpc":"2\u002e0","id":1,"method":"m"}`, dialect: Dialect2,
			reqs: []req{{"1", "m", "[]"}}},
		{name: "1.0 detected", msg: `{"jsonrpc":"1.0","id":1,"method":"m","params":[]}`, dialect: Dialect1,
			reqs: []req{{"1", "m", "[]"}}},
		{name: "1.0 detected from result and error, response ignored", msg: `{"result":1,"error":null,"id":1}`,
			dialect: Dialect1},
		{name: "loose without jsonrpc", msg: `{"id":1,"method":"m"}`, dialect: DialectLoose,
			reqs: []req{{"1", "m", "[]"}}},
		{name: "loose with other jsonrpc", msg: `{"jsonrpc":"3.0","id":1,"method":"m"}`, dialect: DialectLoose,
			reqs: []req{{"1", "m", "[]"}}},
		{name: "loose with non-string jsonrpc", msg: `{"jsonrpc":2.0,"id":1,"method":"m"}`, dialect: DialectLoose,
			reqs: []req{{"1", "m", "[]"}}},
		{name: "loose from non-object", msg: `5`, dialect: DialectLoose,
			errs: []string{errV2("-32600", notObject, "null")}},
		{name: "batch: any 2.0 item makes it 2.0", msg: `[{"id":1,"method":"a"},{"jsonrpc":"2.0","id":2,"method":"b"}]`,
			dialect: Dialect2, batch: true, reqs: []req{{"2", "b", "[]"}},
			errs: []string{errV2("-32600", notV2, "1")}},
		{name: "batch: 2.0 beats 1.0", msg: `[{"jsonrpc":"1.0","id":1,"method":"a"},{"jsonrpc":"2.0","id":2,"method":"b"}]`,
			dialect: Dialect2, batch: true, reqs: []req{{"2", "b", "[]"}},
			errs: []string{errV2("-32600", notV2, "1")}},
		{name: "batch: 1.0 items make 1.0, which has no batches", msg: `[{"jsonrpc":"1.0","id":1,"method":"a"},{"id":2,"method":"b"}]`,
			dialect: Dialect1, errs: []string{errV1("-32600", `"batches are not supported in JSON-RPC 1.0"`, "null")}},
		{name: "batch: empty is loose", msg: `[]`, dialect: DialectLoose,
			errs: []string{errV2("-32600", `"batch is empty"`, "null")}},
		{name: "invalid JSON leaves the dialect open", msg: `{"jsonrpc":"2.0"`, dialect: DialectUnknown,
			errs: []string{errV2("-32700", invalidJSON, "null")}},
		{name: "first JSON message after garbage decides", prior: []string{"garbage", "\xff"},
			msg: `{"jsonrpc":"1.0","id":1,"method":"m","params":[]}`, dialect: Dialect1, reqs: []req{{"1", "m", "[]"}}},
		{name: "dialect is fixed by the first message", prior: []string{loose},
			msg: `{"jsonrpc":"2.0","id":1,"method":"m"}`, dialect: DialectLoose, reqs: []req{{"1", "m", "[]"}}},

		// Strict 2.0 after detection.
		{name: "2.0: later request without jsonrpc", prior: []string{v2}, msg: `{"id":7,"method":"m"}`,
			dialect: Dialect2, errs: []string{errV2("-32600", notV2, "7")}},
		{name: "2.0: later request with 1.0", prior: []string{v2}, msg: `{"jsonrpc":"1.0","id":"x","method":"m"}`,
			dialect: Dialect2, errs: []string{errV2("-32600", notV2, `"x"`)}},
		{name: "2.0: notification without jsonrpc still gets an error", prior: []string{v2}, msg: `{"method":"m"}`,
			dialect: Dialect2, errs: []string{errV2("-32600", notV2, "null")}},
		{name: "2.0: batch items checked one by one", prior: []string{v2},
			msg:     `[{"jsonrpc":"2.0","id":1,"method":"a"},{"id":2,"method":"b"},{"jsonrpc":"2.0","method":"c"}]`,
			dialect: Dialect2, batch: true, reqs: []req{{"1", "a", "[]"}, {"", "c", "[]"}},
			errs: []string{errV2("-32600", notV2, "2")}},

		// 1.0 rules.
		{name: "1.0: named params refused", prior: []string{v1}, msg: `{"id":1,"method":"m","params":{"a":1}}`,
			dialect: Dialect1, errs: []string{errV1("-32602", `"invalid request arguments: {\"a\":1}"`, "1")}},
		{name: "1.0: batch refused", prior: []string{v1}, msg: `[{"id":1,"method":"m","params":[]}]`,
			dialect: Dialect1, errs: []string{errV1("-32600", `"batches are not supported in JSON-RPC 1.0"`, "null")}},
		{name: "1.0: null id is a notification", prior: []string{v1}, msg: `{"id":null,"method":"m","params":[1]}`,
			dialect: Dialect1, reqs: []req{{"", "m", "[1]"}}},
		{name: "1.0: no jsonrpc check", prior: []string{v1}, msg: `{"jsonrpc":"2.0","id":1,"method":"m","params":[]}`,
			dialect: Dialect1, reqs: []req{{"1", "m", "[]"}}},

		// Parse errors (§1.2, §2.6).
		{name: "empty line", msg: ``, errs: []string{errV2("-32700", invalidJSON, "null")}},
		{name: "only spaces", msg: "   \r", errs: []string{errV2("-32700", invalidJSON, "null")}},
		{name: "truncated", msg: `{"id":1,"method":"m",`, errs: []string{errV2("-32700", invalidJSON, "null")}},
		{name: "trailing garbage", msg: `{"id":1,"method":"m"} x`, errs: []string{errV2("-32700", invalidJSON, "null")}},
		{name: "two messages on one line", msg: `{"id":1,"method":"m"}{"id":2,"method":"m"}`,
			errs: []string{errV2("-32700", invalidJSON, "null")}},
		{name: "lone bracket", msg: `[`, errs: []string{errV2("-32700", invalidJSON, "null")}},
		{name: "batch cut after a comma", msg: `[{"id":1,"method":"m"},  `, errs: []string{errV2("-32700", invalidJSON, "null")}},
		{name: "lone brace", msg: `{`, errs: []string{errV2("-32700", invalidJSON, "null")}},
		{name: "object cut after a comma", msg: `{"id":1,`, errs: []string{errV2("-32700", invalidJSON, "null")}},
		{name: "syntax error inside a batch fails the whole batch", msg: `[{"id":1,"method":"m"}, {"id":2,]`,
			errs: []string{errV2("-32700", invalidJSON, "null")}},
		{name: "byte order mark", msg: "\ufeff" + `{"id":1,"method":"m"}`, errs: []string{errV2("-32700", invalidJSON, "null")}},
		{name: "NaN id", msg: `{"id":NaN,"method":"m"}`, errs: []string{errV2("-32700", invalidJSON, "null")}},
		{name: "single quotes", msg: `{'id':1,'method':'m'}`, errs: []string{errV2("-32700", invalidJSON, "null")}},
		{name: "trailing comma", msg: `{"id":1,"method":"m",}`, errs: []string{errV2("-32700", invalidJSON, "null")}},
		{name: "leading zero", msg: `{"id":01,"method":"m"}`, errs: []string{errV2("-32700", invalidJSON, "null")}},
		{name: "raw newline in string", msg: "{\"id\":1,\"method\":\"a\nb\"}", errs: []string{errV2("-32700", invalidJSON, "null")}},
		{name: "bad escape", msg: `{"id":1,"method":"\x41"}`, errs: []string{errV2("-32700", invalidJSON, "null")}},
		{name: "not UTF-8", msg: "\xff", errs: []string{errV2("-32700", `"messages must be encoded in UTF-8"`, "null")}},
		{name: "not UTF-8 inside a string", msg: "{\"id\":1,\"method\":\"caf\xe9\"}",
			errs: []string{errV2("-32700", `"messages must be encoded in UTF-8"`, "null")}},
		{name: "UTF-8 encoded surrogate", msg: "{\"id\":1,\"method\":\"\xed\xa0\x80\"}",
			errs: []string{errV2("-32700", `"messages must be encoded in UTF-8"`, "null")}},
		{name: "parse error in 1.0 format", prior: []string{v1}, msg: `{`, dialect: Dialect1,
			errs: []string{errV1("-32700", invalidJSON, "null")}},

		// Nesting.
		{name: "64 levels accepted", msg: `{"id":1,"method":"m","params":` + nested("[", "]", 63) + `}`, dialect: DialectLoose,
			reqs: []req{{"1", "m", nested("[", "]", 63)}}},
		{name: "65 levels refused", msg: `{"id":1,"method":"m","params":` + nested("[", "]", 64) + `}`,
			errs: []string{errV2("-32700", `"invalid JSON: nested deeper than 64 levels"`, "null")}},
		{name: "batch level counts", msg: `[{"id":1,"method":"m","params":` + nested("[", "]", 63) + `}]`,
			errs: []string{errV2("-32700", `"invalid JSON: nested deeper than 64 levels"`, "null")}},
		{name: "objects count", msg: `{"id":1,"method":"m","params":` + strings.Repeat(`{"a":`, 64) + `1` + strings.Repeat(`}`, 64) + `}`,
			errs: []string{errV2("-32700", `"invalid JSON: nested deeper than 64 levels"`, "null")}},
		{name: "a million brackets", msg: nested("[", "]", 1_000_000),
			errs: []string{errV2("-32700", `"invalid JSON: nested deeper than 64 levels"`, "null")}},
		{name: "a million unclosed brackets", msg: strings.Repeat("[", 1_000_000),
			errs: []string{errV2("-32700", `"invalid JSON: nested deeper than 64 levels"`, "null")}},

		// Item errors.
		{name: "string message", msg: `"server.version"`, dialect: DialectLoose, errs: []string{errV2("-32600", notObject, "null")}},
		{name: "null message", msg: `null`, dialect: DialectLoose, errs: []string{errV2("-32600", notObject, "null")}},
		{name: "boolean id", msg: `{"id":true,"method":"m"}`, dialect: DialectLoose, errs: []string{errV2("-32600", badID, "null")}},
		{name: "object id", msg: `{"id":{"a":1},"method":"m"}`, dialect: DialectLoose, errs: []string{errV2("-32600", badID, "null")}},
		{name: "array id", msg: `{"id":[1],"method":"m"}`, dialect: DialectLoose, errs: []string{errV2("-32600", badID, "null")}},
		{name: "numeric method", msg: `{"id":1,"method":5}`, dialect: DialectLoose, errs: []string{errV2("-32601", notString, "1")}},
		{name: "null method", msg: `{"id":1,"method":null}`, dialect: DialectLoose, errs: []string{errV2("-32601", notString, "1")}},
		{name: "no method", msg: `{"id":1,"params":[]}`, dialect: DialectLoose, errs: []string{errV2("-32601", notString, "1")}},
		{name: "keys are case-sensitive", msg: `{"ID":1,"Method":"m"}`, dialect: DialectLoose, errs: []string{errV2("-32601", notString, "null")}},
		{name: "numeric params", msg: `{"id":1,"method":"m","params":5}`, dialect: DialectLoose,
			errs: []string{errV2("-32602", `"invalid request arguments: 5"`, "1")}},
		{name: "null params", msg: `{"id":1,"method":"m","params":null}`, dialect: DialectLoose,
			errs: []string{errV2("-32602", `"invalid request arguments: null"`, "1")}},
		{name: "string params", msg: `{"id":"a","method":"m","params":"x"}`, dialect: DialectLoose,
			errs: []string{errV2("-32602", `"invalid request arguments: \"x\""`, `"a"`)}},
		{name: "long bad params cut", msg: `{"id":1,"method":"m","params":"` + strings.Repeat("é", 100) + `"}`, dialect: DialectLoose,
			errs: []string{errV2("-32602", `"invalid request arguments: \"`+strings.Repeat("é", 49)+`..."`, "1")}},
		{name: "malformed notification gets an error", msg: `{"method":"m","params":5}`, dialect: DialectLoose,
			errs: []string{errV2("-32602", `"invalid request arguments: 5"`, "null")}},
		{name: "response object ignored", msg: `{"jsonrpc":"2.0","result":[],"id":3}`, dialect: Dialect2},
		{name: "error response ignored", prior: []string{loose}, msg: `{"error":{"code":1,"message":"x"},"id":3}`, dialect: DialectLoose},

		// Ids, echoed byte for byte (§2.2).
		{name: "integer id", msg: `{"id":17,"method":"m"}`, dialect: DialectLoose, reqs: []req{{"17", "m", "[]"}}},
		{name: "zero id", msg: `{"id":0,"method":"m"}`, dialect: DialectLoose, reqs: []req{{"0", "m", "[]"}}},
		{name: "negative id", msg: `{"id":-5,"method":"m"}`, dialect: DialectLoose, reqs: []req{{"-5", "m", "[]"}}},
		{name: "float id", msg: `{"id":1.50,"method":"m"}`, dialect: DialectLoose, reqs: []req{{"1.50", "m", "[]"}}},
		{name: "exponent id", msg: `{"id":-0.0E+00,"method":"m"}`, dialect: DialectLoose, reqs: []req{{"-0.0E+00", "m", "[]"}}},
		{name: "huge id", msg: `{"id":123456789012345678901234567890,"method":"m"}`, dialect: DialectLoose,
			reqs: []req{{"123456789012345678901234567890", "m", "[]"}}},
		{name: "string id", msg: `{"id":"abc","method":"m"}`, dialect: DialectLoose, reqs: []req{{`"abc"`, "m", "[]"}}},
		{name: "escaped string id", msg: `{"id":"a\"b\u00e9","method":"m"}`, dialect: DialectLoose,
			reqs: []req{{`"a\"b\u00e9"`, "m", "[]"}}},
		{name: "empty string id is not a notification", msg: `{"id":"","method":"m"}`, dialect: DialectLoose,
			reqs: []req{{`""`, "m", "[]"}}},
		{name: "null id is a notification", msg: `{"id":null,"method":"m"}`, dialect: DialectLoose, reqs: []req{{"", "m", "[]"}}},
		{name: "absent id is a notification", msg: `{"method":"m"}`, dialect: DialectLoose, reqs: []req{{"", "m", "[]"}}},

		// Members.
		{name: "whitespace kept inside values, not around", msg: "{ \"id\" :\t1.0 , \"method\" : \"m\" , \"params\" : [ 1 , {\"a\" : 2} ] }",
			dialect: DialectLoose, reqs: []req{{"1.0", "m", `[ 1 , {"a" : 2} ]`}}},
		{name: "named params", msg: `{"id":1,"method":"m","params":{"height":5}}`, dialect: DialectLoose,
			reqs: []req{{"1", "m", `{"height":5}`}}},
		{name: "last duplicate key wins", msg: `{"id":1,"id":2,"method":"a","method":"b","params":[1],"params":[2]}`,
			dialect: DialectLoose, reqs: []req{{"2", "b", "[2]"}}},
		{name: "escaped keys", msg: `{"\u0069d":7,"m\u0065thod":"m","params":[]}`, dialect: DialectLoose,
			reqs: []req{{"7", "m", "[]"}}},
		{name: "escaped method", msg: `{"id":1,"method":"blockchain\u002eblock\/header"}`, dialect: DialectLoose,
			reqs: []req{{"1", "blockchain.block/header", "[]"}}},
		{name: "empty method is a string", msg: `{"id":1,"method":""}`, dialect: DialectLoose, reqs: []req{{"1", "", "[]"}}},
		{name: "unknown members ignored", msg: `{"id":1,"method":"m","foo":{"bar":[1,2]}}`, dialect: DialectLoose,
			reqs: []req{{"1", "m", "[]"}}},
		{name: "trailing CR", msg: "{\"id\":1,\"method\":\"m\"}\r", dialect: DialectLoose, reqs: []req{{"1", "m", "[]"}}},
		{name: "a megabyte of padding", msg: `{"jsonrpc":"2.0","id":1,"method":"m","params":[]` + spaces + `}` + spaces,
			dialect: Dialect2, reqs: []req{{"1", "m", "[]"}}},
		{name: "padding everywhere", msg: spaces + `[` + spaces + `{"id":1,` + spaces + `"method":"m"}` + spaces + `]`,
			dialect: DialectLoose, batch: true, reqs: []req{{"1", "m", "[]"}}},

		// Batches (§2.4).
		{name: "batch keeps order; malformed items become errors", msg: `[1, {"id":1,"method":"a"}, {"method":"n","params":[true]}, {"id":2}, {"result":1,"id":9}, {"id":3,"method":"c","params":{}}]`,
			dialect: DialectLoose, batch: true,
			reqs: []req{{"1", "a", "[]"}, {"", "n", "[true]"}, {"3", "c", "{}"}},
			errs: []string{errV2("-32600", notObject, "null"), errV2("-32601", notString, "2")}},
		{name: "batch of notifications", msg: `[{"method":"a"},{"method":"b","id":null}]`, dialect: DialectLoose, batch: true,
			reqs: []req{{"", "a", "[]"}, {"", "b", "[]"}}},
		{name: "batch of one", msg: `[{"id":1,"method":"a"}]`, dialect: DialectLoose, batch: true, reqs: []req{{"1", "a", "[]"}}},
		{name: "nested batch is not an object", msg: `[[{"id":1,"method":"a"}]]`, dialect: DialectLoose, batch: true,
			errs: []string{errV2("-32600", notObject, "null")}},
		{name: "empty batch with padding", msg: `[   ]`, dialect: DialectLoose, errs: []string{errV2("-32600", `"batch is empty"`, "null")}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := NewCodec(0)
			for _, p := range tc.prior {
				c.Parse([]byte(p))
			}
			m := c.Parse([]byte(tc.msg))
			if got := c.Dialect(); got != tc.dialect {
				t.Errorf("dialect %v, want %v", got, tc.dialect)
			}
			if m.Batch != tc.batch {
				t.Errorf("Batch %v, want %v", m.Batch, tc.batch)
			}
			got := requestsOf(t, m)
			if len(got) != len(tc.reqs) {
				t.Fatalf("requests %q, want %q", got, tc.reqs)
			}
			for i := range got {
				if got[i] != tc.reqs[i] {
					t.Errorf("request %d: %q, want %q", i, got[i], tc.reqs[i])
				}
			}
			if e := strs(m.Errors); !equalStrings(e, tc.errs) {
				t.Errorf("errors\n got %q\nwant %q", e, tc.errs)
			}
		})
	}
}

// TestParseCopies checks that a Message does not alias the caller's
// buffer, which a framer reuses.
func TestParseCopies(t *testing.T) {
	buf := []byte(`[{"id":"abc","method":"m","params":[1,2]},{"id":"zz","method":5}]`)
	c := NewCodec(0)
	m := c.Parse(buf)
	for i := range buf {
		buf[i] = 'X'
	}
	r := m.Requests[0]
	if string(r.ID) != `"abc"` || string(r.Params) != "[1,2]" || r.Method != "m" {
		t.Errorf("request changed with the buffer: %s %s %s", r.ID, r.Method, r.Params)
	}
	out := c.NewBatch(m).Bytes()
	want := `[` + errV2("-32601", notString, `"zz"`) + `]`
	if string(out) != want {
		t.Errorf("batch %s, want %s", out, want)
	}
	// Appending to one raw value must not clobber the next.
	r.ID = append(r.ID, "!!!!"...)
	if string(r.Params) != "[1,2]" {
		t.Errorf("params clobbered: %s", r.Params)
	}
}

func TestParseRequestPointers(t *testing.T) {
	m := NewCodec(0).Parse([]byte(`[{"id":1,"method":"a"},{"method":"b"}]`))
	if len(m.Requests) != 2 || m.Requests[0].IsNotification() || !m.Requests[1].IsNotification() {
		t.Fatalf("requests %+v", m.Requests)
	}
	if m.Requests[0] == m.Requests[1] || m.Requests[0].Method != "a" || m.Requests[1].Method != "b" {
		t.Errorf("requests share storage: %+v %+v", *m.Requests[0], *m.Requests[1])
	}
}

func TestDialectString(t *testing.T) {
	for d, want := range map[Dialect]string{DialectUnknown: "unknown", Dialect2: "2.0", Dialect1: "1.0", DialectLoose: "loose", 9: "unknown"} {
		if got := d.String(); got != want {
			t.Errorf("%d: %q, want %q", d, got, want)
		}
	}
}

// TestScanMatchesEncodingJSON runs the validator over inputs on which
// hand-written JSON parsers often go wrong.
func TestScanMatchesEncodingJSON(t *testing.T) {
	inputs := []string{
		`0`, `-0`, `-`, `01`, `1.`, `.5`, `1e`, `1e+`, `1E-7`, `1.5e10`, `-1.0e-0`, `+1`, `0x10`,
		`""`, `"\u00e9"`, `"\u00G9"`, `"\u00e"`, `"\ud800"`, `"\"`, `"\\"`, `"\/"`, `"\a"`, "\"\x7f\"", "\"\x1f\"",
		`true`, `tru`, `truex`, `nul`, `null `, ` false`, `[]`, `[ ]`, `[,]`, `[1,]`, `[1 2]`, `{}`, `{ }`,
		`{"a"}`, `{"a":}`, `{"a":1,}`, `{"a" 1}`, `{1:2}`, `{"a":1 "b":2}`, `[[[]]]`, `[[[]]`, `[{"a":[{"b":{}}]}]`,
		`{"a":[1,{"b":null}],"c":"d"}`, `[1]]`, `{"a":1}}`, "\t[\n1\r]\n", `[1,2,3`, `"abc`, ``, ` `,
	}
	for _, in := range inputs {
		data := []byte(in)
		i := skipSpace(data, 0)
		ok := false
		if i < len(data) {
			end, err := scanValue(data, i, 0)
			ok = err == nil && skipSpace(data, end) == len(data)
		}
		if want := jsonValid(data); ok != want {
			t.Errorf("%q: valid %v, encoding/json says %v", in, ok, want)
		}
	}
}

func TestTrimSpace(t *testing.T) {
	for in, want := range map[string]string{"": "", "  ": "", " [1] \r\n": "[1]", "\t\"a b\"": `"a b"`} {
		if got := string(trimSpace([]byte(in))); got != want {
			t.Errorf("%q: %q, want %q", in, got, want)
		}
	}
	if !bytes.Equal(trimSpace(nil), nil) {
		t.Error("trimSpace(nil) not empty")
	}
}
