package rpc

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// codecIn returns a codec whose dialect is d, fixed by a first message.
func codecIn(t testing.TB, d Dialect, maxSend int) *Codec {
	t.Helper()
	c := NewCodec(maxSend)
	switch d {
	case Dialect2:
		c.Parse([]byte(`{"jsonrpc":"2.0","id":0,"method":"server.version"}`))
	case Dialect1:
		c.Parse([]byte(`{"jsonrpc":"1.0","id":0,"method":"server.version","params":[]}`))
	case DialectLoose:
		c.Parse([]byte(`{"id":0,"method":"server.version"}`))
	}
	if c.Dialect() != d {
		t.Fatalf("dialect %v, want %v", c.Dialect(), d)
	}
	return c
}

func TestReply(t *testing.T) {
	type tcase struct {
		name    string
		dialect Dialect
		id      string // "" for nil
		result  any
		err     error
		want    string
	}
	cases := []tcase{
		{"2.0 result", Dialect2, "1", []string{"ElectrumX 2.0b1", "1.6"}, nil, `{"jsonrpc":"2.0","result":["ElectrumX 2.0b1","1.6"],"id":1}`},
		{"loose answers as 2.0", DialectLoose, `"a"`, 5, nil, `{"jsonrpc":"2.0","result":5,"id":"a"}`},
		{"unknown answers as 2.0", DialectUnknown, "1", true, nil, `{"jsonrpc":"2.0","result":true,"id":1}`},
		{"1.0 result", Dialect1, "1", "x", nil, `{"result":"x","error":null,"id":1}`},
		{"null result", Dialect2, "1", nil, nil, `{"jsonrpc":"2.0","result":null,"id":1}`},
		{"float id echoed", Dialect2, "2.50", 0, nil, `{"jsonrpc":"2.0","result":0,"id":2.50}`},
		{"nil id is null", Dialect2, "", 0, nil, `{"jsonrpc":"2.0","result":0,"id":null}`},
		{"map result sorted compact", Dialect2, "1", map[string]any{"height": 5, "hex": "00"}, nil, `{"jsonrpc":"2.0","result":{"height":5,"hex":"00"},"id":1}`},
		{"raw result kept", Dialect2, "1", json.RawMessage(`{"b":1,"a":[1,2]}`), nil, `{"jsonrpc":"2.0","result":{"b":1,"a":[1,2]},"id":1}`},
		{"raw result compacted", Dialect2, "1", json.RawMessage(" [1, 2] "), nil, `{"jsonrpc":"2.0","result":[1,2],"id":1}`},
		{"HTML not escaped", Dialect2, "1", "<b>&amp;</b>", nil, `{"jsonrpc":"2.0","result":"<b>&amp;</b>","id":1}`},
		{"2.0 error", Dialect2, "3", nil, ErrMethodNotFound("no.such.method"), `{"jsonrpc":"2.0","error":{"code":-32601,"message":"unknown method \"no.such.method\""},"id":3}`},
		{"1.0 error", Dialect1, "3", nil, BadRequest("x"), `{"result":null,"error":{"code":1,"message":"x"},"id":3}`},
		{"wrapped error", Dialect2, "1", nil, fmt.Errorf("get history: %w", ErrHistoryTooLong()), `{"jsonrpc":"2.0","error":{"code":10001,"message":"history too large"},"id":1}`},
		{"error wins over result", Dialect2, "1", "ignored", BadRequest("b"), `{"jsonrpc":"2.0","error":{"code":1,"message":"b"},"id":1}`},
		{"other error is internal", Dialect2, "1", nil, errors.New("db: disk on fire"), `{"jsonrpc":"2.0","error":{"code":-32603,"message":"internal server error"},"id":1}`},
		{"unencodable result is internal", Dialect2, "1", make(chan int), nil, `{"jsonrpc":"2.0","error":{"code":-32603,"message":"internal server error"},"id":1}`},
		{"invalid raw result is internal", Dialect2, "1", json.RawMessage(`{`), nil, `{"jsonrpc":"2.0","error":{"code":-32603,"message":"internal server error"},"id":1}`},
		{"message escaped", Dialect2, "1", nil, BadRequest("a\"b\\c\nd\x01é\u2028"), `{"jsonrpc":"2.0","error":{"code":1,"message":"a\"b\\c\nd\u0001é\u2028"},"id":1}`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := codecIn(t, tc.dialect, 0)
			var id json.RawMessage
			if tc.id != "" {
				id = json.RawMessage(tc.id)
			}
			got := string(c.Reply(id, tc.result, tc.err))
			if got != tc.want {
				t.Errorf("\n got %s\nwant %s", got, tc.want)
			}
			if !json.Valid([]byte(got)) {
				t.Errorf("invalid JSON %s", got)
			}
		})
	}
}

