package telemetry

import (
	"io"
	"log/slog"
	"strings"
)

// NewLogger returns a logger writing to w at the level held by level, which
// callers keep to change the level at run time. format is "json" for log
// collectors; anything else gives logfmt-style text for terminals.
func NewLogger(w io.Writer, level *slog.LevelVar, format string) *slog.Logger {
	opts := &slog.HandlerOptions{Level: level}
	if strings.EqualFold(format, "json") {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// Discard is a logger that drops everything, for tests and tools.
func Discard() *slog.Logger { return slog.New(slog.DiscardHandler) }
