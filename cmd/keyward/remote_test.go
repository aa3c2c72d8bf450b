package main

import (
	"bytes"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"github.com/keyward/keyward/internal/httpapi/apitest"
	"github.com/keyward/keyward/internal/testkit"
)

// cliRun is one in-process run of the CLI.
type cliRun struct {
	out, stderr string
	err         error
	code        int
}

// all is everything the run showed: stdout, stderr, and the error main
// would print.
func (r cliRun) all() string {
	s := r.out + r.stderr
	if r.err != nil {
		s += r.err.Error()
	}
	return s
}

// runCLI runs the CLI in-process, as main will: the root command with the
// remote commands added.
func runCLI(t *testing.T, args ...string) cliRun {
	t.Helper()
	var out, stderr bytes.Buffer
	root := newRootCommand(&out, &stderr)
	root.AddCommand(newRemoteCommands()...)
	root.SetArgs(args)
	root.SetIn(strings.NewReader(""))
	err := root.Execute()
	return cliRun{out: out.String(), stderr: stderr.String(), err: err, code: exitCode(err)}
}

// remoteEnv is a running server and the flags that reach it.
type remoteEnv struct {
	t   *testing.T
	env *apitest.Env
}

func startRemote(t *testing.T) *remoteEnv {
	t.Helper()
	for _, k := range []string{"KEYWARD_URL", "KEYWARD_ADMIN_KEY", "KEYWARD_ADMIN_KEY_FILE", "KEYWARD_MACHINE_KEY", "KEYWARD_MACHINE_KEY_FILE"} {
		t.Setenv(k, "")
		os.Unsetenv(k)
	}
	return &remoteEnv{t: t, env: apitest.Start(t, testkit.OpenSQLite(t))}
}

// run runs a remote command with --server and --admin-key.
func (e *remoteEnv) run(args ...string) cliRun {
	e.t.Helper()
	return runCLI(e.t, append(args, "--server", e.env.URL, "--admin-key", e.env.AdminKey)...)
}

// ok runs a command that must succeed, and checks that no admin key shows.
func (e *remoteEnv) ok(args ...string) cliRun {
	e.t.Helper()
	r := e.run(args...)
	if r.err != nil || r.code != 0 {
		e.t.Fatalf("keyward %s: exit %d: %v\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), r.code, r.err, r.out, r.stderr)
	}
	if strings.Contains(r.all(), e.env.AdminKey) {
		e.t.Fatalf("keyward %s printed the admin key", strings.Join(args, " "))
	}
	return r
}

// okJSON runs a command with -o json and decodes its output.
func (e *remoteEnv) okJSON(args ...string) map[string]any {
	e.t.Helper()
	r := e.ok(append(args, "-o", "json")...)
	return decodeObject(e.t, r.out)
}

func decodeObject(t *testing.T, s string) map[string]any {
	t.Helper()
	var v map[string]any
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		t.Fatalf("output is not a JSON object: %v\n%s", err, s)
	}
	return v
}

func str(t *testing.T, v map[string]any, key string) string {
	t.Helper()
	s, ok := v[key].(string)
	if !ok || s == "" {
		t.Fatalf("%q missing from %v", key, v)
	}
	return s
}