func TestNotification(t *testing.T) {
	sh := "f04bf26fc16a27abaa2f10540da7a24e369e6ec408f2d901202a7c0cd4a6112d"
	cases := []struct {
		name    string
		dialect Dialect
		method  string
		params  any
		want    string
	}{
		{"2.0", Dialect2, "blockchain.scripthash.subscribe", []any{sh, nil},
			`{"jsonrpc":"2.0","method":"blockchain.scripthash.subscribe","params":["` + sh + `",null]}`},
		{"loose", DialectLoose, "blockchain.headers.subscribe", []any{map[string]any{"hex": "00", "height": 1}},
			`{"jsonrpc":"2.0","method":"blockchain.headers.subscribe","params":[{"height":1,"hex":"00"}]}`},
		{"1.0", Dialect1, "server.ping", []any{}, `{"method":"server.ping","params":[],"id":null}`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := codecIn(t, tc.dialect, 10).Notification(tc.method, tc.params)
			if err != nil {
				t.Fatal(err)
			}
			// MAX_SEND is 10 bytes and does not apply.
			if string(got) != tc.want {
				t.Errorf("\n got %s\nwant %s", got, tc.want)
			}
		})
	}
	if _, err := NewCodec(0).Notification("m", []any{make(chan int)}); err == nil {
		t.Error("unencodable params: no error")
	}
}

func TestReplyTooLarge(t *testing.T) {
	overhead := len(`{"jsonrpc":"2.0","result":"","id":1}`)
	cases := []struct {
		name    string
		maxSend int
		size    int // of the result string
		tooBig  bool
	}{
		{"no limit", 0, 1 << 20, false},
		{"exactly at the limit", 400_000, 400_000 - overhead, false},
		{"one byte over", 400_000, 400_000 - overhead + 1, true},
		{"default limit", 8_100_000, 8_100_000, true},
		{"default limit, a 4 MB tx in hex fits", 8_100_000, 8_000_000, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := codecIn(t, Dialect2, tc.maxSend)
			got := c.Reply(json.RawMessage("1"), strings.Repeat("a", tc.size), nil)
			if !tc.tooBig {
				if len(got) != tc.size+overhead {
					t.Errorf("reply of %d bytes, want %d", len(got), tc.size+overhead)
				}
				return
			}
			want := `{"jsonrpc":"2.0","error":{"code":-32600,"message":"response too large (over ` +
				thousands(tc.maxSend) + ` bytes"},"id":1}`
			if string(got) != want {
				t.Errorf("\n got %.200s\nwant %s", got, want)
			}
		})
	}
	// The text clients match, for the default MAX_SEND.
	got := string(codecIn(t, DialectLoose, 8_100_000).Reply(json.RawMessage(`"x"`), strings.Repeat("a", 9_000_000), nil))
	if want := `{"jsonrpc":"2.0","error":{"code":-32600,"message":"response too large (over 8,100,000 bytes"},"id":"x"}`; got != want {
		t.Errorf("\n got %s\nwant %s", got, want)
	}
	// 1.0 format.
	got = string(codecIn(t, Dialect1, 350_000).Reply(json.RawMessage(`7`), strings.Repeat("a", 350_000), nil))
	if want := `{"result":null,"error":{"code":-32600,"message":"response too large (over 350,000 bytes"},"id":7}`; got != want {
		t.Errorf("\n got %s\nwant %s", got, want)
	}
}

