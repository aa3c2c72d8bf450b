package wire

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/keyward/keyward/internal/credential"
)

// Every JSON string a store could see, at any depth and as key or value,
// must be free of NUL: PostgreSQL refuses it (a 500) where SQLite keeps it.
func TestCheckJSONRefusesNUL(t *testing.T) {
	cases := []struct {
		name, body, param string
	}{
		{"a NUL in a top-level value", `{"name":"a\u0000b"}`, "name"},
		{"a NUL alone", `{"name":"\u0000"}`, "name"},
		{"a NUL in a nested value", `{"claims":{"k":{"deep":"x\u0000"}}}`, "claims"},
		{"a NUL in a nested key", `{"claims":{"k\u0000":1}}`, "claims"},
		{"a NUL in an array item", `{"privileges":[{"org_id":"\u0000"}]}`, "privileges"},
		{"a NUL after a clean key", `{"ok":"fine","name":"\u0000"}`, "name"},
		{"a NUL in a top-level key", `{"na\u0000me":"x"}`, ""},
		{"a NUL in a bare string", `"\u0000"`, ""},
		{"a NUL in a top-level array", `["ok","\u0000"]`, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := CheckJSON([]byte(tc.body))
			e := credential.AsError(err)
			if err == nil || e.Code != credential.CodeInvalid || e.Param != tc.param {
				t.Fatalf("CheckJSON(%s) = %v (param %q), want CodeInvalid naming %q", tc.body, err, e.Param, tc.param)
			}
			if _, err := ParseForm([]byte(tc.body)); err == nil {
				t.Fatalf("ParseForm(%s) accepted a NUL", tc.body)
			}
		})
	}
	for _, ok := range []string{`{"name":"a\\u0000b"}`, `{"name":"\u0001\u001f"}`, `{"name":"é\u00e9"}`, `{"n":0}`} {
		if err := CheckJSON([]byte(ok)); err != nil {
			t.Errorf("CheckJSON(%s) = %v, want accepted (no NUL once decoded)", ok, err)
		}
	}
}

func TestCheckValues(t *testing.T) {
	cases := []struct {
		name, query, param string
	}{
		{"accepts plain values", "query=50%25&name=a_b&x=%5C", ""},
		{"accepts an empty query", "", ""},
		{"refuses a NUL in a value", "query=a%00b", "query"},
		{"refuses a NUL in a repeated value", "subject=ok&subject=%00", "subject"},
		{"refuses invalid UTF-8 in a value", "query=%FF", "query"},
		{"refuses a NUL in a name", "a%00b=1", `a\0b`},
		{"names the first bad parameter in name order", "z=%00&a=%00", "a"},
		{"bounds a long bad name", strings.Repeat("n", 100) + "%00=1", strings.Repeat("n", 64) + "…"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			v, err := url.ParseQuery(tc.query)
			if err != nil {
				t.Fatal(err)
			}
			err = CheckValues(v)
			if tc.param == "" {
				if err != nil {
					t.Fatalf("CheckValues(%q) = %v", tc.query, err)
				}
				return
			}
			if e := credential.AsError(err); err == nil || e.Code != credential.CodeInvalid || e.Param != tc.param {
				t.Fatalf("CheckValues(%q) = %v, want CodeInvalid naming %q", tc.query, err, tc.param)
			}
		})
	}
}

func TestCheckRequest(t *testing.T) {
	cases := []struct {
		name, pattern, target string
		header                http.Header
		param                 string
	}{
		{"accepts clean path values and query", "GET /m/{machine_id}/s/{other}", "/m/mch_1/s/x?query=%25", nil, ""},
		{"refuses a NUL in a path value", "GET /m/{machine_id}", "/m/mch_%00", nil, "machine_id"},
		{"refuses invalid UTF-8 in a path value", "GET /m/{machine_id}", "/m/%FF", nil, "machine_id"},
		{"refuses a NUL in a later path value", "GET /m/{a}/s/{b}", "/m/ok/s/%00", nil, "b"},
		{"refuses a NUL in a rest wildcard", "GET /f/{path...}", "/f/a/%00", nil, "path"},
		{"refuses a NUL in the query", "GET /m", "/m?query=%00", nil, "query"},
		{"refuses invalid UTF-8 in X-User-ID", "GET /m", "/m", http.Header{"X-User-Id": {"al\xffice"}}, "X-User-ID"},
		{"refuses a NUL in X-User-ID", "GET /m", "/m", http.Header{"X-User-Id": {"al\x00ice"}}, "X-User-ID"},
		{"accepts a plain X-User-ID", "GET /m", "/m", http.Header{"X-User-Id": {"alice"}}, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var got error
			mux := http.NewServeMux()
			mux.HandleFunc(tc.pattern, func(w http.ResponseWriter, r *http.Request) { got = CheckRequest(r) })
			req := httptest.NewRequest("GET", tc.target, nil)
			for k, v := range tc.header {
				req.Header[k] = v
			}
			rec := httptest.NewRecorder()
			mux.ServeHTTP(rec, req)
			if rec.Code != http.StatusOK {
				t.Fatalf("the pattern did not match: %d", rec.Code)
			}
			if tc.param == "" {
				if got != nil {
					t.Fatalf("CheckRequest = %v", got)
				}
				return
			}
			if e := credential.AsError(got); got == nil || e.Code != credential.CodeInvalid || e.Param != tc.param {
				t.Fatalf("CheckRequest = %v, want CodeInvalid naming %q", got, tc.param)
			}
		})
	}
}
