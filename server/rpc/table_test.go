package rpc

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

type fakeSession struct{ name string }

func answer(result string) Handler[*fakeSession] {
	return func(context.Context, *fakeSession, []json.RawMessage) (any, error) { return result, nil }
}

// availabilityTable follows the shape of spec §4.0 for a few methods.
func availabilityTable(t *testing.T) *Table[*fakeSession] {
	t.Helper()
	v := MustParseVersion
	tbl, err := NewTable(
		Method[*fakeSession]{Name: "server.ping", RemovedIn: v("1.7"), Handler: answer("ping 1.4")},
		Method[*fakeSession]{Name: "server.ping", Params: []string{"pong_len", "data"}, MinVersion: v("1.7"), Handler: answer("ping 1.7")},
		Method[*fakeSession]{Name: "blockchain.relayfee", RemovedIn: v("1.6"), Handler: answer("relayfee")},
		Method[*fakeSession]{Name: "mempool.get_info", MinVersion: v("1.6"), Handler: answer("get_info")},
		Method[*fakeSession]{Name: "blockchain.scripthash.get_history", Params: []string{"scripthash"}, Required: 1, RemovedIn: v("1.7"), Handler: answer("get_history")},
		Method[*fakeSession]{Name: "blockchain.scripthash.unsubscribe", Params: []string{"scripthash"}, Required: 1, MinVersion: v("1.4.2"), RemovedIn: v("1.7"), Handler: answer("unsubscribe")},
	)
	if err != nil {
		t.Fatal(err)
	}
	return tbl
}

