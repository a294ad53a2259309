package rpc

import (
	"errors"
	"fmt"
	"testing"
)

// TestErrorTable pins every code and message of §2.6.
func TestErrorTable(t *testing.T) {
	cases := []struct {
		name string
		err  *Error
		code int
		msg  string
	}{
		{"parse", ErrParse("invalid JSON"), -32700, "invalid JSON"},
		{"invalid request", ErrInvalidRequest("batch is empty"), -32600, "batch is empty"},
		{"method not found", ErrMethodNotFound("x"), -32601, `unknown method "x"`},
		{"invalid params", ErrInvalidParams("p"), -32602, "p"},
		{"internal", ErrInternal(), -32603, "internal server error"},
		{"excessive usage", ErrExcessiveUsage(), -101, "excessive resource usage"},
		{"server busy", ErrServerBusy(), -102, "server busy - request timed out"},
		{"bad request", BadRequest("unsupported protocol version: 1.3"), 1, "unsupported protocol version: 1.3"},
		{"daemon error", DaemonError("daemon error: DaemonError({'code': -5})"), 2, "daemon error: DaemonError({'code': -5})"},
		{"history too long", ErrHistoryTooLong(), 10001, "history too large"},
		{"response too large", ErrResponseTooLarge(8_100_000), -32600, "response too large (over 8,100,000 bytes"},
		{"response too large, floor", ErrResponseTooLarge(350_000), -32600, "response too large (over 350,000 bytes"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.err.Code != tc.code || tc.err.Message != tc.msg {
				t.Errorf("got %d %q, want %d %q", tc.err.Code, tc.err.Message, tc.code, tc.msg)
			}
			if want := fmt.Sprintf("rpc error %d: %s", tc.code, tc.msg); tc.err.Error() != want {
				t.Errorf("Error() = %q, want %q", tc.err.Error(), want)
			}
		})
	}
}

func TestErrorIs(t *testing.T) {
	wrapped := fmt.Errorf("subscribe: %w", ErrHistoryTooLong())
	if !errors.Is(wrapped, ErrHistoryTooLong()) {
		t.Error("wrapped history error does not match")
	}
	if errors.Is(wrapped, BadRequest("history too large")) {
		t.Error("matched a different code")
	}
	if errors.Is(BadRequest("a"), BadRequest("b")) {
		t.Error("matched a different message")
	}
	if errors.Is(BadRequest("a"), errors.New("a")) {
		t.Error("matched a plain error")
	}
	var nilErr *Error
	if BadRequest("a").Is(nilErr) {
		t.Error("matched a nil *Error")
	}
	if got := asError(wrapped); got.Code != CodeHistoryTooLong {
		t.Errorf("asError: %v", got)
	}
	if got := asError(errors.New("x")); *got != *ErrInternal() {
		t.Errorf("asError of a plain error: %v", got)
	}
}