// TestRemoteDoneWhen is the path: create a machine, rotate its key,
// create a PAT, verify it, revoke it, verify again, and find it all in the
// audit log; every step's JSON parses.
func TestRemoteDoneWhen(t *testing.T) {
	e := startRemote(t)

	m := e.okJSON("machines", "create", "billing-api", "--ttl", "600")
	machineID, firstKey := str(t, m, "id"), str(t, m, "secret_key")
	if !strings.HasPrefix(machineID, "mch_") || !strings.HasPrefix(firstKey, "ak_") {
		t.Fatalf("machine create: %v", m)
	}

	rot := e.okJSON("machines", "rotate", machineID, "--previous-ttl", "0")
	if newKey := str(t, rot, "secret_key"); newKey == firstKey || !strings.HasPrefix(newKey, "ak_") {
		t.Fatalf("rotate did not hand out a new key: %v", rot)
	}

	e.okJSON("scopes", "set", "read", "write")
	pat := e.okJSON("pats", "create", "ci", "--user", "user_42", "--scope", "read")
	token := str(t, pat, "token")
	patID := str(t, pat, "id")

	v := e.okJSON("verify", token, "--scope", "read")
	if v["valid"] != true || v["code"] != "valid" || v["subject"] != "user_42" {
		t.Fatalf("verify: %v", v)
	}
	if r := e.ok("verify", token); !strings.Contains(r.out, "valid") {
		t.Fatalf("verify table does not say valid:\n%s", r.out)
	}

	e.okJSON("pats", "revoke", patID, "--user", "user_42")

	r := e.run("verify", token, "-o", "json")
	if r.code != exitNotValid {
		t.Fatalf("verify of a revoked PAT: exit %d (%v), want %d", r.code, r.err, exitNotValid)
	}
	if v := decodeObject(t, r.out); v["valid"] != false || v["code"] != "revoked" {
		t.Fatalf("verify of a revoked PAT: %v", v)
	}
	r = e.run("verify", token)
	if r.code != exitNotValid || !strings.Contains(r.out, "revoked") || !strings.Contains(r.err.Error(), "revoked") {
		t.Fatalf("verify table of a revoked PAT: exit %d, %v\n%s", r.code, r.err, r.out)
	}

	audit := e.okJSON("audit", "--limit", "100")
	want := map[string]string{"machine.create": machineID, "machine.secret_key.rotate": machineID, "pat.revoke": patID}
	for _, ev := range audit["data"].([]any) {
		ev := ev.(map[string]any)
		target, _ := ev["target"].(map[string]any)
		if id, ok := want[ev["action"].(string)]; ok && target["id"] == id {
			delete(want, ev["action"].(string))
		}
	}
	if len(want) > 0 {
		t.Fatalf("audit log lacks %v:\n%v", want, audit)
	}
	tab := e.ok("audit", "--target", machineID)
	for _, s := range []string{"AT", "ACTION", "machine.create", "machine.secret_key.rotate"} {
		if !strings.Contains(tab.out, s) {
			t.Fatalf("audit table lacks %q:\n%s", s, tab.out)
		}
	}
}

func TestRemoteErrorsHaveExitCodesAndHideKeys(t *testing.T) {
	e := startRemote(t)
	wrong := "sk_live_" + strings.Repeat("Z", 40)
	for _, args := range [][]string{
		{"whoami"},
		{"machines", "list"},
		{"org-tokens", "list", "--org", "00000000-0000-4000-8000-000000000000"},
		{"pats", "list", "--user", "u1"},
		{"clients", "list", "--user", "u1"},
	} {
		r := runCLI(t, append(args, "--server", e.env.URL, "--admin-key", wrong)...)
		if r.code != exitUnauthorized {
			t.Errorf("%v with a wrong admin key: exit %d (%v), want %d", args, r.code, r.err, exitUnauthorized)
		}
		if strings.Contains(r.all(), wrong) || strings.Contains(r.all(), e.env.AdminKey) {
			t.Errorf("%v printed a key:\n%s", args, r.all())
		}
	}

	for _, args := range [][]string{
		{"machines", "get", "mch_unknown"},
		{"orgs", "get", "nope"},
		{"m2m", "revoke", "mt_unknown"},
		{"clients", "get", "proj_nope", "--user", "u1"},
	} {
		if r := e.run(args...); r.code != exitNotFound {
			t.Errorf("%v: exit %d (%v), want %d", args, r.code, r.err, exitNotFound)
		}
	}

	e.ok("orgs", "create", "acme", "Acme")
	if r := e.run("orgs", "create", "acme", "Again"); r.code != exitConflict {
		t.Errorf("duplicate org: exit %d (%v), want %d", r.code, r.err, exitConflict)
	}

	for _, args := range [][]string{
		{"machines", "rotate", "mch_x"},    // --previous-ttl missing
		{"machines", "get"},                // argument missing
		{"machines", "bogus"},              // unknown subcommand
		{"machines", "list", "--nope"},     // unknown flag
		{"machines", "list", "-o", "yaml"}, // unknown output
		{"pats", "list"},                   // --user missing
		{"org-tokens", "create", "n", "--org", "acme", "--privilege", "scope=org"},
		{"m2m", "create"}, // no machine key
		{"m2m", "create", "--machine-key", "ak_x", "--claims", "[1]"},
	} {
		if r := e.run(args...); r.code != exitUsage {
			t.Errorf("%v: exit %d (%v), want %d", args, r.code, r.err, exitUsage)
		}
	}
	if r := runCLI(t, "whoami", "--server", e.env.URL); r.code != exitUsage {
		t.Errorf("whoami without a key: exit %d (%v)", r.code, r.err)
	}
	// A server that is not there is exit 1, and the key is not in the error.
	if r := runCLI(t, "whoami", "--server", "http://127.0.0.1:1", "--admin-key", wrong); r.code != exitFailure || strings.Contains(r.all(), wrong) {
		t.Errorf("unreachable server: exit %d (%v)", r.code, r.err)
	}

	for _, args := range [][]string{
		{"machines", "create", "--help"},
		{"m2m", "create", "--help"},
		{"org-tokens", "create", "--help"},
		{"verify", "--help"},
		{"audit", "--help"},
	} {
		r := runCLI(t, args...)
		if r.code != 0 || !strings.Contains(r.out, "Examples:") || !strings.Contains(r.out, "keyward ") {
			t.Errorf("%v shows no example (exit %d):\n%s", args, r.code, r.out)
		}
	}
}

