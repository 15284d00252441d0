// Package logging builds the slog logger and carries a request- or
// task-scoped logger (request_id, tenant_id, task_id) in the context.
package logging

import (
	"context"
	"io"
	"log/slog"
	"slices"
	"strings"
)

// New returns a JSON or text logger at level (debug, info, warn, error).
func New(w io.Writer, level, format string) *slog.Logger {
	var lv slog.Level
	_ = lv.UnmarshalText([]byte(strings.ToUpper(level)))
	opts := &slog.HandlerOptions{Level: lv}
	if format == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

type loggerKey struct{}

// scope is what a context carries: a logger and the attributes gathered
// since (request_id, tenant_id). They are applied when something logs, not
// when gathered: most requests log one line, and slog's With formats its
// attributes ahead into a new handler every time.
type scope struct {
	log   *slog.Logger
	attrs []slog.Attr // never appended to in place: contexts share it
}

// With returns ctx carrying l.
func With(ctx context.Context, l *slog.Logger) context.Context {
	return context.WithValue(ctx, loggerKey{}, &scope{log: l})
}

// WithAttrs returns ctx whose logger adds attrs to every line; fallback is
// the logger when ctx carries none.
func WithAttrs(ctx context.Context, fallback *slog.Logger, attrs ...slog.Attr) context.Context {
	s, ok := ctx.Value(loggerKey{}).(*scope)
	if !ok {
		s = &scope{log: fallback}
	}
	return context.WithValue(ctx, loggerKey{}, &scope{log: s.log, attrs: append(slices.Clip(s.attrs), attrs...)})
}

// From returns the logger of ctx, or fallback when there is none.
func From(ctx context.Context, fallback *slog.Logger) *slog.Logger {
	s, ok := ctx.Value(loggerKey{}).(*scope)
	if !ok {
		return fallback
	}
	if len(s.attrs) == 0 {
		return s.log
	}
	args := make([]any, len(s.attrs))
	for i, a := range s.attrs {
		args[i] = a
	}
	return s.log.With(args...)
}

// Log writes one line with ctx's attributes followed by attrs, without
// building a logger: for the line every request or task writes.
func Log(ctx context.Context, fallback *slog.Logger, level slog.Level, msg string, attrs ...slog.Attr) {
	l, scoped := fallback, []slog.Attr(nil)
	if s, ok := ctx.Value(loggerKey{}).(*scope); ok {
		l, scoped = s.log, s.attrs
	}
	if l == nil || !l.Enabled(ctx, level) {
		return
	}
	if len(scoped) > 0 {
		attrs = append(slices.Clip(scoped), attrs...)
	}
	l.LogAttrs(ctx, level, msg, attrs...)
}
