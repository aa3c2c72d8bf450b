package logging

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"
)

func TestNewRedactsCredentialAttributes(t *testing.T) {
	for _, format := range []string{"text", "json"} {
		t.Run(format, func(t *testing.T) {
			var buf bytes.Buffer
			log, err := New(&buf, format, slog.LevelDebug)
			if err != nil {
				t.Fatal(err)
			}
			const secret = "sk_live_do-not-print-me"
			log.Info("x", "Authorization", "Bearer "+secret, "token", secret,
				slog.Group("req", "secret_key", secret, "api_key", secret), "route", "/ok")
			out := buf.String()
			if strings.Contains(out, secret) {
				t.Fatalf("secret in log output: %s", out)
			}
			if !strings.Contains(out, "/ok") {
				t.Fatalf("non-sensitive attribute lost: %s", out)
			}
		})
	}
}

func TestNewRejectsUnknownFormat(t *testing.T) {
	if _, err := New(&bytes.Buffer{}, "xml", slog.LevelInfo); err == nil {
		t.Fatal("want an error for an unknown format")
	}
}

func TestPlainKeysAreNotSensitive(t *testing.T) {
	for key := range plainKeys {
		for _, s := range sensitive {
			if strings.Contains(strings.ToLower(key), s) {
				t.Errorf("%q skips redaction but contains %q", key, s)
			}
		}
	}
}

func TestBufferedWritesWholeLinesInOrderOnFlush(t *testing.T) {
	var out bytes.Buffer
	b := NewBuffered(&out)
	log, err := New(b, "text", slog.LevelInfo)
	if err != nil {
		t.Fatal(err)
	}
	// Access-log lines ("request") wait for the batch.
	log.Info("request", "token", "sk_live_secret", "n", "first")
	log.Info("request", "n", "second")
	if out.Len() != 0 {
		t.Fatalf("written before a flush: %q", out.String())
	}
	if err := b.Flush(); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], "n=first") || !strings.Contains(lines[1], "n=second") {
		t.Fatalf("flushed %q", out.String())
	}
	if strings.Contains(out.String(), "sk_live_secret") {
		t.Fatalf("secret in buffered output: %s", out.String())
	}
}

func TestBufferedWritesAFullBufferWithoutAFlush(t *testing.T) {
	var out bytes.Buffer
	b := NewBuffered(&out)
	line := []byte(strings.Repeat("x", 1023) + "\n")
	for range DefaultBufferBytes/len(line) + 1 {
		if _, err := b.Write(line); err != nil {
			t.Fatal(err)
		}
	}
	if out.Len() != DefaultBufferBytes {
		t.Fatalf("%d bytes written once the buffer filled, want %d", out.Len(), DefaultBufferBytes)
	}
	b.Flush()
	if out.Len() != DefaultBufferBytes+len(line) {
		t.Fatalf("%d bytes after the flush", out.Len())
	}
}

func TestBufferedRunFlushesWhenStopped(t *testing.T) {
	var out bytes.Buffer
	b := NewBuffered(&out)
	b.Write([]byte("last words\n"))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	b.Run(ctx, time.Hour)
	if out.String() != "last words\n" {
		t.Fatalf("after Run stopped: %q", out.String())
	}
}
