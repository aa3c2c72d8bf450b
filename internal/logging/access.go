package logging

import (
	"context"
	"io"
	"log/slog"
	"strconv"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"
)

// handler is the slog handler New returns, plus LogRequest: the access
// log line written without slog's per-attribute machinery, byte for byte
// what the text handler writes for the same record (a test compares them).
type handler struct {
	slog.Handler
	w    io.Writer // shared with Handler, so lines never interleave
	text bool
}

// lockedWriter serializes writes to w between the slog handler and
// LogRequest, which both write whole lines.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

var lineBuffers = sync.Pool{New: func() any { b := make([]byte, 0, 256); return &b }}

// LogRequest writes the access log line of one request: request_id,
// method, route, path, status and duration. None of its keys is
// sensitive (TestPlainKeysAreNotSensitive), so redaction, which goes by
// key, leaves it as it is.
func (h *handler) LogRequest(ctx context.Context, level slog.Level, id, method, route, path string, status int, took time.Duration) {
	if !h.Enabled(ctx, level) {
		return
	}
	now := time.Now()
	if !h.text {
		rec := slog.NewRecord(now, level, "request", 0)
		rec.AddAttrs(slog.String("request_id", id), slog.String("method", method), slog.String("route", route),
			slog.String("path", path), slog.Int("status", status), slog.Duration("duration", took))
		_ = h.Handle(ctx, rec)
		return
	}
	bp := lineBuffers.Get().(*[]byte)
	b := append((*bp)[:0], "time="...)
	b = appendRFC3339Millis(b, now.Round(0))
	b = append(b, " level="...)
	b = append(b, level.String()...)
	b = append(b, " msg=request request_id="...)
	b = appendTextString(b, id)
	b = append(b, " method="...)
	b = appendTextString(b, method)
	b = append(b, " route="...)
	b = appendTextString(b, route)
	b = append(b, " path="...)
	b = appendTextString(b, path)
	b = append(b, " status="...)
	b = strconv.AppendInt(b, int64(status), 10)
	b = append(b, " duration="...)
	b = append(b, took.String()...)
	b = append(b, '\n')
	_, _ = h.w.Write(b)
	if cap(b) <= 4<<10 {
		*bp = b
		lineBuffers.Put(bp)
	}
}

// appendTextString is how slog's text handler writes a string: as is, or
// strconv-quoted when it is empty or holds a space, '=', a quote, a
// control character, or a rune that is not printable.
func appendTextString(b []byte, s string) []byte {
	if needsQuoting(s) {
		return strconv.AppendQuote(b, s)
	}
	return append(b, s...)
}

func needsQuoting(s string) bool {
	if len(s) == 0 {
		return true
	}
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c != '\\' && (c <= ' ' || c == '=' || c == '"') {
				return true
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError || unicode.IsSpace(r) || !unicode.IsPrint(r) {
			return true
		}
		i += size
	}
	return false
}

// appendRFC3339Millis is slog's time format: RFC 3339 with exactly three
// digits of milliseconds.
func appendRFC3339Millis(b []byte, t time.Time) []byte {
	const prefixLen = len("2006-01-02T15:04:05.000")
	n := len(b)
	t = t.Truncate(time.Millisecond).Add(time.Millisecond / 10)
	b = t.AppendFormat(b, time.RFC3339Nano)
	return append(b[:n+prefixLen], b[n+prefixLen+1:]...) // drop the 4th digit
}

// flusher is a writer that batches (Buffered).
type flusher interface{ Flush() error }

// Handle writes a record through slog's handler. Only access-log lines
// ("request") wait for the batch: anything else an operator may be waiting
// for (listening, a failed reload, a store outage) is written at once,
// together with the lines batched before it, so order is kept.
func (h *handler) Handle(ctx context.Context, r slog.Record) error {
	err := h.Handler.Handle(ctx, r)
	if r.Message != "request" {
		if f, ok := h.w.(*lockedWriter).w.(flusher); ok {
			if ferr := f.Flush(); err == nil {
				err = ferr
			}
		}
	}
	return err
}
