package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/keyward/keyward/internal/authority"
	"github.com/keyward/keyward/internal/inmem"
	"github.com/keyward/keyward/internal/keyring"
	"github.com/keyward/keyward/internal/sqlstore"
	"github.com/keyward/keyward/internal/testkit"
)

// mainArgsEnv makes the test binary run keyward's main with these
// arguments (separated by \x1f) instead of the tests, so a test can see
// the real exit status and stderr.
const mainArgsEnv = "KEYWARD_TEST_MAIN_ARGS"

func TestMain(m *testing.M) {
	if args, ok := os.LookupEnv(mainArgsEnv); ok {
		os.Args = append([]string{"keyward"}, strings.Split(args, "\x1f")...)
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// runProcess runs keyward in a child process and returns its exit status
// and stderr. It kills the child after 20 s.
func runProcess(t *testing.T, args ...string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0])
	cmd.Env = append(os.Environ(), mainArgsEnv+"="+strings.Join(args, "\x1f"))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("keyward %s still running after 20 s (it did not refuse to start)\n%s", args[0], &stderr)
	}
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		t.Fatal(err)
	}
	return cmd.ProcessState.ExitCode(), stderr.String()
}

// runErr runs keyward in-process and returns its error.
func runErr(args ...string) (string, error) {
	var out bytes.Buffer
	root := newRootCommand(&out, io.Discard)
	root.SetArgs(args)
	err := root.ExecuteContext(context.Background())
	return out.String(), err
}