func TestBatch(t *testing.T) {
	c := codecIn(t, DialectLoose, 0)
	m := c.Parse([]byte(`[{"id":1,"method":"a"}, 5, {"id":2,"method":"b"}, {"method":"n"}, {"id":"x","method":7}]`))
	b := c.NewBatch(m)
	// Replies go in completion order: 2 finished before 1.
	b.Add(m.Requests[1].ID, "B", nil)
	b.Add(m.Requests[0].ID, nil, BadRequest("bad"))
	want := `[` + strings.Join([]string{
		errV2("-32600", notObject, "null"),
		errV2("-32601", notString, `"x"`),
		`{"jsonrpc":"2.0","result":"B","id":2}`,
		`{"jsonrpc":"2.0","error":{"code":1,"message":"bad"},"id":1}`,
	}, ", ") + `]`
	if got := string(b.Bytes()); got != want {
		t.Errorf("\n got %s\nwant %s", got, want)
	}

	// Only notifications: nothing to send.
	m = c.Parse([]byte(`[{"method":"a"},{"method":"b"}]`))
	if out := c.NewBatch(m).Bytes(); out != nil {
		t.Errorf("notifications only: %s", out)
	}
	if out := c.NewBatch(nil).Bytes(); out != nil {
		t.Errorf("nil message: %s", out)
	}
	// A single message's error is not a batch element.
	m = c.Parse([]byte(`{"id":1,"method":5}`))
	if out := c.NewBatch(m).Bytes(); out != nil {
		t.Errorf("single message seeded a batch: %s", out)
	}
	// 1.0 elements.
	c1 := codecIn(t, Dialect1, 0)
	b = c1.NewBatch(nil)
	b.Add(json.RawMessage("1"), 1, nil)
	b.Add(json.RawMessage("2"), nil, BadRequest("x"))
	if got, want := string(b.Bytes()), `[{"result":1,"error":null,"id":1}, {"result":null,"error":{"code":1,"message":"x"},"id":2}]`; got != want {
		t.Errorf("\n got %s\nwant %s", got, want)
	}
}

func TestBatchTooLarge(t *testing.T) {
	// Each element {"jsonrpc":"2.0","result":"<n a's>","id":N} with a
	// one-digit id is 36+n bytes and counts 38+n towards the limit.
	elem := func(id, n int) string {
		return `{"jsonrpc":"2.0","result":"` + strings.Repeat("a", n) + `","id":` + strconv.Itoa(id) + `}`
	}
	tooLarge := func(id, maxSend int) string {
		return errV2("-32600", `"response too large (over `+thousands(maxSend)+` bytes"`, strconv.Itoa(id))
	}
	cases := []struct {
		name    string
		maxSend int
		sizes   []int // result sizes, added in this order
		want    []string
	}{
		{"all fit exactly", 3 * (38 + 100), []int{100, 100, 100},
			[]string{elem(1, 100), elem(2, 100), elem(3, 100)}},
		{"third goes over, and so does everything after it", 3*(38+100) - 1, []int{100, 100, 100, 1},
			[]string{elem(1, 100), elem(2, 100), tooLarge(3, 3*(38+100)-1), tooLarge(4, 3*(38+100)-1)}},
		{"one huge element first", 1000, []int{5000, 1, 1},
			[]string{tooLarge(1, 1000), tooLarge(2, 1000), tooLarge(3, 1000)}},
		{"no limit", 0, []int{5000, 1},
			[]string{elem(1, 5000), elem(2, 1)}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := codecIn(t, Dialect2, tc.maxSend)
			b := c.NewBatch(nil)
			for i, n := range tc.sizes {
				b.Add(json.RawMessage(strconv.Itoa(i+1)), strings.Repeat("a", n), nil)
			}
			want := "[" + strings.Join(tc.want, ", ") + "]"
			if got := string(b.Bytes()); got != want {
				t.Errorf("\n got %.300s\nwant %.300s", got, want)
			}
		})
	}

	// The running total includes the error elements of malformed items,
	// which come first: the result alone would fit, but not after them.
	errLen := len(errV2("-32600", notObject, "null"))
	c := codecIn(t, DialectLoose, (errLen+2)+(38+100)-1)
	m := c.Parse([]byte(`[1, {"id":1,"method":"a"}]`))
	b := c.NewBatch(m)
	b.Add(m.Requests[0].ID, strings.Repeat("a", 100), nil)
	want := "[" + errV2("-32600", notObject, "null") + ", " + tooLarge(1, c.maxSend) + "]"
	if got := string(b.Bytes()); got != want {
		t.Errorf("\n got %s\nwant %s", got, want)
	}
}

