package httpapi_test

import (
	"bytes"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/keyward/keyward/internal/httpapi"
	"github.com/keyward/keyward/internal/httpapi/apitest"
	"github.com/keyward/keyward/internal/logging"
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