func TestLookup(t *testing.T) {
	tbl := availabilityTable(t)
	cases := []struct {
		method, version string
		want            string // the handler's answer; "" means unknown method
	}{
		{"server.ping", "1.4", "ping 1.4"},
		{"server.ping", "1.6.0", "ping 1.4"},
		{"server.ping", "1.7", "ping 1.7"},
		{"server.ping", "1.7.0", "ping 1.7"},
		{"blockchain.relayfee", "1.4", "relayfee"},
		{"blockchain.relayfee", "1.5", "relayfee"},
		{"blockchain.relayfee", "1.6", ""},
		{"blockchain.relayfee", "1.6.0", ""},
		{"mempool.get_info", "1.5", ""},
		{"mempool.get_info", "1.6", "get_info"},
		{"mempool.get_info", "1.7.0", "get_info"},
		// "≤1.6" methods stay when 1.6.0 is negotiated (the quirk of §3.2).
		{"blockchain.scripthash.get_history", "1.6", "get_history"},
		{"blockchain.scripthash.get_history", "1.6.0", "get_history"},
		{"blockchain.scripthash.get_history", "1.7", ""},
		{"blockchain.scripthash.unsubscribe", "1.4", ""},
		{"blockchain.scripthash.unsubscribe", "1.4.1", ""},
		{"blockchain.scripthash.unsubscribe", "1.4.2", "unsubscribe"},
		// 1.5 gets the 1.4.2 handler set.
		{"blockchain.scripthash.unsubscribe", "1.5", "unsubscribe"},
		{"blockchain.scripthash.unsubscribe", "1.7.0", ""},
		{"no.such.method", "1.4", ""},
		{"", "1.4", ""},
	}
	for _, tc := range cases {
		m, err := tbl.Lookup(tc.method, MustParseVersion(tc.version))
		if tc.want == "" {
			if m != nil || err == nil || err.Code != CodeMethodNotFound || err.Message != `unknown method "`+tc.method+`"` {
				t.Errorf("%s at %s: %v, %v; want unknown method", tc.method, tc.version, m, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s at %s: %v", tc.method, tc.version, err)
			continue
		}
		if got, _ := m.Handler(context.Background(), nil, nil); got != tc.want {
			t.Errorf("%s at %s: handler %v, want %s", tc.method, tc.version, got, tc.want)
		}
	}
}

func TestCall(t *testing.T) {
	type ctxKey struct{}
	var gotArgs []json.RawMessage
	tbl, err := NewTable(Method[*fakeSession]{
		Name:     "blockchain.block.header",
		Params:   []string{"height", "cp_height"},
		Required: 1,
		Handler: func(ctx context.Context, s *fakeSession, args []json.RawMessage) (any, error) {
			gotArgs = args
			if ctx.Value(ctxKey{}) != "ctx" {
				return nil, errors.New("context not passed")
			}
			if string(args[0]) == "-1" {
				return nil, BadRequest("-1 should be a non-negative integer")
			}
			return s.name, nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.WithValue(context.Background(), ctxKey{}, "ctx")
	sess := &fakeSession{name: "session 7"}
	v := MustParseVersion("1.4")
	call := func(method, params string) (any, error) {
		return tbl.Call(ctx, sess, v, &Request{ID: json.RawMessage("1"), Method: method, Params: json.RawMessage(params)})
	}

	res, err := call("blockchain.block.header", `[5]`)
	if err != nil || res != "session 7" || len(gotArgs) != 2 || string(gotArgs[0]) != "5" || gotArgs[1] != nil {
		t.Errorf("call: %v, %v, args %q", res, err, gotArgs)
	}
	res, err = call("blockchain.block.header", `{"height":6,"cp_height":8}`)
	if err != nil || res != "session 7" || string(gotArgs[0]) != "6" || string(gotArgs[1]) != "8" {
		t.Errorf("named call: %v, %v, args %q", res, err, gotArgs)
	}
	for _, tc := range []struct {
		method, params string
		want           *Error
	}{
		{"blockchain.block.header", `[-1]`, BadRequest("-1 should be a non-negative integer")},
		{"blockchain.block.header", `[]`, ErrInvalidParams(`0 arguments passed to method "blockchain.block.header" but it requires 1`)},
		{"blockchain.block.headers", `[]`, ErrMethodNotFound("blockchain.block.headers")},
	} {
		_, err := call(tc.method, tc.params)
		var e *Error
		if !errors.As(err, &e) || *e != *tc.want {
			t.Errorf("%s %s: %v, want %v", tc.method, tc.params, err, tc.want)
		}
	}
	// A nil *Error never comes back as a non-nil error.
	if _, err := call("blockchain.block.header", `[1]`); err != nil {
		t.Errorf("success with error %v", err)
	}
}

func TestNewTableRejects(t *testing.T) {
	v := MustParseVersion
	h := answer("")
	cases := []struct {
		name    string
		methods []Method[*fakeSession]
		want    string
	}{
		{"no name", []Method[*fakeSession]{{Handler: h}}, "without a name"},
		{"no handler", []Method[*fakeSession]{{Name: "a"}}, "no handler"},
		{"required above params", []Method[*fakeSession]{{Name: "a", Params: []string{"x"}, Required: 2, Handler: h}}, "2 required of 1"},
		{"negative required", []Method[*fakeSession]{{Name: "a", Required: -1, Handler: h}}, "-1 required"},
		{"repeated parameter", []Method[*fakeSession]{{Name: "a", Params: []string{"x", "x"}, Handler: h}}, `parameter name "x"`},
		{"empty parameter", []Method[*fakeSession]{{Name: "a", Params: []string{""}, Handler: h}}, `parameter name ""`},
		{"empty range", []Method[*fakeSession]{{Name: "a", MinVersion: v("1.6"), RemovedIn: v("1.6"), Handler: h}}, "empty version range [1.6, 1.6)"},
		{"duplicate", []Method[*fakeSession]{{Name: "a", Handler: h}, {Name: "a", Handler: h}}, "version ranges [, ) and [, ) overlap"},
		{"overlap", []Method[*fakeSession]{
			{Name: "a", RemovedIn: v("1.7"), Handler: h},
			{Name: "a", MinVersion: v("1.6.0"), Handler: h},
		}, "version ranges [1.6.0, ) and [, 1.7) overlap"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tbl, err := NewTable(tc.methods...)
			if err == nil || !strings.Contains(err.Error(), tc.want) || tbl != nil {
				t.Errorf("NewTable: %v, want an error containing %q", err, tc.want)
			}
		})
	}
	// Adjacent ranges do not overlap.
	if _, err := NewTable(
		Method[*fakeSession]{Name: "a", RemovedIn: v("1.7"), Handler: h},
		Method[*fakeSession]{Name: "a", MinVersion: v("1.7"), Handler: h},
	); err != nil {
		t.Error(err)
	}
}

func TestNewTableCopies(t *testing.T) {
	params := []string{"height"}
	methods := []Method[*fakeSession]{{Name: "a", Params: params, Required: 1, Handler: answer("")}}
	tbl, err := NewTable(methods...)
	if err != nil {
		t.Fatal(err)
	}
	params[0] = "changed"
	methods[0].Name = "b"
	m, rpcErr := tbl.Lookup("a", MustParseVersion("1.4"))
	if rpcErr != nil || m.Params[0] != "height" {
		t.Errorf("table changed with its input: %v %v", m, rpcErr)
	}
}
