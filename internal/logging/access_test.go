package logging

import (
	"bytes"
	"context"
	"log/slog"
	"regexp"
	"strings"
	"testing"
	"time"
)

// timeField is the one field two lines written a moment apart may differ in.
var timeField = regexp.MustCompile(`^time=\S+ `)

// slogLine is what slog's text handler, with New's options, writes for the
// access log record.
func slogLine(t *testing.T, level slog.Level, id, method, route, path string, status int, took time.Duration) string {
	t.Helper()
	var buf bytes.Buffer
	h := slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo, ReplaceAttr: redact})
	rec := slog.NewRecord(time.Now(), level, "request", 0)
	rec.AddAttrs(slog.String("request_id", id), slog.String("method", method), slog.String("route", route),
		slog.String("path", path), slog.Int("status", status), slog.Duration("duration", took))
	if err := h.Handle(context.Background(), rec); err != nil {
		t.Fatal(err)
	}
	return buf.String()
}

func fastLine(t *testing.T, level slog.Level, id, method, route, path string, status int, took time.Duration) string {
	t.Helper()
	var buf bytes.Buffer
	log, err := New(&buf, "text", slog.LevelInfo)
	if err != nil {
		t.Fatal(err)
	}
	log.Handler().(*handler).LogRequest(context.Background(), level, id, method, route, path, status, took)
	return buf.String()
}

func sameAccessLine(t *testing.T, level slog.Level, id, method, route, path string, status int, took time.Duration) {
	t.Helper()
	want := slogLine(t, level, id, method, route, path, status, took)
	got := fastLine(t, level, id, method, route, path, status, took)
	if !timeField.MatchString(got) || timeField.ReplaceAllString(got, "") != timeField.ReplaceAllString(want, "") {
		t.Fatalf("LogRequest wrote\n%q\nslog writes\n%q", got, want)
	}
}

func TestLogRequestWritesWhatSlogWrites(t *testing.T) {
	for _, tc := range []struct {
		level               slog.Level
		method, route, path string
		status              int
		took                time.Duration
	}{
		{slog.LevelInfo, "POST", "POST /v1/verify", "/v1/verify", 200, 1234567 * time.Nanosecond},
		{slog.LevelError, "GET", "", "/a b=c\"d\\e", 503, 0},
		{slog.LevelInfo, "BREW", "/", "/\x00\x7f\t\u00a0\u2028é\xff\ufffd", 753, 3 * time.Hour},
		{slog.LevelInfo, "", "GET /{id}", "", 99, -time.Millisecond},
	} {
		sameAccessLine(t, tc.level, "req_0ABC", tc.method, tc.route, tc.path, tc.status, tc.took)
	}
}

func TestLogRequestKeepsTheLevelAndTheTimeFormat(t *testing.T) {
	var buf bytes.Buffer
	log, err := New(&buf, "text", slog.LevelWarn)
	if err != nil {
		t.Fatal(err)
	}
	h := log.Handler().(*handler)
	h.LogRequest(context.Background(), slog.LevelInfo, "req_1", "GET", "GET /", "/", 200, time.Millisecond)
	if buf.Len() != 0 {
		t.Fatalf("an info line at level warn: %q", buf.String())
	}
	h.LogRequest(context.Background(), slog.LevelError, "req_1", "GET", "GET /", "/", 500, time.Millisecond)
	if !regexp.MustCompile(`^time=\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\S* level=ERROR msg=request `).MatchString(buf.String()) {
		t.Fatalf("error line: %q", buf.String())
	}
}

func TestLogRequestInJSONIsARecord(t *testing.T) {
	var buf bytes.Buffer
	log, err := New(&buf, "json", slog.LevelInfo)
	if err != nil {
		t.Fatal(err)
	}
	log.Handler().(*handler).LogRequest(context.Background(), slog.LevelInfo, "req_1", "POST", "POST /v1/verify", "/v1/verify", 200, time.Millisecond)
	for _, want := range []string{`"msg":"request"`, `"request_id":"req_1"`, `"route":"POST /v1/verify"`, `"status":200`, `"duration":1000000`} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("JSON line lacks %s: %s", want, buf.String())
		}
	}
}

func FuzzLogRequestWritesWhatSlogWrites(f *testing.F) {
	f.Add("req_1", "POST", "POST /v1/verify", "/v1/verify", 200, int64(1234567))
	f.Add("", "G ET", "=", "\"\\\x01\u2028", -1, int64(-5))
	f.Fuzz(func(t *testing.T, id, method, route, path string, status int, took int64) {
		sameAccessLine(t, slog.LevelInfo, id, method, route, path, status, time.Duration(took))
	})
}
