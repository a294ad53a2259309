package rpc

import (
	"encoding/json"
	"testing"
)

// TestBind checks argument binding and the §2.2 messages.
func TestBind(t *testing.T) {
	header := Method[struct{}]{Name: "blockchain.block.header", Params: []string{"height", "cp_height"}, Required: 1}
	headers := Method[struct{}]{Name: "blockchain.block.headers", Params: []string{"start_height", "count", "cp_height"}, Required: 2}
	banner := Method[struct{}]{Name: "server.banner"}
	version := Method[struct{}]{Name: "server.version", Params: []string{"client_name", "protocol_version"}, IgnoreExtra: true}
	const nilArg = "<nil>"
	cases := []struct {
		name   string
		m      Method[struct{}]
		params string // "" means nil
		want   []string
		err    string
	}{
		{"positional, optional left out", header, `[5]`, []string{"5", nilArg}, ""},
		{"positional, all", header, `[5, 4]`, []string{"5", "4"}, ""},
		{"positional, raw values kept", header, `[ "5" , {"a" : [1]} ]`, []string{`"5"`, `{"a" : [1]}`}, ""},
		{"positional null is not absent", header, `[5,null]`, []string{"5", "null"}, ""},
		{"too few, none", header, `[]`, nil, `0 arguments passed to method "blockchain.block.header" but it requires 1`},
		{"too few, one", headers, `[0]`, nil, `1 argument passed to method "blockchain.block.headers" but it requires 2`},
		{"too many", header, `[1,2,3]`, nil, `3 arguments passed to method blockchain.block.header taking at most 2`},
		{"too many for no parameters", banner, `[1]`, nil, `1 argument passed to method server.banner taking at most 0`},
		{"no parameters, none given", banner, `[]`, []string{}, ""},
		{"nil params are no arguments", banner, ``, []string{}, ""},
		{"nil params, required missing", header, ``, nil, `0 arguments passed to method "blockchain.block.header" but it requires 1`},
		{"named", header, `{"height":5}`, []string{"5", nilArg}, ""},
		{"named, any order", headers, `{"count":2,"cp_height":10,"start_height":0}`, []string{"0", "2", "10"}, ""},
		{"named, escaped key", header, `{"h\u0065ight":5}`, []string{"5", nilArg}, ""},
		{"named, last duplicate wins", header, `{"height":5,"height":6}`, []string{"6", nilArg}, ""},
		{"named null is not absent", header, `{"height":null}`, []string{"null", nilArg}, ""},
		{"named, one missing", header, `{"cp_height":4}`, nil, `method "blockchain.block.header" requires parameter "height"`},
		{"named, two missing, sorted", headers, `{}`, nil, `method "blockchain.block.headers" requires parameters "count", "start_height"`},
		{"named, one unknown", header, `{"height":5,"verbose":true}`, nil, `method "blockchain.block.header" does not take parameter "verbose"`},
		{"named, unknown sorted and once", header, `{"z":1,"height":5,"a":2,"z":3}`, nil, `method "blockchain.block.header" does not take parameters "a", "z"`},
		{"named, missing reported before unknown", header, `{"z":1}`, nil, `method "blockchain.block.header" requires parameter "height"`},
		{"named for no parameters", banner, `{"x":1}`, nil, `method "server.banner" does not take parameter "x"`},
		{"server.version ignores extra positional", version, `["electrum/4.8.1", ["1.4","1.6"], "extra", 5]`, []string{`"electrum/4.8.1"`, `["1.4","1.6"]`}, ""},
		{"server.version ignores extra named", version, `{"client_name":"x","foo":1}`, []string{`"x"`, nilArg}, ""},
		{"server.version with nothing", version, `[]`, []string{nilArg, nilArg}, ""},
		{"params not array or object", header, `5`, nil, `invalid request arguments: 5`},
		{"params null", header, `null`, nil, `invalid request arguments: null`},
		{"params invalid JSON", header, `[1,`, nil, `invalid request arguments: [1,`},
		{"params with trailing garbage", header, `[1] 2`, nil, `invalid request arguments: [1] 2`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var params json.RawMessage
			if tc.params != "" {
				params = json.RawMessage(tc.params)
			}
			args, err := tc.m.Bind(params)
			if tc.err != "" {
				if err == nil || err.Code != CodeInvalidParams || err.Message != tc.err {
					t.Fatalf("error %v, want -32602 %q", err, tc.err)
				}
				if args != nil {
					t.Errorf("args %q with an error", args)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(args) != len(tc.m.Params) {
				t.Fatalf("%d args, want one per parameter (%d)", len(args), len(tc.m.Params))
			}
			for i, a := range args {
				got := string(a)
				if a == nil {
					got = nilArg
				}
				if got != tc.want[i] {
					t.Errorf("arg %d (%s): %s, want %s", i, tc.m.Params[i], got, tc.want[i])
				}
			}
		})
	}
}