// TestRemoteCommandsCoverTheSurfaces runs every command group once in each
// output format.
func TestRemoteCommandsCoverTheSurfaces(t *testing.T) {
	e := startRemote(t)

	// The admin key from a file.
	keyFile := filepath.Join(t.TempDir(), "admin.key")
	if err := os.WriteFile(keyFile, []byte(e.env.AdminKey+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("KEYWARD_ADMIN_KEY_FILE", keyFile)
	t.Setenv("KEYWARD_URL", e.env.URL)
	if r := runCLI(t, "whoami", "-o", "json"); r.code != 0 || decodeObject(t, r.out)["kind"] != "admin_key" {
		t.Fatalf("whoami from the environment: exit %d (%v)\n%s", r.code, r.err, r.out)
	}
	os.Unsetenv("KEYWARD_ADMIN_KEY_FILE")
	os.Unsetenv("KEYWARD_URL")

	// Machines, scopes between them, M2M tokens.
	api := str(t, e.okJSON("machines", "create", "api"), "id")
	worker := e.okJSON("machines", "create", "worker", "--scope", api)
	workerID := str(t, worker, "id")
	e.okJSON("machines", "list", "--query", "work")
	if r := e.ok("machines", "list"); !strings.Contains(r.out, "ID") || !strings.Contains(r.out, workerID) || strings.Contains(r.out, "ak_") {
		t.Fatalf("machines list table:\n%s", r.out)
	}
	e.okJSON("machines", "update", workerID, "--name", "invoices", "--ttl", "900")
	if r := e.ok("machines", "get", workerID); !strings.Contains(r.out, "invoices") || !strings.Contains(r.out, api) || strings.Contains(r.out, "ak_") {
		t.Fatalf("machines get table:\n%s", r.out)
	}
	key := str(t, e.okJSON("machines", "secret", workerID), "secret_key")
	if r := e.ok("machines", "create", "third"); !strings.Contains(r.out, "secret key: ak_") {
		t.Fatalf("machine create table does not label the secret key:\n%s", r.out)
	}

	tok := e.okJSON("m2m", "create", "--machine-key", key, "--ttl", "300", "--claims", `{"job":"nightly"}`)
	tokID := str(t, tok, "id")
	if !strings.HasPrefix(str(t, tok, "token"), "mt_") {
		t.Fatalf("m2m create: %v", tok)
	}
	t.Setenv("KEYWARD_MACHINE_KEY", key)
	if r := e.ok("m2m", "create", "--jwt"); !strings.Contains(r.out, "token: ey") {
		t.Fatalf("m2m create --jwt table:\n%s", r.out)
	}
	os.Unsetenv("KEYWARD_MACHINE_KEY")
	if l := e.okJSON("m2m", "list", "--subject", workerID); len(l["data"].([]any)) == 0 {
		t.Fatalf("m2m list: %v", l)
	}
	e.okJSON("controls", "set", tokID, "--meta", `{"plan":"pro","count":3}`)
	if r := e.ok("m2m", "list", "--subject", workerID, "--meta", "plan=pro", "--meta", "count=3"); !strings.Contains(r.out, tokID) {
		t.Fatalf("m2m list --meta plan=pro --meta count=3:\n%s", r.out)
	}
	if l := e.okJSON("m2m", "list", "--subject", workerID, "--meta", "plan=free"); len(l["data"].([]any)) != 0 {
		t.Fatalf("m2m list --meta plan=free: %v", l)
	}
	if rv := e.okJSON("m2m", "revoke", tokID, "--reason", "leaked"); rv["revoked"] != true {
		t.Fatalf("m2m revoke: %v", rv)
	}
	if r := e.ok("m2m", "list", "--subject", workerID, "--revoked"); !strings.Contains(r.out, "revoked (leaked)") || strings.Contains(r.out, "mt_") && !strings.Contains(r.out, tokID) {
		t.Fatalf("m2m list --revoked:\n%s", r.out)
	}
	e.okJSON("machines", "scope", "remove", workerID, api)
	e.okJSON("machines", "scope", "add", workerID, api)
	e.okJSON("machines", "delete", api)

	// Organizations, sites, workspaces, members, org tokens.
	org := e.okJSON("orgs", "create", "acme", "Acme")
	orgID := str(t, org, "id")
	e.okJSON("orgs", "list")
	e.okJSON("orgs", "update", "acme", "--name", "Acme Inc")
	if r := e.ok("orgs", "get", orgID); !strings.Contains(r.out, "Acme Inc") {
		t.Fatalf("orgs get:\n%s", r.out)
	}
	site := str(t, e.okJSON("sites", "create", "HQ", "--org", "acme"), "id")
	e.okJSON("sites", "list", "--org", "acme")
	e.okJSON("sites", "update", site, "--org", "acme", "--name", "HQ West")
	e.ok("sites", "get", site, "--org", "acme")
	group := str(t, e.okJSON("sitegroups", "create", "west", "--site", site, "--org", "acme"), "id")
	if r := e.ok("sitegroups", "list", "--org", "acme"); !strings.Contains(r.out, group) || !strings.Contains(r.out, site) {
		t.Fatalf("sitegroups list:\n%s", r.out)
	}
	e.okJSON("sitegroups", "update", group, "--org", "acme", "--name", "West")
	if g := e.okJSON("sitegroups", "get", group, "--org", "acme"); g["name"] != "West" {
		t.Fatalf("sitegroups get: %v", g)
	}
	e.run("sitegroups", "update", group, "--org", "acme")
	e.okJSON("sitegroups", "delete", group, "--org", "acme")
	e.okJSON("workspaces", "create", "data", "Data", "--org", "acme")
	e.okJSON("workspaces", "list", "--org", "acme")
	e.ok("workspaces", "get", "data", "--org", "acme")
	e.okJSON("members", "put", "user_42", "--role", "member", "--org", "acme", "--workspace", "data")
	if r := e.ok("members", "list", "--org", "acme", "--workspace", "data"); !strings.Contains(r.out, "user_42") {
		t.Fatalf("members list:\n%s", r.out)
	}
	e.okJSON("members", "remove", "user_42", "--org", "acme", "--workspace", "data")

	ot := e.okJSON("org-tokens", "create", "automation", "--org", "acme",
		"--privilege", "scope=org,role=read", "--privilege", "scope=site,role=admin,site_id="+site, "--src-ip", "203.0.113.0/24")
	otID, otKey := str(t, ot, "id"), str(t, ot, "key")
	if r := e.ok("org-tokens", "list", "--org", orgID); !strings.Contains(r.out, otID) || strings.Contains(r.out, otKey) {
		t.Fatalf("org-tokens list:\n%s", r.out)
	}
	e.okJSON("controls", "set", otID, "--meta", `{"team":"infra"}`)
	if r := e.ok("org-tokens", "list", "--org", orgID, "--meta", "team=infra"); !strings.Contains(r.out, otID) {
		t.Fatalf("org-tokens list --meta team=infra:\n%s", r.out)
	}
	if r := e.ok("org-tokens", "list", "--org", orgID, "--meta", "team=web"); strings.Contains(r.out, otID) {
		t.Fatalf("org-tokens list --meta team=web:\n%s", r.out)
	}
	e.okJSON("org-tokens", "get", otID, "--org", "acme")
	if r := e.run("verify", otKey, "--client-ip", "198.51.100.1"); r.code != exitNotValid || !strings.Contains(r.out, "ip_not_allowed") {
		t.Fatalf("verify from a refused address: exit %d\n%s", r.code, r.out)
	}
	e.okJSON("verify", otKey, "--client-ip", "203.0.113.9")
	e.okJSON("org-tokens", "delete", otID, "--org", "acme")
	e.okJSON("sites", "delete", site, "--org", "acme")
	e.okJSON("workspaces", "delete", "data", "--org", "acme")
	e.okJSON("orgs", "delete", "acme")

	// PATs and the scope catalogue.
	if r := e.ok("scopes", "set", "read"); !strings.Contains(r.out, "keyward:tokens") {
		t.Fatalf("scopes set table:\n%s", r.out)
	}
	e.okJSON("scopes", "get")
	r := e.ok("pats", "create", "laptop", "--user", "user_7", "--scope", "read", "--description", "my laptop")
	if !strings.Contains(r.out, "token: pat_") || !strings.Contains(r.out, "laptop") {
		t.Fatalf("pats create table:\n%s", r.out)
	}
	if r := e.ok("pats", "list", "--user", "user_7"); !strings.Contains(r.out, "laptop") || strings.Contains(r.out, "token: ") {
		t.Fatalf("pats list:\n%s", r.out)
	}
	pats := e.okJSON("pats", "list", "--user", "user_7")["data"].([]any)
	patID := str(t, pats[0].(map[string]any), "id")
	e.okJSON("controls", "set", patID, "--meta", `{"device":"laptop"}`)
	if l := e.okJSON("pats", "list", "--user", "user_7", "--meta", "device=laptop"); len(l["data"].([]any)) != 1 {
		t.Fatalf("pats list --meta device=laptop: %v", l)
	}
	if l := e.okJSON("pats", "list", "--user", "user_7", "--meta", "device=phone"); len(l["data"].([]any)) != 0 {
		t.Fatalf("pats list --meta device=phone: %v", l)
	}
	if r := e.run("pats", "create", "x", "--user", "user_7", "--expires", "2999-01-01T00:00:00Z"); r.code != exitUsage {
		t.Fatalf("a PAT past the maximum lifetime: exit %d (%v)", r.code, r.err)
	}

	// The client registry.
	e.okJSON("clients", "register", "proj_backup01", "--user", "user_7", "--hostname", "backup01.example.org", "--description", "nightly backups")
	e.ok("clients", "register", "proj_web01", "--user", "user_7", "--hostname", "web01.example.org")
	if r := e.run("clients", "register", "proj_web01", "--user", "user_7"); r.code != exitConflict {
		t.Fatalf("duplicate client: exit %d (%v)", r.code, r.err)
	}
	l := e.okJSON("clients", "list", "--user", "user_7", "--search", "BACKUP")
	if cl := l["data"].([]any); len(cl) != 1 {
		t.Fatalf("clients list --search: %v", l)
	}
	l = e.okJSON("clients", "list", "--user", "user_7", "--match-not", "hostname=web01.example.org")
	if cl := l["data"].([]any); len(cl) != 1 {
		t.Fatalf("clients list --match-not: %v", l)
	}
	if r := e.ok("clients", "list", "--user", "user_7", "--match", "client_id=proj_web01"); !strings.Contains(r.out, "proj_web01") || strings.Contains(r.out, "proj_backup01") {
		t.Fatalf("clients list --match:\n%s", r.out)
	}
	if l := e.okJSON("clients", "list", "--user", "someone_else"); len(l["data"].([]any)) != 0 {
		t.Fatalf("another user's clients: %v", l)
	}
	e.okJSON("clients", "get", "proj_backup01", "--user", "user_7")
	e.okJSON("clients", "delete", "proj_backup01", "--user", "user_7")
	if r := e.run("clients", "delete", "proj_backup01", "--user", "user_7"); r.code != exitNotFound {
		t.Fatalf("delete of a deleted client: exit %d (%v)", r.code, r.err)
	}
}

// TestRemoteCommandsAreDocumented checks every remote command has a Short
// and an Example, and that help works without the root command too.
func TestRemoteCommandsAreDocumented(t *testing.T) {
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		if c.Short == "" || c.Example == "" {
			t.Errorf("%s: Short %q, Example %q", c.CommandPath(), c.Short, c.Example)
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	for _, c := range newRemoteCommands() {
		walk(c)
	}

	var out bytes.Buffer
	standalone := newRemoteCommands()[0]
	standalone.SetOut(&out)
	standalone.SetArgs([]string{"--help"})
	if err := standalone.Execute(); err != nil || !strings.Contains(out.String(), "Examples:") {
		t.Fatalf("standalone help: %v\n%s", err, out.String())
	}

	// The root's own help still lists its flags after a remote help hid them.
	runCLI(t, "machines", "--help")
	if r := runCLI(t, "--help"); !strings.Contains(r.out, "--data-dir") {
		t.Fatalf("root help lost its flags:\n%s", r.out)
	}
}

func TestRemoteVerifyReadsTheTokenFromStdin(t *testing.T) {
	e := startRemote(t)
	pat := e.okJSON("pats", "create", "ci", "--user", "user_1")
	token := str(t, pat, "token")
	var out bytes.Buffer
	root := newRootCommand(&out, io.Discard)
	root.AddCommand(newRemoteCommands()...)
	root.SetIn(strings.NewReader(token + "\n"))
	root.SetArgs([]string{"verify", "-", "--server", e.env.URL, "--admin-key", e.env.AdminKey})
	if err := root.Execute(); exitCode(err) != 0 || !strings.Contains(out.String(), "valid") || strings.Contains(out.String(), token) {
		t.Fatalf("verify -: %v\n%s", err, out.String())
	}
}
