package rpc

import (
	"encoding/json"
	"testing"
)

func TestParseVersion(t *testing.T) {
	cases := []struct {
		in, want string // want "" means an error
	}{
		{"1.4", "1.4"}, {"1.4.2", "1.4.2"}, {"1.6.0", "1.6.0"}, {"2.0", "2.0"}, {"0.10", "0.10"},
		{"1.04", "1.4"}, {"01.4", "1.4"}, {"1.4.0.0.0.0.0.1", "1.4.0.0.0.0.0.1"}, {"4294967295.0", "4294967295.0"},
		{"", ""}, {"1", ""}, {"1.", ""}, {".4", ""}, {"1..4", ""}, {"abc", ""}, {"1.4a", ""}, {"1.-4", ""},
		{"1.+4", ""}, {" 1.4", ""}, {"1.4 ", ""}, {"1.4.0.0.0.0.0.0.1", ""}, {"4294967296.0", ""}, {"1,4", ""}, {"١.٤", ""},
	}
	for _, tc := range cases {
		v, err := ParseVersion(tc.in)
		if tc.want == "" {
			if err == nil {
				t.Errorf("%q: parsed as %v, want an error", tc.in, v)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", tc.in, err)
			continue
		}
		if got := v.String(); got != tc.want {
			t.Errorf("%q: String %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestVersionCompare(t *testing.T) {
	// Strictly increasing (spec §3.1: "1.4" < "1.4.0" < "1.4.1").
	order := []string{"0.9", "0.10", "1.0", "1.2", "1.4", "1.4.0", "1.4.0.0", "1.4.1", "1.4.2", "1.5", "1.6", "1.6.0", "1.7", "1.7.0", "1.10", "2.0"}
	vs := []Version{{}}
	for _, s := range order {
		vs = append(vs, MustParseVersion(s))
	}
	for i := range vs {
		for j := range vs {
			want := 0
			switch {
			case i < j:
				want = -1
			case i > j:
				want = +1
			}
			if got := vs[i].Compare(vs[j]); got != want {
				t.Errorf("Compare(%v, %v) = %d, want %d", vs[i], vs[j], got, want)
			}
			if (vs[i] == vs[j]) != (i == j) {
				t.Errorf("%v == %v is %v", vs[i], vs[j], vs[i] == vs[j])
			}
		}
	}
	if MustParseVersion("1.04") != MustParseVersion("1.4") {
		t.Error("1.04 != 1.4")
	}
	if !(Version{}).IsZero() || MustParseVersion("0.0").IsZero() {
		t.Error("IsZero")
	}
	if got := (Version{}).String(); got != "0.0" {
		t.Errorf("zero Version prints %q", got)
	}
}

func TestMustParseVersionPanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("no panic")
		}
	}()
	MustParseVersion("1")
}

// TestNegotiate reproduces every row of the §3.2 negotiation table and
// the §12.9 vectors, for servers of 1.4–1.6.0 and 1.4–1.7.0.
func TestNegotiate(t *testing.T) {
	min14 := MustParseVersion("1.4")
	max160 := MustParseVersion("1.6.0")
	max170 := MustParseVersion("1.7.0")
	const unsupported = "unsupported protocol version: "
	cases := []struct {
		arg    string // "" means absent (nil)
		want16 string // reply text for a 1.4–1.6.0 server; "" means error
		want17 string // for a 1.4–1.7.0 server
		errArg string // the <as sent> text in the error
	}{
		{``, "1.4", "1.4", ""},
		{`null`, "1.4", "1.4", ""},
		{`"1.4"`, "1.4", "1.4", `1.4`},
		{`["1.4","1.6"]`, "1.6", "1.6", ""},
		{`["1.4","1.7"]`, "1.6.0", "1.7", ""},
		{`["1.4","2.0"]`, "1.6.0", "1.7.0", ""},
		{`"1.7"`, "", "1.7", `1.7`},
		{`"1.4.2"`, "1.4.2", "1.4.2", ""},
		{`"1.5"`, "1.5", "1.5", ""},
		{`"1.3"`, "", "", `1.3`},
		{`["1.2","1.3"]`, "", "", `["1.2","1.3"]`},
		{`"2.0"`, "", "", `2.0`},
		{`["1.4"]`, "", "", `["1.4"]`},
		{`"abc"`, "", "", `abc`},
		// Beyond the table.
		{`["1.2","1.4"]`, "1.4", "1.4", ""},
		{`["1.0","1.6.0"]`, "1.6.0", "1.6.0", ""},
		{`["1.6","1.4"]`, "", "", `["1.6","1.4"]`},
		{`["1.4","1.6","1.7"]`, "", "", `["1.4","1.6","1.7"]`},
		{`["1.4",null]`, "", "", `["1.4",null]`},
		{`[1.4,1.6]`, "", "", `[1.4,1.6]`},
		{`1.4`, "", "", `1.4`},
		{`{"min":"1.4"}`, "", "", `{"min":"1.4"}`},
		{`"1.3.9"`, "", "", `1.3.9`},
		{`"1.6.0"`, "1.6.0", "1.6.0", ""},
		{`"1.6.1"`, "", "1.6.1", `1.6.1`},
		{`"1.7.0"`, "", "1.7.0", `1.7.0`},
		{`"1\u002e5"`, "1.5", "1.5", ""},
		{` [ "1.4" , "1.6" ] `, "1.6", "1.6", ""},
		{`""`, "", "", ``},
		{`[`, "", "", `[`},
	}
	for _, tc := range cases {
		var arg json.RawMessage
		if tc.arg != "" {
			arg = json.RawMessage(tc.arg)
		}
		for _, srv := range []struct {
			max  Version
			want string
		}{{max160, tc.want16}, {max170, tc.want17}} {
			v, text, err := Negotiate(arg, min14, srv.max)
			if srv.want == "" {
				want := unsupported + tc.errArg
				if err == nil || err.Code != CodeBadRequest || err.Message != want {
					t.Errorf("%s with max %v: (%v, %q, %v), want error 1 %q", tc.arg, srv.max, v, text, err, want)
				}
				if text != "" || !v.IsZero() {
					t.Errorf("%s with max %v: version %v %q with an error", tc.arg, srv.max, v, text)
				}
				continue
			}
			if err != nil {
				t.Errorf("%s with max %v: %v, want %s", tc.arg, srv.max, err, srv.want)
				continue
			}
			if text != srv.want || v.String() != text {
				t.Errorf("%s with max %v: %v %q, want %s", tc.arg, srv.max, v, text, srv.want)
			}
		}
	}
}
