package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keyward/keyward/internal/credential"
	"github.com/keyward/keyward/internal/testkit"
)

// syncBuffer collects a command's stderr while it runs.
type syncBuffer = testkit.SyncBuffer

// startServe runs `keyward serve` in-process on a free port until the test
// ends, and returns its base URL and stderr.
func startServe(t *testing.T, args ...string) (string, *syncBuffer) {
	t.Helper()
	url, stderr, _ := startStoppable(t, args...)
	return url, stderr
}

// startStoppable is startServe that also returns a function stopping the
// server before the test ends (a graceful shutdown, as on SIGTERM).
func startStoppable(t *testing.T, args ...string) (string, *syncBuffer, func()) {
	t.Helper()
	stderr := &syncBuffer{}
	ready := make(chan string, 1)
	var readyOnly chan<- string = ready
	ctx, cancel := context.WithCancel(context.Background())
	root := newRootCommand(io.Discard, stderr)
	root.SetArgs(append([]string{"serve", "--addr", "127.0.0.1:0"}, args...))
	done := make(chan error, 1)
	go func() { done <- root.ExecuteContext(withReady(ctx, readyOnly)) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("serve exited with %v", err)
			}
		})
	}
	t.Cleanup(stop)
	select {
	case addr := <-ready:
		return "http://" + addr, stderr, stop
	case err := <-done:
		done <- nil // for stop, which the failing test runs
		t.Fatalf("serve exited before it was ready: %v\n%s", err, stderr)
	case <-time.After(10 * time.Second):
		t.Fatalf("serve not ready after 10 s\n%s", stderr)
	}
	return "", nil, nil
}

var adminKeyLine = regexp.MustCompile(`(?m)^\s+(sk_live_[0-9A-Za-z]+)\s*$`)

func TestServeStartsWithZeroConfigAndPrintsTheAdminKeyOnce(t *testing.T) {
	dir := t.TempDir()
	dataDir := filepath.Join(dir, "data")
	url, stderr := startServe(t, "--data-dir", dataDir)

	m := adminKeyLine.FindStringSubmatch(stderr.String())
	if m == nil {
		t.Fatalf("no admin key printed on first start:\n%s", stderr)
	}
	key := m[1]
	if _, kind, err := credential.Parse(key); err != nil || kind != credential.KindAdminKey {
		t.Fatalf("printed key does not parse as an admin key: %v", err)
	}
	for _, path := range []string{"/healthz", "/readyz"} {
		resp, err := http.Get(url + path)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("GET %s: %v %v", path, resp, err)
		}
		resp.Body.Close()
	}
	req, _ := http.NewRequest("GET", url+"/clerk/v1/machines", nil)
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("the printed admin key does not work: %v %v", resp, err)
	}
	resp.Body.Close()
	if resp.Header.Get("X-Request-Id") == "" {
		t.Fatal("no X-Request-Id header")
	}

	info, err := os.Stat(filepath.Join(dataDir, "master.key"))
	if err != nil {
		t.Fatal(err)
	}
	if info.Mode().Perm() != 0o600 {
		t.Fatalf("master key file mode %o, want 600", info.Mode().Perm())
	}
	if strings.Count(stderr.String(), key) != 1 {
		t.Fatal("the admin key must be printed exactly once")
	}
	if strings.Contains(stderr.String(), readFile(t, filepath.Join(dataDir, "master.key"))) {
		t.Fatal("the master key was printed")
	}
}

func TestServeSecondStartPrintsNoKeyAndKeepsTheFirst(t *testing.T) {
	dataDir := t.TempDir()
	preset := credential.MustGenerate(credential.KindAdminKey).Reveal()
	t.Setenv("KEYWARD_BOOTSTRAP_ADMIN_KEY", preset)
	t.Setenv("KEYWARD_DATA_DIR", dataDir) // the env form of --data-dir

	url, stderr := startServe(t)
	if adminKeyLine.MatchString(stderr.String()) || strings.Contains(stderr.String(), preset) {
		t.Fatalf("a preset admin key must not be printed:\n%s", stderr)
	}
	if status := get(t, url+"/v1/caller", preset); status != 200 {
		t.Fatalf("KEYWARD_BOOTSTRAP_ADMIN_KEY does not authenticate: %d", status)
	}
	if _, err := os.Stat(filepath.Join(dataDir, "keyward.db")); err != nil {
		t.Fatalf("KEYWARD_DATA_DIR was not used: %v", err)
	}

	url2, stderr2 := startServe(t)
	if strings.Contains(stderr2.String(), "created instance") {
		t.Fatalf("second start bootstrapped again:\n%s", stderr2)
	}
	if status := get(t, url2+"/v1/caller", preset); status != 200 {
		t.Fatalf("the first start's key stopped working: %d", status)
	}
}

