// Package logging builds keyward's one logger. Redaction happens here, in
// one place: any attribute whose name suggests a credential is replaced
// before it is written, whatever code path produced it.
package logging

import (
	"fmt"
	"io"
	"log/slog"
	"strings"
)

// New returns a logger writing to w in the given format ("text" or "json")
// at the given level (a *slog.LevelVar lets the level change while it runs).
func New(w io.Writer, format string, level slog.Leveler) (*slog.Logger, error) {
	opts := &slog.HandlerOptions{Level: level, ReplaceAttr: redact}
	lw := &lockedWriter{w: w}
	switch format {
	case "", "text":
		return slog.New(&handler{Handler: slog.NewTextHandler(lw, opts), w: lw, text: true}), nil
	case "json":
		return slog.New(&handler{Handler: slog.NewJSONHandler(lw, opts), w: lw}), nil
	}
	return nil, fmt.Errorf("unknown log format %q (want text or json)", format)
}

// Redacted replaces the value of a sensitive attribute.
const Redacted = "[REDACTED]"

var sensitive = []string{"authorization", "token", "secret", "password", "cookie", "key", "ticket"}

// plainKeys are attribute names known to carry no credential (every one
// the access log writes), so the hot path skips the substring scan. A
// test checks each against sensitive.
var plainKeys = map[string]bool{
	slog.TimeKey: true, slog.LevelKey: true, slog.MessageKey: true,
	"request_id": true, "method": true, "route": true, "path": true, "status": true, "duration_ms": true,
	"client_ip": true, "credential_id": true, "trace_id": true,
}

func redact(_ []string, a slog.Attr) slog.Attr {
	if plainKeys[a.Key] {
		return a
	}
	name := strings.ToLower(a.Key)
	for _, s := range sensitive {
		if strings.Contains(name, s) {
			return slog.String(a.Key, Redacted)
		}
	}
	return a
}
