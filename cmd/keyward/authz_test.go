package main

import (
	"encoding/json"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
)

// The flags reach the endpoint: bound by default to the instance created at
// first start, reading the credential from --authz-header.
func TestServeBindsForwardAuthToTheFirstInstanceAndTheConfiguredHeader(t *testing.T) {
	url, stderr := startServe(t, "--data-dir", filepath.Join(t.TempDir(), "data"), "--authz-header", "X-Api-Key")
	m := adminKeyLine.FindStringSubmatch(stderr.String())
	if m == nil {
		t.Fatalf("no admin key printed:\n%s", stderr)
	}
	post := func(key, path, body string) map[string]any {
		t.Helper()
		req, _ := http.NewRequest("POST", url+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+key)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode >= 300 {
			t.Fatalf("POST %s: %d %v", path, resp.StatusCode, err)
		}
		return out
	}
	target := post(m[1], "/clerk/v1/machines", `{"name":"target"}`)["id"].(string)
	caller := post(m[1], "/clerk/v1/machines", `{"name":"caller","scoped_machines":["`+target+`"]}`)
	token := post(caller["secret_key"].(string), "/clerk/v1/m2m_tokens", `{}`)["token"].(string)
	for _, tc := range []struct {
		header, value string
		status        int
	}{{"X-Api-Key", token, 200}, {"Authorization", "Bearer " + token, 401}} {
		req, _ := http.NewRequest("GET", url+"/v1/authz", nil)
		req.Header.Set(tc.header, tc.value)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.status || (tc.status == 200 && resp.Header.Get("X-Keyward-Subject") != caller["id"]) {
			t.Errorf("token in %s: %d %v, want %d", tc.header, resp.StatusCode, resp.Header, tc.status)
		}
	}
}
