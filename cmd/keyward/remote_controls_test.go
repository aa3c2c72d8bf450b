package main

import (
	"strings"
	"testing"
)

func TestRemoteControlsRolesCreditsAndIdentities(t *testing.T) {
	e := startRemote(t)
	e.ok("roles", "create", "reader", "--permission", "docs.read")
	if out := e.ok("roles", "list").out; !strings.Contains(out, "reader") || !strings.Contains(out, "docs.read") {
		t.Fatalf("roles list:\n%s", out)
	}
	ident := e.okJSON("identities", "create", "acme", "--credits", "5")
	idID, _ := ident["id"].(string)
	k := e.env.Do(t, "POST", "/v1/api_keys", e.env.AdminKey, map[string]any{"name": "cli key", "subject": "user_2xhFjEI5X2qWRvtV13BzSj8H6Dk"}).JSON(t)
	id, secret := k["id"].(string), k["secret"].(string)
	e.env.Remember(secret)
	ctl := e.okJSON("controls", "set", id, "--role", "reader", "--permission", "docs.write", "--credits", "2", "--identity", idID, "--meta", `{"plan":"pro"}`)
	if ctl["identity_id"] != idID || ctl["credits"].(map[string]any)["remaining"] != float64(2) {
		t.Fatalf("controls set: %v", ctl)
	}
	if out := e.ok("controls", "get", id).out; !strings.Contains(out, "docs.write") || !strings.Contains(out, idID) {
		t.Fatalf("controls get:\n%s", out)
	}
	if out := e.ok("verify", secret, "--permissions", "docs.read AND docs.write", "--credits", "1").out; !strings.Contains(out, "valid") {
		t.Fatalf("verify:\n%s", out)
	}
	if r := e.run("verify", secret, "--permissions", "admin"); r.code != exitNotValid || !strings.Contains(r.all(), "insufficient_permissions") {
		t.Fatalf("verify without the permission: exit %d\n%s", r.code, r.all())
	}
	if out := e.ok("credits", "increment", id, "10").out; !strings.Contains(out, "11") {
		t.Fatalf("credits increment:\n%s", out)
	}
	if r := e.run("credits", "set", id, "many"); r.code != exitUsage {
		t.Fatalf("credits set many: exit %d", r.code)
	}
	if out := e.ok("identities", "credentials", idID).out; !strings.Contains(out, id) {
		t.Fatalf("identity credentials:\n%s", out)
	}
	if out := e.ok("identities", "credentials", idID, "--meta", "plan=pro").out; !strings.Contains(out, id) {
		t.Fatalf("identity credentials --meta plan=pro:\n%s", out)
	}
	if out := e.ok("identities", "credentials", idID, "--meta", "plan=free").out; strings.Contains(out, id) {
		t.Fatalf("identity credentials --meta plan=free:\n%s", out)
	}
	if r := e.run("identities", "credentials", idID, "--meta", "plan"); r.code != exitUsage {
		t.Fatalf("--meta plan: exit %d\n%s", r.code, r.all())
	}
	if r := e.run("analytics", "verifications", "--identity", idID); r.code != 0 || !strings.Contains(r.all(), "OUTCOME") {
		t.Fatalf("analytics verifications --identity: exit %d\n%s", r.code, r.all())
	}
	if r := e.run("analytics", "verifications", "--identity", idID, "--credential", id); r.code != exitUsage || !strings.Contains(r.all(), "identity") {
		t.Fatalf("--identity with --credential: exit %d\n%s", r.code, r.all())
	}
	if d := e.okJSON("identities", "delete", idID); d["revoked_credentials"] != float64(1) {
		t.Fatalf("identities delete: %v", d)
	}
	e.ok("roles", "delete", "reader")
}
