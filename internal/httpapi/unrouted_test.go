package httpapi_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/keyward/keyward/internal/httpapi/apitest"
	"github.com/keyward/keyward/internal/testkit"
)

// TestUnroutedRequestsAnswerInTheSurfacesEnvelope: an unknown path is a
// JSON 404 and a wrong method a JSON 405 with Allow, in the envelope of
// the surface the path is under (the native one elsewhere), never Go's
// plain-text answers.
func TestUnroutedRequestsAnswerInTheSurfacesEnvelope(t *testing.T) {
	e := apitest.Start(t, testkit.OpenSQLite(t))
	for _, tc := range []struct {
		name, method, path string
		status             int
		allow              string
		envelope           string // a top-level key of the surface's error body
	}{
		{"the root", "GET", "/", 404, "", "error"},
		{"an unknown version", "GET", "/v2/foo", 404, "", "error"},
		{"metrics when none are kept", "GET", "/metrics", 404, "", "error"},
		{"an unknown native path", "GET", "/v1/nothing", 404, "", "error"},
		{"a wrong method on verify", "DELETE", "/v1/verify", 405, "POST", "error"},
		{"a wrong method on a public route", "POST", "/healthz", 405, "GET, HEAD", "error"},
		{"an unknown Clerk path", "GET", "/clerk/v1/nothing", 404, "", "errors"},
		{"a wrong method on Clerk", "PUT", "/clerk/v1/machines", 405, "GET, HEAD, POST", "errors"},
		{"a wrong method on Clerk unversioned", "DELETE", "/clerk/m2m_tokens", 405, "GET, HEAD, POST", "errors"},
		{"an unknown Mist path", "GET", "/mist/nothing", 404, "", "detail"},
		{"a wrong method on Spatio", "PUT", "/spatio/v1/tokens", 405, "GET, HEAD, POST", "error"},
		{"an unknown Spatio path", "GET", "/spatio/v1/nothing", 404, "", "error"},
		{"a wrong method on Freezer", "PATCH", "/freezer/v1/clients", 405, "GET, HEAD, POST", "title"},
		{"an unknown Freezer path", "GET", "/freezer/v1/nothing", 404, "", "title"},
		{"a wrong method on Keystone", "DELETE", "/freezer/identity/v3/auth/tokens", 405, "POST", "error"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := e.Do(t, tc.method, tc.path, e.AdminKey, nil)
			if resp.Status != tc.status {
				t.Fatalf("%s %s: %d %s, want %d", tc.method, tc.path, resp.Status, resp.Body, tc.status)
			}
			if got := resp.Header.Get("Allow"); got != tc.allow {
				t.Errorf("Allow = %q, want %q", got, tc.allow)
			}
			if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
				t.Errorf("Content-Type = %q, want JSON", ct)
			}
			var body map[string]json.RawMessage
			if err := json.Unmarshal(resp.Body, &body); err != nil || body[tc.envelope] == nil {
				t.Errorf("body %s is not the surface's envelope (want key %q)", resp.Body, tc.envelope)
			}
		})
	}
}
