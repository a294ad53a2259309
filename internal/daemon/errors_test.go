package daemon

import (
	"errors"
	"fmt"
	"testing"
)

func TestRPCErrorIs(t *testing.T) {
	cases := []struct {
		name        string
		err         *RPCError
		unsupported bool
		notFound    bool
	}{
		{"method not found", &RPCError{Code: -32601, Message: "Method not found"}, true, false},
		{"btcd unimplemented", &RPCError{Code: -1, Message: "Command unimplemented"}, true, false},
		{"btcd wallet command", &RPCError{Code: -1, Message: "This implementation does not implement wallet commands"}, true, false},
		{"btcd out of range", &RPCError{Code: -1, Message: "Block number out of range"}, false, false},
		{"unknown block", &RPCError{Code: -5, Message: "Block not found"}, false, true},
		{"rejected", &RPCError{Code: -26, Message: "min relay fee not met"}, false, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := fmt.Errorf("getblock: %w", tc.err)
			if got := errors.Is(err, ErrUnsupported); got != tc.unsupported {
				t.Errorf("Is(ErrUnsupported) = %v", got)
			}
			if got := errors.Is(err, ErrNotFound); got != tc.notFound {
				t.Errorf("Is(ErrNotFound) = %v", got)
			}
			var rpcErr *RPCError
			if !errors.As(err, &rpcErr) || rpcErr != tc.err {
				t.Errorf("As lost the *RPCError")
			}
		})
	}
}

func TestHTTPErrorText(t *testing.T) {
	cases := []struct {
		err  *HTTPError
		want string
	}{
		{&HTTPError{Status: 401}, "http status 401"},
		{&HTTPError{Status: 503, Body: "Work queue depth exceeded\n"}, `http status 503: "Work queue depth exceeded"`},
	}
	for _, tc := range cases {
		if got := tc.err.Error(); got != tc.want {
			t.Errorf("Error() = %q, want %q", got, tc.want)
		}
	}
}
