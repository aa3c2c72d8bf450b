package httpapi_test

import (
	"bufio"
	"encoding/json"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/keyward/keyward/internal/httpapi"
	"github.com/keyward/keyward/internal/httpapi/apitest"
	"github.com/keyward/keyward/internal/sqlstore"
	"github.com/keyward/keyward/internal/testkit"
)

// readsNoInput are the routes that read nothing from the request, so have
// nothing to refuse.
var readsNoInput = map[string]bool{
	"GET /healthz": true, "GET /readyz": true, "GET /openapi.json": true,
	"GET /.well-known/jwks.json": true, "GET /metrics": true,
}

// envelopeKeys are the top-level keys of each surface's error body.
func envelopeKeys(path string) []string {
	switch {
	case strings.HasPrefix(path, "/clerk/"):
		return []string{"errors"}
	case strings.HasPrefix(path, "/mist/"):
		return []string{"detail"}
	case strings.HasPrefix(path, "/spatio/"):
		return []string{"error", "code"}
	case strings.HasPrefix(path, "/freezer/identity/"):
		return []string{"error"} // Keystone's {"error":{"code","title","message"}}
	case strings.HasPrefix(path, "/freezer/"):
		return []string{"title", "description"}
	}
	return []string{"error", "request_id"}
}

// namesParam reports whether an error body names param: as Clerk's
// param_name or the native param, or as "param: …" in a message.
func namesParam(body []byte, param string) bool {
	var v any
	if json.Unmarshal(body, &v) != nil {
		return false
	}
	var walk func(any) bool
	walk = func(v any) bool {
		switch v := v.(type) {
		case string:
			return v == param || strings.HasPrefix(v, param+": ")
		case []any:
			for _, x := range v {
				if walk(x) {
					return true
				}
			}
		case map[string]any:
			for _, x := range v {
				if walk(x) {
					return true
				}
			}
		}
		return false
	}
	return walk(v)
}

// TestEveryRouteRefusesNULAndBadUTF8InQueryAndPath enumerates every
// registered route: a NUL or invalid UTF-8 in any query parameter or path
// value is a 400/422 in the surface's envelope naming the parameter, on
// both stores (PostgreSQL answered 500 when it reached SQL), whoever calls.
func TestEveryRouteRefusesNULAndBadUTF8InQueryAndPath(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, store *sqlstore.Store) {
		e := apitest.Start(t, store)
		check := func(t *testing.T, method, path, param string) {
			t.Helper()
			for _, key := range []string{e.AdminKey, ""} {
				resp := e.DoWith(t, method, path, nil, http.Header{"Authorization": {"Bearer " + key}, "X-User-Id": {"alice"}})
				if resp.Status != http.StatusBadRequest && resp.Status != http.StatusUnprocessableEntity {
					t.Fatalf("%s %s: %d %s, want 400 or 422", method, path, resp.Status, resp.Body)
				}
				var body map[string]any
				if err := json.Unmarshal(resp.Body, &body); err != nil {
					t.Fatalf("%s %s: not JSON: %s", method, path, resp.Body)
				}
				for _, k := range envelopeKeys(path) {
					if _, ok := body[k]; !ok {
						t.Fatalf("%s %s: %s is not the surface's envelope (no %q)", method, path, resp.Body, k)
					}
				}
				if !namesParam(resp.Body, param) {
					t.Fatalf("%s %s: %s does not name %q", method, path, resp.Body, param)
				}
			}
		}
		routes := 0
		for _, pattern := range httpapi.Routes() {
			method, path, ok := strings.Cut(pattern, " ")
			if !ok || readsNoInput[pattern] {
				continue // a bare path is a catch-all answering 404
			}
			routes++
			wildcards := placeholders(path)
			fill := func(bad string) string {
				p := strings.ReplaceAll(path, "{$}", "") // "/x/{$}" is "/x/" exactly
				for _, name := range wildcards {
					v := "x"
					if name == bad {
						v = "a%00b"
					}
					p = strings.Replace(p, "{"+name+"}", v, 1)
				}
				return p
			}
			t.Run(pattern, func(t *testing.T) {
				check(t, method, fill("")+"?probe=a%00b", "probe")
				check(t, method, fill("")+"?probe=%FF", "probe")
				for _, name := range wildcards {
					check(t, method, fill(name), name)
				}
			})
		}
		t.Logf("%d routes checked", routes)
	})
}