func TestBatchConcurrent(t *testing.T) {
	c := codecIn(t, Dialect2, 0)
	b := c.NewBatch(nil)
	const n = 100
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { b.Add(json.RawMessage(strconv.Itoa(i)), i, nil) })
	}
	wg.Wait()
	var got []struct {
		Result int `json:"result"`
		ID     int `json:"id"`
	}
	out := b.Bytes()
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	seen := map[int]bool{}
	for _, r := range got {
		if r.Result != r.ID || seen[r.ID] {
			t.Errorf("element %+v", r)
		}
		seen[r.ID] = true
	}
	if len(seen) != n || bytes.Count(out, []byte("}, {")) != n-1 {
		t.Errorf("%d elements, want %d", len(seen), n)
	}
}

func TestAppendStringMatchesEncodingJSON(t *testing.T) {
	for _, s := range []string{
		"", "plain", `quote " and \ backslash`, "\x00\x01\x07\b\t\n\v\f\r\x1b\x1f\x7f",
		"é ☃ 😀", "\u2028\u2029", "<>&", "bad \xff utf8 \xc3", "\xed\xa0\x80", "trailing \xe2\x82",
	} {
		if got, want := string(appendString(nil, s)), encodeString(t, s); got != want {
			t.Errorf("%q: %s, encoding/json %s", s, got, want)
		}
	}
}

func TestThousands(t *testing.T) {
	for n, want := range map[int]string{
		0: "0", 7: "7", 999: "999", 1000: "1,000", 350000: "350,000", 1000000: "1,000,000",
		8100000: "8,100,000", 1234567890: "1,234,567,890", -1234: "-1,234", -999: "-999",
	} {
		if got := thousands(n); got != want {
			t.Errorf("%d: %q, want %q", n, got, want)
		}
	}
}

// TestAppendValueMatchesEncodingJSON: the fast paths encode exactly as
// encoding/json (HTML escaping off) would.
func TestAppendValueMatchesEncodingJSON(t *testing.T) {
	for _, v := range []any{
		"", "ab01", `q"<>&`, "bad \xff", []string{}, []string(nil), []string{"a", "<b>", "\u2028"},
		Hex("00ff"), []Hex{}, []Hex(nil), []Hex{"ab", "cd"}, 0, -7, int64(1) << 40, map[string]any{"x": []int{1, 2}}, struct{ A string }{"&"},
	} {
		got, err := AppendValue([]byte("prefix "), v)
		if err != nil {
			t.Fatalf("%#v: %v", v, err)
		}
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(v); err != nil {
			t.Fatal(err)
		}
		if want := "prefix " + strings.TrimSuffix(buf.String(), "\n"); string(got) != want {
			t.Errorf("%#v: %s, encoding/json %s", v, got, want)
		}
	}
}

type appended string

func (a appended) AppendJSON(dst []byte) ([]byte, error) { return append(dst, a...), nil }

// TestReplyAppender: a result that encodes itself goes out as it encodes.
func TestReplyAppender(t *testing.T) {
	c := NewCodec(0)
	got := string(c.Reply(json.RawMessage("7"), appended(`{"b":1,"a":[2]}`), nil))
	if want := `{"jsonrpc":"2.0","result":{"b":1,"a":[2]},"id":7}`; got != want {
		t.Errorf("reply %s, want %s", got, want)
	}
}
