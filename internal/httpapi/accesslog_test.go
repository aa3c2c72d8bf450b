package httpapi_test

import (
	"bytes"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"regexp"
	"strings"
	"testing"

	"github.com/keyward/keyward/internal/httpapi"
	"github.com/keyward/keyward/internal/httpapi/apitest"
	"github.com/keyward/keyward/internal/logging"
	"github.com/keyward/keyward/internal/metrics"
	"github.com/keyward/keyward/internal/testkit"
)

// TestAccessLogLineCarriesEveryFieldAndNoSecret checks the text access log
// keyward serve writes by default: one line per request with its id,
// method, route pattern, path (never the query), status and duration, and
// neither the bearer nor the token verified.
func TestAccessLogLineCarriesEveryFieldAndNoSecret(t *testing.T) {
	e := apitest.Start(t, testkit.OpenSQLite(t))
	var logs bytes.Buffer
	log, err := logging.New(&logs, "text", slog.LevelInfo)
	if err != nil {
		t.Fatal(err)
	}
	h := httpapi.New(httpapi.Config{Authority: e.Auth, Logger: log})
	const token = "kw_m2m_notarealtoken"
	req := httptest.NewRequest("POST", "/v1/verify?ticket=tkt_secret", strings.NewReader(`{"token":"`+token+`"}`))
	req.Header.Set("Authorization", "Bearer "+e.AdminKey)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	io.Copy(io.Discard, rec.Body)
	if rec.Code != http.StatusOK {
		t.Fatalf("verify: %d %s", rec.Code, rec.Body)
	}
	line := logs.String()
	for _, want := range []string{"level=INFO", "msg=request", "request_id=" + rec.Header().Get("X-Request-Id") + " ",
		"method=POST", `route="POST /v1/verify"`, "path=/v1/verify ", "status=200", "duration_ms="} {
		if !strings.Contains(line, want) {
			t.Errorf("access log line lacks %q: %s", want, line)
		}
	}
	for _, secret := range []string{e.AdminKey, token, "tkt_secret"} {
		if strings.Contains(line, secret) {
			t.Errorf("access log carries %q: %s", secret, line)
		}
	}
	if strings.Count(line, "\n") != 1 {
		t.Errorf("want one line per request: %q", line)
	}
}

// accessLogged serves one request through a handler logging text at level
// and returns the response and what was logged.
func accessLogged(t *testing.T, h func(*slog.Logger) http.Handler, level slog.Level, req *http.Request) (*httptest.ResponseRecorder, string) {
	t.Helper()
	var logs bytes.Buffer
	log, err := logging.New(&logs, "text", level)
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	h(log).ServeHTTP(rec, req)
	return rec, logs.String()
}

// The line names who called (the admin key's id, never the key) and from
// where (the TCP peer: X-Forwarded-For only counts from a trusted proxy).
func TestAccessLogNamesTheCallerCredentialAndAddress(t *testing.T) {
	e := apitest.Start(t, testkit.OpenSQLite(t))
	caller := e.Do(t, "GET", "/v1/caller", e.AdminKey, nil).JSON(t)
	keyID, _ := caller["credential_id"].(string)
	if keyID == "" {
		t.Fatalf("GET /v1/caller names no credential: %v", caller)
	}
	for _, tc := range []struct {
		name    string
		trusted []netip.Prefix
		wantIP  string
	}{
		{"the peer when no proxy is trusted", nil, "client_ip=198.51.100.9 "},
		{"the forwarded client behind a trusted proxy", []netip.Prefix{netip.MustParsePrefix("198.51.100.0/24")}, "client_ip=203.0.113.50 "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest("GET", "/v1/caller", nil)
			req.RemoteAddr = "198.51.100.9:4711"
			req.Header.Set("Authorization", "Bearer "+e.AdminKey)
			req.Header.Set("X-Forwarded-For", "203.0.113.50")
			rec, line := accessLogged(t, func(log *slog.Logger) http.Handler {
				return httpapi.New(httpapi.Config{Authority: e.Auth, Logger: log, TrustedProxies: tc.trusted})
			}, slog.LevelInfo, req)
			if rec.Code != http.StatusOK {
				t.Fatalf("GET /v1/caller: %d %s", rec.Code, rec.Body)
			}
			for _, want := range []string{tc.wantIP, "credential_id=" + keyID} {
				if !strings.Contains(line, want) {
					t.Errorf("access log line lacks %q: %s", want, line)
				}
			}
			if strings.Contains(line, e.AdminKey) || strings.Contains(line, "trace_id=") {
				t.Errorf("access log line carries the key or a trace id with tracing off: %s", line)
			}
			if !regexp.MustCompile(` duration_ms=[0-9.e+-]+( |$)`).MatchString(line) {
				t.Errorf("duration_ms is not a number: %s", line)
			}
		})
	}
	t.Run("no credential id when none authenticated", func(t *testing.T) {
		req := httptest.NewRequest("GET", "/v1/caller", nil)
		req.Header.Set("Authorization", "Bearer kw_admin_wrong")
		_, line := accessLogged(t, func(log *slog.Logger) http.Handler {
			return httpapi.New(httpapi.Config{Authority: e.Auth, Logger: log})
		}, slog.LevelInfo, req)
		if !strings.Contains(line, "status=401") || strings.Contains(line, "credential_id=") {
			t.Errorf("a refused request's line: %s", line)
		}
	})
}

