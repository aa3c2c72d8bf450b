package logging

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
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