func TestNativeRefusesNULInJSONAndWritesNothing(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, store *sqlstore.Store) {
		e := startWorkspaces(t, store)
		for _, tc := range []struct {
			name, method, path, body, param string
		}{
			{"an organization name", "POST", "/v1/organizations", `{"slug":"nul","name":"a\u0000b"}`, "name"},
			{"an organization slug", "POST", "/v1/organizations", `{"slug":"\u0000","name":"x"}`, "slug"},
			{"a rename", "PATCH", "/v1/organizations/acme", `{"name":"\u0000"}`, "name"},
			{"a site name", "POST", "/v1/organizations/acme/sites", `{"name":"a\u0000"}`, "name"},
			{"a sitegroup's sites", "POST", "/v1/organizations/acme/sitegroups", `{"name":"g","site_ids":["\u0000"]}`, "site_ids"},
			{"a workspace name", "POST", "/v1/organizations/acme/workspaces", `{"slug":"w","name":"\u0000"}`, "name"},
			{"the redirect URL", "PATCH", "/v1/instance", `{"impersonation_redirect_url":"https://a/\u0000"}`, "impersonation_redirect_url"},
			{"a token to verify", "POST", "/v1/verify", `{"token":"sk_\u0000"}`, "token"},
			{"a required privilege", "POST", "/v1/verify", `{"token":"x","required_privilege":{"scope":"site","role":"admin","site_id":"\u0000"}}`, "required_privilege"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				before := e.Do(t, "GET", "/v1/audit_events", e.AdminKey, nil)
				resp := e.Do(t, tc.method, tc.path, e.AdminKey, tc.body)
				if resp.Status != http.StatusBadRequest || !namesParam(resp.Body, tc.param) {
					t.Fatalf("%d %s, want 400 naming %s", resp.Status, resp.Body, tc.param)
				}
				if after := e.Do(t, "GET", "/v1/audit_events", e.AdminKey, nil); after.JSON(t)["total_count"] != before.JSON(t)["total_count"] {
					t.Fatalf("a refused request was audited as a change: %s", after.Body)
				}
			})
		}
		if got := e.call(t, "GET", "/v1/organizations", nil, http.StatusOK)["total_count"]; got != float64(2) {
			t.Fatalf("organizations after refused creates: %v, want 2", got)
		}
		// Form bodies of the OAuth endpoints are checked as query strings are.
		for _, path := range []string{"/oauth/token", "/v1/tickets/accept", "/oauth/introspect"} {
			form := url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:token-exchange"}, "subject_token": {"a\x00b"}, "ticket": {"a\x00b"}, "token": {"a\x00b"}}
			resp := e.DoWith(t, "POST", path, form.Encode(), http.Header{"Content-Type": {"application/x-www-form-urlencoded"}, "Authorization": {"Bearer " + e.AdminKey}})
			if resp.Status != http.StatusBadRequest || resp.JSON(t)["error"] != "invalid_request" {
				t.Fatalf("%s with a NUL in its form: %d %s, want 400 invalid_request", path, resp.Status, resp.Body)
			}
		}
	})
}

// TestXUserIDMustBeText: the header Freezer and Spatio pass on as the
// acting user. Invalid UTF-8 reaches the handler and is refused there; a
// NUL never gets past Go's HTTP server, whose 400 this pins.
func TestXUserIDMustBeText(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, store *sqlstore.Store) {
		e := apitest.Start(t, store)
		for path, keys := range map[string][]string{"/freezer/v1/clients": {"title", "description"}, "/spatio/v1/tokens": {"error", "code"}} {
			resp := e.DoWith(t, "GET", path, nil, http.Header{"Authorization": {"Bearer " + e.AdminKey}, "X-User-Id": {"al\xffice"}})
			if resp.Status != http.StatusBadRequest || !namesParam(resp.Body, "X-User-ID") || resp.JSON(t)[keys[0]] == nil {
				t.Fatalf("%s with X-User-ID not UTF-8: %d %s, want 400 naming X-User-ID", path, resp.Status, resp.Body)
			}
			twice := e.DoWith(t, "GET", path, nil, http.Header{"Authorization": {"Bearer " + e.AdminKey}, "X-User-Id": {"victim", "alice"}})
			if twice.Status != http.StatusBadRequest || !namesParam(twice.Body, "X-User-ID") {
				t.Fatalf("%s with two X-User-ID headers: %d %s, want 400 naming X-User-ID", path, twice.Status, twice.Body)
			}
			if ok := e.DoWith(t, "GET", path, nil, http.Header{"Authorization": {"Bearer " + e.AdminKey}, "X-User-Id": {"alice"}}); ok.Status != http.StatusOK {
				t.Fatalf("%s as alice: %d %s", path, ok.Status, ok.Body)
			}

			conn, err := net.Dial("tcp", strings.TrimPrefix(e.URL, "http://"))
			if err != nil {
				t.Fatal(err)
			}
			_, err = conn.Write([]byte("GET " + path + " HTTP/1.1\r\nHost: keyward\r\nAuthorization: Bearer " + e.AdminKey + "\r\nX-User-ID: al\x00ice\r\nConnection: close\r\n\r\n"))
			if err != nil {
				t.Fatal(err)
			}
			raw, err := http.ReadResponse(bufio.NewReader(conn), nil)
			if err != nil {
				t.Fatal(err)
			}
			raw.Body.Close()
			conn.Close()
			if raw.StatusCode != http.StatusBadRequest {
				t.Fatalf("%s with a NUL in X-User-ID: %d, want the server's 400", path, raw.StatusCode)
			}
		}
	})
}
