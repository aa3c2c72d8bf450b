package logging

import (
	"context"
	"io"
	"log/slog"
	"net/netip"
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

// Request is one access-log line. Optional fields (ClientIP,
// CredentialID, TraceID) are left out of the line when unset.
type Request struct {
	ID, Method, Route, Path string // Path without the query, which may carry a ticket
	Status                  int
	Took                    time.Duration
	ClientIP                netip.Addr
	CredentialID            string // the credential that authenticated the request: its id, never its secret
	TraceID                 string // set while tracing is on
}

// DurationMillis is how Took is written: milliseconds, to the microsecond.
func (r Request) DurationMillis() float64 { return float64(r.Took.Microseconds()) / 1000 }

// Attrs returns the line's attributes in the order LogRequest writes them.
func (r Request) Attrs() []slog.Attr {
	attrs := make([]slog.Attr, 0, 9)
	attrs = append(attrs, slog.String("request_id", r.ID), slog.String("method", r.Method), slog.String("route", r.Route),
		slog.String("path", r.Path), slog.Int("status", r.Status), slog.Float64("duration_ms", r.DurationMillis()))
	if r.ClientIP.IsValid() {
		attrs = append(attrs, slog.String("client_ip", r.ClientIP.WithZone("").String()))
	}
	if r.CredentialID != "" {
		attrs = append(attrs, slog.String("credential_id", r.CredentialID))
	}
	if r.TraceID != "" {
		attrs = append(attrs, slog.String("trace_id", r.TraceID))
	}
	return attrs
}

// LogRequest writes the access log line of one request: request_id,
// method, route, path, status, duration_ms, and client_ip,
// credential_id and trace_id when known. None of its keys is sensitive
// (TestPlainKeysAreNotSensitive), so redaction, which goes by key, leaves
// it as it is. The request is passed by value, so writing a line
// allocates nothing.
func (h *handler) LogRequest(ctx context.Context, level slog.Level, req Request) {
	if !h.Enabled(ctx, level) {
		return
	}
	now := time.Now()
	if !h.text {
		rec := slog.NewRecord(now, level, "request", 0)
		rec.AddAttrs(req.Attrs()...)
		_ = h.Handle(ctx, rec)
		return
	}
	bp := lineBuffers.Get().(*[]byte)
	b := append((*bp)[:0], "time="...)
	b = appendRFC3339Millis(b, now.Round(0))
	b = append(b, " level="...)
	b = append(b, level.String()...)
	b = append(b, " msg=request request_id="...)
	b = appendTextString(b, req.ID)
	b = append(b, " method="...)
	b = appendTextString(b, req.Method)
	b = append(b, " route="...)
	b = appendTextString(b, req.Route)
	b = append(b, " path="...)
	b = appendTextString(b, req.Path)
	b = append(b, " status="...)
	b = strconv.AppendInt(b, int64(req.Status), 10)
	b = append(b, " duration_ms="...)
	b = strconv.AppendFloat(b, req.DurationMillis(), 'g', -1, 64)
	if req.ClientIP.IsValid() {
		b = append(b, " client_ip="...)
		b = req.ClientIP.WithZone("").AppendTo(b) // no byte of a zoneless address needs quoting
	}
	if req.CredentialID != "" {
		b = append(b, " credential_id="...)
		b = appendTextString(b, req.CredentialID)
	}
	if req.TraceID != "" {
		b = append(b, " trace_id="...)
		b = appendTextString(b, req.TraceID)
	}
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
