package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/keyward/keyward/internal/authority"
	"github.com/keyward/keyward/internal/httpapi"
	"github.com/keyward/keyward/internal/inmem"
	"github.com/keyward/keyward/internal/keyring"
	"github.com/keyward/keyward/internal/logging"
	"github.com/keyward/keyward/internal/metrics"
	"github.com/keyward/keyward/internal/testkit"
)

// servedHandlerWith is the handler keyward serve runs (metrics, info-level
// text access log), over SQLite, with an admin key; the verification
// counts are off (serve --analytics=false) when noAnalytics is set.
func servedHandlerWith(b *testing.B, noAnalytics bool) (http.Handler, string) {
	b.Helper()
	keys, err := keyring.New(bytes.Repeat([]byte{7}, keyring.MasterKeySize))
	if err != nil {
		b.Fatal(err)
	}
	store := testkit.OpenSQLite(b)
	m := metrics.New()
	auth := authority.New(authority.Config{Store: m.Store(store), Observer: m, Keyring: keys, Clock: testkit.NewClock(), Limiter: inmem.NewLimiter(), NoAnalytics: noAnalytics})
	_, key, err := auth.CreateInstance(context.Background(), "bench")
	if err != nil {
		b.Fatal(err)
	}
	log, err := logging.New(io.Discard, "text", slog.LevelInfo)
	if err != nil {
		b.Fatal(err)
	}
	return httpapi.New(httpapi.Config{Authority: auth, Logger: log, Metrics: m}), key.Reveal()
}

// call runs one request through h and decodes its JSON answer into out.
func call(b *testing.B, h http.Handler, method, path, bearer, body string, out any) {
	b.Helper()
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+bearer)
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code/100 != 2 {
		b.Fatalf("%s %s: %d %s", method, path, rec.Code, rec.Body)
	}
	if err := json.Unmarshal(rec.Body.Bytes(), out); err != nil {
		b.Fatal(err)
	}
}

// discardWriter is a ResponseWriter that keeps nothing but its header map,
// cleared between requests, so the benchmark counts the handler's
// allocations and not a recorder's.
type discardWriter struct {
	header http.Header
	status int
	body   int
}

func (d *discardWriter) Header() http.Header { return d.header }
func (d *discardWriter) WriteHeader(code int) {
	if d.status == 0 {
		d.status = code
	}
}
func (d *discardWriter) Write(p []byte) (int, error) {
	if d.status == 0 {
		d.status = http.StatusOK
	}
	d.body += len(p)
	return len(p), nil
}

// rewindBody is a request body that can be read again without allocating.
type rewindBody struct{ bytes.Reader }

func (*rewindBody) Close() error { return nil }

// BenchmarkVerifyHandler pins what one POST /v1/verify costs through the
// whole served handler (middleware, access log, metrics, decoding, verify,
// encoding); run it with -benchmem and compare allocs/op.
func BenchmarkVerifyHandler(b *testing.B) { benchmarkVerifyHandler(b, false) }

// BenchmarkVerifyHandlerAnalyticsOff is BenchmarkVerifyHandler with the
// verification counts off: the ratio of the two is what counting costs.
func BenchmarkVerifyHandlerAnalyticsOff(b *testing.B) { benchmarkVerifyHandler(b, true) }

func benchmarkVerifyHandler(b *testing.B, noAnalytics bool) {
	h, admin := servedHandlerWith(b, noAnalytics)
	var machine struct {
		SecretKey string `json:"secret_key"`
	}
	call(b, h, "POST", "/clerk/v1/machines", admin, `{"name":"bench"}`, &machine)
	for _, format := range []string{"opaque", "jwt"} {
		var minted struct {
			Token string `json:"token"`
		}
		call(b, h, "POST", "/clerk/v1/m2m_tokens", machine.SecretKey, `{"seconds_until_expiration":86400,"token_format":"`+format+`"}`, &minted)
		payload := []byte(`{"token":"` + minted.Token + `"}`)
		b.Run(format, func(b *testing.B) {
			body := &rewindBody{}
			req := httptest.NewRequest("POST", "/v1/verify", body)
			req.ContentLength = int64(len(payload)) // as every real client sends it
			req.Header.Set("Authorization", "Bearer "+admin)
			req.Header.Set("Content-Type", "application/json")
			w := &discardWriter{header: http.Header{}}
			b.ReportAllocs()
			for b.Loop() {
				body.Reset(payload)
				clear(w.header)
				w.status, w.body = 0, 0
				h.ServeHTTP(w, req)
				if w.status != http.StatusOK || w.body == 0 {
					b.Fatalf("verify answered %d", w.status)
				}
			}
		})
	}
}