func TestServeRefusesUnsafeConfigurations(t *testing.T) {
	cases := map[string]struct {
		args []string
		env  map[string]string
		want string
	}{
		"postgres without a master key": {args: []string{"--database-url", "postgres://postgres@127.0.0.1:5432/test"}, want: "--master-key"},
		"a malformed master key":        {args: []string{"--master-key", "c2hvcnQ="}, want: "master key"},
		"a malformed bootstrap key":     {env: map[string]string{"KEYWARD_BOOTSTRAP_ADMIN_KEY": "sk_live_nope"}, want: "bootstrap"},
		"a non-postgres database url":   {args: []string{"--database-url", "mysql://x"}, want: "postgres://"},
		"a cache budget under 1 MiB":    {args: []string{"--cache-bytes", "4096"}, want: "--cache-bytes"},
		"an unknown authz instance":     {args: []string{"--authz-instance", "ins_nope"}, want: "--authz-instance"},
		"an authz header with a space":  {args: []string{"--authz-header", "X Api Key"}, want: "--authz-header"},
		"an unknown leak response":      {args: []string{"--leak-response", "ignore"}, want: "--leak-response"},
		"a missing leak key file":       {args: []string{"--leak-report-public-key-file", "/nonexistent/keys.pem"}, want: "--leak-report-public-key-file"},
		"an unknown leak instance":      {args: []string{"--leak-report-instance", "ins_nope"}, want: "--leak-report-instance"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			root := newRootCommand(io.Discard, io.Discard)
			root.SetArgs(append([]string{"serve", "--addr", "127.0.0.1:0", "--data-dir", t.TempDir()}, tc.args...))
			err := root.ExecuteContext(context.Background())
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error = %v, want one mentioning %q", err, tc.want)
			}
		})
	}
}

func TestServeRefusesADatabaseWithoutItsMasterKey(t *testing.T) {
	dataDir := t.TempDir()
	startServe(t, "--data-dir", dataDir)
	if err := os.Remove(filepath.Join(dataDir, "master.key")); err != nil {
		t.Fatal(err)
	}
	root := newRootCommand(io.Discard, io.Discard)
	root.SetArgs([]string{"serve", "--addr", "127.0.0.1:0", "--data-dir", dataDir})
	if err := root.ExecuteContext(context.Background()); err == nil || !strings.Contains(err.Error(), "master.key is missing") {
		t.Fatalf("error = %v, want a refusal to re-key an existing database", err)
	}
}

func TestOperatorCommandsManageInstancesAndAdminKeys(t *testing.T) {
	dataDir := t.TempDir()
	url, _ := startServe(t, "--data-dir", dataDir)

	out := run(t, "--data-dir", dataDir, "instance", "create", "staging")
	instanceID := regexp.MustCompile(`ins_[0-9A-Za-z]{27}`).FindString(out)
	firstKey := regexp.MustCompile(`sk_live_[0-9A-Za-z]+`).FindString(out)
	if instanceID == "" || firstKey == "" {
		t.Fatalf("instance create printed %q", out)
	}
	if status := get(t, url+"/v1/caller", firstKey); status != 200 {
		t.Fatalf("the new instance's key does not authenticate against the running server: %d", status)
	}

	out = run(t, "--data-dir", dataDir, "admin-key", "create", "--instance", instanceID)
	keyID := regexp.MustCompile(`key_[0-9A-Za-z]{27}`).FindString(out)
	second := regexp.MustCompile(`sk_live_[0-9A-Za-z]+`).FindString(out)
	if keyID == "" || second == "" {
		t.Fatalf("admin-key create printed %q", out)
	}
	list := run(t, "--data-dir", dataDir, "admin-key", "list", "--instance", instanceID)
	if !strings.Contains(list, keyID) || strings.Contains(list, second) || strings.Contains(list, firstKey) {
		t.Fatalf("admin-key list must show ids and never keys:\n%s", list)
	}
	if !strings.Contains(list, "operator key") || !strings.Contains(list, "  *  ") {
		t.Fatalf("admin-key list must show an operator key's default name and permission *:\n%s", list)
	}

	// A restricted key: it holds verify only, and the server says so.
	out = run(t, "--data-dir", dataDir, "admin-key", "create", "--instance", instanceID,
		"--name", "protected-api", "--permission", "verify", "--permission", "machines:read", "--expires-at", "2099-01-01T00:00:00Z")
	restricted := regexp.MustCompile(`sk_live_[0-9A-Za-z]+`).FindString(out)
	if restricted == "" || !strings.Contains(out, "verify,machines:read") || !strings.Contains(out, "2099-01-01T00:00:00Z") {
		t.Fatalf("admin-key create --permission printed %q", out)
	}
	if status := get(t, url+"/v1/audit_events", restricted); status != 403 {
		t.Fatalf("a verify and machines:read key reading the audit log: %d, want 403", status)
	}
	if status := get(t, url+"/clerk/v1/machines", restricted); status != 200 {
		t.Fatalf("a machines:read key listing machines: %d, want 200", status)
	}
	list = run(t, "--data-dir", dataDir, "admin-key", "list", "--instance", instanceID)
	if !strings.Contains(list, "protected-api") || !strings.Contains(list, "verify,machines:read") || strings.Contains(list, restricted) {
		t.Fatalf("admin-key list must show names and permissions, never keys:\n%s", list)
	}

	run(t, "--data-dir", dataDir, "admin-key", "revoke", "--instance", instanceID, keyID)
	if status := get(t, url+"/v1/caller", second); status != 401 {
		t.Fatalf("a revoked admin key still authenticates: %d", status)
	}
	if status := get(t, url+"/v1/caller", firstKey); status != 200 {
		t.Fatalf("revoking one key affected another: %d", status)
	}

	generated := strings.TrimSpace(run(t, "admin-key", "generate"))
	if _, kind, err := credential.Parse(generated); err != nil || kind != credential.KindAdminKey {
		t.Fatalf("admin-key generate printed %q", generated)
	}
	if mk := strings.TrimSpace(run(t, "master-key", "generate")); len(mk) != 44 {
		t.Fatalf("master-key generate printed %q", mk)
	}
	if v := run(t, "version"); !strings.HasPrefix(v, "keyward ") {
		t.Fatalf("version printed %q", v)
	}
}