func TestRequestIDIsTheClientsWhenSaneAndEchoed(t *testing.T) {
	e := apitest.Start(t, testkit.OpenSQLite(t))
	for _, tc := range []struct {
		name     string
		incoming []string
		kept     bool
	}{
		{"a uuid is kept", []string{"3f2b8c1e-9d4a-4e7b-8a6c-1f0e2d3c4b5a"}, true},
		{"token characters are kept", []string{"edge.01_~!#$%&'*+-.^`|"}, true},
		{"the longest allowed is kept", []string{strings.Repeat("a", 128)}, true},
		{"too long is replaced", []string{strings.Repeat("a", 129)}, false},
		{"a space is replaced", []string{"a b"}, false},
		{"a quote is replaced", []string{`a"b`}, false},
		{"a control character is replaced", []string{"a\x01b"}, false},
		{"non-ASCII is replaced", []string{"é"}, false},
		{"two header lines are replaced", []string{"a", "b"}, false},
		{"none gets one", nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest("GET", "/healthz", nil)
			req.Header["X-Request-Id"] = tc.incoming
			rec, line := accessLogged(t, func(log *slog.Logger) http.Handler {
				return httpapi.New(httpapi.Config{Authority: e.Auth, Logger: log})
			}, slog.LevelDebug, req)
			got := rec.Header().Get("X-Request-Id")
			if tc.kept && got != tc.incoming[0] {
				t.Fatalf("X-Request-Id %q answered as %q", tc.incoming[0], got)
			}
			if !tc.kept && !strings.HasPrefix(got, "req_") {
				t.Fatalf("X-Request-Id %q answered as %q, want a new req_ id", tc.incoming, got)
			}
			if !strings.Contains(line, "request_id="+got+" ") {
				t.Errorf("the access log does not carry request id %q: %s", got, line)
			}
		})
	}
}

// Probes and scrapes are polled every few seconds: logged at debug only.
func TestProbesAreLoggedAtDebugOnly(t *testing.T) {
	e := apitest.Start(t, testkit.OpenSQLite(t))
	m := metrics.New()
	for _, path := range []string{"/healthz", "/readyz", "/metrics"} {
		for _, level := range []slog.Level{slog.LevelInfo, slog.LevelDebug} {
			_, line := accessLogged(t, func(log *slog.Logger) http.Handler {
				return httpapi.New(httpapi.Config{Authority: e.Auth, Logger: log, Metrics: m})
			}, level, httptest.NewRequest("GET", path, nil))
			if logged := strings.Contains(line, "path="+path); logged != (level == slog.LevelDebug) {
				t.Errorf("GET %s at level %s: logged %v: %q", path, level, logged, line)
			}
		}
	}
	_, line := accessLogged(t, func(log *slog.Logger) http.Handler {
		return httpapi.New(httpapi.Config{Authority: e.Auth, Logger: log})
	}, slog.LevelInfo, httptest.NewRequest("GET", "/openapi.json", nil))
	if !strings.Contains(line, "path=/openapi.json") {
		t.Errorf("an ordinary request was not logged at info: %q", line)
	}
}
