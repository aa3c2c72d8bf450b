package logging

import (
	"bytes"
	"context"
	"log/slog"
	"net/netip"
	"regexp"
	"strings"
	"testing"
	"time"
)

// timeField is the one field two lines written a moment apart may differ in.
var timeField = regexp.MustCompile(`^time=\S+ `)

// slogLine is what slog's text handler, with New's options, writes for the
// access log record.
func slogLine(t *testing.T, level slog.Level, req Request) string {
	t.Helper()
	var buf bytes.Buffer
	h := slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo, ReplaceAttr: redact})
	rec := slog.NewRecord(time.Now(), level, "request", 0)
	rec.AddAttrs(req.Attrs()...)
	if err := h.Handle(context.Background(), rec); err != nil {
		t.Fatal(err)
	}
	return buf.String()
}

func fastLine(t *testing.T, level slog.Level, req Request) string {
	t.Helper()
	var buf bytes.Buffer
	log, err := New(&buf, "text", slog.LevelInfo)
	if err != nil {
		t.Fatal(err)
	}
	log.Handler().(*handler).LogRequest(context.Background(), level, req)
	return buf.String()
}

func sameAccessLine(t *testing.T, level slog.Level, req Request) {
	t.Helper()
	want := slogLine(t, level, req)
	got := fastLine(t, level, req)
	if !timeField.MatchString(got) || timeField.ReplaceAllString(got, "") != timeField.ReplaceAllString(want, "") {
		t.Fatalf("LogRequest wrote\n%q\nslog writes\n%q", got, want)
	}
}

func TestLogRequestWritesWhatSlogWrites(t *testing.T) {
	for _, req := range []Request{
		{ID: "req_0ABC", Method: "POST", Route: "POST /v1/verify", Path: "/v1/verify", Status: 200, Took: 1234567 * time.Nanosecond,
			ClientIP: netip.MustParseAddr("203.0.113.7"), CredentialID: "ak_01J0ABCDEF", TraceID: "4bf92f3577b34da6a3ce929d0e0e4736"},
		{ID: "req_0ABC", Method: "GET", Route: "", Path: "/a b=c\"d\\e", Status: 503},
		{ID: "req_0ABC", Method: "BREW", Route: "/", Path: "/\x00\x7f\t\u00a0\u2028é\xff\ufffd", Status: 753, Took: 3 * time.Hour,
			ClientIP: netip.MustParseAddr("2001:db8::1"), CredentialID: "a b"},
		{ID: "req_0ABC", Method: "", Route: "GET /{id}", Path: "", Status: 99, Took: -time.Millisecond, TraceID: "="},
		{ID: "client-chosen.id", Method: "GET", Route: "GET /x", Path: "/x", Status: 200, Took: 999 * time.Nanosecond,
			ClientIP: netip.MustParseAddr("fe80::1%eth0")},
	} {
		sameAccessLine(t, slog.LevelInfo, req)
	}
}

func TestLogRequestKeepsTheLevelAndTheTimeFormat(t *testing.T) {
	var buf bytes.Buffer
	log, err := New(&buf, "text", slog.LevelWarn)
	if err != nil {
		t.Fatal(err)
	}
	h := log.Handler().(*handler)
	h.LogRequest(context.Background(), slog.LevelInfo, Request{ID: "req_1", Method: "GET", Route: "GET /", Path: "/", Status: 200, Took: time.Millisecond})
	if buf.Len() != 0 {
		t.Fatalf("an info line at level warn: %q", buf.String())
	}
	h.LogRequest(context.Background(), slog.LevelError, Request{ID: "req_1", Method: "GET", Route: "GET /", Path: "/", Status: 500, Took: time.Millisecond})
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
	log.Handler().(*handler).LogRequest(context.Background(), slog.LevelInfo, Request{ID: "req_1", Method: "POST", Route: "POST /v1/verify",
		Path: "/v1/verify", Status: 200, Took: 1500 * time.Microsecond, ClientIP: netip.MustParseAddr("192.0.2.1"), CredentialID: "ak_1", TraceID: "abc"})
	for _, want := range []string{`"msg":"request"`, `"request_id":"req_1"`, `"route":"POST /v1/verify"`, `"status":200`, `"duration_ms":1.5`,
		`"client_ip":"192.0.2.1"`, `"credential_id":"ak_1"`, `"trace_id":"abc"`} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("JSON line lacks %s: %s", want, buf.String())
		}
	}
}

func FuzzLogRequestWritesWhatSlogWrites(f *testing.F) {
	f.Add("req_1", "POST", "POST /v1/verify", "/v1/verify", 200, int64(1234567), "ak_1", "4bf92f35")
	f.Add("", "G ET", "=", "\"\\\x01\u2028", -1, int64(-5), "", "")
	f.Fuzz(func(t *testing.T, id, method, route, path string, status int, took int64, credentialID, traceID string) {
		sameAccessLine(t, slog.LevelInfo, Request{ID: id, Method: method, Route: route, Path: path, Status: status,
			Took: time.Duration(took), ClientIP: netip.AddrFrom4([4]byte{10, 0, 0, 1}), CredentialID: credentialID, TraceID: traceID})
	})
}