func newMasterKey(t *testing.T) string {
	t.Helper()
	k, err := keyring.GenerateMasterKey()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

const mismatch = "the master key does not match this data"

// deployment names a fresh store on one engine: the flags selecting it
// and, on PostgreSQL, its master key.
type deployment struct {
	engine string
	store  []string // --data-dir … or --database-url …
	master string   // "" on SQLite, whose key is generated into the data dir
}

func (d deployment) args(master string, more ...string) []string {
	args := append([]string{}, d.store...)
	if master != "" {
		args = append(args, "--master-key", master)
	}
	return append(args, more...)
}

// eachDeployment runs fn on a SQLite data dir with its generated master
// key, and on a fresh PostgreSQL schema (skipped without
// KEYWARD_TEST_DATABASE_URL) with a given one.
func eachDeployment(t *testing.T, fn func(t *testing.T, d deployment)) {
	t.Run("sqlite", func(t *testing.T) {
		fn(t, deployment{engine: "sqlite", store: []string{"--data-dir", t.TempDir()}})
	})
	t.Run("postgres", func(t *testing.T) {
		fn(t, deployment{engine: "postgres", store: []string{"--database-url", testkit.PostgresURL(t)}, master: newMasterKey(t)})
	})
}

// currentKey is the master key the deployment starts with.
func (d deployment) currentKey(t *testing.T) string {
	if d.master != "" {
		return d.master
	}
	return readFile(t, filepath.Join(d.store[1], "master.key"))
}

func TestServeRefusesAMasterKeyThatDoesNotMatchTheData(t *testing.T) {
	eachDeployment(t, func(t *testing.T, d deployment) {
		_, stderr, stop := startStoppable(t, d.args(d.master)...)
		key := adminKeyLine.FindStringSubmatch(stderr.String())[1]
		stop()
		right, wrong := d.currentKey(t), newMasterKey(t)

		code, out := runProcess(t, append([]string{"serve", "--addr", "127.0.0.1:0"}, d.args(wrong)...)...)
		if code == 0 || !strings.Contains(out, mismatch) {
			t.Fatalf("serve with another master key: exit %d, stderr:\n%s\nwant a non-zero exit saying %q", code, out, mismatch)
		}
		for _, k := range []string{right, wrong} {
			if strings.Contains(out, k) {
				t.Fatal("the refusal printed a master key")
			}
		}
		if d.engine == "sqlite" {
			// A master.key restored from the wrong backup.
			if err := os.WriteFile(filepath.Join(d.store[1], "master.key"), []byte(wrong+"\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			if code, out := runProcess(t, append([]string{"serve", "--addr", "127.0.0.1:0"}, d.args("")...)...); code == 0 || !strings.Contains(out, mismatch) {
				t.Fatalf("serve with a wrong master.key: exit %d, stderr:\n%s", code, out)
			}
			if err := os.WriteFile(filepath.Join(d.store[1], "master.key"), []byte(right+"\n"), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		for _, cmd := range [][]string{{"instance", "list"}, {"instance", "create", "x"}, {"master-key", "rotate"}} {
			if _, err := runErr(d.args(wrong, cmd...)...); err == nil || !strings.Contains(err.Error(), mismatch) {
				t.Errorf("keyward %s with another master key: %v, want %q", strings.Join(cmd, " "), err, mismatch)
			}
		}
		url, _ := startServe(t, d.args(d.master)...)
		if status := get(t, url+"/v1/caller", key); status != 200 {
			t.Fatalf("after the refusals the right key no longer serves: %d", status)
		}
	})
}

// createMachine makes a machine through the Clerk API and returns its id
// and secret key.
func createMachine(t *testing.T, url, adminKey string) (string, string) {
	t.Helper()
	req, _ := http.NewRequest("POST", url+"/clerk/v1/machines", strings.NewReader(`{"name":"worker"}`))
	req.Header.Set("Authorization", "Bearer "+adminKey)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m struct {
		ID        string `json:"id"`
		SecretKey string `json:"secret_key"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil || resp.StatusCode != 201 && resp.StatusCode != 200 || m.SecretKey == "" {
		t.Fatalf("create machine: %d %v", resp.StatusCode, err)
	}
	return m.ID, m.SecretKey
}

// machineSecret reads a machine's sealed secret key through the Clerk API.
func machineSecret(t *testing.T, url, adminKey, id string) string {
	t.Helper()
	req, _ := http.NewRequest("GET", url+"/clerk/v1/machines/"+id+"/secret_key", nil)
	req.Header.Set("Authorization", "Bearer "+adminKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var s struct {
		Secret string `json:"secret"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&s); err != nil || resp.StatusCode != 200 {
		t.Fatalf("get secret key: %d %v", resp.StatusCode, err)
	}
	return s.Secret
}

var printedKey = regexp.MustCompile(`(?m)^\s+([A-Za-z0-9+/]{43}=)\s*$`)

func TestMasterKeyRotateKeepsEveryCredentialAndRefusesTheOldKey(t *testing.T) {
	eachDeployment(t, func(t *testing.T, d deployment) {
		url, stderr, stop := startStoppable(t, d.args(d.master)...)
		adminKey := adminKeyLine.FindStringSubmatch(stderr.String())[1]
		machineID, machineKey := createMachine(t, url, adminKey)
		old := d.currentKey(t)

		// Rotate while the server runs, with a generated key.
		out := run(t, d.args(d.master, "master-key", "rotate")...)
		next := ""
		if d.engine == "sqlite" {
			next = d.currentKey(t)
			if next == old || !strings.Contains(out, "replaced") || strings.Contains(out, next) {
				t.Fatalf("rotate must replace master.key without printing the key:\n%s", out)
			}
			if _, err := os.Stat(filepath.Join(d.store[1], "master.key.new")); err == nil {
				t.Fatal("rotate left master.key.new behind")
			}
			if info, err := os.Stat(filepath.Join(d.store[1], "master.key")); err != nil || info.Mode().Perm() != 0o600 {
				t.Fatalf("the new master.key: %v %v, want mode 600", info, err)
			}
		} else {
			m := printedKey.FindAllStringSubmatch(out, -1)
			if len(m) != 1 {
				t.Fatalf("rotate must print the generated key once:\n%s", out)
			}
			next = m[0][1]
		}
		if strings.Contains(out, old) {
			t.Fatal("rotate printed the old master key")
		}
		if status := get(t, url+"/v1/caller", adminKey); status != 200 {
			t.Fatalf("the running server stopped serving after the rotation: %d", status)
		}
		stop()

		if _, err := runErr(append(d.store, "--master-key", old, "instance", "list")...); err == nil || !strings.Contains(err.Error(), mismatch) {
			t.Fatalf("the old master key after a rotation: %v, want %q", err, mismatch)
		}
		startArgs := d.args(next)
		if d.engine == "sqlite" {
			startArgs = d.args("") // from the replaced master.key
		}
		url, _ = startServe(t, startArgs...)
		if status := get(t, url+"/v1/caller", adminKey); status != 200 {
			t.Fatalf("the admin key after the rotation: %d", status)
		}
		if status := get(t, url+"/v1/caller", machineKey); status != 200 {
			t.Fatalf("the machine key after the rotation: %d", status)
		}
		if got := machineSecret(t, url, adminKey, machineID); got != machineKey {
			t.Fatal("the sealed machine secret key changed or no longer opens after the rotation")
		}

		// Rotate again, to a key given through the environment.
		third := newMasterKey(t)
		t.Setenv("KEYWARD_NEW_MASTER_KEY", third)
		out = run(t, append(startArgs, "master-key", "rotate")...)
		if strings.Contains(out, third) || strings.Contains(out, next) {
			t.Fatalf("rotate printed a key it was given:\n%s", out)
		}
		if d.engine == "sqlite" && d.currentKey(t) != third {
			t.Fatal("rotate did not write the given key to master.key")
		}
		if _, err := runErr(d.args(third, "instance", "list")...); err != nil {
			t.Fatalf("the key given through KEYWARD_NEW_MASTER_KEY does not open the store: %v", err)
		}
	})
}

// TestServeUpgradesAStoreMadeBeforeEnvelopeKeys fills a store as keyward
// did before envelope keys (data keys derived from the master key, no
// keyring row) and checks that keyward serve adopts it: every credential
// keeps working, and the store is then bound to that master key.
func TestServeUpgradesAStoreMadeBeforeEnvelopeKeys(t *testing.T) {
	eachDeployment(t, func(t *testing.T, d deployment) {
		ctx := context.Background()
		encoded := d.master
		var store *sqlstore.Store
		var err error
		if d.engine == "sqlite" {
			encoded = newMasterKey(t)
			if err := os.WriteFile(filepath.Join(d.store[1], "master.key"), []byte(encoded+"\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			store, err = sqlstore.OpenSQLite(ctx, filepath.Join(d.store[1], "keyward.db"))
		} else {
			store, err = sqlstore.OpenPostgres(ctx, d.store[1])
		}
		if err != nil {
			t.Fatal(err)
		}
		master, err := keyring.ParseMasterKey(encoded)
		if err != nil {
			t.Fatal(err)
		}
		legacy, err := keyring.New(master)
		if err != nil {
			t.Fatal(err)
		}
		before := authority.New(authority.Config{Store: store, Keyring: legacy, Limiter: inmem.NewLimiter()})
		_, adminKey, err := before.CreateInstance(ctx, "acme")
		if err != nil {
			t.Fatal(err)
		}
		admin, err := before.Authenticate(ctx, adminKey.Reveal())
		if err != nil {
			t.Fatal(err)
		}
		name := "worker"
		m, machineKey, err := before.CreateMachine(ctx, admin, authority.CreateMachineInput{Name: &name})
		if err != nil {
			t.Fatal(err)
		}
		store.Close()

		url, _, stop := startStoppable(t, d.args(d.master)...)
		if status := get(t, url+"/v1/caller", adminKey.Reveal()); status != 200 {
			t.Fatalf("an admin key made before the upgrade: %d", status)
		}
		if status := get(t, url+"/v1/caller", machineKey.Reveal()); status != 200 {
			t.Fatalf("a machine key made before the upgrade: %d", status)
		}
		if got := machineSecret(t, url, adminKey.Reveal(), m.ID); got != machineKey.Reveal() {
			t.Fatal("a machine secret key sealed before the upgrade no longer opens")
		}
		stop()
		if _, err := runErr(d.args(newMasterKey(t), "instance", "list")...); err == nil || !strings.Contains(err.Error(), mismatch) {
			t.Fatalf("after the upgrade another master key: %v, want %q", err, mismatch)
		}
	})
}
