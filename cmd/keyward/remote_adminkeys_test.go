package main

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestRemoteAdminKeysCreateListGetRevoke(t *testing.T) {
	e := startRemote(t)
	r := e.ok("admin-keys", "create", "--name", "protected-api", "--permission", "verify", "-o", "json")
	var k struct {
		ID          string   `json:"id"`
		Secret      string   `json:"secret"`
		Permissions []string `json:"permissions"`
	}
	if err := json.Unmarshal([]byte(r.out), &k); err != nil || !strings.HasPrefix(k.Secret, "sk_live_") || len(k.Permissions) != 1 || k.Permissions[0] != "verify" {
		t.Fatalf("admin-keys create -o json printed %s (%v)", r.out, err)
	}
	e.env.Remember(k.Secret)

	table := e.ok("admin-keys", "create", "--name", "ci", "--permission", "machines:read", "--expires-at", "2099-01-01T00:00:00Z")
	if !strings.Contains(table.out, "machines:read") || !strings.Contains(table.out, "2099-01-01T00:00:00Z") || !strings.Contains(table.out, "admin key: sk_live_") {
		t.Fatalf("admin-keys create printed:\n%s", table.out)
	}

	for _, args := range [][]string{{"admin-keys", "list"}, {"admin-keys", "get", k.ID}} {
		out := e.ok(args...).out
		if !strings.Contains(out, k.ID) || !strings.Contains(out, "verify") || strings.Contains(out, k.Secret) {
			t.Errorf("%v printed:\n%s", args, out)
		}
	}

	// The verify key can create no key: 403 is exit 4, and it is named.
	over := runCLI(t, "admin-keys", "create", "--name", "x", "--permission", "*", "--server", e.env.URL, "--admin-key", k.Secret)
	if over.code != exitUnauthorized || !strings.Contains(over.all(), "admin_keys:write") || strings.Contains(over.all(), k.Secret) {
		t.Errorf("create with a verify key: exit %d:\n%s", over.code, over.all())
	}
	if r := e.run("admin-keys", "create", "--name", "x", "--permission", "machines:admin"); r.code != exitUsage || !strings.Contains(r.all(), "permissions") {
		t.Errorf("an unknown permission: exit %d:\n%s", r.code, r.all())
	}

	if out := e.ok("admin-keys", "revoke", k.ID).out; !strings.Contains(out, "revoked") {
		t.Errorf("revoke printed:\n%s", out)
	}
	if r := runCLI(t, "whoami", "--server", e.env.URL, "--admin-key", k.Secret); r.code != exitUnauthorized {
		t.Errorf("a revoked key: exit %d, want %d", r.code, exitUnauthorized)
	}
}