func run(t *testing.T, args ...string) string {
	t.Helper()
	var out bytes.Buffer
	root := newRootCommand(&out, io.Discard)
	root.SetArgs(args)
	if err := root.ExecuteContext(context.Background()); err != nil {
		t.Fatalf("keyward %s: %v", strings.Join(args, " "), err)
	}
	return out.String()
}

func get(t *testing.T, url, key string) int {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

func TestServeReadsTheMasterKeyFromAFile(t *testing.T) {
	dataDir := t.TempDir()
	keyFile := filepath.Join(t.TempDir(), "mk")
	if err := os.WriteFile(keyFile, []byte(strings.TrimSpace(run(t, "master-key", "generate"))+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("KEYWARD_MASTER_KEY_FILE", keyFile)
	url, _ := startServe(t, "--data-dir", dataDir)
	if status := get(t, url+"/healthz", ""); status != 200 {
		t.Fatalf("healthz: %d", status)
	}
	if _, err := os.Stat(filepath.Join(dataDir, "master.key")); err == nil {
		t.Fatal("a master key was generated although KEYWARD_MASTER_KEY_FILE named one")
	}
}

func TestSigningKeyRotateAndList(t *testing.T) {
	dataDir := t.TempDir()
	startServe(t, "--data-dir", dataDir) // creates the store, the master key and the default instance
	list := run(t, "--data-dir", dataDir, "instance", "list")
	instanceID := regexp.MustCompile(`ins_[0-9A-Za-z]{27}`).FindString(list)
	if instanceID == "" {
		t.Fatalf("instance list printed %q", list)
	}
	first := run(t, "--data-dir", dataDir, "signing-key", "rotate", "--instance", instanceID)
	second := run(t, "--data-dir", dataDir, "signing-key", "rotate", "--instance", instanceID, "--algorithm", "EdDSA")
	kid := regexp.MustCompile(`kid_[0-9A-Za-z]{27}`)
	if kid.FindString(first) == "" || !strings.Contains(second, "EdDSA") {
		t.Fatalf("rotate printed %q and %q", first, second)
	}
	keys := run(t, "--data-dir", dataDir, "signing-key", "list", "--instance", instanceID)
	if !strings.Contains(keys, kid.FindString(first)) || !strings.Contains(keys, kid.FindString(second)) || !strings.Contains(keys, "retired") {
		t.Fatalf("signing-key list:\n%s", keys)
	}
	root := newRootCommand(io.Discard, io.Discard)
	root.SetArgs([]string{"--data-dir", dataDir, "signing-key", "rotate", "--instance", instanceID, "--algorithm", "HS256"})
	if err := root.ExecuteContext(context.Background()); err == nil {
		t.Fatal("rotate accepted HS256")
	}
}
